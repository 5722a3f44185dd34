"""A fast simulated OpenAI chat-completions provider on loopback.

Used by the gateway's integration tests, the benchmark and the demo. It is a raw
`asyncio.Protocol` + `httptools` HTTP/1.1 server so it is never the benchmark bottleneck: the
common path (no latency, no fault) answers synchronously inside `data_received` with no task,
no timer and one `transport.write`. Large bodies are read without decoding their data URLs
(`sim_request`): ~20 us of CPU per small request, ~0.1 ms per 300 KB image request when run
as its own process (`main`, which also keeps glibc from unmapping freed large blocks).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import deque
from types import TracebackType
from typing import Any

import msgspec

from nemorouter.testing import sim_http as http
from nemorouter.testing import sim_malformed as malformed
from nemorouter.testing import sim_models
from nemorouter.testing.sim_answers import (
    IMAGE_TOKENS,
    PromptCounting,
    SimAnswer,
    build_answer,
    completion_tokens,
)
from nemorouter.testing.sim_batches import SimBatches
from nemorouter.testing.sim_control import control, take_quota
from nemorouter.testing.sim_http import Deferred, Headers, HttpConnection
from nemorouter.testing.sim_param_rules import openai_refusal
from nemorouter.testing.sim_request import LongStrings, read_chat
from nemorouter.testing.sim_tool_calls import calls_answer, required_calls
from nemorouter.testing.sim_types import Fault, RecordedRequest

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]

__all__ = ["Fault", "RecordedRequest", "SimulatedProvider"]

_CHAT_PATHS = frozenset({b"/v1/chat/completions", b"/chat/completions"})
_WINDOW = 60.0
_BATCH_PATHS = (b"/v1/files", b"/v1/batches")
_decode = msgspec.json.decode

_DEFAULT_MODELS = ("sim-small", "sim-large")


class SimulatedProvider:
    """OpenAI-compatible fake upstream; see the module docstring and `Fault`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        rpm: int | None = None,
        api_key: str | None = None,
        record: bool = True,
        prompt_token_factor: float = 1.0,
        system_prompt_tokens: int = 0,
        image_tokens: int = IMAGE_TOKENS,
    ) -> None:
        self.host = host
        # How prompt tokens are counted in reported usage (`PromptCounting`): settable.
        self.counting = PromptCounting(prompt_token_factor, system_prompt_tokens, image_tokens)
        self._port = port
        self.latency_ms = latency_ms  # read once per request, so settable from any thread
        self.rpm = rpm
        # The quota's sliding window: 60 s as providers count; shorter only in tests.
        self.window_s = _WINDOW
        self.throttled = 0  # 429s answered for the own quota
        self.api_key = api_key
        self.record = record
        self.request_count = 0
        self._requests: list[RecordedRequest] = []
        self._faults: deque[Fault] = deque()  # append/popleft are atomic: no lock needed
        self._wrong_answer: str | None = None  # Fault.answer's text, for the request at hand
        self.rpm_window: deque[float] = deque()  # monotonic times of requests that used quota
        self._models: set[str] = set()
        # The models a GET of a model resource finds (sim_models); None: every model.
        self.known_models: frozenset[str] | None = None
        self._long_strings = LongStrings()  # recently seen images, recognised by one memcmp
        self.batches = SimBatches()  # OpenAI's Batch API (/v1/files, /v1/batches)
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[HttpConnection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ---- public API -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def origin(self) -> str:
        """`http://host:port`, for wire formats rooted there rather than under /v1."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self._port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self._requests)

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Queue `fault` for the next `times` chat requests (after already queued faults)."""
        self._faults.extend([fault] * times)

    def clear(self) -> None:
        """Forget recorded requests, queued faults, the request count and the RPM window."""
        self._requests.clear()
        self._faults.clear()
        self.rpm_window.clear()
        self.request_count = 0
        self.throttled = 0
        self.batches.clear()

    def start(self) -> SimulatedProvider:
        """Serve on a background thread with its own event loop; return once listening."""
        if self._thread is not None:
            raise RuntimeError("simulated provider already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            self._loop = loop
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.stop_async())
                loop.close()

        self._thread = threading.Thread(target=run, name="simulated-provider", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = self._loop = None

    async def start_async(self) -> None:
        """Serve inside the caller's running event loop."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpConnection(self._handle, self._conns),
            self.host,
            self._port,
            backlog=4096,
            reuse_address=True,
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop_async(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for conn in list(self._conns):
            conn.abort()
        await asyncio.sleep(0)  # let connection_lost callbacks run
        await server.wait_closed()

    def __enter__(self) -> SimulatedProvider:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> SimulatedProvider:
        await self.start_async()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop_async()

    # ---- request handling (event-loop thread) ---------------------------------------------------
    # Subclasses speaking another wire format (sim_gemini, sim_anthropic, fake_oauth) override
    # the hooks `_chat_target`, `_not_allowed`, `_other`, `_render_fault` and `_answer`;
    # routing, faults, latency, recording and threading stay shared.

    serves_health = True  # GET /health answers {"status": "ok"}
    model_format: str | None = "openai"  # the shape of GET /v1/models/{id} (sim_models)

    def _route(
        self,
        method: bytes,
        url: bytes,
        path: bytes,
        headers: Headers,
        body: bytes,
        auth: bytes | None,
    ) -> bytes | None:
        """Other APIs a simulator speaks besides chat (its batch API); None: not one of them.
        Here: OpenAI's Batch API (sim_batches), its lines answered as chat requests are."""
        if path.startswith(_BATCH_PATHS):
            return self.batches.handle(self._batch_answer, method, path, headers, body, auth)
        return None

    def _handle(
        self, method: bytes, url: bytes, headers: Headers, body: bytes, auth: bytes | None
    ) -> bytes | Deferred:
        path = url.split(b"?", 1)[0]
        target = self._chat_target(method, url, path)
        if target is not None:
            if method != b"POST":
                return self._not_allowed(method, path)
            return self._chat(target, headers, body, auth)
        routed = self._route(method, url, path, headers, body, auth)
        if routed is not None:
            return routed
        if path == b"/health" and self.serves_health:
            return http.HEALTH
        if method == b"GET":
            resource = sim_models.lookup(self, path, headers, auth)
            if resource is not None:
                return resource
        if path.startswith(b"/_sim/"):
            return self._control(method, path, body)
        return self._other(method, path)

    def _batch_answer(self, body: bytes, auth: bytes | None) -> bytes:
        """One line of a batch, answered as the chat endpoint answers it (no faults)."""
        return self._answer(b"/v1/chat/completions", [], body, auth, None)

    def knows(self, model: str) -> bool:
        """Whether a lookup of `model` finds it (every model, unless `known_models` is set)."""
        return self.known_models is None or model in self.known_models

    def bearer_refused(self, auth: bytes | None) -> bool:
        """Whether a Vertex call's bearer token is refused (native simulators check it)."""
        return False

    def _chat_target(self, method: bytes, url: bytes, path: bytes) -> bytes | None:
        """For a chat request, what `_chat` records and `_answer` reads (`path`, or `url`
        where the query matters); None for any other request."""
        return path if path in _CHAT_PATHS else None

    def _not_allowed(self, method: bytes, path: bytes) -> bytes:
        return http.invalid_url(405, method, path)

    def _other(self, method: bytes, path: bytes) -> bytes:
        """Any other path: the model listing, else a 404."""
        if path in (b"/v1/models", b"/models"):
            ids = [*_DEFAULT_MODELS, *sorted(self._models - set(_DEFAULT_MODELS))]
            if self.known_models is not None:
                ids = sorted(self.known_models)
            data = [
                {"id": i, "object": "model", "created": 0, "owned_by": "nemorouter-sim"}
                for i in ids
            ]
            return http.json_response(200, {"object": "list", "data": data})
        return http.invalid_url(404, method, path)

    def _chat(
        self, path: bytes, headers: Headers, body: bytes, auth: bytes | None
    ) -> bytes | Deferred:
        self.request_count += 1
        if self.record:
            self._requests.append(
                RecordedRequest("POST", path.decode(), headers, body, time.monotonic())
            )
        delay = self.latency_ms / 1000.0 if self.latency_ms else 0.0
        cut: int | None = None
        fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            if fault.kind == "status":
                return Deferred(delay, self._render_fault(fault), False)
            if fault.kind == "drop":
                return Deferred(delay, None, True)
            if fault.kind == "hang":
                return Deferred(fault.seconds, None, True)
            if fault.kind == "latency":
                delay += fault.ms / 1000.0
            if fault.kind == "cut_stream":
                cut = fault.after_chunks
            if fault.kind == "malformed":
                return Deferred(delay, self._render_malformed(fault, path, body), False)
            if fault.kind == "answer":  # read by _build_answer, on this thread, right now
                self._wrong_answer = fault.content
        try:
            reply = self._answer(path, headers, body, auth, cut)
        finally:
            self._wrong_answer = None
        if delay > 0 or cut is not None:
            return Deferred(delay, reply, cut is not None)
        return reply

    def _render_fault(self, fault: Fault) -> bytes:
        return http.render_status_fault(fault)

    def _render_malformed(self, fault: Fault, path: bytes, body: bytes) -> bytes:
        req = _decode(body)
        stream = req.get("stream") is True
        return malformed.shared(fault, stream) or malformed.openai(fault, stream, req["model"])

    def _answer(
        self, path: bytes, headers: Headers, body: bytes, auth: bytes | None, cut: int | None
    ) -> bytes:
        if self.api_key is not None and auth != b"Bearer " + self.api_key.encode():
            return http.UNAUTHORIZED
        try:
            req, long_chars = read_chat(body, self._long_strings)
        except (msgspec.DecodeError, ValueError):
            return http.BAD_JSON
        if not isinstance(req, dict):
            return http.BAD_JSON
        if not isinstance(req.get("messages"), list):
            return _missing("messages")
        model = req.get("model")
        if not isinstance(model, str):
            return _missing("model")
        refused = openai_refusal(model, req)
        if refused is not None:
            msg, param, code = refused
            return http.json_response(
                400, http.error_body(msg, "invalid_request_error", param, code)
            )
        limit_headers = b""
        if self.rpm is not None:
            limited, limit_headers = self._take_quota(self.rpm)
            if limited:
                return http.json_response(429, http.RATE_LIMITED_BODY, limit_headers)
        try:
            answer = self._build_answer(req, long_chars)
        except ValueError as exc:
            msg = f"Invalid schema for response_format: {exc}"
            return http.json_response(
                400, http.error_body(msg, "invalid_request_error", "response_format", None)
            )
        self._models.add(model)
        calls = required_calls(req)  # tool_choice "required": the calls are the answer
        if calls:
            answer = calls_answer(calls, answer)
        if req.get("stream") is True:
            opts = req.get("stream_options")
            usage = isinstance(opts, dict) and opts.get("include_usage") is True
            return http.render_stream(model, answer, usage, limit_headers, cut, calls)
        return http.render_completion(model, answer, limit_headers, cut, calls)

    def _build_answer(self, chat: dict[str, Any], long_chars: dict[str, int]) -> SimAnswer:
        """The deterministic answer, its usage counted as this provider counts prompts."""
        answer = build_answer(chat, long_chars, self.counting)
        if self._wrong_answer is not None:
            text = self._wrong_answer
            return SimAnswer(text, "stop", answer.prompt_tokens, completion_tokens(text))
        return answer

    def _over_quota(self) -> bool:
        """Whether this request exceeds the own `rpm` quota (if not, it counts against it)."""
        return self.rpm is not None and self._take_quota(self.rpm)[0]

    def _take_quota(self, rpm: int) -> tuple[bool, bytes]:
        return take_quota(self, rpm)

    def _control(self, method: bytes, path: bytes, body: bytes) -> bytes:
        return control(self, method, path, body)

    @property
    def pending_faults(self) -> int:
        """Faults injected and not yet served."""
        return len(self._faults)


def _missing(name: str) -> bytes:
    msg = f"Missing required parameter: '{name}'."
    body = http.error_body(msg, "invalid_request_error", name, "missing_required_parameter")
    return http.json_response(400, body)


if __name__ == "__main__":  # `python -m nemorouter.testing.simulated_provider` (benchmarks)
    from nemorouter.testing.sim_cli import main

    sys.exit(main(prog="python -m nemorouter.testing.simulated_provider"))
