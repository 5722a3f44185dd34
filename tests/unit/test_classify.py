"""Upstream failures are classified so the router knows whether to retry."""

from __future__ import annotations

import base64
import json
import os
import ssl
import time
from email.utils import formatdate

import pytest

from nemorouter.providers.classify import (
    classify_exception,
    classify_status,
    error_message,
    retry_after_seconds,
)
from nemorouter.providers.google_errors import classify_google
from nemorouter.providers.http_connection import UpstreamDisconnected, UpstreamTimeout
from nemorouter.types.upstream import FailureKind


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None
    date = formatdate(time.time() + 30, usegmt=True)
    hint = retry_after_seconds({"retry-after": date})
    assert hint is not None and 25 <= hint <= 31
    assert retry_after_seconds({"retry-after": "-3"}) == 0.0


def test_error_message_shapes() -> None:
    openai = json.dumps({"error": {"message": "bad image", "type": "invalid_request_error"}})
    google = json.dumps(
        [{"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}]
    )
    anthropic = json.dumps(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    assert error_message(openai.encode()) == "bad image"
    assert error_message(google.encode()) == "Resource exhausted"
    assert error_message(anthropic.encode()) == "Overloaded"
    assert error_message(b"<html>502 Bad Gateway</html>") == "<html>502 Bad Gateway</html>"
    assert error_message(b"") == "(empty body)"


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (429, FailureKind.RATE_LIMITED, True),
        (408, FailureKind.TIMEOUT, True),
        (500, FailureKind.SERVER_ERROR, True),
        (503, FailureKind.SERVER_ERROR, True),
        (529, FailureKind.SERVER_ERROR, True),
        (401, FailureKind.SERVER_ERROR, True),  # the gateway's credentials, not the client's
        (404, FailureKind.SERVER_ERROR, True),
        (400, FailureKind.CLIENT_ERROR, False),
        (413, FailureKind.CLIENT_ERROR, False),
        (422, FailureKind.CLIENT_ERROR, False),
    ],
)
def test_status_classification(status: int, kind: FailureKind, retryable: bool) -> None:
    failure = classify_status(status, {"retry-after": "3"}, b'{"error": {"message": "x"}}')
    assert failure.kind is kind
    assert failure.retryable is retryable
    assert failure.status == status
    if status == 429:
        assert failure.retry_after == 3.0


def test_exception_classification() -> None:
    assert classify_exception(TimeoutError()).kind is FailureKind.TIMEOUT
    assert classify_exception(UpstreamTimeout("slow")).kind is FailureKind.TIMEOUT
    assert classify_exception(UpstreamDisconnected("gone")).kind is FailureKind.CONNECTION
    assert classify_exception(ssl.SSLError(1, "bad cert")).kind is FailureKind.CONNECTION
    assert "gone" in classify_exception(UpstreamDisconnected("gone")).message
    assert classify_exception(ConnectionResetError()).kind is FailureKind.CONNECTION


def test_image_bytes_in_provider_errors_are_elided() -> None:
    b64 = base64.b64encode(os.urandom(3000)).decode()
    quoted = json.dumps(
        {"error": {"message": f"Invalid image data:image/png;base64,{b64} (too small)"}}
    )
    message = error_message(quoted.encode())
    assert b64[:40] not in message
    assert "data:image/png;base64,<" in message
    assert message.endswith("(too small)")
    bare = json.dumps({"error": {"message": f"cannot decode {b64}"}})
    assert b64[:40] not in error_message(bare.encode())
    assert b64[:40] not in error_message(f"<html>{b64}</html>".encode())


# Real provider answers for a prompt larger than the model's window (all 400s).
CONTEXT_BODIES = {
    "openai": {
        "error": {
            "message": "This model's maximum context length is 8192 tokens. However, your "
            "messages resulted in 8227 tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    },
    "vllm": {
        "object": "error",
        "message": "This model's maximum context length is 131072 tokens. However, you "
        "requested 351430 tokens. Please reduce the length of the messages or completion.",
    },
    "gemini": [
        {
            "error": {
                "code": 400,
                "message": "The input token count (1200293) exceeds the maximum number of "
                "tokens allowed (1048576).",
                "status": "INVALID_ARGUMENT",
            }
        }
    ],
    "anthropic": {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "prompt is too long: 208656 tokens > 200000 maximum",
        },
    },
}


@pytest.mark.parametrize("provider", sorted(CONTEXT_BODIES))
def test_context_window_exceeded_is_its_own_kind(provider: str) -> None:
    raw = json.dumps(CONTEXT_BODIES[provider]).encode()
    for classify in (classify_status, classify_google):
        failure = classify(400, {}, raw)
        assert failure.kind is FailureKind.CONTEXT_WINDOW
        assert not failure.retryable


def test_other_400s_stay_client_errors() -> None:
    raw = json.dumps({"error": {"message": "Invalid image data", "code": None}}).encode()
    assert classify_status(400, {}, raw).kind is FailureKind.CLIENT_ERROR
