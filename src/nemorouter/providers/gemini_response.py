"""Gemini answers (`GenerateContentResponse`, whole or streamed) → OpenAI completions and chunks.

A 200 this cannot read (an error object, candidates or parts of the wrong type, impossible
token counts, a whole answer with no candidate that was not blocked) is malformed: the
provider's failure, never a success.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from typing import Any

import orjson

from nemorouter.providers.answer_check import check_usage, malformed, token_count
from nemorouter.providers.gemini_signatures import call_id, part_signature
from nemorouter.types.envelopes import chunk, completion, delta_choice, message_choice, usage_chunk

WHO = "Gemini"
log = logging.getLogger(__name__)

_FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE"}
    | {"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER"}
)
_ID_PREFIX = "chatcmpl-g" + os.urandom(4).hex()
_ids = itertools.count(1)


def finish_reason(reason: str | None, has_calls: bool) -> str | None:
    """OpenAI's finish_reason for a Gemini finishReason (None: not finished yet)."""
    if reason is None or reason == "FINISH_REASON_UNSPECIFIED":
        return None
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    if reason != "STOP":  # OTHER, MALFORMED_FUNCTION_CALL, ...: ended, for a reason of its own
        log.warning("Gemini finished with %s", reason)
    return "tool_calls" if has_calls else "stop"


def usage(metadata: Any) -> dict[str, Any] | None:
    """OpenAI usage from `usageMetadata`. promptTokenCount already includes cached tokens;
    thinking tokens are billed as output, so they count as completion tokens."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise malformed(WHO, "usageMetadata that is not an object")
    prompt = _count(metadata, "promptTokenCount") + _count(metadata, "toolUsePromptTokenCount")
    thoughts = _count(metadata, "thoughtsTokenCount")
    completion = _count(metadata, "candidatesTokenCount") + thoughts
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": _count(metadata, "cachedContentTokenCount")},
    }
    if thoughts:
        out["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    check_usage(out, WHO)  # the sums too
    return out


def _count(metadata: dict[str, Any], name: str) -> int:
    return token_count(metadata.get(name), f"usageMetadata.{name}", WHO)


def _split_parts(
    parts: Any, call_ids: itertools.count[int]
) -> tuple[str | None, list[dict[str, Any]]]:
    """(text, tool calls) of a candidate's parts; thought summaries are not the answer."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    if parts is not None and not isinstance(parts, list):
        raise malformed(WHO, "content.parts that is not a list")
    for part in parts or ():
        if not isinstance(part, dict):
            raise malformed(WHO, "a part that is not an object")
        if part.get("thought") is True:
            continue
        text = part.get("text")
        if text is not None and not isinstance(text, str):
            raise malformed(WHO, "a part whose text is not a string")
        if text is not None:
            texts.append(text)
        call = part.get("functionCall")
        if call is not None and not (isinstance(call, dict) and isinstance(call.get("name"), str)):
            raise malformed(WHO, "a functionCall without a name")
        if call is not None:
            calls.append(
                {
                    # the signature rides in the id, for the client to send back
                    "id": call_id(f"call_{next(call_ids)}", part_signature(part)),
                    "type": "function",
                    "function": {
                        "name": call.get("name", ""),
                        "arguments": orjson.dumps(call.get("args") or {}).decode(),
                    },
                }
            )
    return ("".join(texts) if texts else None), calls


def _candidates(data: dict[str, Any]) -> list[dict[str, Any]]:
    found = data.get("candidates")
    if found is None:
        return []
    if not isinstance(found, list) or not all(isinstance(c, dict) for c in found):
        raise malformed(WHO, "candidates that are not a list of objects")
    return found


def _parts(candidate: dict[str, Any]) -> Any:
    content = candidate.get("content")
    if content is None:
        return None
    if not isinstance(content, dict):
        raise malformed(WHO, "a candidate whose content is not an object")
    return content.get("parts")


def _blocked(data: dict[str, Any]) -> bool:
    feedback = data.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def completion_id(data: dict[str, Any]) -> str:
    response_id = data.get("responseId")
    if isinstance(response_id, str) and response_id:
        return f"chatcmpl-{response_id}"
    return f"{_ID_PREFIX}{next(_ids):010x}"


def to_completion(data: dict[str, Any], model: str) -> dict[str, Any]:
    """A whole `generateContent` answer as an OpenAI chat.completion."""
    if data.get("error") is not None:
        raise malformed(WHO, f"an error object: {str(data['error'])[:200]}")
    choices = []
    call_ids = itertools.count()
    for i, candidate in enumerate(_candidates(data)):
        text, calls = _split_parts(_parts(candidate), call_ids)
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        reason = finish_reason(candidate.get("finishReason"), bool(calls)) or "stop"
        index = candidate.get("index")
        choices.append(message_choice(index if isinstance(index, int) else i, message, reason))
    if not choices and _blocked(data):  # the prompt itself was blocked: nothing generated
        refused = {"role": "assistant", "content": None, "refusal": None}
        choices.append(message_choice(0, refused, "content_filter"))
    if not choices:
        raise malformed(WHO, "no candidates and no blocked prompt")
    return completion(
        completion_id(data), int(time.time()), model, choices, usage(data.get("usageMetadata"))
    )


class StreamTranslator:
    """Turns each streamed `GenerateContentResponse` into OpenAI chunks, then a usage chunk.

    Gemini repeats `usageMetadata` on several events; the last one holds the totals."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id: str | None = None
        self.created = int(time.time())
        self.started: set[int] = set()
        self.finished: set[int] = set()
        self.usage: dict[str, Any] | None = None
        self._call_ids = itertools.count()
        self._call_index: dict[int, int] = {}

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return chunk(self.id, self.created, self.model, choices, self.include_usage)

    def feed(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        if self.id is None:
            self.id = completion_id(data)
        found = usage(data.get("usageMetadata"))
        if found is not None:
            self.usage = found
        choices = []
        candidates = _candidates(data)
        if not candidates and _blocked(data):
            candidates = [{"index": 0, "finishReason": "SAFETY"}]
        for i, candidate in enumerate(candidates):
            index = candidate.get("index") if isinstance(candidate.get("index"), int) else i
            text, calls = _split_parts(_parts(candidate), self._call_ids)
            delta: dict[str, Any] = {}
            if index not in self.started:
                self.started.add(index)
                delta["role"] = "assistant"
                delta["content"] = ""
            if text:
                delta["content"] = text
            if calls:
                first = self._call_index.get(index, 0)
                delta["tool_calls"] = [{"index": first + k, **c} for k, c in enumerate(calls)]
                self._call_index[index] = first + len(calls)
            reason = finish_reason(candidate.get("finishReason"), index in self._call_index)
            if delta:
                choices.append(delta_choice(index, delta))
            if reason is not None and index not in self.finished:
                self.finished.add(index)
                choices.append(delta_choice(index, {}, reason))
        return [self._chunk([c]) for c in choices]

    def close(self) -> list[dict[str, Any]]:
        """The closing usage-only chunk, when usage was asked for and reported."""
        if not self.include_usage or self.usage is None:
            return []
        return [usage_chunk(self.id, self.created, self.model, self.usage)]

    @property
    def complete(self) -> bool:
        return bool(self.finished) and self.finished >= self.started
