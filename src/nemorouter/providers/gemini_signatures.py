"""Gemini thought signatures carried through an OpenAI-format client.

A Gemini 3 model turn with function calls must come back with the `thoughtSignature` of its
first `functionCall` part, or the API answers 400 ("Thought signatures", ai.google.dev/gemini-api/
docs/thought-signatures; docs.cloud.google.com/vertex-ai/generative-ai/docs/thought-signatures).
An OpenAI client sends back only the tool calls' `id`, `type` and `function`: the official
openai SDK's typed messages keep nothing else. So the signature rides in the tool call id,
`call_0__thought__<signature>`, the shape LiteLLM uses (BerriAI/litellm
litellm_core_utils/prompt_templates/factory.py `THOUGHT_SIGNATURE_SEPARATOR`), which a client
cannot lose without losing the id. LiteLLM's `provider_specific_fields.thought_signature` and
Google's OpenAI-compatible `extra_content.google.thought_signature` are read too.

In the id the signature (base64) is written in the URL-safe alphabet without padding, so that
the id stays within `[A-Za-z0-9_-]`, the tool call id pattern Anthropic requires when the same
conversation goes on to a Claude deployment. Decoded back to the standard alphabet with its
padding, it is the signature received (bytes fields take either form: the proto3 JSON mapping).
"""

from __future__ import annotations

from typing import Any

SEPARATOR = "__thought__"
# Google's documented stand-in for a signature the model did not produce (history built by the
# client, another model's turns). Sent as the raw string, as Google's own gemini-cli does
# (google-gemini/gemini-cli packages/core `SYNTHETIC_THOUGHT_SIGNATURE`); the thought-signatures
# FAQ lists it beside "context_engineering_is_the_way_to_go", and Vertex's page documents only it.
DUMMY = "skip_thought_signature_validator"


_TO_URLSAFE = str.maketrans("+/", "-_")
_FROM_URLSAFE = str.maketrans("-_", "+/")


def call_id(base: str, signature: str | None) -> str:
    """The OpenAI tool call id of a function call, its signature (if any) inside."""
    if not signature:
        return base
    return f"{base}{SEPARATOR}{signature.translate(_TO_URLSAFE).rstrip('=')}"


def signature_of(call: Any) -> str | None:
    """The thought signature an OpenAI tool call carries back, if any."""
    if not isinstance(call, dict):
        return None
    found = call.get("id")
    if isinstance(found, str) and SEPARATOR in found:
        signature = found.partition(SEPARATOR)[2]
        if signature:
            return signature.translate(_FROM_URLSAFE) + "=" * (-len(signature) % 4)
    for outer, inner in (("provider_specific_fields", None), ("extra_content", "google")):
        holder = call.get(outer)
        if inner is not None and isinstance(holder, dict):
            holder = holder.get(inner)
        value = holder.get("thought_signature") if isinstance(holder, dict) else None
        if isinstance(value, str) and value:
            return value
    return None


def part_signature(part: dict[str, Any]) -> str | None:
    """A response part's `thoughtSignature` (a base64 string on the wire), if any."""
    value = part.get("thoughtSignature")
    return value if isinstance(value, str) and value else None
