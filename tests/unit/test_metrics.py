"""Prometheus exposition of the counters kept from spend rows."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from nemorouter.core.metrics import Metrics


def row(model: str | None, status: int, latency_ms: float, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "status": status,
        "latency_ms": latency_ms,
        "fallbacks": extra.get("fallbacks", 0),
        "cache_hit": extra.get("cache_hit", False),
        "prompt_tokens": extra.get("prompt_tokens", 0),
        "completion_tokens": extra.get("completion_tokens", 0),
        "cost_pico": extra.get("cost_pico"),
    }


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }


def test_counters_histogram_and_cost() -> None:
    metrics = Metrics()
    metrics.observe(row("flash", 200, 30, prompt_tokens=100, cost_pico=1_500_000_000))
    metrics.observe(row("flash", 200, 200, fallbacks=1, cache_hit=True, completion_tokens=7))
    metrics.observe(row("flash", 200, 200_000, cost_pico=500_000_000))
    metrics.observe(row(None, 503, 10))
    got = samples(metrics)
    flash = (("model", "flash"),)
    assert got[("nemorouter_requests_total", (("model", "flash"), ("status", "200")))] == 3
    assert got[("nemorouter_requests_total", (("model", "-"), ("status", "503")))] == 1
    bucket = "nemorouter_request_duration_seconds_bucket"
    assert got[(bucket, (("le", "0.05"), ("model", "flash")))] == 1
    assert got[(bucket, (("le", "0.25"), ("model", "flash")))] == 2
    assert got[(bucket, (("le", "128.0"), ("model", "flash")))] == 2
    assert got[(bucket, (("le", "+Inf"), ("model", "flash")))] == 3
    assert got[("nemorouter_request_duration_seconds_count", flash)] == 3
    assert got[("nemorouter_request_duration_seconds_sum", flash)] == 200.23
    assert got[("nemorouter_fallbacks_total", flash)] == 1
    assert got[("nemorouter_cache_hits_total", flash)] == 1
    assert got[("nemorouter_tokens_total", (("kind", "prompt"), ("model", "flash")))] == 100
    assert got[("nemorouter_tokens_total", (("kind", "completion"), ("model", "flash")))] == 7
    assert got[("nemorouter_cost_usd_total", flash)] == 0.002
