"""Odd JSON values in every field of /v1/chat/completions and of the admin API: never a 5xx.

Each example puts generated values (huge and negative integers, floats at the edges, NUL
and long strings, deep nesting, wrong types) into one or more fields of an otherwise valid
request and asserts the gateway answers below 500: a 400 naming the problem, or service.
The admin examples run on SQLite and PostgreSQL (NUL and out-of-range values behave
differently there)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nemorouter.config import parse_config
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider
from tests.services import fresh_postgres_database

from .conftest import MASTER_KEY, gateway_config

AUTH = {"Authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"}
EXAMPLES = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

EDGE_INTEGERS = st.sampled_from(
    [
        0,
        -1,
        1,
        2**31 - 1,
        2**31,
        2**53 + 1,
        2**63 - 1,
        2**63,
        -(2**63) - 1,
        2**64,
        10**30,
        -(10**40),
    ]
)
EDGE_FLOATS = st.sampled_from([0.0, -0.0, 1e-320, 1.5, 1e19, -1e19, 1e300, 2.0**63, 2.0**64])
ODD_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "\x00", "a\x00b", "x" * 5000, "\u202e", "gemini-2.5-flash\x00", "auto"]),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), EDGE_INTEGERS, st.floats(allow_nan=False, allow_infinity=False), EDGE_FLOATS, ODD_TEXT
)  # fmt: skip


def nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


ODD_VALUES = st.one_of(
    SCALARS,
    st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(ODD_TEXT, inner, max_size=4)
        ),
        max_leaves=12,
    ),
    st.integers(50, 1000).map(nested),
)

CHAT_FIELDS = [
    "model", "messages", "stream", "n", "max_tokens", "max_completion_tokens", "seed",
    "temperature", "top_p", "stop", "tools", "tool_choice", "response_format",
    "stream_options", "user", "logprobs", "top_logprobs", "presence_penalty", "logit_bias",
    "tags", "metadata", "nemo_cache", "cache", "fallbacks", "disable_fallbacks",
]  # fmt: skip
MESSAGE_FIELDS = ["role", "content", "name", "tool_calls", "tool_call_id"]
PART_FIELDS = ["type", "text", "image_url", "file"]


def send(gateway: BackgroundGateway, method: str, path: str, body: Any = None) -> httpx.Response:
    content = None if body is None else json.dumps(body)
    return httpx.request(method, f"{gateway.url}{path}", content=content, headers=AUTH, timeout=60)


@pytest.fixture(scope="module")
def chat_gateway(sim_server: SimulatedProvider) -> Iterator[BackgroundGateway]:
    config = parse_config(gateway_config(sim_server, cache={"enabled": True}), env={})
    with BackgroundGateway(config) as gateway:
        yield gateway


@pytest.mark.timeout(600)
@EXAMPLES
@given(fields=st.dictionaries(st.sampled_from(CHAT_FIELDS), ODD_VALUES, min_size=1, max_size=3))
def test_odd_values_in_chat_fields_never_answer_5xx(
    chat_gateway: BackgroundGateway, fields: dict[str, Any]
) -> None:
    body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}
    body.update(fields)
    answer = send(chat_gateway, "POST", "/v1/chat/completions", body)
    assert answer.status_code < 500, (fields, answer.text[:300])


@pytest.mark.timeout(600)
@EXAMPLES
@given(
    message=st.dictionaries(st.sampled_from(MESSAGE_FIELDS), ODD_VALUES, max_size=3),
    part=st.dictionaries(st.sampled_from(PART_FIELDS), ODD_VALUES, max_size=3),
)
def test_odd_values_in_messages_never_answer_5xx(
    chat_gateway: BackgroundGateway, message: dict[str, Any], part: dict[str, Any]
) -> None:
    content = [{"type": "text", "text": "hi", **part}]
    body = {
        "model": "gemini-2.5-flash",
        "messages": [{"role": "user", "content": content, **message}],
    }
    answer = send(chat_gateway, "POST", "/v1/chat/completions", body)
    assert answer.status_code < 500, (message, part, answer.text[:300])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def admin_gateway(
    request: pytest.FixtureRequest, sim_server: SimulatedProvider
) -> Iterator[BackgroundGateway]:
    if request.param == "sqlite":
        with BackgroundGateway(parse_config(gateway_config(sim_server), env={})) as gateway:
            yield gateway
        return
    with fresh_postgres_database() as url:
        config = parse_config(gateway_config(sim_server, database_url=url), env={})
        with BackgroundGateway(config) as gateway:
            yield gateway


KEY_FIELDS = ["name", "team_id", "models", "default_tags", "rpm", "tpm", "budget_usd",
              "budget_period", "expires_at"]  # fmt: skip
TEAM_FIELDS = ["name", "budget_usd", "budget_period", "rpm", "tpm"]
DATES = st.one_of(
    ODD_TEXT,
    st.sampled_from(["9999-12-31", "0001-01-01", "9999-12-31T23:00:00-12:00", "0001-01-01T00:00:00+14:00",
                     "2026-02-30", "2026-01-01T25:00:00Z", "99999-01-01"]),
)  # fmt: skip
DATE_VALUES = st.one_of(
    DATES, st.datetimes().map(lambda d: d.isoformat() + "-12:00"), st.dates().map(str)
)


@pytest.mark.timeout(900)
@EXAMPLES
@given(
    key=st.dictionaries(
        st.sampled_from(KEY_FIELDS), st.one_of(ODD_VALUES, DATE_VALUES), max_size=4
    ),
    team=st.dictionaries(st.sampled_from(TEAM_FIELDS), ODD_VALUES, max_size=3),
)
def test_odd_values_in_admin_bodies_never_answer_5xx(
    admin_gateway: BackgroundGateway, key: dict[str, Any], team: dict[str, Any]
) -> None:
    created = send(admin_gateway, "POST", "/admin/keys", {"name": "k", **key})
    assert created.status_code < 500, (key, created.text[:300])
    existing = send(admin_gateway, "POST", "/admin/keys", {"name": "k"}).json()["id"]
    patched = send(admin_gateway, "PATCH", f"/admin/keys/{existing}", key)
    assert patched.status_code < 500, (key, patched.text[:300])
    answer = send(admin_gateway, "POST", "/admin/teams", {"name": "t", **team})
    assert answer.status_code < 500, (team, answer.text[:300])


QUERY_PATHS = [
    "/admin/spend",
    "/admin/spend/timeline",
    "/admin/events",
    "/admin/jobs",
    "/admin/keys",
]
QUERY_NAMES = ["start", "end", "group_by", "job_id", "model", "limit", "bucket", "kind", "team_id"]


@pytest.mark.timeout(900)
@EXAMPLES
@given(
    path=st.sampled_from(QUERY_PATHS),
    query=st.dictionaries(st.sampled_from(QUERY_NAMES), st.one_of(DATE_VALUES, ODD_TEXT), max_size=4),
    segment=ODD_TEXT,
)  # fmt: skip
def test_odd_admin_queries_never_answer_5xx(
    admin_gateway: BackgroundGateway, path: str, query: dict[str, str], segment: str
) -> None:
    search = "&".join(f"{name}={quote(value, safe='')}" for name, value in query.items())
    answer = send(admin_gateway, "GET", f"{path}?{search}")
    assert answer.status_code < 500, (path, query, answer.text[:300])
    for route in ("/admin/jobs/", "/admin/keys/"):
        answer = send(admin_gateway, "GET", route + quote(segment or "x", safe=""))
        assert answer.status_code < 500, (route, segment, answer.text[:300])
