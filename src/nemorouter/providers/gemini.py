"""Adapter for Gemini models: on Vertex AI (`vertex`, OAuth) and the Gemini API (`gemini`, key).

Both speak `generateContent` / `streamGenerateContent?alt=sse`; they differ in URL and auth:
- vertex: {base}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:…
  with a service-account bearer token (refreshed once and retried on a 401),
- gemini: {base}/v1beta/models/{model}:… with `x-goog-api-key`.
`base_url` (scheme, host, port and an optional path prefix) replaces the public endpoint,
which is how tests point an adapter at `nemorouter.testing.SimulatedGemini`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from nemorouter.config import ConfigError, ProviderConfig, Settings
from nemorouter.providers.answer_check import malformed, translated
from nemorouter.providers.base import UpstreamRequest
from nemorouter.providers.gemini_request import gemini_request
from nemorouter.providers.gemini_response import StreamTranslator, to_completion
from nemorouter.providers.google_errors import stream_error
from nemorouter.providers.media import InlineMedia
from nemorouter.providers.param_rules import applied
from nemorouter.providers.pooled import AuthedAdapter, TranslatedStream
from nemorouter.providers.request_fields import encoded, translated_request
from nemorouter.providers.upstream_auth import KeyAuth, vertex_endpoint
from nemorouter.types.target import Target

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

    inlines_images = True  # http(s) images go inline; gs:// ones stay references

    def prepare(
        self,
        target: Target,
        body: dict[str, Any],
        fetched: Mapping[str, InlineMedia],
        stream: bool,
    ) -> UpstreamRequest:
        # No maxOutputTokens unless the client set one: the field is optional (the official
        # google-genai SDK sends none) and Gemini's own default is at most the model's
        # maximum output, the catalog's figure the budget's worst case assumes.
        body = applied(target, body)  # the parameters this model refuses, dropped
        wire = translated_request("Gemini", lambda: gemini_request(body, fetched))
        verb = "streamGenerateContent?alt=sse" if stream else "generateContent"
        path = f"{self._prefix}{target.provider_model}:{verb}"
        return UpstreamRequest(target, path, wire, stream)  # a stream always reports usage

    async def complete(self, request: UpstreamRequest) -> dict[str, Any]:
        data = await self._post(request.path, encoded("Gemini", request.wire), "Gemini")
        return translated("Gemini", partial(to_completion, data, request.target.model))

    async def open_stream(self, request: UpstreamRequest) -> GeminiStream:
        response = await self._open(request.path, encoded("Gemini", request.wire))
        translator = StreamTranslator(request.target.model, request.include_usage)
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
