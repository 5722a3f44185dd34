"""Telling "nothing listens at the base URL" from "the gateway is there but slow", with the
real HTTP client against real sockets; the job stops only after failures in a row over time."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from nemorouter.batch.client import GatewayClient, GatewayUnreachable, process_page
from nemorouter.batch.pacing import Pacer
from nemorouter.batch.prompts import classification
from nemorouter.batch.reach import Reachability, is_connection_failure
from nemorouter.batch.sources import Page
from nemorouter.providers.http import HTTPPool
from nemorouter.providers.http_connection import UpstreamDisconnected, UpstreamTimeout

from .test_batch_client import answer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def failure_of(handler: Any, deadline_s: float = 5.0) -> BaseException:
    """What the pool raises for one POST to a server running `handler` (None: no server)."""
    port = free_port()
    server = await asyncio.start_server(handler, "127.0.0.1", port) if handler else None
    pool = HTTPPool(f"http://127.0.0.1:{port}/v1", max_connections=1, connect_timeout=2.0)
    try:
        await pool.post("/chat/completions", b"{}", b"", deadline_s)
    except (UpstreamTimeout, UpstreamDisconnected) as exc:
        return exc
    finally:
        await pool.close()
        if server is not None:
            server.close()
    raise AssertionError("the POST succeeded")


async def test_refused_and_reset_are_connection_failures_a_slow_answer_is_not() -> None:
    assert is_connection_failure(await failure_of(None))  # nothing listening: refused

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.transport.abort()  # closed before any answer

    assert is_connection_failure(await failure_of(reset))

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)  # connected, reading, never answering in time

    late = await failure_of(slow, deadline_s=0.2)
    assert isinstance(late, UpstreamTimeout) and not is_connection_failure(late)
    # The pool's own connect timeout (a host that drops packets) counts as unreachable.
    assert is_connection_failure(UpstreamTimeout("cannot connect to 10.255.255.1:80 in time"))


def test_unreachable_only_after_failures_in_a_row_over_two_seconds() -> None:
    clock = Clock()
    reach = Reachability(clock)
    error = UpstreamDisconnected("cannot connect to h:1: refused")
    assert not reach.failed(error) and not reach.failed(error) and not reach.failed(error)
    clock.now += 1.9  # a burst of concurrent failures is one moment: a restart is tolerated
    assert not reach.failed(error)
    reach.reached()  # any answer: the gateway is back
    clock.now += 5
    assert not reach.failed(error) and not reach.failed(error)
    clock.now += 2.0
    assert reach.failed(error)
    assert reach.failures == 3 and reach.last_error == str(error)


async def test_the_client_raises_unreachable_with_the_base_url() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    client = GatewayClient(base_url, None, 5.0, 2)
    clock = Clock()
    client.reach = Reachability(clock)
    try:
        for _ in range(2):
            with pytest.raises(UpstreamDisconnected):
                await client.post({})
        clock.now += 3
        with pytest.raises(GatewayUnreachable) as stopped:
            await client.post({})
    finally:
        await client.close()
    message = str(stopped.value)
    assert message.startswith(f"cannot reach the gateway at {base_url}: 3 connection attempts")
    assert "Connect call failed" in message or "refused" in message


class ThenUnreachable:
    """Answers the question, then the gateway is gone before the re-ask."""

    def __init__(self) -> None:
        self.sent = 0

    async def post(self, body: dict[str, Any]) -> Any:
        self.sent += 1
        if self.sent == 1:
            return answer("maybe an invoice", "0.0002")
        raise GatewayUnreachable("cannot reach the gateway at http://x/v1")


async def test_unreachable_on_the_reask_keeps_the_paid_first_answer_and_frees_the_slot() -> None:
    pacer = Pacer(2)
    client: GatewayClient = ThenUnreachable()  # type: ignore[assignment]
    sends: list[int] = []
    with pytest.raises(GatewayUnreachable) as stopped:
        await process_page(
            client, pacer, classification(["invoice", "receipt"]),
            Page("a.png", 1, "image/png", b"\x89PNG", 10, 10), job_id="j", model="auto",
            tags=[], no_cache=False, on_send=lambda: sends.append(1),
        )  # fmt: skip
    record = stopped.value.record
    assert record is not None and record["cost_usd"] == "0.0002"
    assert record["answer"] == "maybe an invoice"
    assert pacer.in_flight == 0 and len(sends) == 2  # each send journalled before it went
