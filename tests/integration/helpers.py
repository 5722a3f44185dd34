"""Shared by the integration tests: reading an SDK stream back, and for the gateway in front of
the native-format simulators (Gemini, Claude) the fake OAuth endpoint with a service-account key,
the gateway settings, a Vertex provider entry and the SDK client.

A test module takes the fixtures `oauth`, `key_file` and `client` by binding `oauth_fixture`,
`key_file_fixture` and `client_fixture` to module names (named apart from the fixtures, so that
test parameters shadow nothing); `client` takes the module's own `gateway` and `sim` fixtures.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import openai
import pytest
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionChunk

from nemorouter.serving import BackgroundGateway
from nemorouter.testing import FakeOAuthServer, Fault, SimulatedProvider

from .conftest import MASTER_KEY, fresh_sqlite_url

USER = [{"role": "user", "content": "Classify this page."}]
SimT = TypeVar("SimT", bound=SimulatedProvider)


@dataclass
class Streamed:
    """What a chat stream delivered: its text, last finish reason, usage and every chunk."""

    text: str = ""
    finish: str | None = None
    usage: CompletionUsage | None = None
    chunks: list[ChatCompletionChunk] = field(default_factory=list)


def read_stream(stream: Iterable[ChatCompletionChunk]) -> Streamed:
    streamed = Streamed()
    pieces = []
    for chunk in stream:
        streamed.chunks.append(chunk)
        if chunk.usage is not None:
            streamed.usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            streamed.finish = choice.finish_reason or streamed.finish
    streamed.text = "".join(pieces)
    return streamed


@pytest.fixture(scope="module", name="oauth")
def oauth_fixture() -> Iterator[FakeOAuthServer]:
    with FakeOAuthServer() as server:
        yield server


@pytest.fixture(scope="module", name="key_file")
def key_file_fixture(oauth: FakeOAuthServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return oauth.create_account().write(tmp_path_factory.mktemp("sa") / "key.json")


@pytest.fixture(name="client")
def client_fixture(gateway: BackgroundGateway, sim: SimulatedProvider) -> openai.OpenAI:
    # `sim` is asked for so that each test starts from a reset simulator
    return openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0, timeout=20)


def native_settings(**settings: Any) -> dict[str, Any]:
    return {
        "master_key": MASTER_KEY,
        "database_url": fresh_sqlite_url(),
        # Tests inject failures one after another: keep circuits closed.
        "breaker": {"consecutive_failures": 50},
        "request_timeout_s": 2,
        "cache": {"enabled": False},  # identical requests must reach the simulated provider
        **settings,
    }


def vertex_provider(
    kind: str, location: str, sim: SimulatedProvider, key_file: Path
) -> dict[str, Any]:
    """A `vertex` or `anthropic-vertex` provider entry pointed at `sim`."""
    return {
        "type": kind,
        "project": "sim-project",
        "location": location,
        "base_url": sim.base_url,
        "credentials": str(key_file),
    }


def assert_stream_breaks(
    client: openai.OpenAI, sim: SimulatedProvider, model: str, after_chunks: int
) -> None:
    """A stream the provider cuts after `after_chunks` raises in the SDK, not ends quietly."""
    sim.inject(Fault.cut_stream(after_chunks=after_chunks))
    stream = client.chat.completions.create(model=model, messages=USER, stream=True)
    with pytest.raises(openai.APIError, match="stream"):
        for _ in stream:
            pass


def assert_one_refresh(client: openai.OpenAI, oauth: FakeOAuthServer, model: str) -> None:
    """After every token is revoked, the next call fetches exactly one new token."""
    client.chat.completions.create(model=model, messages=USER)
    before = oauth.request_count
    oauth.revoke_all()
    completion = client.chat.completions.create(model=model, messages=USER)
    assert completion.choices[0].finish_reason == "stop"
    assert oauth.request_count == before + 1


def persistent_503(
    client: openai.OpenAI, sim: SimulatedProvider, fault: Fault, model: str
) -> openai.InternalServerError:
    """The gateway's 503 once `fault` has failed the call and its one retry."""
    sim.inject(fault, times=2)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=model, messages=USER)
    assert caught.value.status_code == 503
    return caught.value


def reset(sim: SimT, **settings: Any) -> SimT:
    """`sim` cleared, with `settings` put back, so that tests stay independent."""
    sim.clear()
    for name, value in settings.items():
        setattr(sim, name, value)
    return sim
