"""The simulators' model resources, read by the official SDKs: each SDK's own `retrieve` /
`get` parses what the simulator answers, and its error classes fire on unknown models and
wrong credentials."""

from __future__ import annotations

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai.types import HttpOptions
from google.oauth2.credentials import Credentials

from nemorouter.providers.google_auth import ServiceAccountTokens
from nemorouter.testing import (
    FakeOAuthServer,
    SimulatedAnthropic,
    SimulatedGemini,
    SimulatedProvider,
)


def test_openai_sdk_retrieves_a_model_and_gets_404_and_401() -> None:
    with SimulatedProvider(api_key="sk-sim") as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key="sk-sim", max_retries=0)
        model = client.models.retrieve("gpt-4.1-mini")
        assert (model.id, model.object) == ("gpt-4.1-mini", "model")
        sim.known_models = frozenset({"gpt-4.1-mini"})
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("gpt-unknown")
        assert [m.id for m in client.models.list()] == ["gpt-4.1-mini"]
        wrong = openai.OpenAI(base_url=sim.base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.models.retrieve("gpt-4.1-mini")
        assert sim.request_count == 0  # lookups are no chat requests


def test_anthropic_sdk_retrieves_a_model_and_gets_404_and_401() -> None:
    with SimulatedAnthropic(api_key="sk-ant-sim") as sim:
        client = anthropic.Anthropic(base_url=sim.base_url, api_key="sk-ant-sim", max_retries=0)
        info = client.models.retrieve("claude-sonnet-4-5")
        assert (info.type, info.id, info.lifecycle) == ("model", "claude-sonnet-4-5", "active")
        assert info.created_at.year == 2025
        sim.known_models = frozenset({"claude-sonnet-4-5"})
        with pytest.raises(anthropic.NotFoundError):
            client.models.retrieve("claude-unknown")
        wrong = anthropic.Anthropic(base_url=sim.base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError):
            wrong.models.retrieve("claude-sonnet-4-5")


def test_genai_sdk_gets_a_gemini_api_model() -> None:
    with SimulatedGemini(api_key="gm-key") as sim:
        options = HttpOptions(base_url=sim.base_url, api_version="v1beta")
        client = genai.Client(api_key="gm-key", http_options=options)
        model = client.models.get(model="gemini-2.5-pro")
        assert model.name == "models/gemini-2.5-pro"
        assert (model.input_token_limit, model.output_token_limit) == (1_048_576, 65_536)
        assert model.supported_actions is not None and "generateContent" in model.supported_actions
        sim.known_models = frozenset({"gemini-2.5-pro"})
        with pytest.raises(genai_errors.ClientError) as missing:
            client.models.get(model="gemini-0-unknown")
        assert missing.value.code == 404
        wrong = genai.Client(api_key="gm-wrong", http_options=options)
        with pytest.raises(genai_errors.ClientError) as refused:
            wrong.models.get(model="gemini-2.5-pro")
        assert refused.value.code == 400 and "API key not valid" in str(refused.value)


async def test_genai_sdk_gets_a_vertex_publisher_model_with_a_bearer_token() -> None:
    with FakeOAuthServer() as oauth, SimulatedGemini(oauth=oauth) as sim:
        # The token comes from the gateway's own service-account flow (the fake endpoint
        # checks the assertion's audience against its own URL, as the gateway signs it).
        tokens = ServiceAccountTokens(oauth.create_account().info)
        token = await tokens.token()
        await tokens.close()
        client = genai.Client(
            vertexai=True,
            project="sim-project",
            location="us-central1",
            credentials=Credentials(token),
            http_options=HttpOptions(base_url=sim.base_url),
        )
        # The SDK asks for the publisher model without a project or location in the path.
        model = await client.aio.models.get(model="gemini-2.5-flash")
        assert model.name == "publishers/google/models/gemini-2.5-flash"
        oauth.revoke_all()
        with pytest.raises(genai_errors.ClientError) as refused:
            await client.aio.models.get(model="gemini-2.5-flash")
        assert refused.value.code == 401
