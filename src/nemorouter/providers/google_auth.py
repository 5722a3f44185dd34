"""OAuth access tokens for Vertex AI from a service-account key, cached and shared.

google-auth reads the key file and signs the JWT assertion (RFC 7523, as its own
`service_account.Credentials.refresh` does); the token exchange itself is one form POST on
the gateway's own HTTP client, so no request ever blocks the event loop. The token is reused
until `REFRESH_MARGIN_S` before it expires (google-auth's own threshold), and concurrent
callers needing a new one share a single refresh.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from nemorouter.config import ConfigError
from nemorouter.providers.classify import classify_exception, error_message
from nemorouter.providers.http import HTTPPool
from nemorouter.types.upstream import FailureKind, UpstreamFailure

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 3600
REFRESH_MARGIN_S = 225.0  # google-auth's REFRESH_THRESHOLD (3 min 45 s)
TOKEN_TIMEOUT_S = 30.0


def load_service_account(credentials: str, where: str) -> dict[str, Any]:
    """The key from `credentials`: a path to the JSON key file, or the JSON itself."""
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
        raise ConfigError(where, "credentials are not a JSON service-account key") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ConfigError(
            where, "credentials must be a service-account key (type: service_account)"
        )
    return info


class _FormPool(HTTPPool):
    """The HTTP pool, posting an urlencoded form (the OAuth token request) instead of JSON."""

    def head(self, path: str, extra: bytes, length: int) -> bytes:
        return (
            b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Accept-Encoding: identity\r\nContent-Length: %d\r\n%s\r\n"
        ) % ((self.base_path + path).encode(), self.host_header.encode(), length, extra)


class ServiceAccountTokens:
    """Bearer tokens for one service account."""

    def __init__(
        self,
        info: dict[str, Any],
        *,
        scopes: tuple[str, ...] = (CLOUD_PLATFORM_SCOPE,),
        clock: Callable[[], float] = time.time,
        connect_timeout: float = 10.0,
    ) -> None:
        try:
            # google-auth (and its crypto) loads only when a Vertex provider is configured.
            from google.oauth2 import service_account

            self._credentials = service_account.Credentials.from_service_account_info(
                info, scopes=list(scopes)
            )
        except (ValueError, KeyError) as exc:
            raise ConfigError("credentials", f"unusable service-account key: {exc}") from None
        self.email = self._credentials.service_account_email
        self.scopes = scopes
        self.token_uri = info.get("token_uri") or GOOGLE_TOKEN_URI
        self.clock = clock  # decides expiry only: tests move it to force a refresh
        self.refreshes = 0
        self._connect_timeout = connect_timeout
        self._token: str | None = None
        self._expires_at = 0.0
        self._refreshing: asyncio.Future[str] | None = None
        self._pool: _FormPool | None = None

    async def token(self) -> str:
        """A valid access token, refreshed first if it is missing or about to expire."""
        if self._token is not None and self.clock() < self._expires_at - REFRESH_MARGIN_S:
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
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _refreshed(self, future: asyncio.Future[str]) -> None:
        self._refreshing = None
        if not future.cancelled():
            future.exception()  # retrieved here so a failure nobody awaited is not logged

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

    async def _refresh(self) -> str:
        form = urlencode({"grant_type": JWT_GRANT_TYPE, "assertion": self._assertion().decode()})
        if self._pool is None:
            self._pool = _FormPool(
                self.token_uri, max_connections=4, connect_timeout=self._connect_timeout
            )
        path = urlsplit(self.token_uri).query
        started = self.clock()
        try:
            response = await self._pool.post(
                f"?{path}" if path else "", form.encode(), b"", TOKEN_TIMEOUT_S
            )
        except OSError as exc:
            failure = classify_exception(exc)
            failure.message = f"OAuth token endpoint: {failure.message}"
            raise failure from None
        if response.status != 200:
            # A refused key is this deployment's problem, not the client's: let the router
            # fail over (SERVER_ERROR), whatever status the token endpoint used.
            raise UpstreamFailure(
                FailureKind.SERVER_ERROR,
                f"OAuth token endpoint refused {self.email}: {error_message(response.body)}",
                status=response.status,
            )
        try:
            data = orjson.loads(response.body)
            token = data["access_token"]
            lifetime = float(data.get("expires_in", ASSERTION_LIFETIME_S))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise UpstreamFailure(
                FailureKind.SERVER_ERROR, "OAuth token endpoint sent no access_token"
            ) from None
        self.refreshes += 1
        self._token = token
        self._expires_at = started + lifetime
        return token
