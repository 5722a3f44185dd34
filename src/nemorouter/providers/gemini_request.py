"""The canonical (OpenAI chat) request → a Gemini `generateContent` body (Vertex and Gemini API).

Pure translation: remote images are fetched beforehand and passed in `fetched`. What Gemini
cannot be asked for is a 400 naming the field, before any call is made.
"""

from __future__ import annotations

from typing import Any

import orjson

from nemorouter.core.errors import invalid_request
from nemorouter.providers.gemini_schema import to_gemini_schema
from nemorouter.providers.media import (
    InlineMedia,
    Media,
    bad_part,
    file_part,
    image_url,
    resolve_image,
)

_ROLES = {"user": "user", "assistant": "model"}
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def gemini_request(body: dict[str, Any], fetched: dict[str, InlineMedia]) -> dict[str, Any]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_request("messages must be a non-empty list", param="messages")
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    tool_names: dict[str, str] = {}  # tool_call id -> function name, for tool results
    for message in messages:
        if not isinstance(message, dict):
            raise bad_part("every message must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system += _text_parts(message.get("content"), role)
        elif role == "tool":
            contents.append({"role": "user", "parts": [_tool_result(message, tool_names)]})
        elif role in _ROLES:
            parts = _parts(message.get("content"), fetched)
            for call in message.get("tool_calls") or ():
                parts.append(_function_call(call, tool_names))
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
    tools = body.get("tools")
    if tools:
        request["tools"] = [{"functionDeclarations": [_declaration(t) for t in tools]}]
        choice = _tool_config(body.get("tool_choice"))
        if choice is not None:
            request["toolConfig"] = {"functionCallingConfig": choice}
    return request


def generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for source, target in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if body.get(source) is not None:
            config[target] = body[source]
    limit = body.get("max_completion_tokens")
    if limit is None:
        limit = body.get("max_tokens")
    if limit is not None:
        config["maxOutputTokens"] = limit
    n = body.get("n")
    if n is not None and n != 1:
        config["candidateCount"] = n
    stop = body.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = stop
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
    elif kind == "json_schema":
        spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if schema is None:
            raise invalid_request(
                "response_format.json_schema.schema is required", param="response_format"
            )
        config["responseMimeType"] = "application/json"
        config["responseSchema"] = to_gemini_schema(schema)
    elif kind not in (None, "text"):
        raise invalid_request(f"unsupported response_format type {kind!r}", param="response_format")
    return config


def _text_parts(content: Any, role: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise bad_part(f"{role} messages may only hold text")
            texts.append({"text": part.get("text", "")})
        return texts
    raise bad_part(f"a {role} message needs text content")


def _parts(content: Any, fetched: dict[str, InlineMedia]) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise bad_part("message content must be a string or a list of parts")
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"text": part.get("text", "")})
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


def _function_call(call: Any, names: dict[str, str]) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise bad_part("tool_calls entries need function.name")
    try:
        args = orjson.loads(function.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        raise bad_part("tool_calls function.arguments must be JSON") from None
    if isinstance(call.get("id"), str):
        names[call["id"]] = function["name"]
    return {"functionCall": {"name": function["name"], "args": args}}


def _tool_result(message: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    name = names.get(message.get("tool_call_id") or "")
    if name is None:
        raise bad_part("a tool message must answer a tool_call_id of an earlier assistant message")
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return {"functionResponse": {"name": name, "response": {"content": content}}}


def _declaration(tool: Any) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if tool.get("type") != "function" or not isinstance(function, dict):
        raise invalid_request("only function tools can be sent to Gemini", param="tools")
    out: dict[str, Any] = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    params = function.get("parameters")
    if isinstance(params, dict) and params.get("properties"):
        out["parameters"] = to_gemini_schema(params)
    return out


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_MODES:
        return {"mode": _TOOL_MODES[choice]}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"mode": "ANY", "allowedFunctionNames": [function["name"]]}
    raise invalid_request("unsupported tool_choice", param="tool_choice")
