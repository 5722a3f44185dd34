"""Tool calls of the simulated OpenAI-compatible provider.

A request with function `tools` and `tool_choice: "required"` is answered with one call of each
tool (parallel calls), `finish_reason: "tool_calls"`, their `arguments` JSON text generated valid
for each tool's `parameters` — the shapes the openai SDK reads: `ChatCompletionMessageToolCall`
(id, type, function.name, function.arguments) and, streamed, `ChoiceDeltaToolCall` (index, and
id, type and name in a call's first delta only; arguments in pieces).
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import msgspec

from nemorouter.testing.schema_instance import generate_instance
from nemorouter.testing.sim_answers import SimAnswer, completion_tokens, split_stream

_encode = msgspec.json.encode


def required_calls(req: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The tool calls answering `req`, or None when no call is required."""
    tools = req.get("tools")
    if req.get("tool_choice") != "required" or not isinstance(tools, list) or not tools:
        return None
    seed = zlib.crc32(_encode(req.get("messages")))  # same messages, same arguments
    calls = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            continue
        params = function.get("parameters")
        try:
            args = generate_instance(params, seed=seed + i) if isinstance(params, dict) else {}
        except (ValueError, TypeError, RecursionError):  # a schema no instance fits
            args = {}
        calls.append(
            {
                "id": f"call_sim{seed:08x}{i:02x}",
                "type": "function",
                "function": {"name": function["name"], "arguments": _encode(args).decode()},
            }
        )
    return calls or None


def calls_answer(calls: list[dict[str, Any]], a: SimAnswer) -> SimAnswer:
    """The usage of an answer made of `calls` (the prompt as counted for `a`)."""
    content = _encode(calls).decode()
    return SimAnswer(content, "tool_calls", a.prompt_tokens, completion_tokens(content))


def completion_body(model: str, calls: list[dict[str, Any]], a: SimAnswer, cid: str) -> bytes:
    message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": calls}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}
    body = {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": a.usage(),
        "system_fingerprint": None,
    }
    return _encode(body)


def stream_deltas(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `delta`s that stream `calls`: per call, its head then its arguments in pieces."""
    deltas: list[dict[str, Any]] = []
    for index, call in enumerate(calls):
        head = {**call, "index": index, "function": {**call["function"], "arguments": ""}}
        deltas.append({"tool_calls": [head]})
        for piece in split_stream(call["function"]["arguments"]):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    return deltas
