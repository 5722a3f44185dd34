"""What the simulators of native (non-OpenAI) wire formats share: URLs rooted at the server
rather than under /v1, Vertex bearer tokens checked against an optional `FakeOAuthServer`, and a
serial number for response ids."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from nemorouter.testing.fake_oauth import FakeOAuthServer
from nemorouter.testing.sim_http import Headers
from nemorouter.testing.sim_types import RecordedRequest
from nemorouter.testing.simulated_provider import SimulatedProvider

# (method, target with query, headers, body, authorization) -> a reply, or None: not mine
Route = Callable[[bytes, bytes, bytes, Headers, bytes, "bytes | None"], "bytes | None"]


class NativeSimulator(SimulatedProvider):
    """A simulated provider with its own wire format; `oauth` guards its Vertex endpoints."""

    def __init__(self, oauth: FakeOAuthServer | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.oauth = oauth
        self._serial = 0
        # Its other APIs (batches, storage): each answers its own requests, else None.
        self.apis: list[Route] = []

    @property
    def base_url(self) -> str:
        return self.origin

    def _bearer_refused(self, auth: bytes | None) -> bool:
        """Whether a Vertex call lacks a valid `Bearer` token (never refused without `oauth`)."""
        if self.oauth is None:
            return False
        token = auth[7:].decode("latin-1") if auth and auth.startswith(b"Bearer ") else ""
        return not self.oauth.valid(token)

    def bearer_refused(self, auth: bytes | None) -> bool:
        return self._bearer_refused(auth)

    def _route(
        self,
        method: bytes,
        url: bytes,
        path: bytes,
        headers: Headers,
        body: bytes,
        auth: bytes | None,
    ) -> bytes | None:
        for api in self.apis:
            reply = api(method, url, path, headers, body, auth)
            if reply is not None:
                return reply
        return None

    def interactive_reply(
        self, path: bytes, headers: Headers, body: bytes, auth: bytes | None = None
    ) -> bytes:
        """The whole HTTP reply an interactive (non-streaming) call of `path` would get (with
        the batch call's credentials), with no fault or latency: how a simulated batch line is
        answered."""
        return self._answer(path, headers, body, auth, None)

    def note(self, method: bytes, path: bytes, headers: Headers, body: bytes) -> None:
        """Record a call of the simulator's other APIs (batches, storage) with the chats."""
        if self.record:
            self._requests.append(
                RecordedRequest(method.decode(), path.decode(), headers, body, time.monotonic())
            )
