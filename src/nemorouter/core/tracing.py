"""What the gateway's spans say: GenAI semantic conventions plus `nemo.*` attributes.

Followed: OpenTelemetry semantic conventions for GenAI spans ("Semantic conventions for
generative client AI spans", docs/gen-ai/gen-ai-spans.md of open-telemetry/semantic-conventions,
v1.37+ with `gen_ai.provider.name`, which replaced `gen_ai.system`; status Development).
One SERVER span per request (`chat {requested model}`), one CLIENT span per upstream attempt
(`chat {provider model}`). Only ids, names, counts, codes and money are recorded: never a
prompt, an answer, image or document bytes, or a secret (the key's id, never the key).

`error.type` values: the gateway's error code on the request span (`invalid_request`,
`all_deployments_failed`, `stream_interrupted`, ...); the failure class on an attempt span
(`timeout`, `connection`, `rate_limited`, `server_error`, `client_error`, `context_window`,
`malformed`, `auth`, `quota`) or `deadline`, `cancelled`, `invalid_request`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from nemorouter.core.deployments import Deployment
from nemorouter.core.record import CallRecord
from nemorouter.telemetry.spans import Span
from nemorouter.types.money import usd
from nemorouter.types.upstream import UpstreamFailure

CHAT = "chat"
# gen_ai.provider.name well-known values (registry/attributes/gen-ai.md); the OpenAI wire
# format spoken to any other server is reported as what it is: openai-compatible.
PROVIDER_NAMES: Mapping[str, str] = {
    "vertex": "gcp.vertex_ai",
    "anthropic-vertex": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "anthropic": "anthropic",
    "openai": "openai",
    "openai-compatible": "openai",
}


def request_started(span: Span, request_id: str) -> None:
    span.attrs["gen_ai.operation.name"] = CHAT
    span.attrs["nemo.request_id"] = request_id


def request_parsed(span: Span, record: CallRecord, tags: frozenset[str], cached: bool) -> None:
    """What the request asked for, once it is parsed and its tags are known."""
    request = record.request
    assert request is not None
    attrs = span.attrs
    span.name = f"{CHAT} {request.model}"
    attrs["gen_ai.request.model"] = request.model
    body = request.body
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(limit, int) and not isinstance(limit, bool):
        attrs["gen_ai.request.max_tokens"] = limit
    attrs["nemo.tags"] = sorted(tags)
    attrs["nemo.job_id"] = record.job_id
    attrs["nemo.cache"] = "MISS" if cached else "SKIP"
    if request.pdf_pages:
        attrs["nemo.pages"] = request.pdf_pages


def request_routed(span: Span, deployment: Deployment) -> None:
    provider = deployment.provider_type
    span.attrs["gen_ai.provider.name"] = PROVIDER_NAMES.get(provider, provider)


def response_read(span: Span, response: Mapping[str, Any]) -> None:
    """A completion's id and finish reasons (streams report neither: their chunks are not
    inspected for tracing)."""
    choices = response.get("choices")
    if isinstance(choices, list):
        reasons = [c.get("finish_reason") for c in choices if isinstance(c, dict)]
        span.attrs["gen_ai.response.finish_reasons"] = [r for r in reasons if r]
    response_id = response.get("id")
    if isinstance(response_id, str):
        span.attrs["gen_ai.response.id"] = response_id


def request_ended(span: Span, record: CallRecord, row: Mapping[str, Any]) -> None:
    """The request's last word (from its spend row), then the span ends; a streamed
    attempt still open ends with it, with the stream's token counts."""
    attrs = span.attrs
    attrs["nemo.key_id"] = record.caller.key_id
    if record.caller.team_id:
        attrs["nemo.team_id"] = record.caller.team_id
    if record.model:
        attrs["gen_ai.response.model"] = record.model
        attrs["nemo.deployment"] = record.deployment
    attrs["gen_ai.usage.input_tokens"] = row["prompt_tokens"]
    attrs["gen_ai.usage.output_tokens"] = row["completion_tokens"]
    attrs["nemo.stream"] = record.stream
    attrs["nemo.attempts"] = record.attempts
    attrs["nemo.fallbacks"] = record.fallbacks
    if record.cache_hit:
        attrs["nemo.cache"] = "HIT"
    if record.cost is not None:
        attrs["nemo.cost_usd"] = usd(record.cost)  # exact decimal string, never a float
    status = record.status
    attrs["http.response.status_code"] = status
    code = record.error_code
    if code is not None:
        attrs["error.type"] = code
        if status >= 500 or code == "stream_interrupted":
            span.error = code
    attempt, span.open_child = span.open_child, None
    span.end()
    if attempt is not None:
        attempt.attrs["gen_ai.usage.input_tokens"] = row["prompt_tokens"]
        attempt.attrs["gen_ai.usage.output_tokens"] = row["completion_tokens"]
        if code is not None:
            attempt.attrs["error.type"] = code
            attempt.error = code if code == "stream_interrupted" else None
        attempt.end(span.end_ns)


def request_refused(span: Span, status: int, code: str) -> None:
    """A request refused before it had a record (its key was not accepted)."""
    span.attrs["http.response.status_code"] = status
    span.attrs["error.type"] = code
    if status >= 500:
        span.error = code
    span.end()


def attempt_started(
    parent: Span, deployment: Deployment, number: int, link: int, retry: bool
) -> Span:
    target = deployment.target
    span = parent.child(f"{CHAT} {target.provider_model}")
    attrs = span.attrs
    attrs["gen_ai.operation.name"] = CHAT
    provider = deployment.provider_type
    attrs["gen_ai.provider.name"] = PROVIDER_NAMES.get(provider, provider)
    attrs["gen_ai.request.model"] = target.provider_model
    attrs["nemo.model"] = deployment.model
    attrs["nemo.deployment"] = deployment.id
    attrs["nemo.attempt"] = number
    attrs["nemo.retry"] = retry  # not the first call of its chain link
    attrs["nemo.fallback"] = link  # the chain link (0: the model asked for)
    return span


def attempt_answered(span: Span, response: Any, cost: Decimal | None = None) -> None:
    """A completion that came back: ended now, with its usage."""
    attrs = span.attrs
    attrs["nemo.outcome"] = "ok"
    attrs["gen_ai.response.model"] = attrs["gen_ai.request.model"]
    if isinstance(response, dict):
        usage = response.get("usage")
        if isinstance(usage, dict):
            attrs["gen_ai.usage.input_tokens"] = usage.get("prompt_tokens")
            attrs["gen_ai.usage.output_tokens"] = usage.get("completion_tokens")
        response_read(span, response)
    span.end()


def attempt_streaming(span: Span, parent: Span) -> None:
    """A stream that started: its span ends when the request's does (the stream closed)."""
    span.attrs["nemo.outcome"] = "ok"
    span.attrs["gen_ai.response.model"] = span.attrs["gen_ai.request.model"]
    parent.open_child = span


def attempt_failed(span: Span, failure: UpstreamFailure) -> None:
    attrs = span.attrs
    kind = str(failure.kind)
    attrs["nemo.outcome"] = kind
    attrs["error.type"] = kind
    if failure.status:
        attrs["http.response.status_code"] = failure.status
    span.error = kind
    span.end()


def attempt_broke(span: Span, what: str) -> None:
    """An attempt that ended without an answer or an upstream failure: cut by the
    deadline, cancelled, or not encodable for the provider."""
    span.attrs["nemo.outcome"] = what
    span.attrs["error.type"] = what
    span.error = what
    span.end()
