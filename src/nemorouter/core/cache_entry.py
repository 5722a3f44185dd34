"""What the response cache stores, and how a stored answer is replayed (issue #9).

A value is msgspec JSON of `CachedCompletion`: the OpenAI completion as it was answered
plus what a hit needs for its headers and spend record (the cost it saves, model,
deployment). Changing these fields means bumping cache_key.KEY_VERSION, so old values
are never read; a value that still fails to decode reads as a miss.

A streaming request that hits gets `chunks_from_completion`: the same answer as
`chat.completion.chunk`s. A streamed answer is stored after `CompletionBuilder` has put
its chunks back together into one completion.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec

from nemorouter.types.envelopes import chunk, completion, delta_choice, message_choice, usage_chunk


class CachedCompletion(msgspec.Struct, frozen=True):
    response: dict[str, Any]  # the OpenAI chat.completion, as sent to the client
    cost_usd: Decimal  # what the call cost: a hit costs 0 and records this as saved
    model: str  # model that answered (x-nemo-model on a hit)
    deployment: str  # deployment id that answered (x-nemo-deployment)
    created: int = 0  # unix seconds when stored


_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(CachedCompletion)


def encode_entry(entry: CachedCompletion) -> bytes:
    return _encoder.encode(entry)


def decode_entry(data: bytes) -> CachedCompletion | None:
    """None for a value this version cannot read (treated as a miss, then overwritten)."""
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def new_entry(
    response: dict[str, Any], cost_usd: Decimal | None, model: str, deployment: str
) -> CachedCompletion:
    return CachedCompletion(response, cost_usd or Decimal(0), model, deployment, int(time.time()))


# Message fields replayed as deltas, in the order a provider streams them.
_DELTA_FIELDS = ("content", "refusal", "reasoning_content", "tool_calls", "function_call", "audio")


def chunks_from_completion(
    response: Mapping[str, Any], include_usage: bool = True
) -> list[dict[str, Any]]:
    """A completion as the stream that would have produced it: per choice a role chunk,
    a content chunk (with tool calls, indexed), a finish chunk; then, when
    `include_usage`, the usage-only chunk (`choices: []`), other chunks carrying
    `usage: null` as OpenAI's do. The caller adds `data: [DONE]`."""
    head = (response.get("id"), response.get("created"), response.get("model"))
    fingerprint = response.get("system_fingerprint")

    def one(
        index: int, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None
    ) -> dict[str, Any]:
        choices = [delta_choice(index, delta, finish, logprobs)]
        return chunk(*head, choices, include_usage, fingerprint)

    chunks: list[dict[str, Any]] = []
    choices = response.get("choices")
    for position, choice in enumerate(choices if isinstance(choices, list) else ()):
        index = choice.get("index", position)
        message = choice.get("message") or {}
        chunks.append(one(index, {"role": message.get("role", "assistant"), "content": ""}))
        delta: dict[str, Any] = {}
        for name in _DELTA_FIELDS:
            value = message.get(name)
            if value is None:
                continue
            if name == "tool_calls":
                value = [{"index": i, **call} for i, call in enumerate(value)]
            delta[name] = value
        if delta:
            chunks.append(one(index, delta, logprobs=choice.get("logprobs")))
        chunks.append(one(index, {}, choice.get("finish_reason") or "stop"))
    if include_usage:
        chunks.append(usage_chunk(*head, response.get("usage"), fingerprint))
    return chunks


class CompletionBuilder:
    """Puts a relayed stream's chunks back together as one chat.completion, to store it."""

    def __init__(self) -> None:
        self._head: dict[str, Any] = {}
        self._choices: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] | None = None

    def feed(self, chunk: Mapping[str, Any]) -> None:
        if not self._head:
            self._head = {k: chunk.get(k) for k in ("id", "created", "model", "system_fingerprint")}
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            self._feed_choice(choice)

    def _feed_choice(self, choice: Mapping[str, Any]) -> None:
        index = choice.get("index", 0)
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = {"message": {"role": "assistant"}, "calls": {}}
        message = state["message"]
        delta = choice.get("delta") or {}
        for name, value in delta.items():
            if value is None:
                continue
            if name == "role":
                message["role"] = value
            elif name == "tool_calls":
                for call in value:
                    self._feed_call(state["calls"], call)
            elif isinstance(value, str):
                message[name] = message.get(name, "") + value
            else:
                message[name] = value
        if choice.get("finish_reason") is not None:
            state["finish_reason"] = choice["finish_reason"]

    @staticmethod
    def _feed_call(calls: dict[int, dict[str, Any]], delta: Mapping[str, Any]) -> None:
        index = delta.get("index", len(calls))
        call = calls.setdefault(index, {"function": {"name": "", "arguments": ""}})
        for name in ("id", "type"):
            if delta.get(name) is not None:
                call[name] = delta[name]
        function = delta.get("function") or {}
        for name in ("name", "arguments"):
            if function.get(name):
                call["function"][name] += function[name]

    def completion(self) -> dict[str, Any]:
        choices = []
        for index in sorted(self._choices):
            state = self._choices[index]
            message = {"content": None, **state["message"]}
            if state["calls"]:
                message["tool_calls"] = [
                    {"type": "function", **state["calls"][i]} for i in sorted(state["calls"])
                ]
            choices.append(message_choice(index, message, state.get("finish_reason")))
        head = self._head
        return completion(
            head.get("id"),
            head.get("created"),
            head.get("model"),
            choices,
            self.usage,
            head.get("system_fingerprint"),
        )


__all__ = [
    "CachedCompletion",
    "CompletionBuilder",
    "chunks_from_completion",
    "decode_entry",
    "encode_entry",
    "new_entry",
]
