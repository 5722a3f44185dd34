"""Facts read from an OpenAI chat body, each written once: the edge (core/request.py) and the
adapters (providers/request_fields.py) ask the same question the same way."""

from __future__ import annotations

from typing import Any


def max_output_of(body: dict[str, Any]) -> int | None:
    """The client's output limit: `max_completion_tokens` when it is a positive integer, else
    `max_tokens` when that is; None when the client set no usable limit."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if type(value) is int and value > 0:  # not bool (a subclass of int)
            return value
    return None


def wants_usage_of(body: dict[str, Any]) -> bool:
    """Whether the client asked for a stream's final usage chunk (`stream_options`)."""
    options = body.get("stream_options")
    return type(options) is dict and options.get("include_usage") is True
