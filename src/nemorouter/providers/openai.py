"""Adapter for OpenAI and any OpenAI-compatible endpoint (vLLM, Vertex MaaS, ...).

The canonical request already is this wire format, so the adapter only swaps in the
provider's model name (and, in answers, the target's model label for the provider's),
checks that a 200 is an answer (`answer_check`), and classifies every failure for the router.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any

from nemorouter.config import ProviderConfig, Settings
from nemorouter.providers.answer_check import check_chunk, check_completion
from nemorouter.providers.base import UpstreamRequest
from nemorouter.providers.classify import classify_exception, classify_status
from nemorouter.providers.http import StreamResponse
from nemorouter.providers.http_connection import Response
from nemorouter.providers.media import InlineMedia
from nemorouter.providers.param_rules import applied
from nemorouter.providers.pooled import PooledAdapter, TranslatedStream, json_object
from nemorouter.providers.request_fields import encoded
from nemorouter.providers.upstream_auth import KeyAuth, openai_auth, with_auth
from nemorouter.types.target import Target
from nemorouter.types.upstream import FailureKind, UpstreamFailure

OPENAI_BASE_URL = "https://api.openai.com/v1"
CHAT_PATH = "/chat/completions"


class OpenAIAdapter(PooledAdapter):
    """One OpenAI-format endpoint and its pooled keep-alive connections."""

    def __init__(self, name: str, provider: ProviderConfig, settings: Settings) -> None:
        super().__init__(name, provider.base_url or OPENAI_BASE_URL, provider, settings)
        self.auth = openai_auth(name, provider)  # api_key, or a Google token (auth: google)

    async def close(self) -> None:
        await self.auth.close()
        await super().close()

    inlines_images = False  # OpenAI fetches image URLs itself

    def prepare(
        self,
        target: Target,
        body: dict[str, Any],
        fetched: Mapping[str, InlineMedia],
        stream: bool,
    ) -> UpstreamRequest:
        wire = {**applied(target, body), "model": target.provider_model}
        if stream:  # the gateway costs every stream: ask for the final usage chunk
            options = body.get("stream_options")
            wire["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
        return UpstreamRequest(target, CHAT_PATH, wire, stream)

    async def complete(self, request: UpstreamRequest) -> dict[str, Any]:
        if isinstance(self.auth, KeyAuth):
            # the encoded payload is passed on, not kept: the pool lets go of it once sent
            response = await _answered(
                self.pool.post(
                    request.path,
                    encoded("the provider", request.wire),
                    self.auth.line,
                    self._timeout,
                )
            )
        else:  # a Google token: the payload is kept for one retry after a 401
            payload = encoded("the provider", request.wire)
            response = await with_auth(
                self.auth,
                lambda auth: _answered(self.pool.post(request.path, payload, auth, self._timeout)),
            )
        data = json_object(
            response.body, "provider answered 200 with a body that is not a JSON object"
        )
        answer = check_completion(data, "provider")
        answer["model"] = request.target.model  # the label, not the provider's dated name
        return answer

    async def open_stream(self, request: UpstreamRequest) -> TranslatedStream:
        if isinstance(self.auth, KeyAuth):
            response = await _opened(
                self.pool.stream(
                    request.path,
                    encoded("the provider", request.wire),
                    self.auth.line,
                    self._timeout,
                )
            )
        else:
            payload = encoded("the provider", request.wire)
            response = await with_auth(
                self.auth,
                lambda auth: _opened(self.pool.stream(request.path, payload, auth, self._timeout)),
            )
        return TranslatedStream(response, OpenAIChunks(request.target.model), self.max_event)


async def _answered(sending: Awaitable[Response]) -> Response:
    """A whole answer with status 200; anything else raises, classified."""
    try:
        response = await sending
    except OSError as exc:  # timeouts and dropped connections
        raise classify_exception(exc) from None
    if response.status != 200:
        raise classify_status(response.status, response.headers, response.body)
    return response


async def _opened(sending: Awaitable[StreamResponse]) -> StreamResponse:
    """A stream whose status is 200; anything else raises, classified."""
    try:
        response = await sending
        if response.status != 200:
            raw = await response.read()
            raise classify_status(response.status, response.headers, raw)
    except OSError as exc:
        raise classify_exception(exc) from None
    return response


class OpenAIChunks:
    """The identity translation: an OpenAI chunk is checked and relabelled, nothing more."""

    complete = False  # an OpenAI stream is complete when `[DONE]` arrives

    def __init__(self, model: str) -> None:
        self._model = model

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if "error" in event:
            raise UpstreamFailure(
                FailureKind.SERVER_ERROR,
                f"provider reported an error mid-stream: {event['error']}",
            )
        check_chunk(event, "provider")
        event["model"] = self._model  # the label, not the provider's dated name
        return [event]

    def close(self) -> list[dict[str, Any]]:
        return []
