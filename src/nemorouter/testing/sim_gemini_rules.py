"""What the simulated Gemini provider refuses, as the real Vertex AI and Gemini API do: each rule
names its source, and a broken rule is a 400 INVALID_ARGUMENT with Google's message.

- unknown fields anywhere in the body: `Invalid JSON payload received. Unknown name ...`;
- a Schema (responseSchema, function parameters) outside the OpenAPI subset, or with a `format`
  the API rejects ("only 'enum' and 'date-time' are supported for STRING type"; the table of
  google/adk-python tools/_gemini_schema_util.py `_sanitize_schema_formats_for_gemini`);
- a function call turn not answered by as many function response parts in the next content
  (gemini-cli#4217, #16415: "Please ensure that the number of function response parts is equal
  to the number of function call parts of the function call turn.");
- on Gemini 3 models, a function call step of the current turn whose first functionCall part
  has no `thoughtSignature`, or one the model never issued (ai.google.dev/gemini-api/docs/
  thought-signatures "Validation"; vercel/ai#11181 for Vertex's message, #14196 for a foreign
  signature); the documented dummy values pass;
- on Vertex, an empty text part (Portkey-AI/gateway#462: "Unable to submit request because it
  has an empty text parameter.").
"""

from __future__ import annotations

import base64
from typing import Any

TOP_LEVEL = frozenset(
    {"contents", "systemInstruction", "generationConfig", "safetySettings", "tools"}
    | {"toolConfig", "labels", "cachedContent"}
)
GENERATION = frozenset(
    {"temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences"}
    | {"seed", "presencePenalty", "frequencyPenalty", "responseMimeType", "responseSchema"}
    | {"responseJsonSchema", "responseLogprobs", "logprobs", "thinkingConfig", "mediaResolution"}
    | {"responseModalities"}
)
PART_KINDS = frozenset(
    {"text", "inlineData", "fileData", "functionCall", "functionResponse", "thought"}
)
SCHEMA_KEYS = frozenset(
    {"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems"}
    | {"properties", "required", "propertyOrdering", "items", "minProperties", "maxProperties"}
    | {"minimum", "maximum", "minLength", "maxLength", "pattern", "example", "anyOf", "default"}
    | {"additionalProperties"}  # google-genai types.Schema.additional_properties
)
SCHEMA_TYPES = frozenset({"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"})
_FORMATS = {
    "STRING": ({"date-time", "enum"}, "only 'enum' and 'date-time' are supported for STRING type"),
    "INTEGER": ({"int32", "int64"}, 'only "int32" and "int64" are supported for INTEGER type'),
    "NUMBER": ({"int32", "int64"}, 'only "int32" and "int64" are supported for NUMBER type'),
}
# Google's documented stand-ins for a signature the model did not produce (thought-signatures FAQ)
DUMMY_SIGNATURES = frozenset(
    {"skip_thought_signature_validator", "context_engineering_is_the_way_to_go"}
)
_SIGNATURE_PREFIX = b"sim-thought-signature:"
_SIGNATURE_TAIL = (
    b"\xfb\xff\xbf\xfe"  # so that the base64 holds '+', '/' and padding, as real ones may
)


_FROM_URLSAFE = str.maketrans("-_", "+/")


class Invalid(ValueError):
    """A request the real API would refuse with 400 INVALID_ARGUMENT."""


def issue_signature(serial: int) -> str:
    """A thought signature as the simulator hands it out (base64, like Google's)."""
    return base64.b64encode(
        _SIGNATURE_PREFIX + serial.to_bytes(8, "big") + _SIGNATURE_TAIL
    ).decode()


def _issued(signature: str) -> bool:
    if signature in DUMMY_SIGNATURES:
        return True
    # a bytes field: standard or URL-safe base64, padded or not (the proto3 JSON mapping)
    padded = signature.translate(_FROM_URLSAFE) + "=" * (-len(signature) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except ValueError:
        return False
    return (
        len(raw) == len(_SIGNATURE_PREFIX) + 12
        and raw.startswith(_SIGNATURE_PREFIX)
        and (raw.endswith(_SIGNATURE_TAIL))
    )


def thinking_signatures(model: str) -> bool:
    """Whether `model` enforces thought signatures on function calls (Gemini 3 does)."""
    return model.startswith("gemini-3")


def check_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        raise Invalid(f"Invalid value at '{where}': expected a Schema object")
    for key in schema:
        if key not in SCHEMA_KEYS:
            raise Invalid(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': "
                "Cannot find field."
            )
    kind = schema.get("type")
    if kind is not None and kind not in SCHEMA_TYPES:
        raise Invalid(
            f"Invalid value at '{where}.type' (type.googleapis.com/google.cloud.aiplatform.v1.Type), \"{kind}\""
        )
    if "format" in schema:
        allowed, complaint = _FORMATS.get(kind, (set(), f"format is not supported for {kind}"))
        if schema["format"] not in allowed:
            raise Invalid(f"* GenerateContentRequest.{where}.format: {complaint}\n")
    if kind == "OBJECT" and not schema.get("properties"):
        raise Invalid(f"{where}.properties: should be non-empty for OBJECT type")
    for name, sub in (schema.get("properties") or {}).items():
        check_schema(sub, f"{where}.properties[{name}]")
    if "items" in schema:
        check_schema(schema["items"], f"{where}.items")
    for i, sub in enumerate(schema.get("anyOf") or ()):
        check_schema(sub, f"{where}.any_of[{i}]")


def validate_request(req: Any, model: str, vertex: bool) -> None:
    if not isinstance(req, dict):
        raise Invalid("Invalid JSON payload received. Expected an object.")
    for key in req:
        if key not in TOP_LEVEL:
            raise Invalid(
                f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
            )
    contents = req.get("contents")
    if not isinstance(contents, list) or not contents:
        raise Invalid("Unable to submit request because it has an empty contents field.")
    for i, content in enumerate(contents):
        if not isinstance(content, dict) or content.get("role") not in ("user", "model"):
            raise Invalid(f"Please use a valid role: user, model. (contents[{i}])")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise Invalid(f"contents[{i}].parts must not be empty")
        for part in parts:
            _check_part(part, i, vertex)
    _check_tool_turns(contents)
    if thinking_signatures(model):
        _check_signatures(contents, vertex)
    system = req.get("systemInstruction")
    if system is not None and not (
        isinstance(system, dict) and isinstance(system.get("parts"), list)
    ):
        raise Invalid("systemInstruction must be a Content with parts")
    for part in (system or {}).get("parts", ()):
        _check_part(part, -1, vertex)
    for t, tool in enumerate(req.get("tools") or ()):
        for d, declaration in enumerate(tool.get("functionDeclarations") or ()):
            if "parameters" in declaration:
                where = f"tools[{t}].function_declarations[{d}].parameters"
                check_schema(declaration["parameters"], where)
    config = req.get("generationConfig") or {}
    for key in config:
        if key not in GENERATION:
            raise Invalid(
                f"Invalid JSON payload received. Unknown name \"{key}\" at 'generation_config': "
                "Cannot find field."
            )
    if "responseSchema" in config:
        if config.get("responseMimeType") != "application/json":
            raise Invalid("responseSchema needs responseMimeType application/json")
        check_schema(config["responseSchema"], "generation_config.response_schema")


def _check_part(part: Any, i: int, vertex: bool) -> None:
    kinds = set(part) & PART_KINDS if isinstance(part, dict) else set()
    if not kinds or set(part) - PART_KINDS - {"mediaResolution", "thoughtSignature"}:
        raise Invalid(f"contents[{i}].parts: unknown or missing data field in {sorted(part)}")
    if vertex and part.get("text") == "" and "thought" not in part:
        raise Invalid(
            "Unable to submit request because it has an empty text parameter. Add a value to "
            "the parameter and try again. Learn more: "
            "https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/gemini"
        )
    blob = part.get("inlineData")
    if blob is not None and not (
        isinstance(blob, dict) and blob.get("mimeType") and blob.get("data")
    ):
        raise Invalid("inlineData needs mimeType and data")
    ref = part.get("fileData")
    if ref is not None and not (
        isinstance(ref, dict) and ref.get("mimeType") and ref.get("fileUri")
    ):
        raise Invalid("fileData needs mimeType and fileUri")


def _count(content: dict[str, Any], kind: str) -> int:
    return sum(1 for part in content["parts"] if kind in part)


def _check_tool_turns(contents: list[dict[str, Any]]) -> None:
    """Each model content with N function calls is followed by one with N function responses."""
    for i, content in enumerate(contents):
        calls = _count(content, "functionCall") if content["role"] == "model" else 0
        answers = _count(contents[i + 1], "functionResponse") if i + 1 < len(contents) else None
        if calls and answers is not None and answers != calls:
            raise Invalid(
                "Please ensure that the number of function response parts is equal to the "
                "number of function call parts of the function call turn."
            )


def _check_signatures(contents: list[dict[str, Any]], vertex: bool) -> None:
    """Gemini 3: the first functionCall part of every step of the current turn is signed.

    The current turn starts at the last user content with standard content (not only function
    responses); earlier turns are not validated (ai.google.dev thought-signatures "Validation")."""
    start = 0
    for i, content in enumerate(contents):
        if content["role"] == "user" and any("functionResponse" not in p for p in content["parts"]):
            start = i
    for i in range(start, len(contents)):
        content = contents[i]
        first = next((p for p in content["parts"] if "functionCall" in p), None)
        if content["role"] != "model" or first is None:
            continue
        signature = first.get("thoughtSignature")
        name = first["functionCall"].get("name")
        if signature is None:
            if vertex:
                raise Invalid(
                    f"Unable to submit request because function call `default_api:{name}` in "
                    f"the {i + 1}. content block is missing a `thought_signature`. Learn more: "
                    "https://docs.cloud.google.com/vertex-ai/generative-ai/docs/thought-signatures"
                )
            raise Invalid(
                "Function call is missing a thought_signature in functionCall parts. This is "
                "required for tools to work correctly, and missing thought_signature may lead "
                f"to degraded model performance. Additional data, function call "
                f"`default_api:{name}` , position {i + 1}. Please refer to "
                "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
            )
        if not isinstance(signature, str) or not _issued(signature):
            raise Invalid("Unable to submit request because Thought signature is not valid.")
