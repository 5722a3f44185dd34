"""The response cache's key, and the per-request cache controls (issue #9, DESIGN §2.1).

Key = SHA-256 over canonical JSON (orjson, sorted keys) of {scope, target, the OpenAI body}
where every inline image/file is replaced by the SHA-256 of its decoded bytes (plus its MIME
type), so two wrappings of the same bytes (MIME parameters, line breaks in the base64,
URL-safe alphabet, missing padding) share a key and one changed pixel does not. http(s)
URLs stay URLs. Everything in the body counts, except the short `IGNORED` list below.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from nemorouter.types.options import GATEWAY_FIELDS

try:  # SIMD base64: ~75 µs per MB against binascii's ~2,900 (see bench/cache)
    import pybase64 as _pybase64
except ImportError:  # pragma: no cover - depends on the environment
    _pybase64 = None

KEY_VERSION = 1  # bump when the canonical form changes: old entries then simply miss

# Body fields that never change the answer; all others are part of the key.
IGNORED = frozenset(
    {
        "model",  # replaced by the resolved target (a model or group name)
        "stream",  # transport only: a streamed request can hit a plain answer and back
        "stream_options",  # idem (the pipeline also rewrites it to ask for usage)
        "user",  # end-user id for the provider's abuse monitoring; isolation is the scope's job
        "safety_identifier",  # OpenAI's successor of `user`
        "prompt_cache_key",  # a provider prompt-cache routing hint
        *GATEWAY_FIELDS,  # metadata, tags, cache controls, fallbacks: removed upstream already
    }
)
SCOPES = ("key", "team", "global")


def cache_scope(scope: str, key_id: str, team_id: str | None) -> str:
    """The namespace a request's answers live in, from settings.cache.scope.

    A key without a team is its own team: teamless keys never share answers."""
    if scope == "global":
        return "global"
    if scope == "team" and team_id is not None:
        return f"team:{team_id}"
    if scope in SCOPES:
        return f"key:{key_id}"
    raise ValueError(f"unknown cache scope {scope!r}")


def cache_key(body: Mapping[str, Any], target: str, scope: str) -> str:
    """Hex SHA-256 of the canonical request; `body` is ChatRequest.body (not modified)."""
    canonical: dict[str, Any] = {}
    for name, value in body.items():
        if name in IGNORED or value is None:  # null = not given, for every OpenAI parameter
            continue
        if name == "messages":
            value = _messages(value)
        elif type(value) is float and value.is_integer():
            value = int(value)  # "temperature": 0 and 0.0 are the same request
        canonical[name] = value
    payload = {"v": KEY_VERSION, "scope": scope, "target": target, "body": canonical}
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _messages(messages: Any) -> Any:
    """A copy of `messages` with inline media hashed; untouched messages are shared."""
    if not isinstance(messages, list):
        return messages
    out: list[Any] = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            message = {**message, "content": [_part(part) for part in content]}
        out.append(message)
    return out


def _part(part: Any) -> Any:
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    if kind == "image_url":
        ref = part.get("image_url")
        url = ref.get("url") if isinstance(ref, dict) else ref
        if isinstance(url, str) and url[:5].lower() == "data:":
            digest = _data_url_digest(url)
            new_ref = {**ref, "url": digest} if isinstance(ref, dict) else digest
            return {**part, "image_url": new_ref}
    elif kind == "file":
        spec = part.get("file")
        data = spec.get("file_data") if isinstance(spec, dict) else None
        if isinstance(data, str):
            digest = _data_url_digest(data) if data[:5].lower() == "data:" else _b64_digest(data)
            return {**part, "file": {**spec, "file_data": digest}}
    elif kind == "input_audio":
        spec = part.get("input_audio")
        data = spec.get("data") if isinstance(spec, dict) else None
        if isinstance(data, str):
            return {**part, "input_audio": {**spec, "data": _b64_digest(data)}}
    return part


def _data_url_digest(url: str) -> dict[str, str]:
    """{mime, sha256} of a data URL's decoded bytes. MIME parameters (name=, charset=)
    do not count; the type itself does (a provider reads the bytes by it)."""
    comma = url.find(",")
    if comma < 0:
        return {"sha256_text": _text_digest(url)}  # malformed: the adapter will refuse it
    header = url[5:comma].split(";")
    mime = header[0].strip().lower()
    if header[-1].strip().lower() != "base64":  # percent-encoded data: rare, keyed by text
        return {"mime": mime, "sha256_text": _text_digest(url[comma + 1 :])}
    return {"mime": mime, **_b64_digest(url[comma + 1 :])}


def _b64_digest(text: str) -> dict[str, str]:
    raw = _decode(text)
    if raw is None:
        return {"sha256_text": _text_digest(text)}
    digest = hashlib.sha256(raw).hexdigest()
    del raw  # the decoded copy (up to MBs) lives only for the hash
    return {"sha256": digest}


def _decode(text: str) -> bytes | None:
    """Base64 → bytes: the strict fast path first, then the tolerant one (line breaks,
    spaces, URL-safe alphabet, missing padding). None when it is not base64 at all."""
    try:
        if _pybase64 is not None:
            return _pybase64.b64decode(text, validate=True)
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        pass
    if "-" in text or "_" in text:
        text = text.translate(_URLSAFE)
    try:  # not strict: skips line breaks and spaces in one pass
        if _pybase64 is not None:
            return _pybase64.b64decode(text)
        return binascii.a2b_base64(text)
    except (binascii.Error, ValueError):
        pass
    clean = "".join(text.split())
    try:
        return binascii.a2b_base64(clean + "=" * (-len(clean) % 4))
    except (binascii.Error, ValueError):
        return None


_URLSAFE = str.maketrans("-_", "+/")


def _text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


__all__ = ["IGNORED", "KEY_VERSION", "SCOPES", "cache_key", "cache_scope"]
