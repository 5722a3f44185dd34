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

from functools import partial
from typing import Any

import orjson

from nemorouter.config import ConfigError, DeploymentConfig, ProviderConfig, Settings
from nemorouter.providers.answer_check import translated
from nemorouter.providers.anthropic_request import VERTEX_VERSION, anthropic_request
from nemorouter.providers.anthropic_response import StreamTranslator, to_completion
from nemorouter.providers.image_fetch import fetch_remote_images
from nemorouter.providers.pooled import AuthedAdapter, TranslatedStream, wants_usage
from nemorouter.providers.request_fields import translated_request
from nemorouter.providers.upstream_auth import KeyAuth, vertex_endpoint

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

    async def _prepare(
        self, deployment: DeploymentConfig, body: dict[str, Any], stream: bool
    ) -> tuple[str, bytes, str | None]:
        """(path, payload, structured-output tool name)."""
        fetched = await fetch_remote_images(body)

        def translate() -> tuple[bytes, str | None]:
            request, structured = anthropic_request(
                {**body, "stream": stream}, fetched, deployment.max_output_tokens
            )
            if self.vertex:
                request = {"anthropic_version": VERTEX_VERSION, **request}
            else:
                request = {"model": deployment.upstream_model, **request}
            return orjson.dumps(request), structured

        payload, structured = translated_request("Claude", translate)
        model = deployment.upstream_model
        if self.vertex:
            path = f"{self._prefix}{model}:{'streamRawPredict' if stream else 'rawPredict'}"
        else:
            path = "/v1/messages"
        return path, payload, structured

    async def complete(self, deployment: DeploymentConfig, body: dict[str, Any]) -> dict[str, Any]:
        path, payload, structured = await self._prepare(deployment, body, stream=False)
        data = await self._post(path, payload, "Claude")
        model = body.get("model") or deployment.model
        return translated("Claude", partial(to_completion, data, model, structured))

    async def open_stream(
        self, deployment: DeploymentConfig, body: dict[str, Any]
    ) -> AnthropicStream:
        path, payload, structured = await self._prepare(deployment, body, stream=True)
        response = await self._open(path, payload)
        model = body.get("model") or deployment.model
        translator = StreamTranslator(model, wants_usage(body), structured)
        return AnthropicStream(response, translator, self.max_event)


class AnthropicStream(TranslatedStream):
    """Messages API server-sent events, as OpenAI chunks."""

    who = "Claude"
