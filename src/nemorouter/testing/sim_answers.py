"""Deterministic answers and token usage for the simulated provider.

Everything here depends only on the request body (never on time or randomness), so the same
messages always produce the same content and usage: the gateway's caching, retry and accounting
tests can compare answers across calls. Bodies come from `sim_request.read_chat`, which stands
a short token in for each string of 16 KiB or more (a data URL): the digest covers the token,
which names the string's value, and `long_chars` gives the token's length in characters.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from nemorouter.testing.schema_instance import generate_instance
from nemorouter.testing.sim_plausible import requested_labels

IMAGE_TOKENS = 258  # Gemini 2.x cost of one small image / tile
CHARS_PER_TOKEN = 4

_encode_sorted = msgspec.json.Encoder(order="sorted").encode


@dataclass(slots=True)
class SimAnswer:
    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def messages_digest(messages: Any) -> str:
    """Hex digest of the canonical (key-sorted, compact) JSON of the messages.

    Key order and whitespace do not matter; any other change to the messages changes it (a
    long string changes its token: see `sim_request`).
    """
    return hashlib.sha256(_encode_sorted(messages)).hexdigest()


def count_inputs(
    messages: list[Any], long_chars: Mapping[str, int] | None = None
) -> tuple[int, int]:
    """Return (image parts, text characters) over all messages.

    `long_chars` maps the tokens standing in for long strings to their length in characters.
    """
    images = chars = 0
    for msg in messages:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            chars += long_chars.get(content, len(content)) if long_chars else len(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                kind = part.get("type")
                if kind == "image_url":
                    images += 1
                elif kind == "text" and isinstance(text := part.get("text"), str):
                    chars += long_chars.get(text, len(text)) if long_chars else len(text)
    return images, chars


def completion_tokens(content: str) -> int:
    return max(1, -(-len(content) // CHARS_PER_TOKEN))


@dataclass(frozen=True, slots=True)
class PromptCounting:
    """How a simulated provider counts prompt tokens; the defaults are the plain count.

    A real provider often counts far more than the text suggests: its own system tokens
    (`system_tokens`, added to every call), a finer tokenizer (`factor`), or image tiles
    (`image_tokens` per image, e.g. 20 x 258 for an A4 page at 300 dpi on Gemini 2.x)."""

    factor: float = 1.0
    system_tokens: int = 0
    image_tokens: int = IMAGE_TOKENS

    def prompt_tokens(self, images: int, chars: int) -> int:
        counted = -(-chars // CHARS_PER_TOKEN) + self.image_tokens * images
        return math.ceil(counted * self.factor) + self.system_tokens


PLAIN = PromptCounting()


def build_answer(
    body: dict[str, Any],
    long_chars: Mapping[str, int] | None = None,
    counting: PromptCounting = PLAIN,
) -> SimAnswer:
    """Answer a validated chat-completions request body (see `count_inputs` for `long_chars`).

    Raises ValueError when a `json_schema` response format cannot be satisfied.
    """
    messages: list[Any] = body["messages"]
    model = body["model"]
    digest = messages_digest(messages)
    images, chars = count_inputs(messages, long_chars)
    prompt = counting.prompt_tokens(images, chars)
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_schema":
        spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
        schema = spec.get("schema", {}) if isinstance(spec, dict) else {}
        value = generate_instance(schema, seed=int(digest[:16], 16))
        content = msgspec.json.encode(value).decode()
        return SimAnswer(content, "stop", prompt, completion_tokens(content))
    if kind == "json_object":
        obj = {
            "answer": f"Simulated answer from {model}",
            "digest": digest[:8],
            "images": images,
            "text_chars": chars,
        }
        content = msgspec.json.encode(obj).decode()
        return SimAnswer(content, "stop", prompt, completion_tokens(content))
    labels = _labels_asked(messages)
    if labels:  # a classification: one of its labels, bare (anything else would fail it)
        content = labels[int(digest[:8], 16) % len(labels)]
        return SimAnswer(content, "stop", prompt, completion_tokens(content))
    content = (
        f"Simulated answer from {model} (digest {digest[:8]}): "
        f"{images} image(s), {chars} text chars."
    )
    finish = "stop"
    tokens = completion_tokens(content)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and not isinstance(limit, bool) and tokens > limit:
        content = content[: max(0, limit) * CHARS_PER_TOKEN]
        finish = "length"
        tokens = completion_tokens(content)
    return SimAnswer(content, finish, prompt, tokens)


def _labels_asked(messages: list[Any]) -> list[str]:
    """The labels the first user message asks to choose from (see `requested_labels`)."""
    for msg in messages:
        if not isinstance(msg, dict) or msg.get("role") != "user":
            continue
        content = msg.get("content")
        parts = [content] if isinstance(content, str) else content
        texts = [p.get("text") if isinstance(p, dict) else p for p in parts or []]
        for text in texts:
            if isinstance(text, str) and (labels := requested_labels(text)):
                return labels
        return []
    return []


def split_stream(content: str, pieces: int = 4) -> list[str]:
    """Split content into up to `pieces` non-empty consecutive chunks."""
    if not content:
        return []
    size = max(1, math.ceil(len(content) / pieces))
    return [content[i : i + size] for i in range(0, len(content), size)]
