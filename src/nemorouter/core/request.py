"""Parse a chat-completions body once, at the edge, into the canonical request.

The canonical request is the OpenAI chat format itself (a dict), plus the few facts the
pipeline needs, read here so no later stage parses the body again.
"""

from __future__ import annotations

from typing import Any

import orjson

from nemorouter.core.errors import invalid_request

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# Fields of ours (and LiteLLM's) that an upstream OpenAI API must not see.
GATEWAY_FIELDS = ("tags", "metadata", "nemo_cache", "cache", "fallbacks", "disable_fallbacks")


class ChatRequest:
    """One parsed `/v1/chat/completions` request."""

    __slots__ = ("body", "extras", "has_images", "model", "stream")

    def __init__(
        self,
        body: dict[str, Any],
        extras: dict[str, Any],
        model: str,
        stream: bool,
        has_images: bool,
    ) -> None:
        self.body = body  # the OpenAI body, gateway fields removed
        self.extras = extras  # the gateway fields (tags, metadata, cache and fallback controls)
        self.model = model
        self.stream = stream
        self.has_images = has_images


def parse_chat_request(raw: bytes) -> ChatRequest:
    """Validate the parts of the body the gateway relies on; the rest is passed through."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_request(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid_request("'model' is required and must be a non-empty string.", "model")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise invalid_request("'stream' must be a boolean.", "stream")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_request("'messages' must be a non-empty list.", "messages")
    has_images = False
    for i, message in enumerate(messages):
        has_images |= _check_message(message, i)
    extras = {name: body.pop(name) for name in GATEWAY_FIELDS if name in body}
    return ChatRequest(body, extras, model, stream, has_images)


def _check_message(message: Any, i: int) -> bool:
    """Check one message; return whether it carries an image part."""
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        raise invalid_request(f"'{where}' must be an object.", where)
    role = message.get("role")
    if role not in _ROLES:
        raise invalid_request(f"'{where}.role' must be one of {sorted(_ROLES)}.", f"{where}.role")
    content = message.get("content")
    if content is None or isinstance(content, str):
        return False
    if not isinstance(content, list):
        raise invalid_request(
            f"'{where}.content' must be a string or a list of parts.", f"{where}.content"
        )
    has_image = False
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise invalid_request(
                f"'{where}.content[{j}]' must be an object with a 'type'.", f"{where}.content"
            )
        if part["type"] == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str) or not url:
                raise invalid_request(
                    f"'{where}.content[{j}].image_url.url' must be a non-empty string.",
                    f"{where}.content",
                )
            has_image = True
    return has_image
