"""Adapter for Claude: the Anthropic API (`anthropic`) and Claude on Vertex AI (`anthropic-vertex`).

- anthropic: POST {base}/v1/messages, `x-api-key` and `anthropic-version: 2023-06-01` headers,
  `model` in the body;
- anthropic-vertex: POST {base}/v1/projects/{p}/locations/{l}/publishers/anthropic/models/{m}
  :rawPredict (or :streamRawPredict), a service-account bearer token, no `model` in the body
  and `anthropic_version: vertex-2023-10-16` in it.
Errors come in Anthropic's shape (`overloaded_error` on 529, `rate_limit_error` on 429 with
`retry-after`) or, for Vertex quota errors, Google's; both are classified.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from nemorouter.config import ConfigError, ProviderConfig, Settings
from nemorouter.providers.answer_check import translated
from nemorouter.providers.anthropic_request import VERTEX_VERSION, anthropic_request
from nemorouter.providers.anthropic_response import StreamTranslator, to_completion
from nemorouter.providers.base import UpstreamRequest
from nemorouter.providers.media import InlineMedia
from nemorouter.providers.param_rules import applied
from nemorouter.providers.pooled import AuthedAdapter, TranslatedStream
from nemorouter.providers.request_fields import encoded, translated_request
from nemorouter.providers.upstream_auth import KeyAuth, vertex_endpoint
from nemorouter.types.target import Target

ANTHROPIC_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"


class AnthropicAdapter(AuthedAdapter):
    """One Anthropic API key or Vertex AI location serving Claude, and its pooled connections."""

    def __init__(self, name: str, provider: ProviderConfig, settings: Settings) -> None:
        self.vertex = provider.type == "anthropic-vertex"
        if self.vertex:
            base_url, self._prefix, self.auth = vertex_endpoint(name, provider, "anthropic")
        else:
            if not provider.api_key:
                raise ConfigError(f"providers.{name}.api_key", "the Anthropic API needs an api_key")
            base_url = provider.base_url or ANTHROPIC_URL
            self.auth = KeyAuth(
                f"x-api-key: {provider.api_key}\r\nanthropic-version: {ANTHROPIC_VERSION}\r\n".encode()
            )
        super().__init__(name, base_url, provider, settings)

    inlines_images = True  # Claude takes images only as base64 blocks

    def prepare(
        self,
        target: Target,
        body: dict[str, Any],
        fetched: Mapping[str, InlineMedia],
        stream: bool,
    ) -> UpstreamRequest:
        body = applied(target, body)  # the parameters this model refuses, dropped

        def translate() -> tuple[dict[str, Any], str | None]:
            wire, structured = anthropic_request(
                {**body, "stream": stream},
                fetched,
                target.default_max_tokens(stream),
                target.native_structured,
            )
            if self.vertex:
                return {"anthropic_version": VERTEX_VERSION, **wire}, structured
            return {"model": target.provider_model, **wire}, structured

        wire, structured = translated_request("Claude", translate)
        if self.vertex:
            verb = "streamRawPredict" if stream else "rawPredict"
            path = f"{self._prefix}{target.provider_model}:{verb}"
        else:
            path = "/v1/messages"
        # Every stream ends with usage: the gateway costs it (and drops the chunk for a client
        # that did not ask for it).
        return UpstreamRequest(target, path, wire, stream, structured)

    async def complete(self, request: UpstreamRequest) -> dict[str, Any]:
        data = await self._post(request.path, encoded("Claude", request.wire), "Claude")
        answer = partial(to_completion, data, request.target.model, request.structured)
        return translated("Claude", answer)

    async def open_stream(self, request: UpstreamRequest) -> AnthropicStream:
        response = await self._open(request.path, encoded("Claude", request.wire))
        target = request.target
        translator = StreamTranslator(target.model, request.include_usage, request.structured)
        return AnthropicStream(response, translator, self.max_event)


class AnthropicStream(TranslatedStream):
    """Messages API server-sent events, as OpenAI chunks."""

    who = "Claude"
