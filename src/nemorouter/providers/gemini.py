"""Adapter for Gemini models: on Vertex AI (`vertex`, OAuth) and the Gemini API (`gemini`, key).

Both speak `generateContent` / `streamGenerateContent?alt=sse`; they differ in URL and auth:
- vertex: {base}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:…
  with a service-account bearer token (refreshed once and retried on a 401),
- gemini: {base}/v1beta/models/{model}:… with `x-goog-api-key`.
`base_url` (scheme, host, port and an optional path prefix) replaces the public endpoint,
which is how tests point an adapter at `nemorouter.testing.SimulatedGemini`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import orjson

from nemorouter.config import ConfigError, DeploymentConfig, ProviderConfig, Settings
from nemorouter.providers.answer_check import malformed, translated
from nemorouter.providers.gemini_request import gemini_request
from nemorouter.providers.gemini_response import StreamTranslator, to_completion
from nemorouter.providers.google_errors import stream_error
from nemorouter.providers.image_fetch import fetch_remote_images
from nemorouter.providers.pooled import AuthedAdapter, TranslatedStream, wants_usage
from nemorouter.providers.request_fields import translated_request
from nemorouter.providers.upstream_auth import KeyAuth, vertex_endpoint

GEMINI_API_URL = "https://generativelanguage.googleapis.com"


class GeminiAdapter(AuthedAdapter):
    """One Vertex AI location or Gemini API key, and its pooled connections."""

    def __init__(self, name: str, provider: ProviderConfig, settings: Settings) -> None:
        if provider.type == "vertex":
            base_url, self._prefix, self.auth = vertex_endpoint(name, provider, "google")
        else:
            if not provider.api_key:
                raise ConfigError(f"providers.{name}.api_key", "the Gemini API needs an api_key")
            base_url = provider.base_url or GEMINI_API_URL
            self._prefix = "/v1beta/models/"
            self.auth = KeyAuth(f"x-goog-api-key: {provider.api_key}\r\n".encode())
        super().__init__(name, base_url, provider, settings)

    async def _payload(self, body: dict[str, Any]) -> bytes:
        fetched = await fetch_remote_images(body)
        return translated_request("Gemini", lambda: orjson.dumps(gemini_request(body, fetched)))

    async def complete(self, deployment: DeploymentConfig, body: dict[str, Any]) -> dict[str, Any]:
        payload = await self._payload(body)
        path = f"{self._prefix}{deployment.upstream_model}:generateContent"
        data = await self._post(path, payload, "Gemini")
        model = body.get("model") or deployment.model
        return translated("Gemini", partial(to_completion, data, model))

    async def open_stream(self, deployment: DeploymentConfig, body: dict[str, Any]) -> GeminiStream:
        payload = await self._payload(body)
        path = f"{self._prefix}{deployment.upstream_model}:streamGenerateContent?alt=sse"
        response = await self._open(path, payload)
        translator = StreamTranslator(body.get("model") or deployment.model, wants_usage(body))
        return GeminiStream(response, translator, self.max_event)


class GeminiStream(TranslatedStream):
    """An SSE stream of `GenerateContentResponse` events, as OpenAI chunks."""

    who = "Gemini"

    def _check(self, event: dict[str, Any]) -> None:
        error = event.get("error")
        if isinstance(error, dict):  # Google reports mid-stream failures in-band
            raise stream_error(error)
        if error is not None:
            raise malformed(self.who, f"an error that is not an object: {str(error)[:200]}")
