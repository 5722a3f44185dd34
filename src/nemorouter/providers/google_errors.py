"""Google API errors (`{"error": {code, message, status, details}}`, sometimes list-wrapped).

Google sends no `retry-after` header; a 429 may instead carry `google.rpc.RetryInfo` with a
`retryDelay` such as "37s" in `details`, which becomes the failure's retry hint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from nemorouter.providers.classify import MAX_RETRY_AFTER_S, classify_status, error_message
from nemorouter.types.upstream import FailureKind, UpstreamFailure

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_BY_CODE = {429: FailureKind.RATE_LIMITED, 408: FailureKind.TIMEOUT, 504: FailureKind.TIMEOUT}


def _error_object(raw: bytes) -> dict[str, Any] | None:
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    if isinstance(data, list) and data:
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else None


def parse_duration(value: Any) -> float | None:
    """A protobuf Duration in JSON ("37s", "0.5s") or as {seconds, nanos}, in seconds."""
    try:
        if isinstance(value, str) and value.endswith("s"):
            seconds = float(value[:-1])
        elif isinstance(value, dict):
            seconds = float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
        else:
            return None
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_S)


def retry_delay(error: Mapping[str, Any]) -> float | None:
    details = error.get("details")
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and detail.get("@type") == _RETRY_INFO:
            return parse_duration(detail.get("retryDelay"))
    return None


def _bad_key(error: Mapping[str, Any]) -> bool:
    details = error.get("details")
    return any(
        isinstance(d, dict) and d.get("reason") == "API_KEY_INVALID"
        for d in (details if isinstance(details, list) else ())
    )


def classify_google(status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamFailure:
    """A non-200 answer from a Google API, with RetryInfo read as the retry hint."""
    failure = classify_status(status, headers, raw)
    error = _error_object(raw)
    if error is not None and failure.retry_after is None:
        failure.retry_after = retry_delay(error)
    if failure.kind is FailureKind.CLIENT_ERROR and error is not None and _bad_key(error):
        # Google answers a wrong API key with a 400: it is this deployment's fault, not the
        # client's, so another deployment may still serve the request.
        failure.kind = FailureKind.SERVER_ERROR
    if error is not None and isinstance(error.get("status"), str):
        failure.message = f"{error['status']}: {failure.message}"
    return failure


def stream_error(error: Mapping[str, Any]) -> UpstreamFailure:
    """An `{"error": ...}` event inside a 200 stream."""
    code = error.get("code")
    kind = _BY_CODE.get(code, FailureKind.SERVER_ERROR) if isinstance(code, int) else None
    raw = msgspec.json.encode({"error": dict(error)})
    return UpstreamFailure(
        kind or FailureKind.SERVER_ERROR,
        f"provider reported an error mid-stream: {error_message(raw)}",
        status=code if isinstance(code, int) else None,
        retry_after=retry_delay(error),
    )
