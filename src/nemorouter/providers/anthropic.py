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

from collections.abc import AsyncIterator
from typing import Any

import orjson

from nemorouter.config import ConfigError, DeploymentConfig, ProviderConfig, Settings
from nemorouter.providers.anthropic_request import VERTEX_VERSION, anthropic_request
from nemorouter.providers.anthropic_response import StreamTranslator, to_completion
from nemorouter.providers.base import FailureKind, UpstreamFailure
from nemorouter.providers.classify import classify_exception
from nemorouter.providers.google_errors import classify_google
from nemorouter.providers.http import HTTPPool, StreamResponse
from nemorouter.providers.image_fetch import fetch_remote_images
from nemorouter.providers.sse import sse_data
from nemorouter.providers.upstream_auth import KeyAuth, VertexAuth, vertex_base_url, with_auth

ANTHROPIC_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"


class AnthropicAdapter:
    """One Anthropic API key or Vertex AI location serving Claude, and its pooled connections."""

    def __init__(self, name: str, provider: ProviderConfig, settings: Settings) -> None:
        self.name = name
        self.vertex = provider.type == "anthropic-vertex"
        self.auth: VertexAuth | KeyAuth
        if self.vertex:
            if not provider.project or not provider.location:
                raise ConfigError(
                    f"providers.{name}", "an anthropic-vertex provider needs project and location"
                )
            self.base_url = (provider.base_url or vertex_base_url(provider.location)).rstrip("/")
            self._prefix = (
                f"/v1/projects/{provider.project}/locations/{provider.location}"
                "/publishers/anthropic/models/"
            )
            self.auth = VertexAuth(name, provider)
        else:
            if not provider.api_key:
                raise ConfigError(f"providers.{name}.api_key", "the Anthropic API needs an api_key")
            self.base_url = (provider.base_url or ANTHROPIC_URL).rstrip("/")
            self.auth = KeyAuth(
                f"x-api-key: {provider.api_key}\r\nanthropic-version: {ANTHROPIC_VERSION}\r\n".encode()
            )
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

    async def _prepare(
        self, deployment: DeploymentConfig, body: dict[str, Any], stream: bool
    ) -> tuple[str, bytes, str | None]:
        """(path, payload, structured-output tool name)."""
        request, structured = anthropic_request(
            {**body, "stream": stream},
            await fetch_remote_images(body),
            deployment.max_output_tokens,
        )
        model = deployment.upstream_model
        if self.vertex:
            request = {"anthropic_version": VERTEX_VERSION, **request}
            path = f"{self._prefix}{model}:{'streamRawPredict' if stream else 'rawPredict'}"
        else:
            request = {"model": model, **request}
            path = "/v1/messages"
        return path, orjson.dumps(request), structured

    async def complete(self, deployment: DeploymentConfig, body: dict[str, Any]) -> dict[str, Any]:
        path, payload, structured = await self._prepare(deployment, body, stream=False)

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
                FailureKind.SERVER_ERROR, "Claude answered 200 with no JSON object"
            )
        return to_completion(data, body.get("model") or deployment.model, structured)

    async def open_stream(
        self, deployment: DeploymentConfig, body: dict[str, Any]
    ) -> AnthropicStream:
        path, payload, structured = await self._prepare(deployment, body, stream=True)

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
        model = body.get("model") or deployment.model
        return AnthropicStream(response, StreamTranslator(model, include_usage, structured))


class AnthropicStream:
    """Messages API server-sent events, as OpenAI chunks."""

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
                        FailureKind.SERVER_ERROR, "Claude sent a non-object event"
                    )
                for chunk in translator.feed(event):
                    yield chunk
        except OSError as exc:
            raise classify_exception(exc) from None
        except orjson.JSONDecodeError:
            raise UpstreamFailure(
                FailureKind.SERVER_ERROR, "Claude sent an event that is not JSON"
            ) from None
        finally:
            self._response.release()
        if not translator.complete:
            raise UpstreamFailure(
                FailureKind.CONNECTION, "Claude ended the stream before it finished"
            )
        for chunk in translator.close():
            yield chunk

    async def aclose(self) -> None:
        self._response.release()
