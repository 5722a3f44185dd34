"""Fixtures for the simulated-provider tests: one server per session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from nemorouter.testing import SimulatedProvider


@pytest.fixture(scope="session")
def _sim_server() -> Iterator[SimulatedProvider]:
    with SimulatedProvider() as sim:
        yield sim


@pytest.fixture
def sim(_sim_server: SimulatedProvider) -> SimulatedProvider:
    # settings are plain attributes: put them back so tests stay independent
    _sim_server.clear()
    _sim_server.latency_ms = 0.0
    _sim_server.rpm = None
    _sim_server.api_key = None
    _sim_server.record = True
    return _sim_server


@pytest.fixture
def client(sim: SimulatedProvider) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=sim.base_url, api_key="test-key", max_retries=0, timeout=5) as c:
        yield c
