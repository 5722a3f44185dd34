"""Semantic comparison of two recorded requests: JSON equality after normalising the forms the
providers document as equivalent, reported as the set of JSON paths where the two differ.

Normalisations (both sides, each documented):
- Gemini (proto3 JSON): field names in lowerCamelCase or their original snake_case are the same
  field ("parsers accept both the lowerCamelCase name and the original proto field name",
  https://protobuf.dev/programming-guides/json/), and `bytes` fields accept standard or URL-safe
  base64 with or without padding (same page), so inline data is compared as decoded bytes.
  An empty `generationConfig` sets nothing, as its absence (every GenerationConfig field is
  optional, https://ai.google.dev/api/generate-content#generationconfig).
  `systemInstruction.role` is ignored by the API (google-genai `types.GenerateContentConfig.
  system_instruction`: "the role is ignored"; Vertex REST `systemInstruction`: "role ... ignored").
- Anthropic Messages: a string `content` (or `system`) is shorthand for one text block
  (https://docs.anthropic.com/en/api/messages, `content`: "shorthand for an array of one content
  block of type text"; `system`: string or list of text blocks).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

_CAMEL = re.compile(r"_([a-z])")


def _camel(name: str) -> str:
    return _CAMEL.sub(lambda m: m[1].upper(), name)


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(
        text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4)
    )


def gemini_normal(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        out = {_camel(k): gemini_normal(v, _camel(k)) for k, v in value.items()}
        if key == "systemInstruction":
            out.pop("role", None)
        if not key and out.get("generationConfig") == {}:
            del out["generationConfig"]
        if key == "inlineData" and isinstance(out.get("data"), str):
            out["data"] = _b64(out["data"])
        return out
    if isinstance(value, list):
        return [gemini_normal(v, key) for v in value]
    return value


def _blocks(content: Any) -> Any:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content


def anthropic_normal(body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    out = dict(body)
    if "system" in out:
        out["system"] = _blocks(out["system"])
    if isinstance(out.get("messages"), list):
        out["messages"] = [
            {**m, "content": _blocks(m.get("content"))} if isinstance(m, dict) else m
            for m in out["messages"]
        ]
    return out


def differences(ours: Any, theirs: Any, path: str = "") -> set[str]:
    """JSON paths (`/a/0/b`) where `ours` and `theirs` differ; a key present on one side only
    is reported at its own path."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found: set[str] = set()
        for key in ours.keys() | theirs.keys():
            sub = f"{path}/{key}"
            if key not in ours or key not in theirs:
                found.add(sub)
            else:
                found |= differences(ours[key], theirs[key], sub)
        return found
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        found = set()
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            found |= differences(a, b, f"{path}/{i}")
        return found
    if type(ours) is bool or type(theirs) is bool:
        return set() if ours is theirs else {path or "/"}
    return set() if ours == theirs else {path or "/"}


def request_differences(
    ours: Any,
    theirs: Any,
    normal: Callable[[Any], Any],
    headers: Callable[[Any], dict[str, Any]],
    version: Callable[[str], tuple[str, str]] | None = None,
) -> set[str]:
    """Where two recorded requests differ: body paths (after `normal`), `method`, `path`
    (`api-version` apart, when `version` splits it off), `query`, and `header:<name>` for each
    entry of the `headers` view that differs."""
    found = differences(normal(ours.body), normal(theirs.body))
    if ours.method != theirs.method:
        found.add("method")
    our_path, sdk_path = ours.path, theirs.path
    if version is not None:
        (our_version, our_path), (sdk_version, sdk_path) = version(our_path), version(sdk_path)
        if our_version != sdk_version:
            found.add("api-version")
    if our_path != sdk_path:
        found.add("path")
    if ours.query != theirs.query:
        found.add("query")
    mine, sdk = headers(ours), headers(theirs)
    found |= {f"header:{h}" for h in mine.keys() | sdk.keys() if mine.get(h) != sdk.get(h)}
    return found
