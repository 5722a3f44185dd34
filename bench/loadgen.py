"""A closed-loop HTTP/1.1 keep-alive load generator on uvloop.

One connection per concurrent worker; each connection sends one pre-encoded request, waits
for the whole response and sends the next one straight from the parser callback (no task, no
future, no await per request), so a single core can drive well over 10,000 requests/s.
Responses are parsed by `httptools` (status line, Content-Length or chunked body).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httptools

_now = time.perf_counter


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """A complete `POST` request as bytes, sent as is on every iteration."""
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head += ["Content-Type: application/json", f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(head).encode() + body


@dataclass
class LoadResult:
    """What one measured window saw."""

    requests: int
    seconds: float
    latencies: list[float]  # seconds, one per request completed inside the window
    errors: int
    error_sample: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """The q-th percentile latency in milliseconds (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = min(len(ordered) - 1, max(0, round(q / 100.0 * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000.0

    @property
    def max_ms(self) -> float:
        return max(self.latencies, default=float("nan")) * 1000.0


class _Run:
    """Shared state of the workers of one load run."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.measuring = False
        self.stopping = False
        self.completed = 0
        self.latencies: list[float] = []
        self.errors = 0
        self.error_sample = ""
        self.failure: str | None = None
        self.idle: set[_Conn] = set()
        self.all_idle: asyncio.Future[None] | None = None
        self.conns: list[_Conn] = []

    def fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason

    def went_idle(self, conn: _Conn) -> None:
        self.idle.add(conn)
        if len(self.idle) == len(self.conns) and self.all_idle and not self.all_idle.done():
            self.all_idle.set_result(None)


class _Conn(asyncio.Protocol):
    __slots__ = ("body", "parser", "run", "sent", "status", "transport")

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.sent = 0.0
        self.status = 0
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.run.stopping:
            self.run.fail(f"server closed a connection mid-run ({exc!r})")
        self.run.went_idle(self)

    def send(self) -> None:
        if self.transport is None:
            return
        self.sent = _now()
        self.transport.write(self.run.payload)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.run.fail(f"unparsable response: {exc}")
            if self.transport is not None:
                self.transport.abort()

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self.status != 200:
            self.body.append(body)

    def on_message_complete(self) -> None:
        run = self.run
        if run.measuring:
            run.completed += 1
            run.latencies.append(_now() - self.sent)
        if self.status != 200:
            run.errors += 1
            if not run.error_sample:
                text = b"".join(self.body)[:500].decode("utf-8", "replace")
                run.error_sample = f"HTTP {self.status}: {text}"
            self.body = []
        if run.stopping:
            run.went_idle(self)
        else:
            self.send()


async def run_load(
    host: str,
    port: int,
    payload: bytes,
    concurrency: int,
    duration: float,
    warmup: float = 1.0,
    stagger: float = 0.0,
    on_start: Callable[[], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> LoadResult:
    """Keep `concurrency` requests in flight; measure the window after `warmup`.

    `stagger` spreads the workers' first requests evenly over that many seconds, so that
    with a fixed provider latency they do not arrive in lock-step bursts. `on_start` and
    `on_stop` run at the exact edges of the measured window (e.g. to sample the CPU time of
    the process under test).
    """
    loop = asyncio.get_running_loop()
    run = _Run(payload)
    for _ in range(concurrency):
        _, conn = await loop.create_connection(lambda: _Conn(run), host, port)
        run.conns.append(conn)
    for i, conn in enumerate(run.conns):
        if stagger > 0:
            loop.call_later(stagger * i / concurrency, conn.send)
        else:
            conn.send()
    await asyncio.sleep(warmup)
    if on_start is not None:
        on_start()
    started = _now()
    run.measuring = True
    await asyncio.sleep(duration)
    run.measuring = False
    seconds = _now() - started
    if on_stop is not None:
        on_stop()
    run.stopping = True
    run.all_idle = loop.create_future()
    if len(run.idle) < len(run.conns):
        try:
            await asyncio.wait_for(run.all_idle, timeout=30.0)
        except TimeoutError:
            run.fail("requests still in flight 30 s after the window closed")
    for conn in run.conns:
        if conn.transport is not None:
            conn.transport.close()
    if run.failure is not None:
        raise RuntimeError(run.failure)
    return LoadResult(run.completed, seconds, run.latencies, run.errors, run.error_sample)


async def get(host: str, port: int, path: str) -> tuple[int, bytes]:
    """One tiny `GET` on a fresh connection (readiness polls)."""
    return await request(host, port, "GET", path, b"")


async def request(host: str, port: int, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    """One request on a fresh connection (`Connection: close`), within 5 s."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    async with asyncio.timeout(5.0):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(head.encode() + body)
            raw = await reader.read()
        finally:
            writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError(f"bad response from {host}:{port}{path}: {raw[:80]!r}")
    return int(parts[1]), rest.partition(b"\r\n\r\n")[2]
