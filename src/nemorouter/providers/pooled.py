"""What the adapters share: a keep-alive pool opened in `start()` and closed in `close()`
(every adapter), and for the translating ones (Gemini, Claude) the authenticated call with
a 401 refresh and the stream that turns provider events into OpenAI chunks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any, Protocol

import orjson

from nemorouter.config import ProviderConfig, Settings
from nemorouter.providers.answer_check import translated
from nemorouter.providers.classify import classify_exception
from nemorouter.providers.google_errors import classify_google
from nemorouter.providers.http import HTTPPool, StreamResponse
from nemorouter.providers.sse import sse_data
from nemorouter.providers.upstream_auth import KeyAuth, VertexAuth, with_auth
from nemorouter.types.upstream import FailureKind, UpstreamFailure


def json_object(raw: bytes, message: str) -> dict[str, Any]:
    """A 200 body as a JSON object; anything else is the provider's fault (`message`)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamFailure(FailureKind.MALFORMED, message, status=200)
    return data


class PooledAdapter:
    """One provider endpoint's name, origin, timeouts and pooled keep-alive connections."""

    def __init__(
        self, name: str, base_url: str, provider: ProviderConfig, settings: Settings
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._max_connections = provider.max_connections
        # A whole non-streaming answer must arrive within the request timeout; a stream
        # may run longer, but no gap between its chunks may exceed it.
        self._timeout = settings.request_timeout_s
        self._connect_timeout = settings.connect_timeout_s
        self.max_body = int(settings.max_upstream_body_mb * (1 << 20))
        self.max_event = int(settings.max_upstream_event_mb * (1 << 20))
        self._pool: HTTPPool | None = None

    async def start(self) -> None:
        self._pool = HTTPPool(
            self.base_url,
            max_connections=self._max_connections,
            connect_timeout=self._connect_timeout,
            max_body=self.max_body,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> HTTPPool:
        if self._pool is None:
            raise RuntimeError(f"provider {self.name} used before start()")
        return self._pool


class AuthedAdapter(PooledAdapter):
    """A pooled adapter whose calls carry `auth` and whose errors may come in Google's shape
    (Vertex) or the provider's own; `classify_google` reads both."""

    auth: VertexAuth | KeyAuth  # set by the subclass before PooledAdapter.__init__

    async def close(self) -> None:
        await self.auth.close()
        await super().close()

    async def _post(self, path: str, payload: bytes, who: str) -> dict[str, Any]:
        """POST `payload`; the 200 answer as a JSON object (`who` names the provider)."""

        async def call(header: bytes) -> bytes:
            try:
                response = await self.pool.post(path, payload, header, self._timeout)
            except OSError as exc:
                raise classify_exception(exc) from None
            if response.status != 200:
                raise classify_google(response.status, response.headers, response.body)
            return response.body

        raw = await with_auth(self.auth, call)
        return json_object(raw, f"{who} answered 200 with no JSON object")

    async def _open(self, path: str, payload: bytes) -> StreamResponse:
        """POST `payload` for a stream; failures before its first byte raise here."""

        async def call(header: bytes) -> StreamResponse:
            try:
                response = await self.pool.stream(path, payload, header, self._timeout)
                if response.status != 200:
                    raw = await response.read()
                    raise classify_google(response.status, response.headers, raw)
            except OSError as exc:
                raise classify_exception(exc) from None
            return response

        return await with_auth(self.auth, call)


# The OpenAI wire format's end-of-stream sentinel (no other provider sends it).
DONE = b"[DONE]"


class Translator(Protocol):
    """Turns one provider's stream events into OpenAI chunks (for OpenAI-format providers,
    the identity translation: checked and relabelled)."""

    @property
    def complete(self) -> bool:
        """Whether the provider's final event has been fed."""

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]: ...

    def close(self) -> list[dict[str, Any]]: ...


class TranslatedStream:
    """The one upstream stream type: a provider's server-sent JSON events, as OpenAI chunks
    (`who` names the provider). A stream is complete when the translator has seen the
    provider's final event, or the provider sent `[DONE]`."""

    who = "the provider"

    def __init__(self, response: StreamResponse, translator: Translator, max_event: int) -> None:
        self._response = response
        self._translator = translator
        self._max_event = max_event

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._chunks()

    def _check(self, event: dict[str, Any]) -> None:
        """Raise for an event that reports a failure (providers that send such events)."""

    async def _chunks(self) -> AsyncIterator[dict[str, Any]]:
        translator = self._translator
        done = False
        try:
            async for payload in sse_data(self._response.iter_chunks(), self._max_event):
                if payload == DONE:
                    done = True
                    continue  # read on to the end, so the connection can be reused
                event = orjson.loads(payload)
                if not isinstance(event, dict):
                    raise UpstreamFailure(
                        FailureKind.MALFORMED, f"{self.who} sent a non-object event", status=200
                    )
                self._check(event)
                for chunk in translated(self.who, partial(translator.feed, event)):
                    yield chunk
        except OSError as exc:
            raise classify_exception(exc) from None
        except orjson.JSONDecodeError:
            raise UpstreamFailure(
                FailureKind.MALFORMED, f"{self.who} sent an event that is not JSON", status=200
            ) from None
        finally:
            self._response.release()
        if not (done or translator.complete):
            raise UpstreamFailure(
                FailureKind.CONNECTION, f"{self.who} ended the stream before it finished"
            )
        for chunk in translator.close():
            yield chunk

    async def aclose(self) -> None:
        self._response.release()
