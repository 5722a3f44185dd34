"""A provider's gzip bomb (≈200 KB inflating to 200 MiB) cannot take the gateway's memory: in a
real gateway process, three bombed requests (each tried twice) leave resident memory where it
was and peak at about the answer bound (max_upstream_body_mb, 32 MiB) above it; the client
gets a 503. Before the bound the peak was ~+415 MiB and the bomb's `{}` answered 200."""

from __future__ import annotations

from nemorouter.testing.memory_probe import gzip_bomb_probe


def test_gzip_bomb_memory_is_bounded_in_a_gateway_process() -> None:
    result = gzip_bomb_probe(probes=3, mib=200)
    assert result.statuses == [503, 503, 503]
    assert result.peak_mib - result.ready_mib < 80, result
    assert result.after_mib - result.ready_mib < 40, result
