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
import secrets
import time
from functools import lru_cache

from starlette.requests import Request
from starlette.responses import Response

from nemorouter.core.errors import GatewayError
from nemorouter.core.pipeline import Pipeline

COOKIE = "nemo_session"
LIFETIME_S = 8 * 3600
_VERSION = "v1"
_SAFE_METHODS = frozenset({"GET", "HEAD"})


class Sessions:
    def __init__(self, master_key: str) -> None:
        self._key = hmac.new(
            master_key.encode(), b"nemorouter ui session v1", hashlib.sha256
        ).digest()
        self._master = master_key.encode()

    def master_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self._master)

    def issue(self, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + LIFETIME_S)
        body = f"{_VERSION}.{expires}.{secrets.token_urlsafe(12)}"
        return f"{body}.{self._sign(body)}"

    def valid(self, token: str | None, now: float | None = None) -> bool:
        if not token or token.count(".") != 3:
            return False
        body, signature = token.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(body)):
            return False
        version, expires, _nonce = body.split(".")
        return (
            version == _VERSION
            and expires.isdigit()
            and int(expires) > (time.time() if now is None else now)
        )

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@lru_cache(maxsize=4)
def _sessions(master_key: str) -> Sessions:
    return Sessions(master_key)


def sessions_for(pipeline: Pipeline) -> Sessions:
    return _sessions(pipeline.config.settings.master_key)


def has_session(pipeline: Pipeline, request: Request) -> bool:
    return sessions_for(pipeline).valid(request.cookies.get(COOKIE))


def check_admin(pipeline: Pipeline, request: Request) -> None:
    """Admin endpoints: the master key as a bearer token, or, for reads only, a dashboard
    session cookie (so the pages fetch the very JSON the API answers with)."""
    if (
        request.method in _SAFE_METHODS
        and "authorization" not in request.headers
        and has_session(pipeline, request)
    ):
        return
    pipeline.auth.check_master(request.headers.get("authorization", "").encode() or None)


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
