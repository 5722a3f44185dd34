"""A simulated Anthropic provider: the Messages API direct and as Claude on Vertex AI.

- Anthropic API: POST /v1/messages with the key as `x-api-key` or `Authorization: Bearer`
  (anthropic 2.17.0 sends the latter: `_client.Anthropic._api_key_auth`; checked when `api_key`
  is set) and a required `anthropic-version` header, `model` in the body;
- Vertex: POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict
  (:streamRawPredict), a bearer token checked against a `FakeOAuthServer` when one is given,
  `anthropic_version` in the body (`vertex-2023-10-16`, or the API version anthropic 2.17.0's
  `AnthropicVertex` sets: `lib/vertex/_client._prepare_options`) and no `model`.
Unknown body fields are refused as the real API does ("Extra inputs are not permitted").
Answers come from `sim_answers`; a forced tool (`tool_choice: {type: tool}`) is answered with a
`tool_use` block whose input validates against the tool's input_schema, `tool_choice: {type:
any}` with one such block per tool (parallel calls), and `output_config.format` (native
structured outputs, `types.OutputConfigParam`) with a text block holding JSON that validates
against its schema. Sampling parameters the model refuses are a 400 (`sim_param_rules`). Faults
use Anthropic error bodies: 429 `rate_limit_error` (with `retry-after`), 529 `overloaded_error`, ...
`cache_read_tokens` of every prompt are reported as cache reads.
"""

from __future__ import annotations

import os
import re
import time
import zlib
from typing import Any

import msgspec

from nemorouter.testing import sim_http as http
from nemorouter.testing import sim_malformed as malformed
from nemorouter.testing.fake_oauth import FakeOAuthServer
from nemorouter.testing.schema_instance import generate_instance
from nemorouter.testing.sim_answers import SimAnswer, split_stream
from nemorouter.testing.sim_anthropic_batches import AnthropicBatchAPI
from nemorouter.testing.sim_gcs import StorageAPI
from nemorouter.testing.sim_gemini import google_error, unauthenticated
from nemorouter.testing.sim_native import NativeSimulator
from nemorouter.testing.sim_param_rules import anthropic_format_refusal, anthropic_refusal
from nemorouter.testing.sim_request import read_chat
from nemorouter.testing.sim_types import Fault
from nemorouter.testing.sim_vertex_batches import VertexBatchAPI

_encode = msgspec.json.encode
_VERTEX = re.compile(
    rb"^/v1(?:beta1)?/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/([^/:]+)"
    rb":(rawPredict|streamRawPredict)$"
)
_MESSAGES = b"/v1/messages"
VERTEX_VERSION = "vertex-2023-10-16"
VERTEX_VERSIONS = frozenset({VERTEX_VERSION, "2026-10-21"})  # anthropic 2.17.0 sends the latter
_FIELDS = frozenset(
    {"model", "messages", "system", "max_tokens", "metadata", "stop_sequences", "stream"}
    | {"temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier"}
    | {"output_config"}
)
_BLOCKS = frozenset({"text", "image", "document", "tool_use", "tool_result", "thinking"})
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_STOP = {"stop": "end_turn", "length": "max_tokens"}


def anthropic_error(status: int, message: str, extra_headers: bytes = b"") -> bytes:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    body = {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": f"req_sim{os.urandom(6).hex()}",
    }
    return http.json_response(status, body, extra_headers)


class _Invalid(ValueError):
    pass


def validate(req: Any, vertex: bool) -> None:
    if not isinstance(req, dict):
        raise _Invalid("body: Input should be an object")
    allowed = _FIELDS | {"anthropic_version"} if vertex else _FIELDS
    for key in req:
        if key not in allowed:
            raise _Invalid(f"{key}: Extra inputs are not permitted")
    if vertex:
        if req.get("anthropic_version") not in VERTEX_VERSIONS:
            raise _Invalid(f"anthropic_version: must be one of {sorted(VERTEX_VERSIONS)}")
        if "model" in req:
            raise _Invalid("model: Extra inputs are not permitted")
    elif not isinstance(req.get("model"), str):
        raise _Invalid("model: Field required")
    if not isinstance(req.get("max_tokens"), int) or req["max_tokens"] < 1:
        raise _Invalid("max_tokens: Field required")
    messages = req.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Invalid("messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _Invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list) or not content:
            raise _Invalid(f"messages.{i}.content: Input should be a valid list")
        for j, block in enumerate(content):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind not in _BLOCKS:
                raise _Invalid(f"messages.{i}.content.{j}.type: unknown block type {kind!r}")
            if kind in ("image", "document"):
                source = block.get("source") or {}
                if source.get("type") != "base64" or not source.get("data"):
                    raise _Invalid(f"messages.{i}.content.{j}.source: base64 source required")
                if kind == "image" and source.get("media_type") not in _IMAGE_TYPES:
                    raise _Invalid(f"messages.{i}.content.{j}.source.media_type: not supported")
    system = req.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise _Invalid("system: Input should be a string or a list of text blocks")


def as_chat(req: dict[str, Any], model: str) -> dict[str, Any]:
    """The Messages request in the chat shape `build_answer` reads."""
    messages: list[dict[str, Any]] = []
    system = req.get("system")
    if system is not None:
        messages.append({"role": "system", "content": system if isinstance(system, str) else [
            {"type": "text", "text": b.get("text", "")} for b in system
        ]})  # fmt: skip
    for message in req["messages"]:
        content = message["content"]
        if isinstance(content, list):
            parts = []
            for block in content:
                if block["type"] == "text":
                    parts.append({"type": "text", "text": block.get("text", "")})
                elif block["type"] in ("image", "document"):
                    parts.append({"type": "image_url"})
                else:
                    parts.append({"type": "other", "value": block})
            content = parts
        messages.append({"role": message["role"], "content": content})
    chat: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": req["max_tokens"]}
    forced = _forced_tool(req)
    fmt = (req.get("output_config") or {}).get("format")
    if forced is not None:
        schema = forced.get("input_schema") or {}
        chat["response_format"] = {"type": "json_schema", "json_schema": {"schema": schema}}
    elif isinstance(fmt, dict):
        if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
            raise _Invalid("output_config.format: a json_schema format with a schema is required")
        refused = anthropic_format_refusal(fmt["schema"])
        if refused is not None:
            raise _Invalid(refused)
        chat["response_format"] = {"type": "json_schema", "json_schema": {"schema": fmt["schema"]}}
    return chat


def _any_tools(req: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Every tool, when `tool_choice: {type: any}` makes the model call at least one."""
    choice = req.get("tool_choice")
    if not isinstance(choice, dict) or choice.get("type") != "any":
        return None
    tools = req.get("tools") or []
    if not tools:
        raise _Invalid("tool_choice: type any needs tools")
    return list(tools)


def _forced_tool(req: dict[str, Any]) -> dict[str, Any] | None:
    choice = req.get("tool_choice")
    if not isinstance(choice, dict) or choice.get("type") != "tool":
        return None
    for tool in req.get("tools") or ():
        if tool.get("name") == choice.get("name"):
            return tool
    raise _Invalid(f"tool_choice: tool {choice.get('name')!r} not found in tools")


class SimulatedAnthropic(NativeSimulator):
    """Anthropic Messages fake, direct (`api_key`) and on Vertex (`oauth`)."""

    def __init__(
        self, oauth: FakeOAuthServer | None = None, cache_read_tokens: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(oauth, **kwargs)
        self.cache_read_tokens = cache_read_tokens
        # Prompt tokens reported as cache writes, by TTL (usage.cache_creation).
        self.cache_write_5m_tokens = 0
        self.cache_write_1h_tokens = 0
        self.message_batches = AnthropicBatchAPI(self)  # (sim_anthropic_batches)
        self.storage = StorageAPI(self)  # Cloud Storage JSON API (sim_gcs)
        self.vertex_batches = VertexBatchAPI(self, self.storage)  # (sim_vertex_batches)
        self.apis = [self.message_batches.route, self.vertex_batches.route, self.storage.route]

    model_format = "anthropic"  # GET of a model resource (sim_models)

    def _chat_target(self, method: bytes, url: bytes, path: bytes) -> bytes | None:
        return path if path == _MESSAGES or _VERTEX.match(path) else None

    def _not_allowed(self, method: bytes, path: bytes) -> bytes:
        return anthropic_error(405, "Method not allowed")

    def _other(self, method: bytes, path: bytes) -> bytes:
        return anthropic_error(404, f"Not found: {path.decode('latin-1')}")

    def _render_fault(self, fault: Fault) -> bytes:
        code = fault.code
        messages = {429: "Number of requests has exceeded your rate limit", 529: "Overloaded"}
        message = messages.get(code, f"Simulated fault: HTTP {code}")
        return anthropic_error(code, message, http.retry_headers(fault))

    def _render_malformed(self, fault: Fault, path: bytes, body: bytes) -> bytes:
        req = msgspec.json.decode(body)
        stream = req.get("stream") is True
        model = req.get("model") or "claude"
        return malformed.shared(fault, stream) or malformed.anthropic(fault, stream, model)

    def _answer(
        self, path: bytes, headers: http.Headers, body: bytes, auth: bytes | None, cut: int | None
    ) -> bytes:
        vertex = _VERTEX.match(path)
        named = {n.lower(): v for n, v in headers}
        if vertex and self._bearer_refused(auth):
            return unauthenticated()
        if not vertex:
            key = named.get(b"x-api-key") or (auth or b"").removeprefix(b"Bearer ")
            if self.api_key is not None and key != self.api_key.encode():
                return anthropic_error(401, "invalid x-api-key")
            if b"anthropic-version" not in named:
                return anthropic_error(400, "anthropic-version: header is required")
        try:
            req, long_chars = read_chat(body, self._long_strings)
            validate(req, vertex is not None)
            model = vertex[1].decode() if vertex else req["model"]
            refused = anthropic_refusal(model, req)
            if refused is not None:
                raise _Invalid(refused)
            chat = as_chat(req, model)
            forced = _forced_tool(req)
            called = None if forced is not None else _any_tools(req)
        except _Invalid as exc:
            return anthropic_error(400, str(exc))
        except (msgspec.DecodeError, ValueError):
            return anthropic_error(400, "There was an error parsing the body of your request.")
        if self._over_quota():
            if vertex:  # Vertex quota errors come in Google's shape, list-wrapped
                return google_error(
                    429,
                    "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model",
                )
            return anthropic_error(
                429, "Number of requests has exceeded your rate limit", b"retry-after: 1\r\n"
            )
        try:
            answer = self._build_answer(chat, long_chars)
        except ValueError as exc:
            return anthropic_error(400, f"tools.0.input_schema: {exc}")
        self._serial += 1
        seed = zlib.crc32(_encode(req["messages"]))  # same messages, same tool inputs
        message = self._message(model, answer, forced, called, seed)
        if req.get("stream") is True:
            return _render_sse(message, cut)
        headers = b"request-id: req_sim%08x\r\n" % self._serial
        return http.json_response(200, message, headers + self._limit_headers())

    def _limit_headers(self) -> bytes:
        """With an `rpm` quota, the request limit headers Anthropic sends on every answer
        (reference/quotas.md §3: `anthropic-ratelimit-requests-{limit,remaining,reset}`,
        the reset as an RFC 3339 time)."""
        if self.rpm is None:
            return b""
        reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + self.window_s))
        return (
            f"anthropic-ratelimit-requests-limit: {self.rpm}\r\n"
            f"anthropic-ratelimit-requests-remaining: {max(0, self.rpm - len(self.rpm_window))}\r\n"
            f"anthropic-ratelimit-requests-reset: {reset}\r\n"
        ).encode()

    def _message(
        self,
        model: str,
        a: SimAnswer,
        forced: dict[str, Any] | None,
        called: list[dict[str, Any]] | None = None,
        seed: int = 0,
    ) -> dict[str, Any]:
        cached = min(self.cache_read_tokens, a.prompt_tokens)
        hour = min(self.cache_write_1h_tokens, a.prompt_tokens - cached)
        five = min(self.cache_write_5m_tokens, a.prompt_tokens - cached - hour)
        if forced is not None:  # the answer is the forced tool's input
            called, inputs = [forced], [msgspec.json.decode(a.content)]
        elif called:  # tool_choice any: one call of each tool
            inputs = [
                generate_instance(tool.get("input_schema") or {}, seed=seed + i)
                for i, tool in enumerate(called)
            ]
        if called:
            content = [
                {
                    "type": "tool_use",
                    "id": f"toolu_sim{self._serial:08x}{i:02x}",
                    "name": tool["name"],
                    "input": value,
                }
                for i, (tool, value) in enumerate(zip(called, inputs, strict=True))
            ]
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": a.content}]
            stop = _STOP.get(a.finish_reason, "end_turn")
        return {
            "id": f"msg_sim{self._serial:08x}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {
                "input_tokens": a.prompt_tokens - cached - five - hour,
                "cache_creation_input_tokens": five + hour,
                "cache_read_input_tokens": cached,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": five,
                    "ephemeral_1h_input_tokens": hour,
                },
                "output_tokens": a.completion_tokens,
            },
        }


def _render_sse(message: dict[str, Any], cut: int | None) -> bytes:
    """The message as Messages stream events, one start/deltas/stop run per content block
    (parallel tool calls are several); `cut` keeps only N content deltas, then stops."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
    ]
    left = cut
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            opening = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in split_stream(block["text"])]
        else:
            opening = {**block, "input": {}}
            raw = _encode(block["input"]).decode()
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in split_stream(raw)]
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opening},
            )
        )
        if index == 0:
            events.append(("ping", {"type": "ping"}))
        if left is not None:
            deltas, left = deltas[:left], max(0, left - len(deltas))
        for delta in deltas:
            event = {"type": "content_block_delta", "index": index, "delta": delta}
            events.append(("content_block_delta", event))
        if left == 0:
            break
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    if cut is None:
        events += [
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    out = [
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    ]
    for name, data in events:
        frame = b"event: %s\ndata: %s\n\n" % (name.encode(), _encode(data))
        out.append(b"%x\r\n%s\r\n" % (len(frame), frame))
    if cut is None:
        out.append(b"0\r\n\r\n")
    return b"".join(out)
