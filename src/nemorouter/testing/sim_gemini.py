"""A simulated Gemini provider: Vertex AI and Gemini API `generateContent` over HTTP.

URL shapes, field names, SSE framing and error bodies follow the real services:
- Vertex: POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent
  (and :streamGenerateContent?alt=sse), `Authorization: Bearer` checked against a
  `FakeOAuthServer` when one is given;
- Gemini API: POST /v1beta/models/{m}:generateContent, `x-goog-api-key` checked when set.
Bodies are validated like the real API does (`sim_gemini_rules`: unknown fields, schema formats,
function response counts, Gemini 3 thought signatures, Vertex's empty text parts), answers are
the deterministic ones of `sim_answers` (schema-valid JSON for a responseSchema). A forced tool
choice (`mode: ANY`) after a user message is answered by a parallel call of every allowed
function, the first call signed on `gemini-3*` models; the function responses get a text answer.
Magic prompt words trigger safety outcomes: `SIM_BLOCK_PROMPT` (promptFeedback.blockReason)
and `SIM_SAFETY` (finishReason SAFETY). Faults come as Google error bodies; a 429 fault with
`retry_after` carries `google.rpc.RetryInfo.retryDelay` instead of a header, as Google does.
"""

from __future__ import annotations

import re
import time
from typing import Any

import msgspec

from nemorouter.testing import sim_http as http
from nemorouter.testing import sim_malformed as malformed
from nemorouter.testing.fake_oauth import FakeOAuthServer
from nemorouter.testing.schema_instance import generate_instance
from nemorouter.testing.sim_answers import SimAnswer, completion_tokens, split_stream
from nemorouter.testing.sim_gcs import StorageAPI
from nemorouter.testing.sim_gemini_batches import GeminiBatchAPI
from nemorouter.testing.sim_gemini_rules import (
    Invalid,
    issue_signature,
    thinking_signatures,
    validate_request,
)
from nemorouter.testing.sim_gemini_wire import camel_fields
from nemorouter.testing.sim_native import NativeSimulator
from nemorouter.testing.sim_param_rules import gemini_refusal
from nemorouter.testing.sim_request import read_chat
from nemorouter.testing.sim_types import Fault
from nemorouter.testing.sim_vertex_batches import VertexBatchAPI

_encode = msgspec.json.encode
_VERTEX = re.compile(
    rb"^/v1(?:beta1)?/projects/[^/]+/locations/[^/]+/publishers/google/models/([^/:]+)"
    rb":(generateContent|streamGenerateContent)$"
)
_GEMINI_API = re.compile(rb"^/v1(?:beta)?/models/([^/:]+):(generateContent|streamGenerateContent)$")
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS"}


def google_error(status: int, message: str, details: list[dict[str, Any]] | None = None) -> bytes:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": GOOGLE_STATUS.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return http.json_response(status, {"error": error})


def unauthenticated() -> bytes:
    return google_error(
        401,
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project.",
    )


def retry_info(seconds: float) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds:g}s"}


def render_google_fault(fault: Fault) -> bytes:
    code = fault.code
    details: list[dict[str, Any]] = []
    if code == 429:
        message = "Resource exhausted. Please try again later."
    elif code == 503:
        message = "The model is overloaded. Please try again later."
    else:
        message = f"Simulated fault: HTTP {code} {http.reason(code)}"
    seconds = fault.retry_after
    if seconds is None and fault.retry_after_ms is not None:
        seconds = fault.retry_after_ms / 1000.0
    if seconds is not None:
        details.append(retry_info(seconds))
    return google_error(code, message, details)


def json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A Gemini Schema back in JSON Schema form, to generate a conforming answer."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            out["type"] = value.lower()
        elif key == "properties":
            out["properties"] = {k: json_schema(v) for k, v in value.items()}
        elif key == "items":
            out["items"] = json_schema(value)
        elif key == "anyOf":
            out["anyOf"] = [json_schema(v) for v in value]
        elif key not in ("nullable", "propertyOrdering", "example", "title", "format"):
            out[key] = value
    if out.get("type") == "object":
        out["additionalProperties"] = False
    if schema.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def as_chat(req: dict[str, Any], model: str) -> dict[str, Any]:
    """The Gemini request in the chat shape `build_answer` reads (texts and image counts)."""
    messages: list[dict[str, Any]] = []
    for source in [req.get("systemInstruction") or {"parts": []}, *req["contents"]]:
        parts = []
        for part in source.get("parts", ()):
            if isinstance(part.get("text"), str):
                parts.append({"type": "text", "text": part["text"]})
            elif "inlineData" in part or "fileData" in part:
                parts.append({"type": "image_url"})
            else:
                parts.append({"type": "other", "value": part})
        messages.append({"role": source.get("role", "system"), "content": parts})
    chat: dict[str, Any] = {"model": model, "messages": messages}
    config = req.get("generationConfig") or {}
    if "responseSchema" in config or "responseJsonSchema" in config:
        schema = config.get("responseJsonSchema") or json_schema(config["responseSchema"])
        chat["response_format"] = {"type": "json_schema", "json_schema": {"schema": schema}}
    elif config.get("responseMimeType") == "application/json":
        chat["response_format"] = {"type": "json_object"}
    if "maxOutputTokens" in config:
        chat["max_tokens"] = config["maxOutputTokens"]
    return chat


def _prompt_text(chat: dict[str, Any]) -> str:
    return " ".join(
        p.get("text", "") for m in chat["messages"] for p in m["content"] if p["type"] == "text"
    )


class SimulatedGemini(NativeSimulator):
    """Vertex AI / Gemini API fake; `oauth` checks bearer tokens, `api_key` the Gemini API key.

    `cached_tokens` and `thoughts_tokens` are reported in every answer's usageMetadata."""

    def __init__(
        self,
        oauth: FakeOAuthServer | None = None,
        cached_tokens: int = 0,
        thoughts_tokens: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(oauth, **kwargs)
        self.cached_tokens = cached_tokens
        self.thoughts_tokens = thoughts_tokens
        self.gemini_batches = GeminiBatchAPI(self)  # batch mode, Files API (sim_gemini_batches)
        self.storage = StorageAPI(self)  # Cloud Storage JSON API (sim_gcs)
        self.vertex_batches = VertexBatchAPI(self, self.storage)  # (sim_vertex_batches)
        self.apis = [self.gemini_batches.route, self.vertex_batches.route, self.storage.route]

    model_format = "google"  # GET of a model resource (sim_models)

    def _chat_target(self, method: bytes, url: bytes, path: bytes) -> bytes | None:
        # the whole target: `_answer` reads `alt=sse` from the query
        return url if _VERTEX.match(path) or _GEMINI_API.match(path) else None

    def _not_allowed(self, method: bytes, path: bytes) -> bytes:
        return google_error(404, "Method not found.")

    def _other(self, method: bytes, path: bytes) -> bytes:
        return google_error(404, f"The requested URL {path.decode('latin-1')} was not found.")

    def _render_fault(self, fault: Fault) -> bytes:
        return render_google_fault(fault)

    def _render_malformed(self, fault: Fault, path: bytes, body: bytes) -> bytes:
        stream = b":streamGenerateContent" in path
        return malformed.shared(fault, stream) or malformed.gemini(fault, stream)

    def api_key_refused(self, headers: http.Headers) -> bytes | None:
        """The Gemini API's answer to a call without the right key (None: accepted)."""
        return self._authorized(False, headers, None)

    def _authorized(self, vertex: bool, headers: http.Headers, auth: bytes | None) -> bytes | None:
        if vertex:
            return unauthenticated() if self._bearer_refused(auth) else None
        if self.api_key is not None:
            key = next((v for n, v in headers if n.lower() == b"x-goog-api-key"), b"")
            if key != self.api_key.encode():
                details = [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }
                ]
                return google_error(400, "API key not valid. Please pass a valid API key.", details)
        return None

    def _answer(
        self, path: bytes, headers: http.Headers, body: bytes, auth: bytes | None, cut: int | None
    ) -> bytes:
        target, _, query = path.partition(b"?")
        found = _VERTEX.match(target) or _GEMINI_API.match(target)
        assert found is not None
        model, method = found[1].decode(), found[2]
        vertex = _VERTEX.match(target) is not None
        refused = self._authorized(vertex, headers, auth)
        if refused is not None:
            return refused
        try:
            req, long_chars = read_chat(body, self._long_strings)
            req = camel_fields(req)  # proto JSON: snake_case field names are the same fields
            validate_request(req, model, vertex)
            refused = gemini_refusal(model, req)
            if refused is not None:
                raise Invalid(refused)
        except Invalid as exc:
            return google_error(400, str(exc))
        except (msgspec.DecodeError, ValueError):
            return google_error(400, "Invalid JSON payload received.")
        if self._over_quota():
            return google_error(429, "Resource exhausted. Please try again later.")
        chat = as_chat(req, model)
        try:
            answer = self._build_answer(chat, long_chars)
        except ValueError as exc:
            return google_error(400, f"Unable to satisfy responseSchema: {exc}")
        self._serial += 1
        calls = _function_calls(req)
        if calls:
            responses = self._call_responses(model, calls, answer.prompt_tokens)
        else:
            responses = self._responses(model, answer, _prompt_text(chat))
        if method == b"generateContent":
            return http.json_response(200, _merge(responses))
        if b"alt=sse" not in query.split(b"&"):  # without SSE Google streams one JSON array
            return http.json_response(200, responses)
        return _render_sse(responses, cut)

    def _base(self, model: str) -> dict[str, Any]:
        return {
            "modelVersion": model,
            "createTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
            "responseId": f"sim{self._serial:08x}",
        }

    def _usage(self, prompt_tokens: int, completion: int) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": completion,
            "totalTokenCount": prompt_tokens + completion + self.thoughts_tokens,
            "trafficType": "ON_DEMAND",
        }
        cached = min(self.cached_tokens, prompt_tokens)
        if cached:
            usage["cachedContentTokenCount"] = cached
        if self.thoughts_tokens:
            usage["thoughtsTokenCount"] = self.thoughts_tokens
        return usage

    def _call_responses(
        self, model: str, calls: list[dict[str, Any]], prompt_tokens: int
    ) -> list[dict[str, Any]]:
        """A function call turn, one call per event. On Gemini 3 the first functionCall part
        carries the turn's thought signature, and parallel calls after it none
        (ai.google.dev/gemini-api/docs/thought-signatures "Signatures in function calling parts")."""
        base = self._base(model)
        parts: list[dict[str, Any]] = [{"functionCall": call} for call in calls]
        if thinking_signatures(model):
            parts[0]["thoughtSignature"] = issue_signature(self._serial)
        written = sum(completion_tokens(_encode(call).decode()) for call in calls)
        events = []
        for i, part in enumerate(parts):
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": [part]}}
            event: dict[str, Any] = {**base, "candidates": [candidate]}
            if i == len(parts) - 1:
                candidate["finishReason"] = "STOP"
                event["usageMetadata"] = self._usage(prompt_tokens, written)
            events.append(event)
        return events

    def _responses(self, model: str, a: SimAnswer, prompt: str) -> list[dict[str, Any]]:
        """The stream's events; merged, they are the non-streaming answer."""
        base = self._base(model)
        usage = self._usage(a.prompt_tokens, a.completion_tokens)
        if "SIM_BLOCK_PROMPT" in prompt:
            feedback = {"blockReason": "SAFETY", "blockReasonMessage": "Blocked (simulated)."}
            usage = {"promptTokenCount": a.prompt_tokens, "totalTokenCount": a.prompt_tokens}
            return [{**base, "promptFeedback": feedback, "usageMetadata": usage}]
        if "SIM_SAFETY" in prompt:
            ratings = [
                {
                    "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                    "probability": "HIGH",
                    "blocked": True,
                }
            ]
            candidate = {
                "content": {"role": "model", "parts": []},
                "finishReason": "SAFETY",
                "safetyRatings": ratings,
            }
            return [{**base, "candidates": [candidate], "usageMetadata": usage}]
        events = []
        pieces = split_stream(a.content) or [""]
        for i, piece in enumerate(pieces):
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": piece}]}}
            event: dict[str, Any] = {**base, "candidates": [candidate]}
            if i == len(pieces) - 1:
                candidate["finishReason"] = _FINISH.get(a.finish_reason, "STOP")
                event["usageMetadata"] = usage
            else:
                event["usageMetadata"] = {
                    "promptTokenCount": a.prompt_tokens,
                    "totalTokenCount": a.prompt_tokens,
                    "trafficType": "ON_DEMAND",
                }
            events.append(event)
        return events


def _function_calls(req: dict[str, Any]) -> list[dict[str, Any]]:
    """The calls of a forced function call turn (`mode: ANY`): each allowed function once, in
    parallel, with arguments valid for its parameters. Once the last content answers calls the
    simulated model has what it needs and writes its text answer."""
    config = (req.get("toolConfig") or {}).get("functionCallingConfig") or {}
    last = req["contents"][-1]
    if config.get("mode") != "ANY" or last["role"] != "user":
        return []
    if any("functionResponse" in part for part in last["parts"]):
        return []
    allowed = config.get("allowedFunctionNames")
    calls: list[dict[str, Any]] = []
    for tool in req.get("tools") or ():
        for declaration in tool.get("functionDeclarations") or ():
            if allowed and declaration.get("name") not in allowed:
                continue
            params = declaration.get("parametersJsonSchema")  # JSON Schema as is
            if params is None and declaration.get("parameters"):
                params = json_schema(declaration["parameters"])
            args = generate_instance(params, seed=len(calls)) if params else {}
            calls.append({"name": declaration.get("name"), "args": args})
    return calls


def _merge(events: list[dict[str, Any]]) -> dict[str, Any]:
    last = dict(events[-1])
    if "candidates" not in last:
        return last
    every = [p for e in events for c in e["candidates"] for p in c["content"]["parts"]]
    text = "".join(p.get("text", "") for p in every)
    candidate = dict(last["candidates"][0])
    parts = [{"text": text}] if text else [p for p in every if "functionCall" in p]
    candidate["content"] = {"role": "model", "parts": parts}
    candidate["index"] = 0
    last["candidates"] = [candidate]
    return last


def _render_sse(events: list[dict[str, Any]], cut: int | None) -> bytes:
    out = [
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    ]
    for event in events[:cut] if cut is not None else events:
        data = b"data: " + _encode(event) + b"\r\n\r\n"
        out.append(b"%x\r\n%s\r\n" % (len(data), data))
    if cut is None:
        out.append(b"0\r\n\r\n")
    return b"".join(out)
