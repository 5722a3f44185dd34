"""What the provider batch API backends share: the adapters' keep-alive pool and credentials
(`pooled.AuthedAdapter`, a 401 refreshing a Google token once), any method and content type,
JSON answers, results read line by line as they arrive (a results file may be far larger
than any interactive answer), and the same failure classification as interactive calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from nemorouter.providers.classify import classify_exception
from nemorouter.providers.google_errors import classify_google
from nemorouter.providers.http import HTTPPool, StreamResponse
from nemorouter.providers.http_connection import Response
from nemorouter.providers.pooled import AuthedAdapter, json_object
from nemorouter.providers.upstream_auth import with_auth
from nemorouter.types.upstream import FailureKind, UpstreamFailure

JSON = b"application/json"


def origin_path(base_url: str, url: str) -> str:
    """The path (and query) of `url` on the origin of `base_url`: a URL a provider hands back
    (a results file, an upload session) is only followed on the origin the credentials are
    for, never elsewhere."""
    if not url.startswith(("http://", "https://")):
        return url if url.startswith("/") else f"/{url}"
    base, target = urlsplit(base_url), urlsplit(url)
    if (base.scheme, base.netloc) != (target.scheme, target.netloc):
        raise UpstreamFailure(
            FailureKind.MALFORMED, f"the provider pointed at another origin ({target.netloc})"
        )
    path = target.path
    prefix = base.path.rstrip("/")
    if prefix and path.startswith(prefix + "/"):
        path = path[len(prefix) :]  # the pool puts the base path back
    return f"{path}?{target.query}" if target.query else path


def require_lines(lines: Sequence[Any]) -> None:
    """Every provider refuses an empty batch: say so before asking."""
    if not lines:
        raise ValueError("a part to submit has at least one line")


class DeferredHTTP(AuthedAdapter):
    """A provider endpoint's batch API over one keep-alive pool; `who` names it in errors."""

    who = "the provider"

    async def start(self) -> None:
        if self._pool is None:
            await super().start()

    async def _send(
        self,
        pool: HTTPPool,
        method: bytes,
        path: str,
        body: bytes = b"",
        content_type: bytes = JSON,
        extra: bytes = b"",
    ) -> Response:
        """One authenticated call on `pool`; any status but 200 raises, classified."""

        typed = b"Content-Type: %s\r\n" % content_type if body or method == b"POST" else b""

        async def call(header: bytes) -> Response:
            lines = header + typed + extra
            try:
                response = await pool.request(method.decode(), path, body, lines, self._timeout)
            except OSError as exc:
                raise classify_exception(exc) from None
            if response.status != 200:
                raise classify_google(response.status, response.headers, response.body)
            return response

        return await with_auth(self.auth, call)

    async def _call(
        self,
        method: bytes,
        path: str,
        body: bytes = b"",
        content_type: bytes = JSON,
        extra: bytes = b"",
    ) -> Response:
        await self.start()
        return await self._send(self.pool, method, path, body, content_type, extra)

    async def _json(
        self, method: bytes, path: str, body: bytes = b"", extra: bytes = b""
    ) -> dict[str, Any]:
        response = await self._call(method, path, body, JSON, extra)
        return json_object(response.body, f"{self.who} answered 200 with no JSON object")

    async def _lines(
        self, path: str, extra: bytes = b"", pool: HTTPPool | None = None
    ) -> AsyncIterator[bytes]:
        """GET `path` and yield its body's non-empty lines (JSONL) as they arrive; a line is
        bounded like a whole interactive answer."""
        await self.start()
        on = pool or self.pool

        async def call(header: bytes) -> StreamResponse:
            try:
                response = await on.stream(path, b"", header + extra, self._timeout, "GET")
                if response.status != 200:
                    raw = await response.read()
                    raise classify_google(response.status, response.headers, raw)
            except OSError as exc:
                raise classify_exception(exc) from None
            return response

        response = await with_auth(self.auth, call)
        pending = b""
        try:
            async for chunk in response.iter_chunks():
                pending += chunk
                *whole, pending = pending.split(b"\n")
                if len(pending) > self.max_body:
                    raise UpstreamFailure(
                        FailureKind.MALFORMED, f"{self.who} sent a results line too large"
                    )
                for line in whole:
                    if line.strip():
                        yield line
        except OSError as exc:
            raise classify_exception(exc) from None
        finally:
            response.release()
        if pending.strip():
            yield pending
