"""Google OAuth access tokens, cached and shared: the cache every Google credential uses, and
its fast path for a service-account key.

`TokenCache` reuses a token until `REFRESH_MARGIN_S` before it expires (google-auth's own
threshold) and lets concurrent callers needing a new one share a single refresh; a failed
refresh is not cached. `ServiceAccountTokens` fills it without blocking the event loop:
google-auth reads the key and signs the JWT assertion (RFC 7523, as its own
`service_account.Credentials.refresh` does); the token exchange itself is one form POST on
the gateway's own HTTP client. Every other kind of credential (Application Default
Credentials, user, workload identity federation, impersonation) is `google_adc.GoogleAuthTokens`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from nemorouter.config import ConfigError
from nemorouter.providers.classify import error_message
from nemorouter.providers.http import HTTPPool
from nemorouter.types.upstream import FailureKind, UpstreamFailure

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 3600
REFRESH_MARGIN_S = 225.0  # google-auth's REFRESH_THRESHOLD (3 min 45 s)
TOKEN_TIMEOUT_S = 30.0
# The credential files google-auth reads (google/auth/_default.py `_VALID_TYPES`, 2.63).
CREDENTIAL_TYPES = (
    "service_account",
    "authorized_user",
    "external_account",
    "external_account_authorized_user",
    "impersonated_service_account",
)


def load_credentials_info(credentials: str, where: str) -> dict[str, Any]:
    """The credential JSON from `credentials`: a path to the file, or the JSON itself."""
    text = credentials
    if not credentials.lstrip().startswith("{"):
        try:
            text = Path(credentials).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                where, f"cannot read credentials file {credentials}: {exc.strerror}"
            ) from None
    try:
        info = json.loads(text)
    except ValueError:
        raise ConfigError(where, "credentials are not a JSON credential file") from None
    kind = info.get("type") if isinstance(info, dict) else None
    if kind not in CREDENTIAL_TYPES:
        raise ConfigError(
            where,
            f"credentials of type {kind!r} are not a Google credential file "
            f"(expected one of {', '.join(CREDENTIAL_TYPES)})",
        )
    return info


# Opaque runs (access and refresh tokens, each part of a JWT, client secrets, key ids) long
# enough to be a secret; words, e-mail addresses, host names and URL paths stay readable.
_OPAQUE = re.compile(r"[A-Za-z0-9_\-+=]{32,}")


def redact(text: str) -> str:
    """`text` cut short, with anything that could be a token or key elided."""
    return _OPAQUE.sub("<elided>", text.replace("\n", " "))[:400]


def auth_failure(message: str, status: int | None = None) -> UpstreamFailure:
    return UpstreamFailure(FailureKind.AUTH, redact(message), status=status)


class TokenCache:
    """A bearer token, fetched by `_fetch` and shared until it nears expiry."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # decides expiry only: tests move it to force a refresh
        self.refreshes = 0
        self._token: str | None = None
        self._refresh_at = 0.0
        self._refreshing: asyncio.Future[str] | None = None

    async def token(self) -> str:
        """A valid access token, refreshed first if it is missing or about to expire."""
        if self._token is not None and self.clock() < self._refresh_at:
            return self._token
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._refresh())
            self._refreshing.add_done_callback(self._refreshed)
        # shield: one caller giving up must not cancel the refresh the others wait for
        return await asyncio.shield(self._refreshing)

    def invalidate(self, token: str) -> None:
        """The provider refused `token` (401): the next call fetches a new one."""
        if self._token == token:
            self._token = None

    async def close(self) -> None:
        pass

    async def _fetch(self) -> tuple[str, float]:
        """A new token and its lifetime in seconds; failures raise `auth_failure`."""
        raise NotImplementedError

    def _refreshed(self, future: asyncio.Future[str]) -> None:
        self._refreshing = None
        if not future.cancelled():
            future.exception()  # retrieved here so a failure nobody awaited is not logged

    async def _refresh(self) -> str:
        started = self.clock()
        token, lifetime = await self._fetch()
        self.refreshes += 1
        self._token = token
        # A token handed out with little life left (a metadata server's cached one) is
        # still used for half of it, rather than fetched again for every call.
        self._refresh_at = started + lifetime - min(REFRESH_MARGIN_S, lifetime / 2)
        return token


class _FormPool(HTTPPool):
    """The HTTP pool, posting an urlencoded form (the OAuth token request) instead of JSON."""

    def head(self, path: str, extra: bytes, length: int) -> bytes:
        return (
            b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Accept-Encoding: identity\r\nContent-Length: %d\r\n%s\r\n"
        ) % ((self.base_path + path).encode(), self.host_header.encode(), length, extra)


class ServiceAccountTokens(TokenCache):
    """Bearer tokens for one service-account key, fetched on the event loop."""

    def __init__(
        self,
        info: dict[str, Any],
        *,
        scopes: tuple[str, ...] = (CLOUD_PLATFORM_SCOPE,),
        clock: Callable[[], float] = time.time,
        connect_timeout: float = 10.0,
        where: str = "credentials",
    ) -> None:
        super().__init__(clock)
        try:
            # google-auth (and its crypto) loads only when a Vertex provider is configured.
            from google.oauth2 import service_account

            self._credentials = service_account.Credentials.from_service_account_info(
                info, scopes=list(scopes)
            )
        except (ValueError, KeyError) as exc:
            raise ConfigError(where, f"unusable service-account key: {redact(str(exc))}") from None
        self.email = self._credentials.service_account_email
        self.scopes = scopes
        self.token_uri = info.get("token_uri") or GOOGLE_TOKEN_URI
        self._connect_timeout = connect_timeout
        self._pool: _FormPool | None = None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _assertion(self) -> bytes:
        now = int(time.time())  # the token endpoint checks real time, whatever our clock says
        payload = {
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
            "iss": self.email,
            "aud": self.token_uri,
            "scope": " ".join(self.scopes),
        }
        from google.auth import jwt

        return jwt.encode(self._credentials.signer, payload)

    async def _fetch(self) -> tuple[str, float]:
        form = urlencode({"grant_type": JWT_GRANT_TYPE, "assertion": self._assertion().decode()})
        if self._pool is None:
            self._pool = _FormPool(
                self.token_uri, max_connections=4, connect_timeout=self._connect_timeout
            )
        path = urlsplit(self.token_uri).query
        try:
            response = await self._pool.post(
                f"?{path}" if path else "", form.encode(), b"", TOKEN_TIMEOUT_S
            )
        except OSError as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise auth_failure(f"OAuth token endpoint {self.token_uri}: {reason}") from None
        if response.status != 200:
            raise auth_failure(
                f"OAuth token endpoint refused {self.email}: {error_message(response.body)}",
                response.status,
            )
        try:
            data = orjson.loads(response.body)
            token = data["access_token"]
            lifetime = float(data.get("expires_in", ASSERTION_LIFETIME_S))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise auth_failure("OAuth token endpoint sent no access_token") from None
        if not isinstance(token, str) or not token:
            raise auth_failure("OAuth token endpoint sent no access_token")
        return token, lifetime
