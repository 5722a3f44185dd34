"""Prometheus metrics, fed from the same spend rows the store receives.

Labels are the model that answered (`-` when none did) and the status: never the model
a client asked for, which is free text and would let any caller create label series.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from nemorouter.core.money import from_pico

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        registry = self.registry
        self.requests = Counter(
            "nemorouter_requests", "Chat requests answered", ["model", "status"], registry=registry
        )
        self.latency = Histogram(
            "nemorouter_request_duration_seconds",
            "Chat request latency, provider included",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.fallbacks = Counter(
            "nemorouter_fallbacks", "Fallback links taken", ["model"], registry=registry
        )
        self.cache_hits = Counter(
            "nemorouter_cache_hits", "Answers served from the cache", ["model"], registry=registry
        )
        self.tokens = Counter(
            "nemorouter_tokens", "Tokens by model and kind", ["model", "kind"], registry=registry
        )
        self.cost = Counter(
            "nemorouter_cost_usd", "Provider cost in USD", ["model"], registry=registry
        )

    def observe(self, row: dict[str, Any]) -> None:
        model = row["model"] or "-"
        self.requests.labels(model, str(row["status"])).inc()
        self.latency.labels(model).observe(row["latency_ms"] / 1000.0)
        if row["fallbacks"]:
            self.fallbacks.labels(model).inc(row["fallbacks"])
        if row["cache_hit"]:
            self.cache_hits.labels(model).inc()
        if row["prompt_tokens"]:
            self.tokens.labels(model, "prompt").inc(row["prompt_tokens"])
        if row["completion_tokens"]:
            self.tokens.labels(model, "completion").inc(row["completion_tokens"])
        if row["cost_pico"]:
            self.cost.labels(model).inc(float(from_pico(row["cost_pico"])))  # a gauge, not money

    def render(self) -> bytes:
        return generate_latest(self.registry)
