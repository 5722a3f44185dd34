"""Request fields of the wrong shape for the translating adapters (Gemini, Claude) are a 400
`invalid_request` naming the field, never an exception that would be a 500; a fuzz over odd
shapes of every field they translate finds nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nemorouter.providers.anthropic_request import anthropic_request
from nemorouter.providers.gemini_request import gemini_request
from nemorouter.providers.request_fields import translated_request
from nemorouter.types.errors import GatewayError
from nemorouter.types.request import parse_chat_request

USER = {"role": "user", "content": "hi"}
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}}
TRANSLATORS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "gemini": lambda body: orjson.dumps(gemini_request(body, {})),
    "claude": lambda body: orjson.dumps(anthropic_request(body, {})[0]),
}


def function(**fields: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": "f", **fields}}


def deep(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        node = {"type": "array", "items": node}
    return {"type": "object", "properties": {"a": node}}


@pytest.mark.parametrize("adapter", list(TRANSLATORS))
@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": {"type": "function"}}, "tools"),
        ({"tools": [1]}, "tools[0].type"),
        ({"tools": [function(), {"type": "retrieval"}]}, "tools[1].type"),
        ({"tools": [{"type": "function", "function": "f"}]}, "tools[0].function"),
        ({"tools": [function(name=None)]}, "tools[0].function.name"),
        ({"tools": [function(parameters="object")]}, "tools[0].function.parameters"),
        ({"tools": [function(parameters=[SCHEMA])]}, "tools[0].function.parameters"),
        ({"tools": [function(description=["x"])]}, "tools[0].function.description"),
        ({"tools": [function()], "tool_choice": 5}, "tool_choice"),
        ({"tools": [function()], "tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": [function()], "tool_choice": {"type": "function", "function": 1}}, "tool_choice"),
        ({"stop": 5}, "stop"),
        ({"stop": ["a", 1]}, "stop"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": [1]}, "top_p"),
        ({"max_tokens": "many"}, "max_tokens"),
        ({"max_completion_tokens": -3}, "max_completion_tokens"),
        ({"response_format": "json"}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": []}}, "response_format.json_schema"),
        ({"response_format": {"type": "json_schema", "json_schema": {"schema": 1}}}, "response_format.json_schema.schema"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}, "messages[0].content[0].text"),
        ({"messages": [{"role": "system", "content": 7}, USER]}, "messages[0].content"),
        ({"messages": [{"role": "assistant", "content": "x", "tool_calls": 827}]}, "messages[0].tool_calls"),
        ({"messages": [USER, {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": 3}}]}]}, "messages[1].tool_calls[0].function.arguments"),
        ({"messages": [USER, {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}]}, "messages[1].tool_calls[0].function.arguments"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"function": {}}]}]}, "messages[0].tool_calls[0].function.name"),
        ({"messages": [USER, {"role": "tool", "tool_call_id": 9, "content": "x"}]}, "messages[1].tool_call_id"),
    ],
)  # fmt: skip
def test_a_field_of_the_wrong_shape_is_a_400_naming_it(
    adapter: str, fields: dict[str, Any], param: str
) -> None:
    body = {"model": "m", "messages": [USER], **fields}
    with pytest.raises(GatewayError) as caught:
        TRANSLATORS[adapter](body)
    assert (caught.value.status, caught.value.code) == (400, "invalid_request")
    assert caught.value.param == param
    assert param in caught.value.message


def test_a_tool_schema_gemini_cannot_express_names_the_tool() -> None:
    odd = {"type": "object", "properties": {"a": {"type": {}}}}
    for parameters in (odd, deep(80)):
        body = {
            "model": "m",
            "messages": [USER],
            "tools": [function(), function(parameters=parameters)],
        }
        with pytest.raises(GatewayError) as caught:
            gemini_request(body, {})
        assert caught.value.param == "tools[1].function.parameters"


def test_what_no_check_catches_is_still_a_400() -> None:
    body = {"model": "m", "messages": [USER], "tools": [function(parameters=deep(300))]}
    with pytest.raises(GatewayError) as caught:  # orjson cannot encode 300 levels
        translated_request("Claude", lambda: TRANSLATORS["claude"](body))
    assert caught.value.status == 400


# --- fuzz: every translated field, odd shapes ---------------------------------------------------

_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False),
    st.text(max_size=4),
)  # fmt: skip
_keys = st.sampled_from(
    ["type", "function", "name", "parameters", "properties", "text", "image_url", "url", "file",
     "file_data", "content", "id", "arguments", "json_schema", "schema", "items", "enum"]
)  # fmt: skip
_any = st.recursive(
    _leaf, lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(_keys, c, max_size=4)),
    max_leaves=12,
)  # fmt: skip
_tool = st.one_of(
    _any,
    st.fixed_dictionaries(
        {"type": st.just("function")},
        optional={"function": _any | st.fixed_dictionaries(
            {"name": st.just("f") | _any},
            optional={"description": _any, "parameters": _any | st.just(SCHEMA)},
        )},
    ),
)  # fmt: skip
_part = st.one_of(
    _any,
    st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image_url", "file", "input_audio"])},
        optional={"text": _any, "image_url": _any | st.fixed_dictionaries({"url": st.sampled_from(
            ["data:image/png;base64,AAAA", "gs://b/x.png", "http://x/y.png", "data:,"]) | _any}),
            "file": _any | st.fixed_dictionaries({"file_data": st.sampled_from(
                ["data:application/pdf;base64,AA", "AAAA", ""]) | _any})},
    ),
)  # fmt: skip
_call = st.one_of(
    _any,
    st.fixed_dictionaries({"id": st.just("c1") | _any, "function": _any | st.fixed_dictionaries(
        {"name": st.just("f") | _any, "arguments": st.sampled_from(["{}", "[1]", "x"]) | _any})}),
)  # fmt: skip
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool"])},
    optional={"content": _any | st.lists(_part, max_size=3), "tool_calls": _any | st.lists(_call, max_size=2),
              "tool_call_id": st.just("c1") | _any},
)  # fmt: skip
_body = st.fixed_dictionaries(
    {"model": st.just("m"), "messages": st.lists(_message, min_size=1, max_size=4)},
    optional={
        "tools": _any | st.lists(_tool, max_size=3),
        "tool_choice": _any | st.sampled_from(["auto", "none", "required"]),
        "response_format": _any | st.fixed_dictionaries(
            {"type": st.sampled_from(["json_schema", "json_object", "text"])},
            optional={"json_schema": _any | st.fixed_dictionaries({"schema": _any | st.just(SCHEMA)})},
        ),
        "stop": _any, "n": _any, "max_tokens": _any, "temperature": _any, "top_p": _any,
        "seed": _any, "presence_penalty": _any, "stream": st.booleans(),
    },
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(_body)
def test_fuzzed_requests_translate_or_are_a_400(body: dict[str, Any]) -> None:
    try:
        request = parse_chat_request(orjson.dumps(body))
    except GatewayError:
        return  # refused at the edge
    for translate in TRANSLATORS.values():
        try:
            translate(request.body)
        except GatewayError as error:
            assert error.status == 400
