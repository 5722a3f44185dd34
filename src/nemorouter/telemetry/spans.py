"""Spans, the tracer that starts them, and the W3C `traceparent` a client sends.

A span is a plain object with its attributes in a dict; nothing is encoded on the request
path (the exporter turns spans into OTLP JSON in its background task). With tracing off no
tracer exists and nothing here runs: the pipeline checks `tracer is None` once.

Sampling follows the SDK's default `ParentBased(TraceIdRatioBased(ratio))`: a request whose
client sent a `traceparent` follows that caller's sampled flag; one without is kept when
its new trace id falls under the ratio (OpenTelemetry specification, trace/sdk.md,
"TraceIdRatioBased": the decision uses the trace id, so every service agrees on it).
"""

from __future__ import annotations

import random
import re
import time
from typing import Any, Protocol

SERVER = 2  # OTLP Span.SpanKind (opentelemetry-proto trace/v1/trace.proto)
CLIENT = 3
_TRACEPARENT = re.compile(rb"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16
# Ids need to be unique, not secret (the SDK uses `random` too); the module's own generator
# is reseeded in a forked worker, so two workers never share a sequence.
_bits = random.getrandbits
_MAX_ID = 2**64


class Sink(Protocol):
    def add(self, span: Span) -> None: ...


class Span:
    __slots__ = (
        "attrs",
        "end_ns",
        "error",
        "kind",
        "name",
        "open_child",
        "parent_id",
        "sink",
        "span_id",
        "start_ns",
        "trace_id",
    )

    def __init__(
        self, sink: Sink, trace_id: str, parent_id: str, name: str, kind: int, start_ns: int = 0
    ) -> None:
        self.sink = sink
        self.trace_id = trace_id
        self.span_id = f"{_bits(64) or 1:016x}"
        self.parent_id = parent_id
        self.name = name
        self.kind = kind
        self.start_ns = start_ns or time.time_ns()
        self.end_ns = 0
        self.attrs: dict[str, Any] = {}
        self.error: str | None = None  # status ERROR with this description
        self.open_child: Span | None = None  # a streamed attempt: ends with its request

    def child(self, name: str, kind: int = CLIENT) -> Span:
        return Span(self.sink, self.trace_id, self.span_id, name, kind)

    def end(self, end_ns: int = 0) -> None:
        """Ends once; later calls are ignored (a span is exported once)."""
        if self.end_ns:
            return
        self.end_ns = end_ns or time.time_ns()
        self.sink.add(self)


class Tracer:
    """Starts request spans (server kind), sampled, joined to a client's trace."""

    def __init__(self, sink: Sink, sample_ratio: float = 1.0) -> None:
        self.sink = sink
        self.sample_ratio = sample_ratio
        # TraceIdRatioBased: keep a trace whose lower 64 bits are below ratio * 2^64.
        self._bound = round(sample_ratio * _MAX_ID)

    def request_span(self, name: str, traceparent: bytes | None) -> Span | None:
        """The request's span, or None when this trace is not sampled."""
        parent = parse_traceparent(traceparent) if traceparent else None
        if parent is not None:
            trace_id, parent_id, sampled = parent
            if not sampled:
                return None
        else:
            low = _bits(64)
            if low >= self._bound:
                return None
            trace_id = f"{_bits(64) or 1:016x}{low:016x}"
            parent_id = ""
        return Span(self.sink, trace_id, parent_id, name, SERVER)


def parse_traceparent(value: bytes) -> tuple[str, str, bool] | None:
    """(trace id, parent span id, sampled) of a W3C Trace Context `traceparent` header
    (https://www.w3.org/TR/trace-context/#traceparent-header), or None if it is not valid:
    the request then starts a trace of its own, as the recommendation says. Version ff is
    invalid; a later version is read by its first four fields."""
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == b"ff" or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    if version == b"00" and rest:  # version 00 has exactly four fields
        return None
    return trace_id.decode(), parent_id.decode(), bool(int(flags, 16) & 1)
