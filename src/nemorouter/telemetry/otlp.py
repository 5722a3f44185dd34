"""A batching OTLP/HTTP exporter of spans, JSON-encoded, over the gateway's own HTTP client.

Why not opentelemetry-sdk: the gateway needs one exporter and two span kinds; the SDK's
span processor and context machinery would cost per request what the rest of the hot path
was measured down to (DESIGN §4), and its exporter needs `requests`. OTLP/HTTP takes the
JSON encoding of `ExportTraceServiceRequest` (OTLP specification, "OTLP/HTTP" and "JSON
Protobuf Encoding", https://opentelemetry.io/docs/specs/otlp/): trace and span ids as hex
strings, 64-bit integers (the nanosecond times, int attributes) as decimal strings, field
names in lowerCamelCase, enums as their integer values.

Spans wait in a bounded queue; a background task sends them in batches every
`interval_s` (sooner once a batch is full). Nothing on the request path waits for the
collector: a full queue drops the span (counted), and a collector that is down or slow
fails its batch in the background (counted as dropped, one log line per minute at most).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import orjson

from nemorouter.providers.http import HTTPPool
from nemorouter.telemetry.spans import Span

log = logging.getLogger("nemorouter.tracing")
SCOPE = {"name": "nemorouter"}
LOG_EVERY_S = 60.0  # one line about dropped spans per minute at most


def attribute(key: str, value: Any) -> dict[str, Any]:
    """One OTLP KeyValue (common/v1/common.proto AnyValue, JSON mapping); strings first:
    most attributes are."""
    kind = type(value)
    if kind is str:
        return {"key": key, "value": {"stringValue": value}}
    if kind is bool:
        return {"key": key, "value": {"boolValue": value}}
    if kind is int:
        return {"key": key, "value": {"intValue": str(value)}}
    if kind is float:
        return {"key": key, "value": {"doubleValue": value}}
    if kind is list or kind is tuple:
        items = [{"stringValue": str(item)} for item in value]
        return {"key": key, "value": {"arrayValue": {"values": items}}}
    return {"key": key, "value": {"stringValue": str(value)}}


def encode_span(span: Span) -> dict[str, Any]:
    encoded: dict[str, Any] = {
        "traceId": span.trace_id,
        "spanId": span.span_id,
        "name": span.name,
        "kind": span.kind,
        "startTimeUnixNano": str(span.start_ns),
        "endTimeUnixNano": str(span.end_ns),
        "attributes": [attribute(k, v) for k, v in span.attrs.items() if v is not None],
    }
    if span.parent_id:
        encoded["parentSpanId"] = span.parent_id
    if span.error is not None:  # STATUS_CODE_ERROR; success leaves the status unset
        encoded["status"] = {"code": 2, "message": span.error}
    return encoded


def encode_request(spans: list[Span], resource: dict[str, Any]) -> bytes:
    """An ExportTraceServiceRequest holding `spans`, as OTLP JSON."""
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": resource,
                    "scopeSpans": [{"scope": SCOPE, "spans": [encode_span(s) for s in spans]}],
                }
            ]
        }
    )


class OTLPExporter:
    """Collects ended spans (`add`, never blocking) and posts them in the background."""

    def __init__(
        self,
        url: str,
        service_name: str,
        headers: dict[str, str] | None = None,
        *,
        interval_s: float = 1.0,
        max_queue: int = 2048,
        batch_size: int = 512,
        timeout_s: float = 5.0,
    ) -> None:
        parts = urlsplit(url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        # for the log: no user or password a URL may carry
        self.where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
        self.path = parts.path or "/"
        self.resource = {"attributes": [attribute("service.name", service_name)]}
        self.extra = b"".join(
            b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in (headers or {}).items()
        )
        self.interval_s = interval_s
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.exported = 0
        self.dropped = 0
        self._queue: deque[Span] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._pool: HTTPPool | None = None
        self._dropped_logged = 0
        self._logged_at = -LOG_EVERY_S

    def add(self, span: Span) -> None:
        queue = self._queue
        if len(queue) >= self.max_queue:
            self.dropped += 1
            return
        queue.append(span)
        if len(queue) >= self.batch_size and self._wake is not None:
            self._wake.set()

    async def start(self) -> None:
        # One connection: batches go one after another.
        self._pool = HTTPPool(self.origin, max_connections=1, connect_timeout=self.timeout_s)
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="otlp-exporter")

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()
            while self._queue:
                await self._send_batch()
                if len(self._queue) < self.batch_size:
                    break

    async def _send_batch(self) -> None:
        queue = self._queue
        batch = [queue.popleft() for _ in range(min(len(queue), self.batch_size))]
        body = encode_request(batch, self.resource)
        assert self._pool is not None
        try:
            response = await self._pool.post(self.path, body, self.extra, self.timeout_s)
            failed = None if 200 <= response.status < 300 else f"HTTP {response.status}"
        except asyncio.CancelledError:  # stopped mid-send (shutdown): the batch is lost
            self.dropped += len(batch)
            raise
        except Exception as exc:  # the collector is down, slow or refusing: never our caller's
            failed = type(exc).__name__
        if failed is None:
            self.exported += len(batch)
            return
        self.dropped += len(batch)
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_S:
            log.warning(
                "tracing: the collector at %s did not take %d spans (%s); %d dropped so far",
                self.where, len(batch), failed, self.dropped,
            )  # fmt: skip
            self._logged_at = now

    async def close(self) -> None:
        """Stop the background task, then send what is queued (the caller bounds the wait:
        wiring's `bounded`)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            while self._queue:
                await self._send_batch()
        finally:
            self.dropped += len(self._queue)  # left behind if the bound cut the flush
            self._queue.clear()
            if self._pool is not None:
                await self._pool.close()
