"""An uploaded batch input file: JSONL of `/v1/chat/completions` requests, checked line by
line at upload so that a malformed file is a 400 naming its first bad line."""

from __future__ import annotations

from typing import Any

import orjson

from nemorouter.core.deferred.objects import ENDPOINT
from nemorouter.types.errors import GatewayError, invalid_request

MAX_CUSTOM_ID = 500  # deferred_lines.custom_id


def _bad(number: int, message: str) -> GatewayError:
    return invalid_request(f"Line {number} of the input file: {message}", "file")


def read_lines(content: bytes, max_lines: int) -> list[tuple[str, dict[str, Any]]]:
    """(custom_id, body) of every request line; raises a 400 naming the first bad line."""
    lines: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for number, raw in enumerate(content.splitlines(), 1):
        if not raw.strip():
            continue
        if len(lines) >= max_lines:
            raise invalid_request(
                f"The input file has more than {max_lines} requests (settings.deferred.max_lines).",
                "file",
            )
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _bad(number, f"not valid JSON ({exc}).") from None
        if not isinstance(line, dict):
            raise _bad(number, "expected a JSON object.")
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id or len(custom_id) > MAX_CUSTOM_ID:
            raise _bad(number, f"'custom_id' must be a string of 1 to {MAX_CUSTOM_ID} characters.")
        if custom_id in seen:
            raise _bad(number, f"duplicate custom_id {custom_id!r}.")
        seen.add(custom_id)
        if line.get("method") != "POST":
            raise _bad(number, "'method' must be \"POST\".")
        if line.get("url") != ENDPOINT:
            raise _bad(number, f"'url' must be {ENDPOINT!r} (the only endpoint batches take).")
        body = line.get("body")
        if not isinstance(body, dict):
            raise _bad(number, "'body' must be a JSON object (a chat completions request).")
        lines.append((custom_id, body))
    if not lines:
        raise invalid_request("The input file holds no request lines.", "file")
    return lines
