"""A client that leaves mid-stream makes the gateway drop the upstream stream at once."""

from __future__ import annotations

import socket
import threading
import time

import httpx

from .conftest import MASTER_KEY, GatewayFactory, fresh_sqlite_url

FIRST_EVENT = (
    b'data: {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", '
    b'"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": null}]}\n\n'
)


class SlowStreamProvider:
    """Answers one streaming request with a first event, then goes quiet; records when the
    gateway closes the connection."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.closed_at: float | None = None
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        conn.settimeout(20)
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(next(v for k, v in (line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
                           if k.lower() == b"content-length"))  # fmt: skip
        while len(body) < length:
            body += conn.recv(65536)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n" % (len(FIRST_EVENT), FIRST_EVENT)
        )
        try:
            while conn.recv(65536):
                pass
            self.closed_at = time.monotonic()
        except OSError:
            pass
        conn.close()


def test_client_disconnect_drops_the_upstream_stream(start_gateway: GatewayFactory) -> None:
    upstream = SlowStreamProvider()
    gateway = start_gateway(
        {
            "settings": {"master_key": MASTER_KEY, "database_url": fresh_sqlite_url()},
            "providers": {
                "slow": {
                    "type": "openai-compatible",
                    "base_url": f"http://127.0.0.1:{upstream.port}/v1",
                }
            },
            "deployments": [{"id": "slow", "model": "gemini-2.5-flash", "provider": "slow"}],
        }
    )
    body = {
        "model": "gemini-2.5-flash",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST",
            f"{gateway.base_url}/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {MASTER_KEY}"},
        ) as response,  # fmt: skip
    ):
        assert response.status_code == 200
        first = next(response.iter_lines())
        assert '"content":"Hel"' in first
        left_at = time.monotonic()
    deployment = gateway.app.services.pool.by_model["gemini-2.5-flash"][0]
    deadline = time.monotonic() + 5
    while upstream.closed_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert upstream.closed_at is not None, "the upstream stream was left running"
    assert upstream.closed_at - left_at < 2
    assert deployment.in_flight == 0
