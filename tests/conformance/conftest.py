"""Fixtures of the conformance tests: one recording server per module, and for the Vertex
adapters a fake OAuth endpoint with a service-account key (the gateway's real credential flow)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nemorouter.testing import FakeOAuthServer

from .recorder import Recorder, recording_server


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    with recording_server() as server:
        yield server


@pytest.fixture(scope="module")
def oauth() -> Iterator[FakeOAuthServer]:
    with FakeOAuthServer() as server:
        yield server


@pytest.fixture(scope="module")
def key_file(oauth: FakeOAuthServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return oauth.create_account().write(tmp_path_factory.mktemp("sa") / "key.json")
