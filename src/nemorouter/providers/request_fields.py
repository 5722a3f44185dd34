"""The canonical request's fields as a translating adapter (Gemini, Claude) reads them.

OpenAI passes odd shapes through to the provider, which refuses them itself; a translating
adapter has to understand each field first. Every field of the wrong shape is a 400
`invalid_request` that names it (`tools[0].function.parameters`, `messages[2].tool_calls`),
raised before any call: a client error, never a 500 and never a provider failure that the
router would retry or fail over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from nemorouter.types.body import max_output_of
from nemorouter.types.errors import GatewayError, invalid_request

log = logging.getLogger(__name__)
T = TypeVar("T")


def field_error(where: str, what: str) -> GatewayError:
    return invalid_request(f"'{where}' {what}", param=where)


def number(body: dict[str, Any], name: str) -> int | float | None:
    """An optional number (temperature, top_p, penalties)."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise field_error(name, "must be a number")
    return value


def integer(body: dict[str, Any], name: str, minimum: int) -> int | None:
    """An optional integer of at least `minimum` (max_tokens, n, seed)."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise field_error(name, f"must be an integer of at least {minimum}")
    return value


def max_tokens(body: dict[str, Any]) -> int | None:
    """`max_completion_tokens`, else `max_tokens` (None: the client named neither); a
    value the provider cannot take is a 400 naming the field."""
    if integer(body, "max_completion_tokens", 1) is None:
        integer(body, "max_tokens", 1)
    return max_output_of(body)


def stop_sequences(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise field_error("stop", "must be a string or a list of strings")
    return stop


def response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """The response_format object (None: not set); its `type` is a string."""
    fmt = body.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or not isinstance(fmt.get("type"), str):
        raise field_error("response_format", "must be an object with a type")
    return fmt


def json_schema_spec(fmt: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(json_schema object, its schema) of a `json_schema` response format."""
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict):
        raise field_error("response_format.json_schema", "must be an object")
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise field_error("response_format.json_schema.schema", "is required (a JSON object)")
    for name in ("name", "description"):
        if spec.get(name) is not None and not isinstance(spec[name], str):
            raise field_error(f"response_format.json_schema.{name}", "must be a string")
    return spec, schema


class FunctionTool:
    """One `{"type": "function", "function": {...}}` entry of `tools`, checked."""

    __slots__ = ("description", "name", "parameters", "where")

    def __init__(self, tool: Any, where: str) -> None:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise field_error(f"{where}.type", "must be 'function' (only function tools)")
        function = tool.get("function")
        if not isinstance(function, dict):
            raise field_error(f"{where}.function", "must be an object")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise field_error(f"{where}.function.name", "must be a non-empty string")
        description = function.get("description")
        if description is not None and not isinstance(description, str):
            raise field_error(f"{where}.function.description", "must be a string")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise field_error(f"{where}.function.parameters", "must be a JSON Schema object")
        self.where = f"{where}.function.parameters"
        self.name = name
        self.description = description
        self.parameters: dict[str, Any] | None = parameters


def function_tools(body: dict[str, Any]) -> list[FunctionTool]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise field_error("tools", "must be a list")
    return [FunctionTool(tool, f"tools[{k}]") for k, tool in enumerate(tools)]


def tool_choice(body: dict[str, Any], modes: frozenset[str]) -> str | tuple[str] | None:
    """A mode (one of `modes`), a 1-tuple holding the forced function's name, or None."""
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in modes:
            raise field_error("tool_choice", f"must be one of {sorted(modes)} or a function")
        return choice
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name:
        raise field_error("tool_choice", "must be a mode or {type: function, function: {name}}")
    return (name,)


class ToolCall:
    """One entry of an assistant message's `tool_calls`: id, function name, parsed arguments."""

    __slots__ = ("arguments", "id", "name")

    def __init__(self, call: Any, where: str) -> None:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise field_error(f"{where}.function.name", "is required (a string)")
        call_id = call.get("id")
        if call_id is not None and not isinstance(call_id, str):
            raise field_error(f"{where}.id", "must be a string")
        raw = function.get("arguments")
        if raw is None or raw == "":
            raw = "{}"
        if not isinstance(raw, str):
            raise field_error(f"{where}.function.arguments", "must be a JSON string")
        try:
            arguments = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise field_error(f"{where}.function.arguments", "must be JSON") from None
        if not isinstance(arguments, dict):
            raise field_error(f"{where}.function.arguments", "must be a JSON object")
        self.id = call_id
        self.name: str = function["name"]
        self.arguments: dict[str, Any] = arguments


def tool_calls(message: dict[str, Any], i: int) -> list[ToolCall]:
    calls = message.get("tool_calls")
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise field_error(f"messages[{i}].tool_calls", "must be a list")
    return [ToolCall(call, f"messages[{i}].tool_calls[{j}]") for j, call in enumerate(calls)]


def part_text(part: dict[str, Any], where: str) -> str:
    text = part.get("text", "")
    if not isinstance(text, str):
        raise field_error(f"{where}.text", "must be a string")
    return text


def tool_result_text(content: Any, i: int) -> str:
    """A tool message's content as text (a string, or text parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise field_error(f"messages[{i}].content", "must be a string or a list of text parts")
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type", "text") != "text":
            raise field_error(f"messages[{i}].content[{j}]", "must be a text part")
        texts.append(part_text(part, f"messages[{i}].content[{j}]"))
    return "".join(texts)


def encoded(who: str, wire: dict[str, Any]) -> bytes:
    """A translated body as JSON, for `who`: what orjson refuses (nesting beyond 254
    levels, integers beyond 64 bits) is the request's fault, a 400."""
    return translated_request(who, lambda: orjson.dumps(wire))


def translated_request(who: str, translate: Callable[[], T]) -> T:
    """`translate()` (the request in `who`'s wire format, encoded): a shape no check above
    caught is still the request's, a 400, never a 500."""
    try:
        return translate()
    except RecursionError:
        raise invalid_request(f"The request nests too deeply to be sent to {who}.") from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        # orjson's JSONEncodeError (a TypeError): nesting beyond 254, integers beyond 64 bits
        log.warning("a request could not be translated for %s (%s)", who, type(exc).__name__)
        raise invalid_request(f"The request cannot be sent to {who}: {exc}.") from None
