"""`nemorouter check`: per configured deployment, one minimal real call (a one-word prompt,
at most one output token) or, with `calls=False` or where a call could not be costed or
would cost more than `max_call_usd`, a credentials fetch and a model lookup.

Adapters and deployments are built as the gateway builds them (`build_adapter` per used
provider, `DeploymentPool`), and the call goes through the adapter's own `prepare` and
`complete`: what is checked is what the gateway would send. Every deployment is checked
concurrently under its own timeout. Secrets never reach a row: a provider error that
quotes the configured key has it replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec
import orjson

from nemorouter.catalog import load_catalog
from nemorouter.config import Config, ConfigError, DeploymentConfig, ProviderConfig
from nemorouter.core.cost import call_cost
from nemorouter.core.deployments import Deployment, DeploymentPool
from nemorouter.core.route_run import NO_MEDIA
from nemorouter.providers import build_adapter
from nemorouter.providers.base import ProviderAdapter
from nemorouter.providers.http import HTTPPool
from nemorouter.providers.http_connection import Response
from nemorouter.providers.model_lookup import credentials_header, lookup_model
from nemorouter.providers.pooled import PooledAdapter
from nemorouter.types.errors import GatewayError
from nemorouter.types.money import MILLION_TOKENS, quantize, usd
from nemorouter.types.request import parse_chat_request
from nemorouter.types.upstream import FailureKind, UpstreamFailure

PROMPT = "Hi"
DEFAULT_TIMEOUT_S = 20.0
# A check call dearer than this (prompt estimate at input price + 1 output token) is
# replaced by a lookup: no check should cost real money.
DEFAULT_MAX_CALL_USD = Decimal("0.01")
OK, FAILED, UNKNOWN = "ok", "failed", "?"
# Rate-limit headers: OpenAI's `x-ratelimit-*` (also vLLM, LiteLLM), Anthropic's
# `anthropic-ratelimit-*` and `anthropic-priority-*` (reference/quotas.md §3, §4). Google
# sends none on success.
QUOTA_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "anthropic-priority-")
REASON_CHARS = 200
CLOSE_TIMEOUT_S = 5.0
_PRICE_FIELDS = ("pricing", "input_per_mtok", "output_per_mtok", "cached_input_per_mtok")
# The answers' headers seen by the check running in this task (one task per deployment).
_ANSWERS: contextvars.ContextVar[list[Mapping[str, str]] | None] = contextvars.ContextVar(
    "check_answers", default=None
)


@dataclass
class CheckRow:
    """One deployment's outcome."""

    deployment: str
    provider: str
    provider_type: str
    model: str
    provider_model: str
    mode: str = "call"  # "call", "lookup", or "-" (not built: nothing sent)
    auth: str = UNKNOWN
    reachable: str = UNKNOWN
    price: str = "unknown"  # config | catalog | catalog (unverified) | unknown
    quota_headers: dict[str, str] = field(default_factory=dict)
    latency_ms: float | None = None
    cost_usd: Decimal | None = None
    note: str | None = None
    reason: str | None = None

    @property
    def passed(self) -> bool:
        return (
            self.auth == OK
            and self.reachable == OK
            and self.price != "unknown"
            and self.reason is None
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "provider": self.provider,
            "provider_type": self.provider_type,
            "model": self.model,
            "provider_model": self.provider_model,
            "mode": self.mode,
            "passed": self.passed,
            "auth": self.auth,
            "model_reachable": self.reachable,
            "price": self.price,
            "quota_headers": self.quota_headers,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
            "cost_usd": None if self.cost_usd is None else usd(self.cost_usd),
            "note": self.note,
            "reason": self.reason,
        }


def check_body(provider_type: str, model: str) -> dict[str, Any]:
    """The check's chat request: one word, one output token. OpenAI's own API takes
    `max_completion_tokens` (its reasoning models refuse `max_tokens`); other OpenAI-format
    servers are sent the older, universally read `max_tokens` (the Gemini and Claude
    adapters read either)."""
    limit = "max_completion_tokens" if provider_type == "openai" else "max_tokens"
    return {"model": model, "messages": [{"role": "user", "content": PROMPT}], limit: 1}


def price_source(deployment: Deployment) -> str:
    if deployment.pricing is None:
        return "unknown"
    if deployment.config.pricing is not None:
        return "config"
    facts = load_catalog().get(deployment.model)
    unverified = facts is not None and any(f in _PRICE_FIELDS for f in facts.unverified)
    return "catalog (unverified)" if unverified else "catalog"


def quota_headers(answers: list[Mapping[str, str]]) -> dict[str, str]:
    """The rate-limit headers of the answers seen (the last value of each name)."""
    found: dict[str, str] = {}
    for headers in answers:
        for name, value in headers.items():
            if name.lower().startswith(QUOTA_PREFIXES):
                found[name.lower()] = value
    return dict(sorted(found.items()))


def record_answers(pool: HTTPPool) -> None:
    """Let the checks see the headers of every answer this pool reads: its `post` is
    wrapped for this process (the check's own adapters, never the gateway's)."""
    post = pool.post

    async def recording(path: str, body: bytes, extra: bytes, deadline_s: float) -> Response:
        response = await post(path, body, extra, deadline_s)
        sink = _ANSWERS.get()
        if sink is not None:
            sink.append(response.headers)
        return response

    pool.post = recording  # type: ignore[method-assign]


async def run_checks(
    config: Config,
    *,
    calls: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_call_usd: Decimal = DEFAULT_MAX_CALL_USD,
) -> list[CheckRow]:
    """Check every deployment concurrently; rows in config order. A provider whose adapter
    cannot be built raises ConfigError (a config problem, before anything is sent); a
    deployment the gateway would refuse to build is a failed row."""
    used = {d.provider for d in config.deployments}
    adapters: dict[str, ProviderAdapter] = {
        name: build_adapter(name, provider, config.settings)
        for name, provider in config.providers.items()
        if name in used
    }
    try:
        for adapter in adapters.values():
            await adapter.start()
            if isinstance(adapter, PooledAdapter):
                record_answers(adapter.pool)
        checks = []
        for dep in config.deployments:
            provider = config.providers[dep.provider]
            built = build_deployment(config, dep, adapters)
            if isinstance(built, ConfigError):
                checks.append(_unbuilt(dep, provider, built))
            else:
                checks.append(
                    check_deployment(built, dep.provider, provider, calls, timeout_s, max_call_usd)
                )
        return list(await asyncio.gather(*checks))
    finally:
        for adapter in adapters.values():
            # exiting anyway: a connection that does not close in time is left behind
            with contextlib.suppress(Exception):
                await asyncio.wait_for(adapter.close(), CLOSE_TIMEOUT_S)


def build_deployment(
    config: Config, dep: DeploymentConfig, adapters: dict[str, ProviderAdapter]
) -> Deployment | ConfigError:
    """The deployment as the gateway builds it (its own pool, so that one the gateway would
    refuse, e.g. for want of a price, is that deployment's row and not the whole check)."""
    alone = msgspec.structs.replace(config, deployments=(dep,), groups={})
    try:
        return DeploymentPool(alone, adapters).by_model[dep.model][0]
    except ConfigError as refused:
        return refused


async def _unbuilt(
    dep: DeploymentConfig, provider: ProviderConfig, refused: ConfigError
) -> CheckRow:
    row = CheckRow(dep.id, dep.provider, provider.type, dep.model, dep.upstream_model, mode="-")
    row.reason = redact(f"not checked: {refused}", provider)
    return row


async def check_deployment(
    deployment: Deployment,
    provider_name: str,
    provider: ProviderConfig,
    calls: bool,
    timeout_s: float,
    max_call_usd: Decimal,
) -> CheckRow:
    target = deployment.target
    row = CheckRow(
        deployment.id, provider_name, provider.type, deployment.model, target.provider_model
    )
    row.price = price_source(deployment)
    body = check_body(provider.type, target.provider_model)
    request = parse_chat_request(orjson.dumps(body))
    if not calls:
        row.mode = "lookup"
    elif deployment.pricing is None:
        row.mode, row.note = "lookup", "not called: it could not be costed"
    else:
        prompt = request.prompt_tokens_for(deployment.image_rule)
        rates = deployment.pricing.rates(prompt)
        worst = quantize((prompt * rates.input_per_mtok + rates.output_per_mtok) / MILLION_TOKENS)
        if worst > max_call_usd:
            row.mode = "lookup"
            row.note = f"a call could cost ${usd(worst)}, over ${usd(max_call_usd)}: looked up"
    answers: list[Mapping[str, str]] = []
    _ANSWERS.set(answers)  # this task's own context: concurrent checks keep theirs apart
    adapter = deployment.adapter
    try:
        async with asyncio.timeout(timeout_s):
            try:
                header = await credentials_header(adapter, provider)
            except UpstreamFailure as failure:
                row.auth = FAILED
                row.reason = redact(f"credentials: {failure.message}", provider)
                return row
            if row.mode == "call":
                upstream = adapter.prepare(target, request.body, NO_MEDIA, False)
                answer = await _timed(row, lambda: adapter.complete(upstream))
                row.auth = row.reachable = OK
                row.cost_usd = call_cost(deployment.pricing, answer.get("usage"))
                if row.cost_usd is None:
                    row.reason = "the answer reported no usable usage: calls cannot be costed"
            else:
                found = await _timed(
                    row,
                    lambda: lookup_model(
                        _base_url(adapter), provider, target.provider_model, header, timeout_s
                    ),
                )
                answers.append(found.headers)
                row.auth = row.reachable = OK
    except TimeoutError:
        row.reason = f"no answer within {timeout_s:g} s"
    except UpstreamFailure as failure:
        _judge(row, failure, provider)
    except GatewayError as refused:  # the adapter cannot translate the check's request
        row.reason = redact(f"not sent: {refused.message}", provider)
    row.quota_headers = quota_headers(answers)
    if row.price == "unknown" and row.reason is None:
        row.reason = "no known price: declare `pricing` for it (the gateway refuses unpriced calls)"
    return row


async def _timed(row: CheckRow, call: Callable[[], Awaitable[Any]]) -> Any:
    started = time.perf_counter()
    try:
        return await call()
    finally:
        row.latency_ms = (time.perf_counter() - started) * 1000.0


def _base_url(adapter: ProviderAdapter) -> str:
    base_url = getattr(adapter, "base_url", None)
    if not isinstance(base_url, str):
        raise UpstreamFailure(FailureKind.CLIENT_ERROR, "this adapter has no base URL to look up")
    return base_url


def _judge(row: CheckRow, failure: UpstreamFailure, provider: ProviderConfig) -> None:
    """What a failure says about the credentials and the model."""
    status = failure.status
    # Google answers a wrong API key with a 400 that classify_google marks as the
    # deployment's fault (server_error); any other 400 is a refused request. AUTH: no
    # token could be had at all.
    refused = (status == 400 and failure.kind is FailureKind.SERVER_ERROR) or (
        failure.kind is FailureKind.AUTH
    )
    if status in (401, 403) or refused:
        row.auth = FAILED
    elif status is not None and status < 500:
        row.auth = OK
        if status in (404, 429):
            row.reachable = FAILED
    what = _WHAT.get(status or 0) or ("credentials refused" if refused else None)
    what = what or _KINDS.get(failure.kind) or str(failure.kind).replace("_", " ")
    how = f" (HTTP {status})" if status else ""
    row.reason = redact(f"{what}{how}: {failure.message}", provider)


_WHAT = {401: "credentials refused", 403: "permission denied", 404: "model not found",
         429: "rate limited or out of quota"}  # fmt: skip
_KINDS = {FailureKind.CONNECTION: "provider unreachable", FailureKind.TIMEOUT: "timed out",
          FailureKind.MALFORMED: "unusable answer"}  # fmt: skip


def redact(text: str, provider: ProviderConfig) -> str:
    """The reason, short, with the configured secrets taken out."""
    for secret in (provider.api_key, provider.credentials):
        if secret and len(secret) >= 4 and secret.lower() != "none":
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"
