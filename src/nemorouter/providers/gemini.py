"""Adapter for Gemini models: on Vertex AI (`vertex`, OAuth) and the Gemini API (`gemini`, key).

Both speak `generateContent` / `streamGenerateContent?alt=sse`; they differ in URL and auth:
- vertex: {base}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:…
  with a service-account bearer token (refreshed once and retried on a 401),
- gemini: {base}/v1beta/models/{model}:… with `x-goog-api-key`.
`base_url` (scheme, host, port and an optional path prefix) replaces the public endpoint,
which is how tests point an adapter at `nemorouter.testing.SimulatedGemini`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from nemorouter.config import ConfigError, DeploymentConfig, ProviderConfig, Settings
from nemorouter.providers.base import FailureKind, UpstreamFailure
from nemorouter.providers.classify import classify_exception
from nemorouter.providers.gemini_request import gemini_request
from nemorouter.providers.gemini_response import StreamTranslator, to_completion
from nemorouter.providers.google_errors import classify_google, stream_error
from nemorouter.providers.http import HTTPPool, StreamResponse
from nemorouter.providers.image_fetch import fetch_remote_images
from nemorouter.providers.sse import sse_data
from nemorouter.providers.upstream_auth import KeyAuth, VertexAuth, vertex_base_url, with_auth

GEMINI_API_URL = "https://generativelanguage.googleapis.com"


class GeminiAdapter:
    """One Vertex AI location or Gemini API key, and its pooled connections."""

    def __init__(self, name: str, provider: ProviderConfig, settings: Settings) -> None:
        self.name = name
        self.auth: VertexAuth | KeyAuth
        if provider.type == "vertex":
            if not provider.project or not provider.location:
                raise ConfigError(
                    f"providers.{name}", "a vertex provider needs project and location"
                )
            self.base_url = (provider.base_url or vertex_base_url(provider.location)).rstrip("/")
            self._prefix = (
                f"/v1/projects/{provider.project}/locations/{provider.location}"
                "/publishers/google/models/"
            )
            self.auth = VertexAuth(name, provider)
        else:
            if not provider.api_key:
                raise ConfigError(f"providers.{name}.api_key", "the Gemini API needs an api_key")
            self.base_url = (provider.base_url or GEMINI_API_URL).rstrip("/")
            self._prefix = "/v1beta/models/"
            self.auth = KeyAuth(f"x-goog-api-key: {provider.api_key}\r\n".encode())
        self._max_connections = provider.max_connections
        self._timeout = settings.request_timeout_s
        self._connect_timeout = settings.connect_timeout_s
        self._pool: HTTPPool | None = None

    async def start(self) -> None:
        self._pool = HTTPPool(
            self.base_url,
            max_connections=self._max_connections,
            connect_timeout=self._connect_timeout,
        )

    async def close(self) -> None:
        await self.auth.close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> HTTPPool:
        if self._pool is None:
            raise RuntimeError(f"provider {self.name} used before start()")
        return self._pool

    async def _payload(self, body: dict[str, Any]) -> bytes:
        return orjson.dumps(gemini_request(body, await fetch_remote_images(body)))

    async def complete(self, deployment: DeploymentConfig, body: dict[str, Any]) -> dict[str, Any]:
        payload = await self._payload(body)
        path = f"{self._prefix}{deployment.upstream_model}:generateContent"

        async def call(header: bytes) -> bytes:
            try:
                response = await self.pool.post(path, payload, header, self._timeout)
            except OSError as exc:
                raise classify_exception(exc) from None
            if response.status != 200:
                raise classify_google(response.status, response.headers, response.body)
            return response.body

        raw = await with_auth(self.auth, call)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise UpstreamFailure(
                FailureKind.SERVER_ERROR, "Gemini answered 200 with no JSON object"
            )
        return to_completion(data, body.get("model") or deployment.model)

    async def open_stream(self, deployment: DeploymentConfig, body: dict[str, Any]) -> GeminiStream:
        payload = await self._payload(body)
        path = f"{self._prefix}{deployment.upstream_model}:streamGenerateContent?alt=sse"

        async def call(header: bytes) -> StreamResponse:
            try:
                response = await self.pool.stream(path, payload, header, self._timeout)
                if response.status != 200:
                    raw = await response.read()
                    raise classify_google(response.status, response.headers, raw)
            except OSError as exc:
                raise classify_exception(exc) from None
            return response

        response = await with_auth(self.auth, call)
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        translator = StreamTranslator(body.get("model") or deployment.model, include_usage)
        return GeminiStream(response, translator)


class GeminiStream:
    """An SSE stream of `GenerateContentResponse` events, as OpenAI chunks."""

    def __init__(self, response: StreamResponse, translator: StreamTranslator) -> None:
        self._response = response
        self._translator = translator

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[dict[str, Any]]:
        translator = self._translator
        try:
            async for payload in sse_data(self._response.iter_chunks()):
                event = orjson.loads(payload)
                if not isinstance(event, dict):
                    raise UpstreamFailure(
                        FailureKind.SERVER_ERROR, "Gemini sent a non-object event"
                    )
                if isinstance(event.get("error"), dict):
                    raise stream_error(event["error"])
                for chunk in translator.feed(event):
                    yield chunk
        except OSError as exc:
            raise classify_exception(exc) from None
        except orjson.JSONDecodeError:
            raise UpstreamFailure(
                FailureKind.SERVER_ERROR, "Gemini sent an event that is not JSON"
            ) from None
        finally:
            self._response.release()
        if not translator.complete:
            raise UpstreamFailure(
                FailureKind.CONNECTION, "Gemini ended the stream before it finished"
            )
        for chunk in translator.close():
            yield chunk

    async def aclose(self) -> None:
        self._response.release()
