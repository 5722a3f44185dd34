"""The canonical (OpenAI chat) request → an Anthropic Messages API body.

Claude takes images only as base64 blocks (on Vertex as well), so http(s) images are fetched
beforehand (`fetched`) and gs:// references are refused. A `json_schema` response format is
sent natively where the model has structured outputs at this provider (`output_config.format`,
anthropic-sdk-python types/output_config_param.py: the answer is a text block holding the
JSON) and the schema is inside the native subset (`anthropic_schema`); otherwise it becomes one forced tool whose input is the answer (the adapter hands that
input back as the message content). Any field of the wrong shape (`request_fields`) is a 400
naming the field, before any call is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nemorouter.providers.anthropic_schema import native_schema
from nemorouter.providers.media import (
    InlineMedia,
    StoredFile,
    bad_part,
    file_part,
    image_url,
    resolve_image,
)
from nemorouter.providers.request_fields import (
    FunctionTool,
    field_error,
    function_tools,
    json_schema_spec,
    number,
    part_text,
    response_format,
    stop_sequences,
    tool_calls,
    tool_choice,
    tool_result_text,
)
from nemorouter.providers.request_fields import max_tokens as requested_max_tokens
from nemorouter.types.errors import invalid_request

# Messages requires max_tokens. Sent: the client's limit, else the target's max output (the
# deployment's, else the catalog's: what the budget's worst case assumes), else, for a model
# neither knows, this: the smallest max output of any Claude model, so it is never refused
# (the budget then assumes more, its DEFAULT_MAX_OUTPUT, which errs on the safe side).
DEFAULT_MAX_TOKENS = 4096
VERTEX_VERSION = "vertex-2023-10-16"
STRUCTURED_TOOL = "structured_output"  # the forced tool's name when the schema has none
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_TOOL_CHOICE = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}
_TOOL_MODES = frozenset(_TOOL_CHOICE)


def anthropic_request(
    body: dict[str, Any],
    fetched: Mapping[str, InlineMedia],
    max_output: int | None = None,
    native_structured: bool = False,
) -> tuple[dict[str, Any], str | None]:
    """(the Messages body without `model`, the forced structured-output tool's name or None)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_request("messages must be a non-empty list", param="messages")
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_part("every message must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system += _texts(message.get("content"), role, i)
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise field_error(f"messages[{i}].tool_call_id", "must be a non-empty string")
            result = {
                "type": "tool_result",
                "tool_use_id": call_id,
                "content": tool_result_text(message.get("content"), i),
            }
            if turns and turns[-1]["role"] == "user" and _is_results(turns[-1]["content"]):
                turns[-1]["content"].append(result)  # parallel calls answer in one turn
            else:
                turns.append({"role": "user", "content": [result]})
        elif role in ("user", "assistant"):
            content = _content(message.get("content"), fetched, i)
            calls = [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                for c in tool_calls(message, i)
            ]
            if calls:
                if isinstance(content, str):
                    content = [{"type": "text", "text": content}] if content else []
                content = [*(content or []), *calls]
            if content in (None, "", []):
                raise bad_part(f"a {role} message has no content")
            turns.append({"role": role, "content": content})
        else:
            raise bad_part(f"unsupported message role {role!r}")
    limit = requested_max_tokens(body)
    request: dict[str, Any] = {
        "max_tokens": limit if limit is not None else (max_output or DEFAULT_MAX_TOKENS),
        "messages": turns,
    }
    if system:
        request["system"] = (
            system[0] if len(system) == 1 else [{"type": "text", "text": t} for t in system]
        )
    for name in ("temperature", "top_p"):
        value = number(body, name)
        if value is not None:
            request[name] = value
    stop = stop_sequences(body)
    if stop:
        request["stop_sequences"] = stop
    tools = function_tools(body)
    choice = tool_choice(body, _TOOL_MODES)
    native = _native_format(body) if native_structured else None
    if native is not None:
        structured = None
        request["output_config"] = {"format": {"type": "json_schema", "schema": native}}
    else:
        structured = _structured(body, request, bool(tools))
    if structured is None and tools:
        request["tools"] = [_tool(t) for t in tools]
        if isinstance(choice, str):
            request["tool_choice"] = _TOOL_CHOICE[choice]
        elif choice is not None:
            request["tool_choice"] = {"type": "tool", "name": choice[0]}
    if body.get("stream") is True:
        request["stream"] = True
    return request, structured


def _native_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """The json_schema response format's schema as a native format, or None (no such
    format, or a schema outside the native subset: the forced tool takes it)."""
    fmt = response_format(body)
    if fmt is None or fmt["type"] != "json_schema":
        return None
    return native_schema(json_schema_spec(fmt)[1])


def _structured(body: dict[str, Any], request: dict[str, Any], has_tools: bool) -> str | None:
    fmt = response_format(body)
    if fmt is None or fmt["type"] != "json_schema":
        return None
    spec, schema = json_schema_spec(fmt)
    if has_tools:
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


def _texts(content: Any, role: str, i: int) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        out = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise field_error(f"messages[{i}].content[{j}]", f"must be text ({role} message)")
            out.append(part_text(part, f"messages[{i}].content[{j}]"))
        return out
    raise field_error(f"messages[{i}].content", f"must be text ({role} message)")


def _content(content: Any, fetched: Mapping[str, InlineMedia], i: int) -> Any:
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise field_error(f"messages[{i}].content", "must be a string or a list of parts")
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part_text(part, f"messages[{i}].content[{j}]")
            blocks.append({"type": "text", "text": text})
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


def _is_results(content: Any) -> bool:
    return isinstance(content, list) and all(b.get("type") == "tool_result" for b in content)


def _tool(tool: FunctionTool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    params = tool.parameters
    out["input_schema"] = params if params is not None else {"type": "object", "properties": {}}
    return out
