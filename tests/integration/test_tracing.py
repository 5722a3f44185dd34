"""OpenTelemetry traces through a real gateway driven by the openai SDK, exported to a local
OTLP/HTTP receiver that keeps every raw JSON payload it was sent."""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import openai
import pytest

from nemorouter.serving import BackgroundGateway
from nemorouter.telemetry import spans as spans_module
from nemorouter.testing import Fault, SimulatedProvider

from .conftest import MASTER_KEY, GatewayFactory, gateway_config
from .helpers import USER, read_stream

TRACEPARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT_PARENT = "00f067aa0ba902b7"


class Receiver:
    """An OTLP/HTTP collector on a loopback port: POST /v1/traces bodies, kept raw."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.paths.append(self.path)
                receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                receiver.payloads.append(body)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self) -> list[dict[str, Any]]:
        found = []
        for payload in self.payloads:
            for resource in json.loads(payload)["resourceSpans"]:
                for scope in resource["scopeSpans"]:
                    found += scope["spans"]
        return found

    def wait_spans(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.spans()
            if len(found) >= count:
                time.sleep(0.2)  # nothing more should come
                return self.spans()
            time.sleep(0.02)
        return self.spans()

    def clear(self) -> None:
        self.payloads.clear()
        self.paths.clear()
        self.headers.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


def attrs(span: dict[str, Any]) -> dict[str, Any]:
    """A span's attributes as plain values (OTLP JSON: int64 as strings)."""
    out: dict[str, Any] = {}
    for item in span["attributes"]:
        value = item["value"]
        if "stringValue" in value:
            out[item["key"]] = value["stringValue"]
        elif "intValue" in value:
            assert isinstance(value["intValue"], str)  # OTLP JSON: int64 as a decimal string
            out[item["key"]] = int(value["intValue"])
        elif "boolValue" in value:
            out[item["key"]] = value["boolValue"]
        elif "arrayValue" in value:
            out[item["key"]] = [v["stringValue"] for v in value["arrayValue"]["values"]]
        else:
            out[item["key"]] = value["doubleValue"]
    return out


def traced(receiver_url: str, sim: SimulatedProvider, **settings: Any) -> dict[str, Any]:
    tracing = {"otlp_endpoint": receiver_url, "export_interval_s": 0.05, "service_name": "gw-test"}
    return gateway_config(sim, tracing=tracing, **settings)


@pytest.fixture
def traced_gateway(
    start_gateway: GatewayFactory, receiver: Receiver, sim: SimulatedProvider
) -> BackgroundGateway:
    gateway = start_gateway(traced(receiver.url, sim))
    receiver.clear()
    return gateway


def client_for(gateway: BackgroundGateway, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.base_url,
        api_key=MASTER_KEY,
        max_retries=0,
        timeout=20,
        default_headers=headers or None,
    )


def server_and_clients(found: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    servers = [s for s in found if s["kind"] == 2]
    assert len(servers) == 1, found
    server = servers[0]
    clients = [s for s in found if s["kind"] == 3]
    for client in clients:
        assert client["traceId"] == server["traceId"]
        assert client["parentSpanId"] == server["spanId"]
    return server, sorted(clients, key=lambda s: int(s["startTimeUnixNano"]))


def test_plain_call_one_server_span_one_attempt(
    traced_gateway: BackgroundGateway, receiver: Receiver
) -> None:
    client = client_for(traced_gateway)
    raw = client.chat.completions.with_raw_response.create(
        model="gemini-2.5-flash",
        messages=USER,
        max_tokens=50,
        extra_body={"tags": ["vision"], "metadata": {"job_id": "job-7"}},
    )
    answer = raw.parse()
    found = receiver.wait_spans(2)
    assert len(found) == 2
    server, (attempt,) = server_and_clients(found)
    assert receiver.paths[0] == "/v1/traces"
    assert receiver.headers[0]["content-type"] == "application/json"
    resource = json.loads(receiver.payloads[0])["resourceSpans"][0]["resource"]
    assert {"key": "service.name", "value": {"stringValue": "gw-test"}} in resource["attributes"]
    assert len(server["traceId"]) == 32 and len(server["spanId"]) == 16
    assert "parentSpanId" not in server
    assert int(server["endTimeUnixNano"]) >= int(attempt["endTimeUnixNano"])
    assert int(server["startTimeUnixNano"]) <= int(attempt["startTimeUnixNano"])
    assert server["name"] == "chat gemini-2.5-flash"
    s = attrs(server)
    assert s["gen_ai.operation.name"] == "chat"
    assert s["gen_ai.request.model"] == "gemini-2.5-flash"
    assert s["gen_ai.response.model"] == "gemini-2.5-flash"
    assert s["gen_ai.provider.name"] == "openai"  # an openai-compatible upstream
    assert s["gen_ai.request.max_tokens"] == 50
    assert s["gen_ai.usage.input_tokens"] == answer.usage.prompt_tokens
    assert s["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens
    assert s["gen_ai.response.finish_reasons"] == ["stop"]
    assert s["gen_ai.response.id"] == answer.id
    assert s["nemo.cost_usd"] == raw.headers["x-nemo-response-cost"]
    assert Decimal(s["nemo.cost_usd"]) > 0
    assert s["nemo.cache"] == "SKIP"
    assert s["nemo.tags"] == ["vision"]
    assert s["nemo.job_id"] == "job-7"
    assert s["nemo.key_id"] == "master"
    assert s["nemo.fallbacks"] == 0 and s["nemo.attempts"] == 1
    assert s["nemo.deployment"] == raw.headers["x-nemo-deployment"]
    assert s["nemo.request_id"] == raw.headers["x-request-id"]
    assert s["http.response.status_code"] == 200
    assert "error.type" not in s and "status" not in server
    a = attrs(attempt)
    assert attempt["name"].startswith("chat flash-upstream-")
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == a["gen_ai.response.model"]
    assert a["nemo.deployment"] == raw.headers["x-nemo-deployment"]
    assert a["nemo.attempt"] == 1 and a["nemo.retry"] is False and a["nemo.fallback"] == 0
    assert a["nemo.outcome"] == "ok"
    assert a["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens


def test_failover_two_attempts_first_marked_error(
    traced_gateway: BackgroundGateway, receiver: Receiver, sim: SimulatedProvider
) -> None:
    sim.inject(Fault.status(503))
    raw = client_for(traced_gateway).chat.completions.with_raw_response.create(
        model="gemini-2.5-flash", messages=USER
    )
    assert raw.headers["x-nemo-attempts"] == "2"
    server, (first, second) = server_and_clients(receiver.wait_spans(3))
    one, two = attrs(first), attrs(second)
    assert first["status"] == {"code": 2, "message": "server_error"}
    assert one["error.type"] == "server_error" and one["nemo.outcome"] == "server_error"
    assert one["http.response.status_code"] == 503
    assert one["nemo.attempt"] == 1 and one["nemo.retry"] is False
    assert "status" not in second and two["nemo.outcome"] == "ok"
    assert two["nemo.attempt"] == 2 and two["nemo.retry"] is True
    assert one["nemo.deployment"] != two["nemo.deployment"]  # the retry went to the sibling
    assert attrs(server)["nemo.attempts"] == 2 and "status" not in server


def test_all_failed_marks_the_request_span(
    traced_gateway: BackgroundGateway, receiver: Receiver, sim: SimulatedProvider
) -> None:
    sim.inject(Fault.status(503), times=10)
    with pytest.raises(openai.APIStatusError):
        client_for(traced_gateway).chat.completions.create(model="gemini-2.5-flash", messages=USER)
    found = receiver.wait_spans(3)
    server, attempts = server_and_clients(found)
    assert attempts and all(a["status"]["code"] == 2 for a in attempts)
    s = attrs(server)
    assert s["error.type"] == "all_deployments_failed"
    assert s["http.response.status_code"] == 503
    assert server["status"] == {"code": 2, "message": "all_deployments_failed"}


def test_stream_span_ends_at_the_stream_end_with_its_cost(
    traced_gateway: BackgroundGateway, receiver: Receiver, sim: SimulatedProvider
) -> None:
    client = client_for(traced_gateway)
    response = client.chat.completions.with_raw_response.create(
        model="gemini-2.5-flash",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    streamed = read_stream(response.parse())
    closed = time.time_ns()
    assert streamed.usage is not None
    server, (attempt,) = server_and_clients(receiver.wait_spans(2))
    s = attrs(server)
    assert int(server["endTimeUnixNano"]) <= closed
    # the attempt's span stayed open while the stream ran: it ends with the request's
    assert attempt["endTimeUnixNano"] == server["endTimeUnixNano"]
    assert s["nemo.stream"] is True
    # the cost is known only once the stream has ended (from its usage chunk)
    assert Decimal(s["nemo.cost_usd"]) > 0
    assert s["nemo.cost_usd"] == (streamed.usage.model_extra or {})["cost"]
    assert s["gen_ai.usage.output_tokens"] == streamed.usage.completion_tokens
    assert attrs(attempt)["gen_ai.usage.output_tokens"] == streamed.usage.completion_tokens


def test_cache_hit_has_no_attempt_span(
    start_gateway: GatewayFactory, receiver: Receiver, sim: SimulatedProvider
) -> None:
    gateway = start_gateway(traced(receiver.url, sim, cache={"enabled": True}))
    receiver.clear()
    client = client_for(gateway)
    client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    first = receiver.wait_spans(2)
    assert attrs(server_and_clients(first)[0])["nemo.cache"] == "MISS"
    receiver.clear()
    raw = client.chat.completions.with_raw_response.create(model="gemini-2.5-flash", messages=USER)
    assert raw.headers["x-nemo-cache"] == "HIT"
    found = receiver.wait_spans(1)
    server, attempts = server_and_clients(found)
    assert attempts == []
    s = attrs(server)
    assert s["nemo.cache"] == "HIT" and s["nemo.cost_usd"] == "0"


def test_client_traceparent_is_joined(
    traced_gateway: BackgroundGateway, receiver: Receiver
) -> None:
    client = client_for(
        traced_gateway, traceparent=f"00-{TRACEPARENT_TRACE}-{TRACEPARENT_PARENT}-01"
    )
    client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    server, (attempt,) = server_and_clients(receiver.wait_spans(2))
    assert server["traceId"] == TRACEPARENT_TRACE
    assert server["parentSpanId"] == TRACEPARENT_PARENT
    assert attempt["traceId"] == TRACEPARENT_TRACE
    # A caller that did not sample its trace is followed: no span at all.
    receiver.clear()
    unsampled = client_for(
        traced_gateway, traceparent=f"00-{TRACEPARENT_TRACE}-{TRACEPARENT_PARENT}-00"
    )
    unsampled.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    time.sleep(0.3)
    assert receiver.spans() == []


def test_no_image_bytes_prompt_or_key_in_the_payload(
    traced_gateway: BackgroundGateway, receiver: Receiver, sim: SimulatedProvider
) -> None:
    image = base64.b64encode(os.urandom(3000)).decode()
    prompt = "Secret-prompt-text: read the invoice number."
    content = [
        {"type": "text", "text": prompt},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + image}},
    ]
    answer = client_for(traced_gateway).chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": content}]
    )
    receiver.wait_spans(2)
    raw = b"".join(receiver.payloads).decode()
    assert image[:64] not in raw
    assert MASTER_KEY not in raw
    assert prompt not in raw
    assert (answer.choices[0].message.content or "")[:40] not in raw
    # a refused key: its span says so, and holds no part of the key sent
    receiver.clear()
    bad = openai.OpenAI(
        base_url=traced_gateway.base_url, api_key="sk-wrong-key-abcdef", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    (span,) = receiver.wait_spans(1)
    assert attrs(span)["error.type"] == "invalid_api_key"
    assert "sk-wrong-key" not in b"".join(receiver.payloads).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_collector_down_does_not_slow_or_fail_requests(
    start_gateway: GatewayFactory, sim: SimulatedProvider
) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    gateway = start_gateway(traced(down, sim))
    client = client_for(gateway)
    started = time.perf_counter()
    for _ in range(20):
        client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0  # a connect failure per request would show; it happens in the background
    deadline = time.monotonic() + 5
    dropped = 0.0
    while time.monotonic() < deadline:
        metrics = httpx.get(gateway.url + "/metrics").text
        line = [x for x in metrics.splitlines() if x.startswith("nemorouter_trace_spans_dropped")]
        dropped = float(line[0].split()[-1]) if line else 0.0
        if dropped >= 40:
            break
        time.sleep(0.05)
    assert dropped == 40  # 20 request spans and 20 attempt spans, all counted
    assert "nemorouter_trace_spans_exported_total 0.0" in metrics


def test_tracing_off_builds_no_spans(
    start_gateway: GatewayFactory,
    receiver: Receiver,
    sim: SimulatedProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[object] = []
    original = spans_module.Span.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(spans_module.Span, "__init__", counting)
    gateway = start_gateway(gateway_config(sim))
    receiver.clear()
    assert gateway.app.services.pipeline.tracer is None
    client = client_for(gateway, traceparent=f"00-{TRACEPARENT_TRACE}-{TRACEPARENT_PARENT}-01")
    client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    read_stream(
        client.chat.completions.create(model="gemini-2.5-flash", messages=USER, stream=True)
    )
    time.sleep(0.3)
    assert built == []
    assert receiver.payloads == []
    assert "nemorouter_trace_spans" not in httpx.get(gateway.url + "/metrics").text


def test_virtual_key_id_recorded_never_its_secret(
    traced_gateway: BackgroundGateway, receiver: Receiver
) -> None:
    created = httpx.post(
        traced_gateway.url + "/admin/keys",
        json={"name": "tracing", "default_tags": ["vision"]},
        headers={"authorization": f"Bearer {MASTER_KEY}"},
    ).json()
    receiver.clear()
    client = openai.OpenAI(base_url=traced_gateway.base_url, api_key=created["key"], max_retries=0)
    client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    server, _ = server_and_clients(receiver.wait_spans(2))
    s = attrs(server)
    assert s["nemo.key_id"] == created["id"]
    assert s["nemo.tags"] == ["vision"]  # the key's default tags
    raw = b"".join(receiver.payloads).decode()
    assert created["key"] not in raw and created["key"][-12:] not in raw


def test_stream_cut_off_is_known_at_its_end(
    traced_gateway: BackgroundGateway, receiver: Receiver, sim: SimulatedProvider
) -> None:
    """The stream's outcome is only known when it ends: the span carries it, so it was
    ended by the stream's close, not when the stream opened."""
    sim.inject(Fault.cut_stream(after_chunks=2))
    client = client_for(traced_gateway)
    with pytest.raises(openai.APIError):
        read_stream(
            client.chat.completions.create(model="gemini-2.5-flash", messages=USER, stream=True)
        )
    server, (attempt,) = server_and_clients(receiver.wait_spans(2))
    assert attrs(server)["error.type"] == "stream_interrupted"
    assert server["status"] == {"code": 2, "message": "stream_interrupted"}
    assert attrs(attempt)["error.type"] == "stream_interrupted"
    assert attempt["endTimeUnixNano"] == server["endTimeUnixNano"]


def test_spans_flushed_on_shutdown(
    start_gateway: GatewayFactory, receiver: Receiver, sim: SimulatedProvider
) -> None:
    config = traced(receiver.url, sim)
    config["settings"]["tracing"]["export_interval_s"] = 600  # only the shutdown sends them
    gateway = start_gateway(config)
    receiver.clear()
    client_for(gateway).chat.completions.create(model="gemini-2.5-flash", messages=USER)
    time.sleep(0.2)
    assert receiver.payloads == []
    gateway.stop()
    assert len(receiver.spans()) == 2


def test_collector_that_never_answers_does_not_slow_requests(
    start_gateway: GatewayFactory, sim: SimulatedProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """A collector that takes the connection and never answers: each batch waits out its
    export timeout in the background; requests go on at full speed."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # connections complete in the kernel; nobody reads them
        url = f"http://user:secret@127.0.0.1:{silent.getsockname()[1]}"
        config = traced(url, sim)
        config["settings"]["tracing"].update(export_timeout_s=0.3, max_queue=10)
        gateway = start_gateway(config)
        client = client_for(gateway)
        client.chat.completions.create(model="gemini-2.5-flash", messages=USER)  # warm
        started = time.perf_counter()
        for _ in range(30):
            client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
        assert time.perf_counter() - started < 5.0
        time.sleep(0.8)
        metrics = httpx.get(gateway.url + "/metrics").text
        line = [x for x in metrics.splitlines() if x.startswith("nemorouter_trace_spans_dropped")]
        assert float(line[0].split()[-1]) >= 20  # the queue's bound and the timed-out batches
    warnings = [r.getMessage() for r in caplog.records if r.name == "nemorouter.tracing"]
    assert len(warnings) == 1  # one line a minute at most
    assert "secret" not in warnings[0] and "UpstreamTimeout" in warnings[0]
