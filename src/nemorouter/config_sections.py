"""The config file's settings sections (cache, breaker, Redis outages, retries, tracing) and
the value types they share; `config.py` holds the file as a whole, loading and checks."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]


class Section(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A config mapping: unknown keys are refused (a typo is an error, not a silent default)."""


class CacheSettings(Section):
    enabled: bool = True
    ttl_s: NonNegativeInt = 86400
    scope: Literal["key", "team", "global"] = "team"
    # Bound of the in-process cache (LRU); with redis_url, Redis's own maxmemory bounds it.
    max_mb: PositiveInt = 256


class BreakerSettings(Section):
    # Consecutive failures (timeouts, dropped connections, 5xx) that open a deployment's
    # circuit, and how long it stays open before one probe may go through.
    consecutive_failures: PositiveInt = 5
    cooldown_s: PositiveFloat = 30.0
    # Or: this share of the calls of the last `window_s` failed, once there were `min_calls`
    # (a flaky deployment that never fails 5 times in a row; 1.0: only when all of them did).
    failure_rate: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5
    window_s: PositiveFloat = 60.0
    min_calls: PositiveInt = 20


class RedisDownSettings(Section):
    """What a request meets while Redis (settings.redis_url) cannot be reached (docs/gateway.md
    "Outages"). Budgets and deployment quotas always fail closed (503)."""

    # closed: 503 with retry-after; open: admitted without being counted.
    rate_limits: str = "closed"
    # open: each instance keeps its own breakers; closed: 503 until the shared state is back.
    breakers: str = "open"


class RetryClass(Section):
    # Unset: `settings.retries` (the default for every class).
    retries: NonNegativeInt | None = None
    # Longest provider hint (retry-after, Google RetryInfo) waited out on the same
    # deployment; a longer one gives the link up. Unset: `settings.retry.max_wait_s`.
    max_wait_s: NonNegativeFloat | None = None


class RetrySettings(Section):
    """Retries of a retryable failure, per failure class, before the chain moves on."""

    timeout: RetryClass = RetryClass()
    connection: RetryClass = RetryClass()
    server_error: RetryClass = RetryClass()
    rate_limited: RetryClass = RetryClass()
    max_wait_s: NonNegativeFloat = 10.0
    # Without a hint: base * 2^(n-1), at most cap, less up to `jitter` of it at random
    # (so clients that failed together do not come back together).
    backoff_base_s: NonNegativeFloat = 0.1
    backoff_cap_s: NonNegativeFloat = 5.0
    jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.5


class TracingSettings(Section):
    """OpenTelemetry traces (docs/gateway.md "Tracing"); absent: off, unless OTEL_EXPORTER_OTLP_*
    environment variables name a collector (telemetry/env.py)."""

    # The collector's OTLP/HTTP base URL (`/v1/traces` is appended) or its full traces URL.
    otlp_endpoint: str | None = None
    service_name: str = "nemorouter"
    sample_ratio: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    headers: dict[str, str] = {}
    export_interval_s: PositiveFloat = 1.0
    max_queue: PositiveInt = 2048  # spans waiting for export; beyond it, dropped (counted)
    batch_size: PositiveInt = 512
    export_timeout_s: PositiveFloat = 5.0
