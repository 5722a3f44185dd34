"""Anthropic Message Batches: a deferred part as one batch of Messages requests.

Wire facts (anthropics/anthropic-sdk-python `resources/messages/batches.py` and
`types/messages/message_batch*.py`; platform.claude.com/docs/en/api/messages/batches):
- create: POST /v1/messages/batches `{"requests": [{"custom_id", "params"}]}`, the same
  `x-api-key` / `anthropic-version` headers as the Messages API; `params` is a Messages
  request (non-streaming). custom_id: 1-64 characters of `[a-zA-Z0-9_-]`, unique in the batch;
- retrieve: GET /v1/messages/batches/{id} → `processing_status` in_progress | canceling |
  ended, `request_counts` {processing, succeeded, errored, canceled, expired} (the last four
  are zero until the batch ends), `cancel_initiated_at`, `results_url` once ended;
- results: GET `results_url` (the SDK sends `Accept: application/binary`), JSONL of
  `{custom_id, result}` in any order; result `type` succeeded (`message`), errored
  (`error`: an error response `{type: "error", error: {type, message}}`), canceled, expired;
- cancel: POST /v1/messages/batches/{id}/cancel.
A batch expires 24 h after creation (`expires_at`); what was not processed by then is
`expired`.

Claude on Vertex AI (`anthropic-vertex`) has no Message Batches endpoint (the official SDK's
Vertex client refuses batches: "Batch API is not supported in the Vertex client yet"), so this
backend is for the `anthropic` type only; Vertex Claude lines stay interactive.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Any

import orjson

from nemorouter.config import ConfigError, ProviderConfig, Settings
from nemorouter.providers.answer_check import malformed, translated
from nemorouter.providers.anthropic import ANTHROPIC_URL, ANTHROPIC_VERSION
from nemorouter.providers.anthropic_response import to_completion, usage
from nemorouter.providers.deferred_http import DeferredHTTP, origin_path, require_lines
from nemorouter.providers.request_fields import encoded
from nemorouter.providers.upstream_auth import KeyAuth
from nemorouter.types.deferred import DeferredLine, LineOutcome, PartProgress, PartStatus
from nemorouter.types.target import Target
from nemorouter.types.upstream import UpstreamFailure

BATCHES = "/v1/messages/batches"
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
WHO = "Claude"


def batch_key(custom_id: str) -> str:
    """The custom_id sent: the gateway's own when Anthropic takes it, else a stable digest
    of it (the same at submit and at results, whatever order the lines come in)."""
    if _CUSTOM_ID.match(custom_id):
        return custom_id
    return "h" + hashlib.sha256(custom_id.encode()).hexdigest()[:40]


def progress(batch: dict[str, Any]) -> PartProgress:
    """A retrieved MessageBatch in the gateway's words."""
    counts = batch.get("request_counts") or {}

    def count(name: str) -> int:
        value = counts.get(name)
        return value if isinstance(value, int) and value >= 0 else 0

    succeeded = count("succeeded")
    failed = count("errored") + count("canceled") + count("expired")
    total = succeeded + failed + count("processing")
    state = batch.get("processing_status")
    if state == "ended":
        if batch.get("cancel_initiated_at"):
            status = PartStatus.CANCELLED
        elif count("expired"):
            status = PartStatus.EXPIRED
        else:
            status = PartStatus.COMPLETED
    elif state == "canceling":
        status = PartStatus.CANCELLING
    else:
        status = PartStatus.IN_PROGRESS
    return PartProgress(status, total, succeeded, failed)


def outcome(line: DeferredLine, result: Any, model: str) -> LineOutcome:
    """One results line's `result` for `line`, translated as an interactive answer is."""
    kind = result.get("type") if isinstance(result, dict) else None
    if kind == "succeeded":
        message = result.get("message")
        try:
            if not isinstance(message, dict):
                raise TypeError("message")
            response = translated(WHO, partial(to_completion, message, model, line.structured))
        except UpstreamFailure as failure:
            reported = _usage(message)
            error = _error("malformed", failure.message)
            return LineOutcome(line.custom_id, error=error, usage=reported)
        return LineOutcome(line.custom_id, response=response, usage=response.get("usage"))
    if kind == "errored":
        error = (result.get("error") or {}).get("error") or {}
        code = error.get("type") if isinstance(error.get("type"), str) else "api_error"
        return LineOutcome(line.custom_id, error=_error(code, str(error.get("message") or code)))
    if kind == "canceled":
        return LineOutcome(line.custom_id, error=_error("cancelled", "the batch was cancelled"))
    if kind == "expired":
        return LineOutcome(line.custom_id, error=_error("expired", "the batch expired first"))
    return LineOutcome(line.custom_id, error=_error("malformed", f"unknown result {kind!r}"))


def _usage(message: Any) -> dict[str, Any] | None:
    try:
        return usage(message.get("usage")) if isinstance(message, dict) else None
    except (UpstreamFailure, TypeError, ValueError, AttributeError):
        return None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message[:500]}


class AnthropicBatches(DeferredHTTP):
    """The Message Batches API of one Anthropic API key."""

    who = WHO

    def __init__(self, name: str, provider: ProviderConfig, settings: Settings) -> None:
        if provider.type != "anthropic":
            raise ConfigError(
                f"providers.{name}.type", "Message Batches are for the Anthropic API only"
            )
        if not provider.api_key:
            raise ConfigError(f"providers.{name}.api_key", "the Anthropic API needs an api_key")
        self.auth = KeyAuth(
            f"x-api-key: {provider.api_key}\r\nanthropic-version: {ANTHROPIC_VERSION}\r\n".encode()
        )
        super().__init__(name, provider.base_url or ANTHROPIC_URL, provider, settings)

    async def submit(self, target: Target, lines: Sequence[DeferredLine]) -> str:
        require_lines(lines)
        requests = [{"custom_id": batch_key(line.custom_id), "params": line.wire} for line in lines]
        batch = await self._json(b"POST", BATCHES, encoded(WHO, {"requests": requests}))
        batch_id = batch.get("id")
        if not isinstance(batch_id, str) or not batch_id:
            raise malformed(WHO, "a batch without an id")
        return batch_id

    async def poll(self, provider_id: str) -> PartProgress:
        return progress(await self._json(b"GET", f"{BATCHES}/{provider_id}"))

    async def results(
        self, target: Target, provider_id: str, lines: Sequence[DeferredLine]
    ) -> AsyncIterator[LineOutcome]:
        batch = await self._json(b"GET", f"{BATCHES}/{provider_id}")
        url = batch.get("results_url")
        if not isinstance(url, str) or not url:
            raise malformed(WHO, "no results_url for an ended batch")
        by_key = {batch_key(line.custom_id): line for line in lines}
        path = origin_path(self.base_url, url)
        async for raw in self._lines(path, b"Accept: application/binary\r\n"):
            try:
                entry = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise malformed(WHO, "a results line that is not JSON") from None
            key = entry.get("custom_id") if isinstance(entry, dict) else None
            line = by_key.pop(key, None) if isinstance(key, str) else None
            if line is not None:  # an id not asked for (or twice) is not ours to report
                yield outcome(line, entry.get("result"), target.model)

    async def cancel(self, provider_id: str) -> None:
        await self._json(b"POST", f"{BATCHES}/{provider_id}/cancel")
