"""A real gateway on a free loopback port, in front of the simulated provider."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from nemorouter.config import parse_config
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider

MASTER_KEY = "sk-test-master-key"
# Each gateway gets its own SQLite store here (never ./nemorouter.db in the checkout).
STORE_DIR = Path(tempfile.mkdtemp(prefix=f"nemorouter-tests-{os.getpid()}-"))
_stores = itertools.count()


def fresh_sqlite_url() -> str:
    return f"sqlite:///{STORE_DIR}/store-{next(_stores)}.db"


def gateway_config(sim: SimulatedProvider, **settings: Any) -> dict[str, Any]:
    return {
        "settings": {
            "master_key": MASTER_KEY,
            "database_url": fresh_sqlite_url(),
            # A gateway on PostgreSQL would journal and dead-letter into the working folder.
            "spend_journal_dir": str(STORE_DIR),
            "spend_dead_letter_path": str(STORE_DIR / f"deadletter-{next(_stores)}.jsonl"),
            # Tests inject failures one after another: keep circuits closed unless a test opens them.
            "breaker": {"consecutive_failures": 50},
            # Tests repeat identical requests and count provider calls: the response cache is
            # off unless a test turns it on (test_cache.py).
            "cache": {"enabled": False},
            **settings,
        },
        "providers": {
            "sim": {"type": "openai-compatible", "base_url": sim.base_url, "api_key": "none"}
        },
        "deployments": [
            {
                "id": "flash-a",
                "model": "gemini-2.5-flash",
                "provider": "sim",
                "provider_model": "flash-upstream-a",
            },
            {
                "id": "flash-b",
                "model": "gemini-2.5-flash",
                "provider": "sim",
                "provider_model": "flash-upstream-b",
            },
            {"id": "pro", "model": "gemini-2.5-pro", "provider": "sim"},
        ],
        "groups": {"document-vision": ["gemini-2.5-pro", "gemini-2.5-flash"]},
    }


GatewayFactory = Callable[[dict[str, Any]], BackgroundGateway]


@pytest.fixture
def start_gateway() -> Iterator[GatewayFactory]:
    """Start gateways from raw config dicts; all are stopped after the test."""
    started: list[BackgroundGateway] = []

    def start(raw: dict[str, Any]) -> BackgroundGateway:
        gateway = BackgroundGateway(parse_config(raw, env={})).start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture(scope="module")
def gateway_module(sim_server: SimulatedProvider) -> Iterator[BackgroundGateway]:
    config = parse_config(gateway_config(sim_server, request_timeout_s=5), env={})
    with BackgroundGateway(config) as gateway:
        yield gateway


@pytest.fixture
def gateway(gateway_module: BackgroundGateway, sim: SimulatedProvider) -> BackgroundGateway:
    return gateway_module


@pytest.fixture
def client(gateway: BackgroundGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0, timeout=20)
