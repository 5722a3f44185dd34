"""The gzip-bomb probe: a gateway process in front of a simulated provider that answers with a
gzip bomb (a ~200 KB body inflating to `mib` MiB); the gateway's resident memory when ready,
after the probes and at its peak (VmHWM). Used by `bench/gzip_bomb` and a test."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from nemorouter.testing.processes import serve_process
from nemorouter.testing.sim_types import Fault
from nemorouter.testing.simulated_provider import SimulatedProvider

MASTER_KEY = "sk-memory-probe-key"


@dataclass(frozen=True)
class ProbeResult:
    ready_mib: float  # resident memory once ready (after one normal call)
    after_mib: float  # resident memory after the probes
    peak_mib: float  # the process's highest resident memory (VmHWM)
    statuses: list[int]  # what the client got for each probe


def _memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of `pid` in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def gzip_bomb_probe(probes: int = 3, mib: int = 200, settings: dict | None = None) -> ProbeResult:
    """Start a simulated provider and a gateway process, send one normal request, then
    `probes` requests each answered with a `mib` MiB gzip bomb (no fallback: each is a 503
    once the attempt and its retry failed); measure the gateway's memory."""
    with SimulatedProvider(record=False) as sim, tempfile.TemporaryDirectory() as workdir:
        config = {
            "settings": {
                "master_key": MASTER_KEY,
                "database_url": f"sqlite:///{workdir}/probe.db",
                "cache": {"enabled": False},
                "breaker": {"consecutive_failures": 1000, "min_calls": 1000},
                **(settings or {}),
            },
            "providers": {"sim": {"type": "openai-compatible", "base_url": sim.base_url}},
            "deployments": [{"id": "flash", "model": "gemini-2.5-flash", "provider": "sim"}],
        }
        with serve_process(config, Path(workdir), "probe-gateway", "warning") as (process, url):
            body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}
            headers = {"Authorization": f"Bearer {MASTER_KEY}"}
            with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
                client.post("/v1/chat/completions", json=body).raise_for_status()
                ready, _ = _memory(process.pid)
                sim.inject(Fault.gzip_bomb(mib), times=2 * probes)  # each attempt and retry
                statuses = [
                    client.post("/v1/chat/completions", json=body).status_code
                    for _ in range(probes)
                ]
                after, peak = _memory(process.pid)
    return ProbeResult(ready, after, peak, statuses)
