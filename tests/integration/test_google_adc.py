"""A gateway whose Google providers use Application Default Credentials, driven by the openai
SDK: a `vertex` provider with neither credentials nor project gets both from a local metadata
server (tests/google_fakes.py), and the simulated Vertex accepts only the tokens that server
issued; an `openai-compatible` provider with `auth: google` (Vertex AI's OpenAI endpoint)
sends a workload-identity-federation token, refreshed after a 401."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest

from nemorouter.serving import BackgroundGateway
from nemorouter.testing import Fault, SimulatedGemini, SimulatedProvider
from tests.google_fakes import SUBJECT_TOKEN, FakeGoogle, running_fake, use_metadata_server

from .conftest import MASTER_KEY, GatewayFactory
from .helpers import USER, native_settings

MAAS_MODEL = "llama-4-maverick-17b-128e-instruct-maas"


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeGoogle]:
    with running_fake() as fake:
        yield fake


@pytest.fixture
def metadata(
    fake_server: FakeGoogle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> FakeGoogle:
    fake_server.reset()
    use_metadata_server(monkeypatch, fake_server, tmp_path)
    return fake_server


@pytest.fixture(scope="module")
def vertex_sim(fake_server: FakeGoogle) -> Iterator[SimulatedGemini]:
    # the simulated Vertex accepts exactly the tokens the local Google endpoints issued
    with SimulatedGemini(oauth=fake_server) as sim:  # type: ignore[arg-type]
        yield sim


@pytest.fixture(scope="module")
def openai_sim() -> Iterator[SimulatedProvider]:
    with SimulatedProvider() as sim:
        yield sim


def client_for(gateway: BackgroundGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0, timeout=20)


def vertex_config(sim: SimulatedGemini, **settings: Any) -> dict[str, Any]:
    return {
        "settings": native_settings(**settings),
        # neither credentials nor project: both come from google.auth.default()
        "providers": {
            "vertex": {"type": "vertex", "location": "us-central1", "base_url": sim.base_url}
        },
        "deployments": [{"id": "flash", "model": "gemini-2.5-flash", "provider": "vertex"}],
    }


def bearer(request: Any) -> str:
    value = request.headers["authorization"]
    assert value.startswith("Bearer ")
    return str(value[len("Bearer ") :])


def test_vertex_with_adc_from_the_metadata_server(
    metadata: FakeGoogle, vertex_sim: SimulatedGemini, start_gateway: GatewayFactory
) -> None:
    vertex_sim.clear()
    client = client_for(start_gateway(vertex_config(vertex_sim)))
    completion = client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    assert completion.choices[0].finish_reason == "stop"
    (request,) = vertex_sim.requests
    assert "/projects/meta-project/locations/us-central1/publishers/google/models/" in (
        request.path
    )  # the project the metadata server named
    token = bearer(request)
    assert token in metadata.issued() and token.startswith("ya29.metadata-")
    assert metadata.counts == {"metadata": 1}
    client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    assert bearer(vertex_sim.requests[-1]) == token and metadata.counts == {"metadata": 1}

    # Vertex stops accepting the token (401): one refresh from the metadata server, one retry
    metadata.revoke_all()
    completion = client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    assert completion.choices[0].finish_reason == "stop"
    assert metadata.counts == {"metadata": 2}
    assert bearer(vertex_sim.requests[-1]) == metadata.issued()[-1] != token


def test_concurrent_first_requests_share_one_token_fetch(
    metadata: FakeGoogle, vertex_sim: SimulatedGemini, start_gateway: GatewayFactory
) -> None:
    vertex_sim.clear()
    metadata.latency_s = 0.3  # every request arrives while the first fetch is in flight
    client = client_for(start_gateway(vertex_config(vertex_sim)))
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(
                lambda _: client.chat.completions.create(model="gemini-2.5-flash", messages=USER),
                range(16),
            )
        )
    assert all(a.choices[0].finish_reason == "stop" for a in answers)
    assert metadata.counts == {"metadata": 1}
    assert len({bearer(r) for r in vertex_sim.requests}) == 1


def test_a_failing_metadata_server_is_an_auth_failure_of_the_deployment(
    metadata: FakeGoogle, vertex_sim: SimulatedGemini, start_gateway: GatewayFactory
) -> None:
    vertex_sim.clear()
    client = client_for(start_gateway(vertex_config(vertex_sim)))
    metadata.inject(403, "no service account for this workload", times=2)  # call and retry
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    assert caught.value.status_code == 503
    message = str(caught.value.body)
    assert "auth" in message and "metadata server" in message
    assert vertex_sim.requests == []  # nothing reached the provider
    completion = client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    assert completion.choices[0].finish_reason == "stop"  # not cached: the next call works


def test_openai_compatible_with_google_auth(
    fake_server: FakeGoogle,
    openai_sim: SimulatedProvider,
    start_gateway: GatewayFactory,
    tmp_path: Path,
) -> None:
    fake_server.reset()
    openai_sim.clear()
    subject = tmp_path / "subject-token.jwt"
    subject.write_text(SUBJECT_TOKEN)
    wif = {
        "type": "external_account",
        "audience": "//iam.googleapis.com/locations/global/workloadIdentityPools/p/providers/q",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": f"{fake_server.origin}/sts",
        "credential_source": {"file": str(subject)},
    }
    (tmp_path / "wif.json").write_text(json.dumps(wif))
    raw = {
        "settings": native_settings(),
        "providers": {
            "vertex-openai": {
                "type": "openai-compatible",
                "base_url": openai_sim.base_url,
                "auth": "google",
                "credentials": str(tmp_path / "wif.json"),
            }
        },
        "deployments": [
            {
                "id": "maverick",
                "model": MAAS_MODEL,
                "provider": "vertex-openai",
                "provider_model": f"meta/{MAAS_MODEL}",
            }
        ],
    }
    client = client_for(start_gateway(raw))
    completion = client.chat.completions.create(model=MAAS_MODEL, messages=USER)
    assert completion.choices[0].finish_reason == "stop"
    first = bearer(openai_sim.requests[-1])
    assert fake_server.valid(first) and first.startswith("ya29.sts-")
    assert openai_sim.requests[-1].json()["model"] == f"meta/{MAAS_MODEL}"

    # a 401 from the endpoint: one new token from the STS, the call retried with it
    openai_sim.inject(Fault.status(401))
    stream = client.chat.completions.create(model=MAAS_MODEL, messages=USER, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert fake_server.counts == {"sts": 2}
    second = bearer(openai_sim.requests[-1])
    assert second != first and fake_server.valid(second)


def test_the_metadata_host_comes_from_the_environment(
    fake_server: FakeGoogle, tmp_path: Path
) -> None:
    """In a fresh process, GCE_METADATA_HOST / GCE_METADATA_IP alone (no module patching)
    lead google.auth.default() to the local metadata server."""
    fake_server.reset()
    script = (
        "import asyncio\n"
        "from nemorouter.providers.google_adc import google_tokens\n"
        "tokens, project = google_tokens(None, 'providers.v.credentials')\n"
        "print(project, asyncio.run(tokens.token()))\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT")
    }
    env.update(
        GCE_METADATA_HOST=fake_server.host,
        GCE_METADATA_IP=fake_server.host,
        CLOUDSDK_CONFIG=str(tmp_path),  # an empty gcloud config: no user login
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    project, token = done.stdout.split()
    assert project == "meta-project" and fake_server.valid(token)
