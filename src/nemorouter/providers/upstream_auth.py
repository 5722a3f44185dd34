"""Credentials for upstream calls: a Google access token (Vertex AI, and Vertex's
OpenAI-compatible endpoint with `auth: google`), Vertex's API-key (express) mode, and fixed
API-key headers (Gemini API, Anthropic API, OpenAI-compatible endpoints)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from nemorouter.config import ConfigError, ProviderConfig
from nemorouter.providers.google_adc import google_tokens
from nemorouter.providers.google_auth import TokenCache
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
    if not provider.location:
        article = "an" if provider.type[:1] in "aeiou" else "a"
        raise ConfigError(
            f"providers.{name}.location", f"{article} {provider.type} provider needs a location"
        )
    auth = VertexAuth(name, provider)
    # As both official SDKs do: the configured project, else the credentials' own.
    project = provider.project or auth.project
    if not project:
        if auth.tokens is None:
            source = "an api_key names none"
        elif provider.credentials:
            source = "the credentials name none"
        else:
            source = "Application Default Credentials (google.auth.default()) name none"
        raise ConfigError(
            f"providers.{name}.project", f"required: Vertex AI URLs name a project, and {source}"
        )
    prefix = f"/v1/projects/{project}/locations/{provider.location}/publishers/{publisher}/models/"
    base_url = provider.base_url or vertex_base_url(provider.location)
    return base_url, prefix, auth


def openai_auth(name: str, provider: ProviderConfig) -> VertexAuth | KeyAuth:
    """An OpenAI-format endpoint's credentials: a Google access token with `auth: google`
    (Vertex AI's OpenAI-compatible endpoint takes one, refreshed hourly:
    https://docs.cloud.google.com/vertex-ai/generative-ai/docs/migrate/openai/auth-and-credentials),
    else `Authorization: Bearer <api_key>` (none for "none")."""
    if provider.google_auth:
        return VertexAuth(name, provider)
    if provider.api_key and provider.api_key.lower() != "none":
        return KeyAuth(f"Authorization: Bearer {provider.api_key}\r\n".encode())
    return KeyAuth(b"")


class VertexAuth:
    """`Authorization: Bearer` with a Google access token (a credential file, else
    Application Default Credentials), or Vertex's API-key (express) mode."""

    def __init__(self, name: str, provider: ProviderConfig) -> None:
        self.tokens: TokenCache | None = None
        self.project: str | None = None  # the one the credentials name, if any
        self._key = b""
        if provider.google_auth:
            self.tokens, self.project = google_tokens(
                provider.credentials, f"providers.{name}.credentials"
            )
        else:
            self._key = f"x-goog-api-key: {provider.api_key}\r\n".encode()

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
    """A fixed API-key header (Gemini API: x-goog-api-key; OpenAI: Authorization)."""

    tokens = None

    def __init__(self, line: bytes) -> None:
        self.line = line  # the header line, CRLF-terminated (or empty: no header)

    async def header(self) -> tuple[bytes, str | None]:
        return self.line, None

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
