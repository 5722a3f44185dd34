"""The canonical (OpenAI chat) request → a Gemini `generateContent` body (Vertex and Gemini API).

Pure translation: remote images are fetched beforehand and passed in `fetched`. What Gemini
cannot be asked for, and any field of the wrong shape (`request_fields`), is a 400 naming the
field, before any call is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nemorouter.providers.gemini_schema import to_gemini_schema
from nemorouter.providers.gemini_signatures import DUMMY, signature_of
from nemorouter.providers.media import (
    InlineMedia,
    Media,
    bad_part,
    file_part,
    image_url,
    resolve_image,
)
from nemorouter.providers.request_fields import (
    FunctionTool,
    field_error,
    function_tools,
    integer,
    json_schema_spec,
    max_tokens,
    number,
    part_text,
    response_format,
    stop_sequences,
    tool_calls,
    tool_choice,
    tool_result_text,
)
from nemorouter.types.errors import invalid_request

_ROLES = {"user": "user", "assistant": "model"}
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def gemini_request(body: dict[str, Any], fetched: Mapping[str, InlineMedia]) -> dict[str, Any]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_request("messages must be a non-empty list", param="messages")
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    tool_names: dict[str, str] = {}  # tool_call id -> function name, for tool results
    answers: list[dict[str, Any]] | None = None  # the functionResponse parts of this tool turn
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_part("every message must be an object")
        role = message.get("role")
        if role == "tool":
            # One user content answers the whole function call turn: Gemini refuses a turn
            # whose function response parts do not match its function call parts in number
            # (400, gemini-cli#4217); python-genai's own automatic function calling sends
            # `Content(role='user', parts=func_response_parts)` (google/genai/models.py).
            if answers is None:
                answers = []
                contents.append({"role": "user", "parts": answers})
            answers.append(_tool_result(message, tool_names, i))
            continue
        answers = None
        if role in ("system", "developer"):
            system += _text_parts(message.get("content"), role, i)
        elif role in _ROLES:
            parts = _parts(message.get("content"), fetched, i)
            parts += _call_parts(message, tool_names, i)
            if not parts:
                raise bad_part(f"a {role} message has no content")
            contents.append({"role": _ROLES[role], "parts": parts})
        else:
            raise bad_part(f"unsupported message role {role!r}")
    request: dict[str, Any] = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    config = generation_config(body)
    if config:
        request["generationConfig"] = config
    tools = function_tools(body)
    choice = tool_choice(body, frozenset(_TOOL_MODES))
    if tools:
        request["tools"] = [{"functionDeclarations": [_declaration(t) for t in tools]}]
        if isinstance(choice, str):
            request["toolConfig"] = {"functionCallingConfig": {"mode": _TOOL_MODES[choice]}}
        elif choice is not None:
            forced = {"mode": "ANY", "allowedFunctionNames": [choice[0]]}
            request["toolConfig"] = {"functionCallingConfig": forced}
    return request


def generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for source, target in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        value = number(body, source)
        if value is not None:
            config[target] = value
    seed = integer(body, "seed", -(1 << 63))
    if seed is not None:
        config["seed"] = seed
    limit = max_tokens(body)
    if limit is not None:
        config["maxOutputTokens"] = limit
    n = integer(body, "n", 1)
    if n is not None and n != 1:
        config["candidateCount"] = n
    stop = stop_sequences(body)
    if stop:
        config["stopSequences"] = stop
    fmt = response_format(body)
    kind = fmt["type"] if fmt is not None else None
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
    elif kind == "json_schema":
        assert fmt is not None
        _, schema = json_schema_spec(fmt)
        config["responseMimeType"] = "application/json"
        config["responseSchema"] = to_gemini_schema(schema)
    elif kind not in (None, "text"):
        raise invalid_request(f"unsupported response_format type {kind!r}", param="response_format")
    return config


# Empty texts are left out: Vertex refuses an empty text part ("Unable to submit request
# because it has an empty text parameter", Portkey-AI/gateway#462), and OpenAI clients send
# `content: ""` beside tool calls.


def _text_parts(content: Any, role: str, i: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise field_error(f"messages[{i}].content[{j}]", f"must be text ({role} message)")
            text = part_text(part, f"messages[{i}].content[{j}]")
            if text:
                texts.append({"text": text})
        return texts
    raise field_error(f"messages[{i}].content", f"must be text ({role} message)")


def _parts(content: Any, fetched: Mapping[str, InlineMedia], i: int) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise field_error(f"messages[{i}].content", "must be a string or a list of parts")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part_text(part, f"messages[{i}].content[{j}]")
            if text:
                parts.append({"text": text})
        elif kind == "image_url":
            parts.append(media_part(resolve_image(image_url(part), fetched)))
        elif kind == "file":
            parts.append(media_part(file_part(part)))
        else:
            raise bad_part(f"content part type {kind!r} cannot be sent to Gemini")
    return parts


def media_part(media: Media) -> dict[str, Any]:
    if isinstance(media, InlineMedia):
        return {"inlineData": {"mimeType": media.mime, "data": media.data}}
    return {"fileData": {"mimeType": media.mime, "fileUri": media.uri}}


def _call_parts(message: dict[str, Any], names: dict[str, str], i: int) -> list[dict[str, Any]]:
    """An assistant message's tool calls as functionCall parts, each with the thought signature
    its call carries back (`gemini_signatures`). Gemini 3 refuses a call turn whose first call
    has none: it gets Google's documented stand-in."""
    parts = []
    raw = message.get("tool_calls")
    for j, call in enumerate(tool_calls(message, i)):
        if call.id is not None:
            names[call.id] = call.name
        part: dict[str, Any] = {"functionCall": {"name": call.name, "args": call.arguments}}
        signature = signature_of(raw[j]) or (DUMMY if j == 0 else None)
        if signature is not None:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _tool_result(message: dict[str, Any], names: dict[str, str], i: int) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        raise field_error(
            f"messages[{i}].tool_call_id", "must answer a tool call of an earlier assistant message"
        )
    content = tool_result_text(message.get("content"), i)
    return {"functionResponse": {"name": name, "response": {"content": content}}}


def _declaration(tool: FunctionTool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    params = tool.parameters
    if params is not None and params.get("properties"):
        out["parameters"] = to_gemini_schema(params, tool.where)
    return out
