"""Tracing pieces on their own: the W3C traceparent, sampling, the OTEL_* environment, the
OTLP JSON encoding and the exporter's bounded queue and shutdown flush."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from nemorouter.config_sections import TracingSettings
from nemorouter.telemetry.env import parse_headers, traces_url, tracing_settings
from nemorouter.telemetry.otlp import OTLPExporter, encode_request
from nemorouter.telemetry.spans import CLIENT, SERVER, Span, Tracer, parse_traceparent

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class Collect:
    def __init__(self) -> None:
        self.spans: list[Span] = []

    def add(self, span: Span) -> None:
        self.spans.append(span)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"00-{TRACE}-{PARENT}-01", (TRACE, PARENT, True)),
        (f"00-{TRACE}-{PARENT}-00", (TRACE, PARENT, False)),
        (f"  00-{TRACE.upper()}-{PARENT}-01 ", (TRACE, PARENT, True)),
        (f"01-{TRACE}-{PARENT}-03-future", (TRACE, PARENT, True)),  # a later version
        (f"00-{TRACE}-{PARENT}-01-extra", None),  # version 00 has four fields
        (f"ff-{TRACE}-{PARENT}-01", None),
        (f"00-{'0' * 32}-{PARENT}-01", None),
        (f"00-{TRACE}-{'0' * 16}-01", None),
        (f"00-{TRACE[:-1]}-{PARENT}-01", None),
        ("garbage", None),
    ],
)
def test_traceparent(header: str, expected: tuple[str, str, bool] | None) -> None:
    assert parse_traceparent(header.encode()) == expected


def test_sampling_follows_the_parent_else_the_ratio() -> None:
    sink = Collect()
    never, always = Tracer(sink, 0.0), Tracer(sink, 1.0)
    assert never.request_span("chat", None) is None
    assert always.request_span("chat", f"00-{TRACE}-{PARENT}-00".encode()) is None
    joined = never.request_span("chat", f"00-{TRACE}-{PARENT}-01".encode())
    assert joined is not None and joined.trace_id == TRACE and joined.parent_id == PARENT
    half = Tracer(sink, 0.5)
    kept = sum(half.request_span("chat", None) is not None for _ in range(4000))
    assert 1700 < kept < 2300
    span = always.request_span("chat", b"not-a-traceparent")  # a new trace of its own
    assert span is not None and span.parent_id == "" and len(span.trace_id) == 32
    child = span.child("chat m")
    assert child.kind == CLIENT and span.kind == SERVER and child.parent_id == span.span_id
    span.end()
    span.end()  # exported once
    assert sink.spans == [span]


def test_environment_variables() -> None:
    assert tracing_settings(None, {}) is None
    found = tracing_settings(
        None,
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=a%20b,x-team=docs",
            "OTEL_SERVICE_NAME": "gw-eu",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
        },
    )
    assert found is not None
    settings, url = found
    assert url == "http://collector:4318/v1/traces"
    assert settings.headers == {"api-key": "a b", "x-team": "docs"}
    assert settings.service_name == "gw-eu" and settings.sample_ratio == 0.25
    traces = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/custom/traces"}
    assert tracing_settings(None, traces)[1] == "http://c:4318/custom/traces"  # type: ignore[index]
    off = {"OTEL_SDK_DISABLED": "true", **traces}
    assert tracing_settings(None, off) is None
    configured = TracingSettings(otlp_endpoint="http://mine:4318")
    assert tracing_settings(configured, traces) == (configured, "http://mine:4318/v1/traces")
    assert tracing_settings(TracingSettings(), traces) is None  # the file says: no endpoint
    assert traces_url("https://x.example/otlp/v1/traces") == "https://x.example/otlp/v1/traces"
    assert parse_headers("bad,k=v") == {"k": "v"}


def test_otlp_json_encoding() -> None:
    sink = Collect()
    span = Span(sink, TRACE, PARENT, "chat m", SERVER, start_ns=1_700_000_000_000_000_001)
    span.attrs.update({"s": "x", "i": 2**40, "b": True, "f": 0.5, "l": ["a", "b"], "none": None})
    span.error = "server_error"
    span.end(1_700_000_000_000_000_999)
    body = json.loads(encode_request([span], {"attributes": []}))
    (encoded,) = body["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert encoded["traceId"] == TRACE and encoded["parentSpanId"] == PARENT
    assert encoded["startTimeUnixNano"] == "1700000000000000001"
    assert encoded["endTimeUnixNano"] == "1700000000000000999"
    assert encoded["kind"] == SERVER
    assert encoded["status"] == {"code": 2, "message": "server_error"}
    values = {a["key"]: a["value"] for a in encoded["attributes"]}
    assert values == {
        "s": {"stringValue": "x"},
        "i": {"intValue": str(2**40)},
        "b": {"boolValue": True},
        "f": {"doubleValue": 0.5},
        "l": {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}},
    }


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_queue_is_bounded_and_a_down_collector_counts_drops() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1/traces"
    exporter = OTLPExporter(url, "t", interval_s=60, max_queue=3, batch_size=100)
    await exporter.start()
    tracer = Tracer(exporter)
    for _ in range(5):
        span = tracer.request_span("chat", None)
        assert span is not None
        span.end()
    assert exporter.dropped == 2  # beyond the queue's bound
    await asyncio.wait_for(exporter.close(), 5)  # the flush fails: counted, not raised
    assert exporter.dropped == 5 and exporter.exported == 0


def test_config_section() -> None:
    from nemorouter.config import ConfigError, parse_config

    base = {
        "master_key": "k" * 20,
        "tracing": {"otlp_endpoint": "http://c:4318", "headers": {"a": "os.environ/TOKEN"}},
    }

    def raw(settings: dict[str, object]) -> dict[str, object]:
        provider = {
            "type": "openai-compatible",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key": "x",
        }
        return {
            "settings": settings,
            "providers": {"p": provider},
            "deployments": [{"id": "d", "model": "gemini-2.5-flash", "provider": "p"}],
        }

    config = parse_config(raw(base), env={"TOKEN": "t0k"})
    assert config.settings.tracing is not None
    assert config.settings.tracing.headers == {"a": "t0k"}
    assert parse_config(raw({"master_key": "k" * 20}), env={}).settings.tracing is None
    with pytest.raises(ConfigError, match=r"settings\.tracing\.sample_ratio"):
        parse_config(raw({**base, "tracing": {"sample_ratio": 2}}), env={})
