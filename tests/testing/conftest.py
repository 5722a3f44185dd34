"""Fixtures for the simulated-provider tests: one server per session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from nemorouter.testing import SimulatedProvider

# `sim` (the shared simulated provider, reset per test) comes from tests/conftest.py.


@pytest.fixture
def client(sim: SimulatedProvider) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=sim.base_url, api_key="test-key", max_retries=0, timeout=5) as c:
        yield c
