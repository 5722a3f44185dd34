"""Vertex AI batch inference for Claude (`anthropic-vertex`): the same batch prediction jobs
and Cloud Storage staging as Gemini's (`deferred_vertex`), with Claude's line format.

Wire facts (cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/batch):
- input lines `{"custom_id", "request"}`, the request a Messages request with
  `anthropic_version: vertex-2023-10-16` (what the adapter sends to rawPredict); custom_id is
  "an ID for each request to match the input with the output";
- the job's model is `publishers/anthropic/models/{model}`; the output reserves `response`
  (the Message) and `status` (the error of a line that failed).
The official anthropic SDK's Vertex client has no batches ("Batch API is not supported in the
Vertex client yet", anthropics/anthropic-sdk-python `lib/vertex/_client.py`): these are
Vertex AI's jobs, not Anthropic's Message Batches API.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nemorouter.providers.deferred_anthropic import batch_key, outcome
from nemorouter.providers.deferred_vertex import VertexBatches
from nemorouter.types.deferred import DeferredLine, LineOutcome


class VertexClaudeBatches(VertexBatches):
    """Claude batch inference of one Vertex AI project and location."""

    provider_type = "anthropic-vertex"
    publisher = "anthropic"

    def row(self, line: DeferredLine, index: int) -> dict[str, Any]:
        return {"custom_id": batch_key(line.custom_id), "request": line.wire}

    def matcher(self, lines: Sequence[DeferredLine]) -> Callable[[dict[str, Any]], Any]:
        by_key = {batch_key(line.custom_id): line for line in lines}

        def match(entry: dict[str, Any]) -> DeferredLine | None:
            key = entry.get("custom_id")
            return by_key.get(key) if isinstance(key, str) else None

        return match

    def outcome(self, line: DeferredLine, entry: dict[str, Any], model: str) -> LineOutcome:
        response = entry.get("response")
        if isinstance(response, dict) and "content" not in response:
            response = response.get("body", response)  # a wrapped body is read as well
        if isinstance(response, dict) and response:
            return outcome(line, {"type": "succeeded", "message": response}, model)
        status = entry.get("status")
        text = status.get("message") if isinstance(status, dict) else status
        message = str(text or "the line failed without a reason")[:500]
        return LineOutcome(line.custom_id, error={"code": "error", "message": message})
