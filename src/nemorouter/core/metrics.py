"""Prometheus metrics, fed from the same spend rows the store receives.

Counted in plain Python numbers on the request path (~1-2 µs a request; prometheus_client's
labelled counters and histogram cost ~10 µs) and turned into metric families only when
/metrics is scraped. Labels are the model that answered (`-` when none did) and the status:
never the model a client asked for, which is free text and would let any caller create
label series.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

from nemorouter.types.money import from_pico

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)


class _ModelStats:
    __slots__ = (
        "buckets",
        "cache_hits",
        "completion_tokens",
        "cost_pico",
        "fallbacks",
        "latency_sum",
        "prompt_tokens",
        "statuses",
    )

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.latency_sum = 0.0
        self.fallbacks = self.cache_hits = 0
        self.prompt_tokens = self.completion_tokens = self.cost_pico = 0


class Metrics:
    def __init__(self) -> None:
        self._models: dict[str, _ModelStats] = {}
        # By deployment: calls whose cost exceeded their budget reservation, and by how much.
        self._underreserved: dict[str, list[int]] = {}
        self._registry: CollectorRegistry | None = None
        # The span exporter when tracing is on (its `exported` and `dropped` counts).
        self.tracing: Any = None

    def underreserved(self, deployment: str, excess_pico: int) -> None:
        counts = self._underreserved.get(deployment)
        if counts is None:
            counts = self._underreserved[deployment] = [0, 0]
        counts[0] += 1
        counts[1] += excess_pico

    def observe(self, row: dict[str, Any]) -> None:
        model = row["model"] or "-"
        stats = self._models.get(model)
        if stats is None:
            stats = self._models[model] = _ModelStats()
        status = row["status"]
        stats.statuses[status] = stats.statuses.get(status, 0) + 1
        seconds = row["latency_ms"] / 1000.0
        stats.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        stats.latency_sum += seconds
        stats.fallbacks += row["fallbacks"]
        stats.cache_hits += row["cache_hit"]
        stats.prompt_tokens += row["prompt_tokens"]
        stats.completion_tokens += row["completion_tokens"]
        stats.cost_pico += row["cost_pico"] or 0

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        requests = CounterMetricFamily(
            "nemorouter_requests", "Chat requests answered", labels=["model", "status"]
        )
        latency = HistogramMetricFamily(
            "nemorouter_request_duration_seconds",
            "Chat request latency, provider included",
            labels=["model"],
        )
        fallbacks = CounterMetricFamily(
            "nemorouter_fallbacks", "Fallback links taken", labels=["model"]
        )
        cache_hits = CounterMetricFamily(
            "nemorouter_cache_hits", "Answers served from the cache", labels=["model"]
        )
        tokens = CounterMetricFamily(
            "nemorouter_tokens", "Tokens by model and kind", labels=["model", "kind"]
        )
        cost = CounterMetricFamily("nemorouter_cost_usd", "Provider cost in USD", labels=["model"])
        for model, stats in list(self._models.items()):
            for status, count in sorted(stats.statuses.items()):
                requests.add_metric([model, str(status)], count)
            cumulative, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), stats.buckets, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            latency.add_metric([model], buckets, stats.latency_sum)
            fallbacks.add_metric([model], stats.fallbacks)
            cache_hits.add_metric([model], stats.cache_hits)
            tokens.add_metric([model, "prompt"], stats.prompt_tokens)
            tokens.add_metric([model, "completion"], stats.completion_tokens)
            cost.add_metric([model], float(from_pico(stats.cost_pico)))  # a gauge, not money
        short = CounterMetricFamily(
            "nemorouter_budget_underreserved",
            "Calls that cost more than their budget reservation",
            labels=["deployment"],
        )
        short_usd = CounterMetricFamily(
            "nemorouter_budget_underreserved_usd",
            "USD by which calls exceeded their budget reservation",
            labels=["deployment"],
        )
        for deployment, (count, excess_pico) in list(self._underreserved.items()):
            short.add_metric([deployment], count)
            short_usd.add_metric([deployment], float(from_pico(excess_pico)))  # a gauge
        yield from (requests, latency, fallbacks, cache_hits, tokens, cost, short, short_usd)
        if self.tracing is not None:
            exported = CounterMetricFamily(
                "nemorouter_trace_spans_exported", "Spans the collector accepted"
            )
            exported.add_metric([], self.tracing.exported)
            dropped = CounterMetricFamily(
                "nemorouter_trace_spans_dropped",
                "Spans dropped: the export queue was full or the collector did not take them",
            )
            dropped.add_metric([], self.tracing.dropped)
            yield from (exported, dropped)

    def render(self) -> bytes:
        return self.exposition()[0]

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        # prometheus_client loads on the first scrape, not at start (~75 ms of imports).
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self._registry is None:
            self._registry = CollectorRegistry(auto_describe=False)
            self._registry.register(self)  # type: ignore[arg-type]
        return generate_latest(self._registry), CONTENT_TYPE_LATEST
