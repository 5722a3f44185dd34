"""The canonical (OpenAI chat) request → an Anthropic Messages API body.

Claude takes images only as base64 blocks (on Vertex as well), so http(s) images are fetched
beforehand (`fetched`) and gs:// references are refused. A `json_schema` response format has
no direct equivalent on every Claude endpoint, so it becomes one forced tool whose input is the
answer (the adapter hands that input back as the message content).
"""

from __future__ import annotations

from typing import Any

import orjson

from nemorouter.core.errors import invalid_request
from nemorouter.providers.media import (
    InlineMedia,
    StoredFile,
    bad_part,
    file_part,
    image_url,
    resolve_image,
)

DEFAULT_MAX_TOKENS = 4096  # Messages requires max_tokens; the client named none
VERTEX_VERSION = "vertex-2023-10-16"
STRUCTURED_TOOL = "structured_output"  # the forced tool's name when the schema has none
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_TOOL_CHOICE = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}


def anthropic_request(
    body: dict[str, Any], fetched: dict[str, InlineMedia], max_tokens: int | None = None
) -> tuple[dict[str, Any], str | None]:
    """(the Messages body without `model`, the forced structured-output tool's name or None)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_request("messages must be a non-empty list", param="messages")
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, dict):
            raise bad_part("every message must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system += _texts(message.get("content"), role)
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id"),
                "content": _tool_text(message.get("content")),
            }
            if turns and turns[-1]["role"] == "user" and _is_results(turns[-1]["content"]):
                turns[-1]["content"].append(result)  # parallel calls answer in one turn
            else:
                turns.append({"role": "user", "content": [result]})
        elif role in ("user", "assistant"):
            content = _content(message.get("content"), fetched)
            calls = [_tool_use(c) for c in message.get("tool_calls") or ()]
            if calls:
                if isinstance(content, str):
                    content = [{"type": "text", "text": content}] if content else []
                content = [*(content or []), *calls]
            if content in (None, "", []):
                raise bad_part(f"a {role} message has no content")
            turns.append({"role": role, "content": content})
        else:
            raise bad_part(f"unsupported message role {role!r}")
    limit = body.get("max_completion_tokens")
    if limit is None:
        limit = body.get("max_tokens")
    request: dict[str, Any] = {
        "max_tokens": limit if limit is not None else (max_tokens or DEFAULT_MAX_TOKENS),
        "messages": turns,
    }
    if system:
        request["system"] = (
            system[0] if len(system) == 1 else [{"type": "text", "text": t} for t in system]
        )
    if body.get("temperature") is not None:
        request["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        request["top_p"] = body["top_p"]
    stop = body.get("stop")
    if isinstance(stop, str):
        request["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        request["stop_sequences"] = stop
    structured = _structured(body, request)
    if structured is None and body.get("tools"):
        request["tools"] = [_tool(t) for t in body["tools"]]
        choice = body.get("tool_choice")
        if choice is not None:
            request["tool_choice"] = _tool_choice(choice)
    if body.get("stream") is True:
        request["stream"] = True
    return request, structured


def _structured(body: dict[str, Any], request: dict[str, Any]) -> str | None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    spec = fmt.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise invalid_request(
            "response_format.json_schema.schema is required", param="response_format"
        )
    if body.get("tools"):
        raise invalid_request(
            "tools and a json_schema response_format cannot be combined for Claude", param="tools"
        )
    name = spec.get("name") if isinstance(spec.get("name"), str) else STRUCTURED_TOOL
    tool: dict[str, Any] = {"name": name, "input_schema": schema}
    if isinstance(spec.get("description"), str):
        tool["description"] = spec["description"]
    request["tools"] = [tool]
    request["tool_choice"] = {"type": "tool", "name": name}
    return name


def _texts(content: Any, role: str) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        out = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise bad_part(f"{role} messages may only hold text")
            out.append(part.get("text", ""))
        return out
    raise bad_part(f"a {role} message needs text content")


def _content(content: Any, fetched: dict[str, InlineMedia]) -> Any:
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_part("message content must be a string or a list of parts")
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            blocks.append(_media_block(resolve_image(image_url(part), fetched)))
        elif kind == "file":
            blocks.append(_media_block(file_part(part)))
        else:
            raise bad_part(f"content part type {kind!r} cannot be sent to Claude")
    return blocks


def _media_block(media: InlineMedia | StoredFile) -> dict[str, Any]:
    if isinstance(media, StoredFile):
        raise bad_part("Claude cannot read gs:// files: send the image inline as a data URL")
    source = {"type": "base64", "media_type": media.mime, "data": media.data}
    if media.mime == "application/pdf":
        return {"type": "document", "source": source}
    if media.mime not in _IMAGE_TYPES:
        raise bad_part(f"Claude takes JPEG, PNG, GIF or WebP images, not {media.mime}")
    return {"type": "image", "source": source}


def _tool_use(call: Any) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise bad_part("tool_calls entries need function.name")
    try:
        arguments = orjson.loads(function.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        raise bad_part("tool_calls function.arguments must be JSON") from None
    return {"type": "tool_use", "id": call.get("id"), "name": function["name"], "input": arguments}


def _tool_text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _is_results(content: Any) -> bool:
    return isinstance(content, list) and all(b.get("type") == "tool_result" for b in content)


def _tool(tool: Any) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if (
        not isinstance(tool, dict)
        or tool.get("type") != "function"
        or not isinstance(function, dict)
    ):
        raise invalid_request("only function tools can be sent to Claude", param="tools")
    out: dict[str, Any] = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    params = function.get("parameters")
    out["input_schema"] = (
        params if isinstance(params, dict) else {"type": "object", "properties": {}}
    )
    return out


def _tool_choice(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str) and choice in _TOOL_CHOICE:
        return _TOOL_CHOICE[choice]
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"type": "tool", "name": function["name"]}
    raise invalid_request("unsupported tool_choice", param="tool_choice")
