"""The simulated provider against the official openai SDK and raw HTTP."""

from __future__ import annotations

import asyncio
import base64
import gzip
import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import aiohttp
import httpx
import jsonschema
import openai
import pytest

from nemorouter.testing import Fault, SimulatedProvider

MODEL = "sim-model"
HELLO = [{"role": "user", "content": "Hello there"}]
INVOICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string", "pattern": "^INV-[0-9]{4,8}$"},
        "issue_date": {"type": "string", "format": "date"},
        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
        "total": {"type": "number", "minimum": 0, "multipleOf": 0.01},
        "vendor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "lines": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {"description": {"type": "string"}, "qty": {"type": "integer"}},
                "required": ["description", "qty"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["invoice_number", "issue_date", "currency", "total", "vendor", "lines"],
    "additionalProperties": False,
}


def image_message(n_bytes: int) -> tuple[list[dict[str, Any]], str]:
    url = "data:image/png;base64," + base64.b64encode(os.urandom(n_bytes)).decode()
    content = [
        {"type": "text", "text": "Extract the total."},
        {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
    ]
    return [{"role": "user", "content": content}], url


def raw_request(
    sim: SimulatedProvider,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# ---- answers ------------------------------------------------------------------------------------


def test_plain_completion(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
    assert raw.headers["content-type"] == "application/json"
    assert "x-ratelimit-limit-requests" not in raw.headers
    r = raw.parse()
    assert r.id.startswith("chatcmpl-")
    assert r.object == "chat.completion"
    assert r.model == MODEL
    choice = r.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content is not None
    assert choice.message.content.startswith(f"Simulated answer from {MODEL} (digest ")
    assert choice.message.content.endswith("0 image(s), 11 text chars.")
    assert r.usage is not None
    assert r.usage.prompt_tokens == math.ceil(11 / 4)
    assert r.usage.completion_tokens == math.ceil(len(choice.message.content) / 4)
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert sim.request_count == 1
    again = client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert again.id != r.id
    assert again.choices[0].message.content == choice.message.content


@pytest.mark.parametrize("image_bytes", [1000, 225_000])  # a small body; a 300 KB one
def test_usage_counts_images_and_text(client: openai.OpenAI, image_bytes: int) -> None:
    messages, _ = image_message(image_bytes)
    messages.insert(0, {"role": "system", "content": "You are precise."})
    r = client.chat.completions.create(model=MODEL, messages=messages)  # type: ignore[arg-type]
    text_chars = len("You are precise.") + len("Extract the total.")
    assert r.usage is not None
    assert r.usage.prompt_tokens == math.ceil(text_chars / 4) + 258
    assert r.choices[0].message.content is not None
    assert f"1 image(s), {text_chars} text chars." in r.choices[0].message.content


def test_streaming_with_usage_matches_non_streaming(client: openai.OpenAI) -> None:
    full = client.chat.completions.create(model=MODEL, messages=HELLO)
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    pieces = [
        c.choices[0].delta.content for c in chunks[1:] if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) >= 3
    assert "".join(pieces) == full.choices[0].message.content
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage == full.usage
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_streaming_without_usage_and_raw_framing(sim: SimulatedProvider) -> None:
    body = json.dumps({"model": MODEL, "messages": HELLO, "stream": True}).encode()
    status, headers, data = raw_request(sim, "POST", "/v1/chat/completions", body)
    assert status == 200
    assert headers["content-type"] == "text/event-stream"
    assert headers["transfer-encoding"] == "chunked"
    events = [e for e in data.decode().split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all("usage" not in p and p["object"] == "chat.completion.chunk" for p in payloads)
    assert payloads[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }


def test_json_schema_answer_validates(client: openai.OpenAI) -> None:
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "invoice", "schema": INVOICE_SCHEMA}}
    answers = set()
    for i in range(5):
        messages = [{"role": "user", "content": f"Invoice number {i}"}]
        r = client.chat.completions.create(model=MODEL, messages=messages, response_format=fmt)  # type: ignore[arg-type]
        content = r.choices[0].message.content
        assert content is not None
        validator = jsonschema.Draft202012Validator(
            INVOICE_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        validator.validate(json.loads(content))
        answers.add(content)
    assert len(answers) == 5  # seeded per request: values vary


def test_json_object_answer(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        response_format={"type": "json_object"},  # type: ignore[arg-type]
    )
    assert r.choices[0].message.content is not None
    data = json.loads(r.choices[0].message.content)
    assert data["text_chars"] == 11
    assert data["images"] == 0


def test_unsatisfiable_schema_is_400(client: openai.OpenAI) -> None:
    schema = {"type": "string", "pattern": "^a$", "minLength": 5}
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=HELLO, response_format=fmt)


def test_answers_are_deterministic(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    def ask(messages: Any) -> str | None:
        return (
            client.chat.completions.create(model=MODEL, messages=messages)
            .choices[0]
            .message.content
        )

    first = ask(HELLO)
    assert ask(HELLO) == first
    assert ask([{"content": "Hello there", "role": "user"}]) == first  # key order is irrelevant
    assert ask([{"role": "user", "content": "Hello there!"}]) != first
    # the same body on a fresh server gives the same answer: nothing depends on time or state
    with SimulatedProvider() as other:
        c = openai.OpenAI(base_url=other.base_url, api_key="k", max_retries=0)
        again = c.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
        assert again.choices[0].message.content == first


def test_image_answers_are_deterministic(sim: SimulatedProvider) -> None:
    """300 KB bodies: layout and key order do not matter, one changed image byte does."""
    messages, url = image_message(225_000)

    def content(server: SimulatedProvider, body: dict[str, Any], indent: int | None = None) -> str:
        raw = json.dumps(body, indent=indent).encode()
        status, _, data = raw_request(server, "POST", "/v1/chat/completions", raw)
        assert status == 200
        return str(json.loads(data)["choices"][0]["message"]["content"])

    first = content(sim, {"model": MODEL, "messages": messages})
    assert content(sim, {"messages": messages, "model": MODEL}, indent=1) == first
    with SimulatedProvider() as fresh:  # nothing depends on what a server saw before
        assert content(fresh, {"model": MODEL, "messages": messages}) == first
    middle = len(url) // 2
    changed = url[:middle] + ("B" if url[middle] == "A" else "A") + url[middle + 1 :]
    messages[0]["content"][1]["image_url"]["url"] = changed
    assert content(sim, {"model": MODEL, "messages": messages}) != first


def test_max_tokens_truncates_with_length(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=3)
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None
    assert r.usage.completion_tokens == 3
    assert r.choices[0].message.content == "Simulated an"
    r = client.chat.completions.create(model=MODEL, messages=HELLO, max_completion_tokens=1000)
    assert r.choices[0].finish_reason == "stop"


# ---- errors -------------------------------------------------------------------------------------


def test_bad_api_key_is_401(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    sim.api_key = "secret"
    with pytest.raises(openai.AuthenticationError) as exc:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert exc.value.code == "invalid_api_key"
    assert exc.value.body == {
        "message": "Incorrect API key provided",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    good = openai.OpenAI(base_url=sim.base_url, api_key="secret", max_retries=0)
    assert good.chat.completions.create(model=MODEL, messages=HELLO).choices  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "param"),
    [(b"{not json", None), (b'{"model": "m"}', "messages"), (b'{"messages": []}', "model")],
)
def test_invalid_body_is_400(sim: SimulatedProvider, body: bytes, param: str | None) -> None:
    status, _headers, data = raw_request(sim, "POST", "/v1/chat/completions", body)
    assert status == 400
    err = json.loads(data)["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param


@pytest.mark.parametrize(
    ("code", "exc_type", "err_type"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (404, openai.NotFoundError, "invalid_request_error"),
        (429, openai.RateLimitError, "requests"),
        (500, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "server_error"),
    ],
)
def test_status_fault(
    client: openai.OpenAI,
    sim: SimulatedProvider,
    code: int,
    exc_type: type[openai.APIStatusError],
    err_type: str,
) -> None:
    sim.inject(Fault.status(code, retry_after=2))
    with pytest.raises(exc_type) as exc:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert exc.value.status_code == code
    assert exc.value.response.headers["retry-after"] == "2"
    assert exc.value.type == err_type
    assert "Simulated fault" in exc.value.message
    assert client.chat.completions.create(model=MODEL, messages=HELLO).choices  # consumed


def test_faults_are_fifo_and_counted(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    sim.inject(Fault.status(503, retry_after_ms=250), times=2)
    sim.inject(Fault.status(429))
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as exc:
            client.chat.completions.create(model=MODEL, messages=HELLO)
        assert exc.value.response.headers["retry-after-ms"] == "250"
    with pytest.raises(openai.RateLimitError) as rl:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert rl.value.code == "rate_limit_exceeded"
    assert client.chat.completions.create(model=MODEL, messages=HELLO).choices
    assert sim.request_count == 4
    sim.inject(Fault.status(500))
    sim.clear()
    assert client.chat.completions.create(model=MODEL, messages=HELLO).choices


def test_hang_times_out_without_blocking_others(
    client: openai.OpenAI, sim: SimulatedProvider
) -> None:
    sim.inject(Fault.hang(seconds=30))
    other: dict[str, float] = {}

    def second_request() -> None:
        time.sleep(0.05)
        start = time.monotonic()
        client.chat.completions.create(model=MODEL, messages=HELLO)
        other["elapsed"] = time.monotonic() - start

    t = threading.Thread(target=second_request)
    t.start()
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.4).chat.completions.create(model=MODEL, messages=HELLO)
    assert 0.35 < time.monotonic() - start < 3
    t.join()
    assert other["elapsed"] < 0.3


def test_drop_is_connection_error(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    sim.inject(Fault.drop())
    with pytest.raises(openai.APIConnectionError) as exc:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert not isinstance(exc.value, openai.APITimeoutError)
    assert client.chat.completions.create(model=MODEL, messages=HELLO).choices


def test_cut_stream(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    sim.inject(Fault.cut_stream(after_chunks=2))
    contents: list[str] = []
    finishes: list[str] = []
    stream = client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)

    def consume() -> None:
        for chunk in stream:
            contents.append(chunk.choices[0].delta.content or "")
            finishes.append(chunk.choices[0].finish_reason or "")

    with pytest.raises(openai.APIConnectionError):  # the SDK wraps the truncated-body error
        consume()
    assert len([c for c in contents if c]) == 2
    assert not any(finishes)


def test_cut_non_stream_body(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    sim.inject(Fault.cut_stream())
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model=MODEL, messages=HELLO)


def test_latency(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    sim.latency_ms = 100
    start = time.monotonic()
    client.chat.completions.create(model=MODEL, messages=HELLO)
    assert time.monotonic() - start >= 0.1
    sim.latency_ms = 0
    sim.inject(Fault.latency(150))
    start = time.monotonic()
    client.chat.completions.create(model=MODEL, messages=HELLO)
    assert time.monotonic() - start >= 0.15
    start = time.monotonic()
    client.chat.completions.create(model=MODEL, messages=HELLO)
    assert time.monotonic() - start < 0.1


def test_rpm_quota(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    sim.rpm = 2
    first = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    client.chat.completions.create(model=MODEL, messages=HELLO)
    for _ in range(2):  # rejected requests do not consume quota
        with pytest.raises(openai.RateLimitError) as exc:
            client.chat.completions.create(model=MODEL, messages=HELLO)
        headers = exc.value.response.headers
        assert 1 <= int(headers["retry-after"]) <= 60
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert exc.value.body == {
            "message": "Rate limit reached for requests",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    sim.rpm = 3
    assert client.chat.completions.create(model=MODEL, messages=HELLO).choices
    assert sim.request_count == 5


# ---- recording ----------------------------------------------------------------------------------


def test_recorded_body_is_byte_identical(sim: SimulatedProvider, client: openai.OpenAI) -> None:
    messages, url = image_message(225_000)  # ~300 KB data URL
    body = b'{"model":  "m", "messages": ' + json.dumps(messages).encode() + b"}\n"
    status, _, _ = raw_request(
        sim,
        "POST",
        "/v1/chat/completions?x=1",
        body,
        {"Content-Type": "application/json", "X-Trace": "abc"},
    )
    assert status == 200
    client.chat.completions.create(model=MODEL, messages=messages)  # type: ignore[arg-type]
    raw, via_sdk = sim.requests
    assert len(body) > 300_000
    assert raw.body == body
    assert raw.method == "POST"
    assert raw.path == "/v1/chat/completions"
    assert raw.headers["x-trace"] == "abc"
    assert raw.json()["messages"] == messages
    assert via_sdk.headers["authorization"] == "Bearer test-key"
    assert via_sdk.json()["messages"][0]["content"][1]["image_url"]["url"] == url
    assert raw.at <= via_sdk.at <= time.monotonic()


def test_record_false_still_counts(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    sim.record = False
    client.chat.completions.create(model=MODEL, messages=HELLO)
    assert sim.requests == []
    assert sim.request_count == 1


def test_large_body(sim: SimulatedProvider) -> None:
    messages, _ = image_message(18_000_000)  # 24 MB data URL
    body = json.dumps({"model": MODEL, "messages": messages}).encode()
    status, _, data = raw_request(sim, "POST", "/v1/chat/completions", body)
    assert status == 200
    assert json.loads(data)["usage"]["prompt_tokens"] == 258 + math.ceil(18 / 4)
    assert sim.requests[0].body == body


# ---- HTTP surface -------------------------------------------------------------------------------


def test_models_health_and_unknown_path(sim: SimulatedProvider) -> None:
    status, _, data = raw_request(sim, "GET", "/health")
    assert (status, json.loads(data)) == (200, {"status": "ok"})
    status, _, data = raw_request(sim, "GET", "/v1/models")
    listing = json.loads(data)
    assert status == 200
    assert listing["object"] == "list"
    assert all(m["object"] == "model" for m in listing["data"])
    status, _, data = raw_request(sim, "GET", "/v1/nope")
    assert status == 404
    assert json.loads(data)["error"]["type"] == "invalid_request_error"
    status, _, _ = raw_request(sim, "GET", "/v1/chat/completions")
    assert status == 405


def test_pipelined_and_chunked_requests(sim: SimulatedProvider) -> None:
    body = json.dumps({"model": MODEL, "messages": HELLO}).encode()
    plain = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    chunked = (
        b"POST /chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:])
    )
    health = b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    sim.latency_ms = 30  # the first reply is deferred: later ones must still come in order
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as s:
        s.sendall(plain + chunked + health)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert data.index(b"chat.completion") < data.rindex(b"chat.completion") < data.index(b'"ok"')
    assert [r.body for r in sim.requests] == [body, body]


def test_client_disconnect_during_latency(sim: SimulatedProvider, client: openai.OpenAI) -> None:
    sim.latency_ms = 200
    body = json.dumps({"model": MODEL, "messages": HELLO}).encode()
    with socket.create_connection(("127.0.0.1", sim.port)) as s:
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\ncontent-length: %d\r\n\r\n%s"
            % (len(body), body)
        )
    sim.latency_ms = 0
    time.sleep(0.25)
    assert client.chat.completions.create(model=MODEL, messages=HELLO).choices


def test_control_endpoints(sim: SimulatedProvider, client: openai.OpenAI) -> None:
    fault = {"kind": "status", "status": 503, "retry_after": 2, "times": 1}
    status, _, _ = raw_request(sim, "POST", "/_sim/faults", json.dumps(fault).encode())
    assert status == 200
    with pytest.raises(openai.InternalServerError) as exc:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert exc.value.response.headers["retry-after"] == "2"
    for kind in (
        {"kind": "drop"},
        {"kind": "hang", "seconds": 1},
        {"kind": "latency", "ms": 5},
        {"kind": "cut_stream", "after_chunks": 1},
    ):
        assert raw_request(sim, "POST", "/_sim/faults", json.dumps(kind).encode())[0] == 200
    assert raw_request(sim, "POST", "/_sim/faults", b'{"kind": "meteor"}')[0] == 400

    status, _, data = raw_request(sim, "PUT", "/_sim/config", b'{"latency_ms": 25, "rpm": 7}')
    assert status == 200
    assert json.loads(data) == {"latency_ms": 25.0, "rpm": 7, "window_s": 60.0, "throttled": 0}
    assert (sim.latency_ms, sim.rpm) == (25.0, 7)

    status, _, data = raw_request(sim, "GET", "/_sim/requests")
    listed = json.loads(data)
    assert status == 200
    assert len(listed) == 1
    assert listed[0]["method"] == "POST"
    assert listed[0]["path"] == "/v1/chat/completions"
    assert json.loads(listed[0]["body"])["messages"] == HELLO
    assert listed[0]["headers"]["authorization"] == "Bearer test-key"

    assert raw_request(sim, "POST", "/_sim/reset")[0] == 200
    assert sim.requests == []
    assert sim.request_count == 0
    sim.latency_ms, sim.rpm = 0, None
    assert client.chat.completions.create(model=MODEL, messages=HELLO).choices  # faults cleared


def test_start_async_and_concurrency() -> None:
    async def run() -> float:
        sim = SimulatedProvider(latency_ms=50)
        await sim.start_async()
        try:
            body = {"model": MODEL, "messages": HELLO}
            async with aiohttp.ClientSession() as session:

                async def one() -> int:
                    async with session.post(f"{sim.base_url}/chat/completions", json=body) as r:
                        await r.read()
                        return r.status

                start = time.monotonic()
                statuses = await asyncio.gather(*(one() for _ in range(100)))
                elapsed = time.monotonic() - start
            assert statuses == [200] * 100
            assert sim.request_count == 100
            return elapsed
        finally:
            await sim.stop_async()

    assert asyncio.run(run()) < 1.0  # 100 requests of 50 ms each, served concurrently


def test_start_twice_and_restart() -> None:
    sim = SimulatedProvider()
    with sim:
        with pytest.raises(RuntimeError):
            sim.start()
        assert sim.base_url == f"http://127.0.0.1:{sim.port}/v1"
    sim.stop()  # idempotent


def test_main_entry_point() -> None:
    cmd = [
        sys.executable,
        "-m",
        "nemorouter.testing.simulated_provider",
        "--port",
        "0",
        "--api-key",
        "X",
        "--no-record",
        "--rpm",
        "600",
        "--latency-ms",
        "1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("simulated provider listening on http://127.0.0.1:")
        base_url = line.rsplit(" ", 1)[1]
        c = openai.OpenAI(base_url=base_url, api_key="X", max_retries=0, timeout=5)
        raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
        assert raw.headers["x-ratelimit-limit-requests"] == "600"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()


def test_malformed_faults_over_the_control_api(sim: SimulatedProvider) -> None:
    """`POST /_sim/faults` queues 200s that are no answer; raw HTTP shows what was sent."""

    def chat() -> httpx.Response:
        return httpx.post(
            f"{sim.base_url}/chat/completions", json={"model": MODEL, "messages": HELLO}
        )

    for fault in (
        {"kind": "malformed", "variant": "error_in_200"},
        {"kind": "malformed", "variant": "choices_not_list"},
        {"kind": "malformed", "variant": "absurd_usage", "size": 10**13},
        {"kind": "malformed", "variant": "gzip_bomb", "size": 8},
        {"kind": "malformed", "variant": "garbage_gzip"},
        {"kind": "malformed", "variant": "oversized", "size": 1},
    ):
        assert (
            httpx.post(f"{sim.base_url.removesuffix('/v1')}/_sim/faults", json=fault).status_code
            == 200
        )
    assert "error" in chat().json()
    assert isinstance(chat().json()["choices"], dict)
    assert chat().json()["usage"]["prompt_tokens"] == 10**13
    with httpx.stream(
        "POST", f"{sim.base_url}/chat/completions", json={"model": MODEL, "messages": HELLO}
    ) as bomb:
        packed = b"".join(bomb.iter_raw())
    assert bomb.headers["content-encoding"] == "gzip" and len(packed) < 100_000
    assert len(gzip.decompress(packed)) == 8 << 20
    with pytest.raises(httpx.DecodingError):
        chat()
    assert len(chat().content) > 1 << 20
    assert chat().status_code == 200  # the queue is empty again
    with pytest.raises(ValueError, match="variant"):
        Fault.from_dict({"kind": "malformed", "variant": "nope"})
