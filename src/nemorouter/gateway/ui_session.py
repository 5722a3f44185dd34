"""Dashboard sessions: a signed, expiring cookie issued for the master key.

The signing key is derived from the master key alone, so every worker and every instance
sharing the config accepts a session another one issued, a restart keeps people signed
in, and changing the master key signs everyone out. The cookie is HttpOnly (page scripts
cannot read it) and SameSite=Strict (no other site can make the browser send it), which
is the CSRF defence; POSTs also refuse a foreign Origin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from functools import lru_cache

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request, cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from nemorouter.types.errors import GatewayError
from nemorouter.wiring import Services

COOKIE = "nemo_session"
REVOKED_KEY = "nemo:ui:revoked:"  # + nonce, in Redis until the session's own expiry
REVOKED_ELSEWHERE = "nemo.session_revoked"  # scope key set by SessionGate
log = logging.getLogger("nemorouter.gateway")
LIFETIME_S = 8 * 3600
_VERSION = "v1"
_SAFE_METHODS = frozenset({"GET", "HEAD"})


class Sessions:
    def __init__(self, master_key: str) -> None:
        self._key = hmac.new(
            master_key.encode(), b"nemorouter ui session v1", hashlib.sha256
        ).digest()
        self._master = master_key.encode()
        # Signed-out sessions (nonce -> expiry) until they would have expired anyway. Only
        # a valid session can be signed out, so this holds at most a day's sign-ins.
        self._revoked: dict[str, int] = {}

    def master_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self._master)

    def issue(self, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + LIFETIME_S)
        body = f"{_VERSION}.{expires}.{secrets.token_urlsafe(12)}"
        return f"{body}.{self._sign(body)}"

    def valid(self, token: str | None, now: float | None = None) -> bool:
        parsed = self.parse(token, now)
        return parsed is not None and not self.revoked_here(parsed[0])

    def parse(self, token: str | None, now: float | None = None) -> tuple[str, int] | None:
        """(nonce, expiry) of a well-signed, unexpired token, else None."""
        if not token or token.count(".") != 3:
            return None
        body, signature = token.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        version, expires, nonce = body.split(".")
        if version != _VERSION or not expires.isdigit():
            return None
        if int(expires) <= (time.time() if now is None else now):
            return None
        return nonce, int(expires)

    def revoked_here(self, nonce: str) -> bool:
        return nonce in self._revoked

    def revoke(self, nonce: str, expires: int) -> None:
        now = time.time()
        self._revoked = {n: e for n, e in self._revoked.items() if e > now}
        self._revoked[nonce] = expires

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@lru_cache(maxsize=4)
def _sessions(master_key: str) -> Sessions:
    return Sessions(master_key)


def sessions_for(services: Services) -> Sessions:
    return _sessions(services.config.settings.master_key)


def has_session(services: Services, request: Request) -> bool:
    if request.scope.get(REVOKED_ELSEWHERE):
        return False
    return sessions_for(services).valid(request.cookies.get(COOKIE))


async def sign_out(services: Services, token: str | None) -> None:
    """Revoke the session server-side: here at once, and with Redis on every instance
    (SessionGate reads it there) until the session would have expired."""
    sessions = sessions_for(services)
    parsed = sessions.parse(token)
    if parsed is None:
        return
    nonce, expires = parsed
    sessions.revoke(nonce, expires)
    if services.redis is not None:
        try:
            await services.redis.set(REVOKED_KEY + nonce, b"1", exat=expires)
        except RedisError as exc:
            log.warning("sign-out: Redis unreachable (%s); revoked on this instance only", exc)


class SessionGate:
    """ASGI middleware: with Redis, before a /ui or /admin route runs, a session cookie
    signed out on another instance is marked in the scope, so the synchronous checks
    (`has_session`, `check_admin`) refuse it. Without Redis there is one instance (several
    workers need Redis), and its own revocations are in memory."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        redis = self.services.redis
        if (
            redis is not None
            and scope["type"] == "http"
            and scope["path"].startswith(("/ui", "/admin"))
        ):
            token = _cookie(scope)
            parsed = sessions_for(self.services).parse(token)
            if parsed is not None:
                scope[REVOKED_ELSEWHERE] = await self._revoked(redis, *parsed)
        await self.app(scope, receive, send)

    async def _revoked(self, redis: Redis, nonce: str, expires: int) -> bool:
        sessions = sessions_for(self.services)
        if sessions.revoked_here(nonce):
            return True
        try:
            found = await redis.exists(REVOKED_KEY + nonce)
        except RedisError as exc:
            # Fail closed: the dashboard asks to sign in again; the master key still works.
            log.warning("session check: Redis unreachable (%s); session not accepted", exc)
            return True
        if found:
            sessions.revoke(nonce, expires)
        return bool(found)


def _cookie(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"cookie":
            return cookie_parser(value.decode("latin-1")).get(COOKIE)
    return None


async def check_admin(services: Services, request: Request) -> None:
    """Admin endpoints: the master key as a bearer token, or, for reads only, a dashboard
    session cookie (so the pages fetch the very JSON the API answers with). A valid key
    that is not the master key is told so (403), not called invalid (401)."""
    if (
        request.method in _SAFE_METHODS
        and "authorization" not in request.headers
        and has_session(services, request)
    ):
        return
    await services.auth.check_admin(request.headers.get("authorization", "").encode() or None)


def same_origin(request: Request) -> bool:
    """False when a browser says the request comes from another site."""
    origin = request.headers.get("origin")
    if origin is None:  # not sent by every browser on same-origin form posts
        return True
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def set_session(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=LIFETIME_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def clear_session(response: Response, secure: bool) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=secure)


def refuse_foreign(request: Request) -> None:
    if not same_origin(request):
        raise GatewayError(403, "forbidden_origin", "Cross-site form posts are refused.")
