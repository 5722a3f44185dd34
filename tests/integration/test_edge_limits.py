"""What one request may make the gateway hold: bounded bodies on every route that reads
one, and a bounded request head (431)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from nemorouter.gateway.bodies import ADMIN_BODY_BYTES, LOGIN_FORM_BYTES
from nemorouter.gateway.http_protocol import MAX_HEAD_BYTES
from nemorouter.serving import BackgroundGateway

from .conftest import MASTER_KEY

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


def exchange(gateway: BackgroundGateway, *pieces: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes (in pieces) and return what the gateway answers until it closes or
    a whole response head has arrived."""
    with socket.create_connection((gateway.host, gateway.port), timeout=timeout) as sock:
        try:
            for piece in pieces:
                sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused part-way: the answer is still there to read
        answer = b""
        while b"\r\n\r\n" not in answer:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
        return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_a_request_head_over_the_limit_is_refused_with_431(gateway: BackgroundGateway) -> None:
    big = b"x" * (MAX_HEAD_BYTES + 1024)
    answer = exchange(gateway, b"GET /health HTTP/1.1\r\nHost: gw\r\nX-Big: " + big + b"\r\n\r\n")
    assert status_of(answer) == 431, answer[:200]
    # Sent slowly, in small pieces, and as many headers: counted all the same.
    pieces = [b"GET /health HTTP/1.1\r\nHost: gw\r\n"]
    pieces += [f"X-H{i}: {'y' * 1000}\r\n".encode() for i in range(80)]
    assert status_of(exchange(gateway, *pieces, b"\r\n")) == 431
    # A long URL is part of the head too.
    path = b"/health?" + b"q" * (MAX_HEAD_BYTES + 1)
    assert status_of(exchange(gateway, b"GET " + path + b" HTTP/1.1\r\nHost: gw\r\n\r\n")) == 431


def test_heads_under_the_limit_and_large_bodies_pass(gateway: BackgroundGateway) -> None:
    headers = {"x-trace": "t" * (MAX_HEAD_BYTES // 2)}
    assert httpx.get(f"{gateway.url}/health", headers=headers).status_code == 200
    # A body far larger than the head limit, arriving with the head in one piece, is a body.
    content = b'{"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "'
    content += b"a" * (4 * MAX_HEAD_BYTES) + b'"}]}'
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {MASTER_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(content)}\r\n\r\n"
    ).encode()
    assert status_of(exchange(gateway, head + content)) == 200


def test_sign_in_refuses_a_huge_body_at_once(gateway: BackgroundGateway) -> None:
    head = (
        "POST /ui/login HTTP/1.1\r\nHost: gw\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {400 << 20}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    answer = exchange(gateway, head, b"key=" + b"k" * 60_000)
    assert status_of(answer) == 413 and time.monotonic() - started < 5
    # Without a Content-Length (chunked), refused as soon as the limit is passed.
    chunks = (b"%x\r\n%s\r\n" % (1024, b"k" * 1024) for _ in range(LOGIN_FORM_BYTES // 1024 + 2))
    response = httpx.post(
        f"{gateway.url}/ui/login",
        content=chunks,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert "the sign-in form" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/admin/keys"), ("POST", "/admin/teams"), ("PATCH", "/admin/keys/key_x")],
)
def test_admin_bodies_are_bounded(gateway: BackgroundGateway, method: str, path: str) -> None:
    if method == "PATCH":
        created = httpx.post(f"{gateway.url}/admin/keys", json={"name": "k"}, headers=ADMIN)
        path = f"/admin/keys/{created.json()['id']}"
    body = b'{"name": "' + b"n" * ADMIN_BODY_BYTES + b'"}'
    response = httpx.request(method, f"{gateway.url}{path}", content=body, headers=ADMIN)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "request_too_large"
