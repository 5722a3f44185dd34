"""Shared fixtures: one simulated provider for the whole session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nemorouter.testing import SimulatedProvider


@pytest.fixture(scope="session")
def sim_server() -> Iterator[SimulatedProvider]:
    with SimulatedProvider() as sim:
        yield sim


@pytest.fixture
def sim(sim_server: SimulatedProvider) -> SimulatedProvider:
    # settings are plain attributes: put them back so tests stay independent
    sim_server.clear()
    sim_server.latency_ms = 0.0
    sim_server.rpm = None
    sim_server.window_s = 60.0
    sim_server.api_key = None
    sim_server.record = True
    return sim_server
