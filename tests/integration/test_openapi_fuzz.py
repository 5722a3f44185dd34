"""Schemathesis over /openapi.json against a real gateway (simulated provider behind it):
no input the document allows, or breaks, gets a 5xx, and every answer matches what the
document says of it (status, content type, headers, body schema)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from nemorouter.config import parse_config
from nemorouter.gateway.openapi import openapi_document
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider
from tests.integration.conftest import MASTER_KEY, gateway_config

# Examples per operation and generation mode: ~35 operations stay well under a minute on
# two cores. NEMOROUTER_FUZZ_EXAMPLES raises it for a long run by hand.
EXAMPLES = int(os.environ.get("NEMOROUTER_FUZZ_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
ROUTABLE_MODELS = ("gemini-2.5-flash", "document-vision", "auto")
OPERATIONS = [
    (method.upper(), path)
    for path, item in openapi_document()["paths"].items()
    for method in item
    if method in {"get", "post", "patch", "delete"}
]


@pytest.fixture(scope="module")
def fuzz_gateway(sim_server: SimulatedProvider) -> Iterator[BackgroundGateway]:
    config = parse_config(gateway_config(sim_server, request_timeout_s=5), env={})
    with BackgroundGateway(config) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def schema(fuzz_gateway: BackgroundGateway) -> schemathesis.BaseSchema:
    loaded = schemathesis.openapi.from_url(f"{fuzz_gateway.url}/openapi.json")
    loaded.validate()
    return loaded


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_5xx_and_answers_match_the_document(
    schema: schemathesis.BaseSchema, fuzz_gateway: BackgroundGateway, method: str, path: str
) -> None:
    operation = schema[path][method]
    strategies = [
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ]
    if path in CHAT_PATHS:  # also bodies that reach the provider, not only unknown models
        strategies.append(
            st.tuples(strategies[0], st.sampled_from(ROUTABLE_MODELS)).map(_with_model)
        )
    session = requests.Session()
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}

    @settings(
        max_examples=EXAMPLES * len(strategies),
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def check(case: schemathesis.Case) -> None:
        case.headers = {**(case.headers or {}), **headers}  # the master key, everywhere
        case.call_and_validate(
            base_url=fuzz_gateway.url, session=session, checks=CHECKS, timeout=30
        )

    check()


def _with_model(pair: tuple[schemathesis.Case, str]) -> schemathesis.Case:
    case, model = pair
    if isinstance(case.body, dict):
        case.body = {**case.body, "model": model}
    return case


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/admin/keys", "GET, HEAD, POST"),  # two routes on one path: both counted
        ("/admin/keys/key_1", "DELETE, GET, HEAD, PATCH"),
        ("/v1/chat/completions", "POST"),
        ("/openapi.json", "GET, HEAD"),
    ],
)
def test_a_method_the_path_does_not_take_is_a_405_with_allow(
    fuzz_gateway: BackgroundGateway, path: str, allowed: str
) -> None:
    response = requests.request("TRACE", f"{fuzz_gateway.url}{path}", timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_the_document_is_served_without_a_key(fuzz_gateway: BackgroundGateway) -> None:
    response = requests.get(f"{fuzz_gateway.url}/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == openapi_document()
