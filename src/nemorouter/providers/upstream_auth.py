"""Credentials for upstream calls: Vertex AI (service-account bearer token, or an API key in
express mode) and fixed API-key headers (Gemini API, Anthropic API)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from nemorouter.config import ConfigError, ProviderConfig
from nemorouter.providers.google_auth import ServiceAccountTokens, load_service_account
from nemorouter.types.upstream import UpstreamFailure

T = TypeVar("T")


def vertex_base_url(location: str) -> str:
    if location == "global":
        return "https://aiplatform.googleapis.com"
    if location in ("us", "eu"):  # multi-region endpoints
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def vertex_endpoint(
    name: str, provider: ProviderConfig, publisher: str
) -> tuple[str, str, VertexAuth]:
    """(base URL, model path prefix, credentials) for one publisher's models on Vertex AI."""
    if not provider.project or not provider.location:
        article = "an" if provider.type[:1] in "aeiou" else "a"
        raise ConfigError(
            f"providers.{name}", f"{article} {provider.type} provider needs project and location"
        )
    prefix = (
        f"/v1/projects/{provider.project}/locations/{provider.location}"
        f"/publishers/{publisher}/models/"
    )
    base_url = provider.base_url or vertex_base_url(provider.location)
    return base_url, prefix, VertexAuth(name, provider)


class VertexAuth:
    """`Authorization: Bearer` from a service account, or Vertex's API-key (express) mode."""

    def __init__(self, name: str, provider: ProviderConfig) -> None:
        self.tokens: ServiceAccountTokens | None = None
        self._key = b""
        if provider.credentials:
            info = load_service_account(provider.credentials, f"providers.{name}.credentials")
            self.tokens = ServiceAccountTokens(info)
        elif provider.api_key:
            self._key = f"x-goog-api-key: {provider.api_key}\r\n".encode()
        else:
            raise ConfigError(
                f"providers.{name}.credentials",
                "Vertex AI needs a service-account key file (credentials) or an api_key",
            )

    async def header(self) -> tuple[bytes, str | None]:
        """The auth header line, and the token in it (to invalidate on a 401)."""
        if self.tokens is None:
            return self._key, None
        token = await self.tokens.token()
        return f"Authorization: Bearer {token}\r\n".encode(), token

    def invalidate(self, token: str | None) -> bool:
        if self.tokens is None or token is None:
            return False
        self.tokens.invalidate(token)
        return True

    async def close(self) -> None:
        if self.tokens is not None:
            await self.tokens.close()


class KeyAuth:
    """A fixed API-key header (Gemini API: x-goog-api-key)."""

    tokens = None

    def __init__(self, header: bytes) -> None:
        self._header = header

    async def header(self) -> tuple[bytes, str | None]:
        return self._header, None

    def invalidate(self, token: str | None) -> bool:
        return False

    async def close(self) -> None:
        pass


async def with_auth(auth: VertexAuth | KeyAuth, call: Callable[[bytes], Awaitable[T]]) -> T:
    """Run `call(auth header)`; on a 401 with a bearer token, refresh it and try once more."""
    header, token = await auth.header()
    try:
        return await call(header)
    except UpstreamFailure as failure:
        if failure.status != 401 or not auth.invalidate(token):
            raise
    header, _ = await auth.header()
    return await call(header)
