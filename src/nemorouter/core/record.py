"""The spend record of one request: who, which job, which model answered, tokens, cost,
how it was routed and how it ended. Built here, written by the store's batched writer."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from nemorouter.core.auth import Caller
from nemorouter.store.schema import spend
from nemorouter.types.money import to_pico
from nemorouter.types.options import checked_job_id
from nemorouter.types.request import ChatRequest

log = logging.getLogger("nemorouter.record")

# What a spend row holds (store/schema.py): every string and integer written fits its
# column on both databases, or one bad row would stop the batched writer.
MAX_REQUEST_ID: int = spend.c.request_id.type.length  # type: ignore[attr-defined]
MAX_JOB_ID: int = spend.c.job_id.type.length  # type: ignore[attr-defined]
MAX_MODEL: int = spend.c.model_requested.type.length  # type: ignore[attr-defined]
MAX_ERROR_CODE: int = spend.c.error_code.type.length  # type: ignore[attr-defined]
MAX_INT32 = 2**31 - 1  # Integer columns (tokens)
MAX_INT16 = 2**15 - 1  # SmallInteger columns (fallbacks, attempts)
# Metadata kept with a spend record; larger metadata is stored as a note, not truncated JSON.
MAX_METADATA_BYTES = 4096
_METADATA_NOT_STORED = ("metadata", "tags", "job_id")


def job_id_of(request: ChatRequest, header: bytes | None) -> str | None:
    """`metadata.job_id`, else the `x-nemo-job-id` header, else a `job:<id>` metadata tag."""
    options = request.options
    if options.job_id is not None:
        return options.job_id
    if header:
        return checked_job_id(header.decode("latin-1").strip(), "x-nemo-job-id")
    if options.job_tag is not None:
        return checked_job_id(options.job_tag, "metadata.tags")
    return None


def _metadata_json(request: ChatRequest | None) -> str | None:
    metadata = request.options.metadata if request is not None else None
    if not metadata:
        return None
    kept = {k: v for k, v in metadata.items() if k not in _METADATA_NOT_STORED}
    if not kept:
        return None
    try:
        text = orjson.dumps(kept, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return None
    if len(text) > MAX_METADATA_BYTES:
        return orjson.dumps({"_note": f"metadata of {len(text)} bytes not stored"}).decode()
    return text.decode()


class CallRecord:
    """What the pipeline learns about a request as it goes; `row` makes the spend row."""

    __slots__ = (
        "attempts",
        "budget",
        "cache_hit",
        "cached_tokens",
        "caller",
        "completion_tokens",
        "cost",
        "deferred",
        "deployment",
        "error_code",
        "fallbacks",
        "job_id",
        "limit",
        "model",
        "prompt_tokens",
        "provider",
        "request",
        "request_id",
        "saved",
        "span",
        "started",
        "started_wall",
        "status",
        "stream",
    )

    def __init__(self, caller: Caller, request_id: str) -> None:
        self.caller = caller
        self.request_id = request_id
        self.started = time.perf_counter()
        self.started_wall = time.time()
        self.request: ChatRequest | None = None
        self.job_id: str | None = None
        self.model: str | None = None
        self.deployment: str | None = None
        self.provider: str | None = None
        self.prompt_tokens = self.completion_tokens = self.cached_tokens = 0
        self.cost: Decimal | None = None
        self.attempts = self.fallbacks = 0
        self.stream = False
        self.status = 200
        self.error_code: str | None = None
        self.cache_hit = False
        self.saved: Decimal | None = None  # what a cache hit would have cost
        self.budget: Any = None  # the budget reservation, until settled
        self.limit: Any = None  # the key's rate-limit decision, until settled
        self.span: Any = None  # the request's trace span, when tracing samples it
        self.deferred = False  # a line of a deferred job, answered by a provider batch API

    def usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        self.prompt_tokens = _int(usage.get("prompt_tokens"))
        self.completion_tokens = _int(usage.get("completion_tokens"))
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict):
            self.cached_tokens = _int(details.get("cached_tokens"))

    def row(self) -> dict[str, Any]:
        created = datetime.fromtimestamp(self.started_wall, UTC).replace(tzinfo=None)
        request = self.request
        return {
            "request_id": self.request_id,
            "created_at": created,
            "day": created.date(),
            "key_id": self.caller.key_id,
            "team_id": self.caller.team_id,
            "job_id": self.job_id,
            "metadata": _metadata_json(request),
            # Checked at parse (length, no NUL); fitted again for rows of refused requests.
            "model_requested": request.model[:MAX_MODEL] if request is not None else "",
            "model": self.model,
            "deployment": self.deployment,
            "provider": self.provider,
            "prompt_tokens": self._bounded("prompt_tokens", self.prompt_tokens, MAX_INT32),
            "completion_tokens": self._bounded(
                "completion_tokens", self.completion_tokens, MAX_INT32
            ),
            "cached_tokens": self._bounded("cached_tokens", self.cached_tokens, MAX_INT32),
            # Money is never clamped: a cost beyond the column is refused by the store and the
            # whole row dead-lettered with its exact figure (store/spend_batch.py).
            "cost_pico": None if self.cost is None else to_pico(self.cost),
            "cache_hit": self.cache_hit,
            "saved_pico": 0 if self.saved is None else to_pico(self.saved),
            "fallbacks": min(self.fallbacks, MAX_INT16),
            "attempts": min(self.attempts, MAX_INT16),
            "stream": self.stream,
            "status": self.status,
            "error_code": None if self.error_code is None else self.error_code[:MAX_ERROR_CODE],
            "latency_ms": round((time.perf_counter() - self.started) * 1000.0, 3),
            "pages": min(request.pdf_pages, MAX_INT32) if request is not None else 0,
            "deferred": self.deferred,
        }

    def _bounded(self, what: str, value: int, most: int) -> int:
        """A provider's count that cannot be true (beyond the column) is kept at the
        column's bound, with a warning, so the row is still written."""
        if value <= most:
            return value
        log.warning(
            "request %s: %s of %d does not fit the spend row; recorded as %d",
            self.request_id,
            what,
            value,
            most,
        )
        return most


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
