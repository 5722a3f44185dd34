"""Classify upstream failures (status codes, retry hints, socket errors) for the router."""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import msgspec

from nemorouter.providers.http_connection import UpstreamMalformed
from nemorouter.types.upstream import FailureKind, UpstreamFailure

# Hints beyond this are treated as "not soon": the router fails over instead of waiting.
MAX_RETRY_AFTER_S = 3600.0


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The provider's retry hint: `retry-after-ms`, else `retry-after` (seconds or HTTP date)."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return _clamp(float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return _clamp(float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return _clamp(when.timestamp() - time.time())


def _clamp(seconds: float) -> float | None:
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


# Providers sometimes quote the offending input back; image bytes must not reach our logs.
_DATA_URL = re.compile(r"data:([\w.+/-]*);base64,[A-Za-z0-9+/=\s]*")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{80,}")


def scrub(text: str) -> str:
    """`text` with data URLs and long base64 runs elided."""
    text = _DATA_URL.sub(lambda m: f"data:{m[1]};base64,<{len(m[0])} chars elided>", text)
    return _BASE64_RUN.sub(lambda m: f"<{len(m[0])} chars elided>", text)


def error_message(raw: bytes) -> str:
    """The provider's own error message, from the OpenAI, Google or Anthropic error shapes."""
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        text = scrub(raw[:2000].decode("utf-8", "replace")).strip()[:300]
        return text or "(empty body)"
    if isinstance(data, list) and data:  # Vertex wraps errors in a list
        data = data[0]
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return scrub(err["message"])[:500]
        if isinstance(err, str):
            return scrub(err)[:500]
    return scrub(raw[:2000].decode("utf-8", "replace"))[:300]


# How providers say the prompt is larger than the model's window (all with a 400):
# OpenAI code `context_length_exceeded`, "This model's maximum context length is N tokens"
# (also vLLM); Gemini / Vertex "The input token count (N) exceeds the maximum number of
# tokens allowed (M)"; Anthropic "prompt is too long: N tokens > M maximum" and
# "input length and `max_tokens` exceed context limit: ...".
_CONTEXT = re.compile(
    r"context_length_exceeded|maximum context length|exceeds the maximum number of tokens"
    r"|prompt is too long|exceed context limit",
    re.IGNORECASE,
)


def context_exceeded(raw: bytes, message: str) -> bool:
    """Whether a 400 says the prompt does not fit the model's context window."""
    return _CONTEXT.search(message) is not None or b"context_length_exceeded" in raw[:4000]


def classify_status(status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamFailure:
    """A non-200 answer from the provider."""
    message = error_message(raw)
    if status == 429:
        return UpstreamFailure(
            FailureKind.RATE_LIMITED,
            message,
            status=status,
            retry_after=retry_after_seconds(headers),
        )
    if status == 408:
        return UpstreamFailure(FailureKind.TIMEOUT, message, status=status)
    if status == 400 and context_exceeded(raw, message):
        return UpstreamFailure(FailureKind.CONTEXT_WINDOW, message, status=status)
    if status in (400, 413, 422):
        return UpstreamFailure(FailureKind.CLIENT_ERROR, message, status=status)
    # 401/403/404 from a provider mean our credentials or model name are wrong at that
    # deployment, not that the client erred: another deployment may well succeed.
    return UpstreamFailure(
        FailureKind.SERVER_ERROR, message, status=status, retry_after=retry_after_seconds(headers)
    )


def classify_exception(exc: BaseException) -> UpstreamFailure:
    """A failure below HTTP: timeouts, refused or dropped connections, TLS errors, and
    answers that broke HTTP, their encoding or a size bound (malformed)."""
    if isinstance(exc, UpstreamMalformed):
        return UpstreamFailure(FailureKind.MALFORMED, str(exc))
    if isinstance(exc, TimeoutError):
        return UpstreamFailure(FailureKind.TIMEOUT, str(exc) or "provider did not answer in time")
    if isinstance(exc, ssl.SSLError):
        return UpstreamFailure(
            FailureKind.CONNECTION, f"TLS error: {getattr(exc, 'reason', None) or exc}"
        )
    return UpstreamFailure(FailureKind.CONNECTION, str(exc) or type(exc).__name__)
