"""Request parameters real models answer 400 to, enforced by the simulators when the model
name says so (the same rules, from the same sources, as the catalog's `refuses`):

- Claude Opus 4.7: `temperature` (other than 1), `top_p`, `top_k` are deprecated (Anthropic
  migration guide, "Migrating to Claude Opus 4.7"; ComfyUI#13923; modelparams.dev#238);
- Claude Sonnet 4.5/4.6, Haiku 4.5, Opus 4.1/4.5/4.6: `temperature` and `top_p` together
  (litellm#15097, open-webui#17922, otoroshi-llm-extension#140, OpenHands#12909);
- OpenAI gpt-5 and o-series: `max_tokens`, `temperature` other than 1, `top_p` and penalties
  (LiteLLM gpt_5_transformation.py / o_series_transformation.py; dify#24307);
- Gemini 3: presence and frequency penalties (LiteLLM vertex_and_google_ai_studio_gemini.py
  `_supports_penalty_parameters`);
- Claude native structured outputs: schema keywords outside the supported subset
  (agentjido/req_llm#302: "For 'integer' type, property 'minimum' is not supported"; the
  subset: anthropic-sdk-python lib/_parse/_transform.py) and open objects.
"""

from __future__ import annotations

import re
from typing import Any

_OPUS_47 = re.compile(r"claude-opus-4-7")
_ONE_SAMPLER = re.compile(r"claude-(sonnet-4-[56]|haiku-4-5|opus-4-[156])")
_OPENAI_REASONING = re.compile(r"^(gpt-5|o1|o3|o4)")


def anthropic_refusal(model: str, req: dict[str, Any]) -> str | None:
    """The invalid_request_error message Claude answers `req` with, or None."""
    if _OPUS_47.search(model):
        for name in ("temperature", "top_p", "top_k"):
            value = req.get(name)
            if value is not None and not (name == "temperature" and value == 1):
                return f"`{name}` is deprecated for this model."
    elif _ONE_SAMPLER.search(model) and "temperature" in req and "top_p" in req:
        return "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
    return None


def openai_refusal(model: str, req: dict[str, Any]) -> tuple[str, str, str] | None:
    """(message, param, code) of the 400 OpenAI answers `req` with, or None."""
    if not _OPENAI_REASONING.match(model):
        return None
    if req.get("max_tokens") is not None:
        message = (
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead."
        )
        return message, "max_tokens", "unsupported_parameter"
    temperature = req.get("temperature")
    if temperature is not None and temperature != 1:
        message = (
            f"Unsupported value: 'temperature' does not support {temperature} with this model. "
            "Only the default (1) value is supported."
        )
        return message, "temperature", "unsupported_value"
    for name in ("top_p", "presence_penalty", "frequency_penalty"):
        if req.get(name) is not None:
            message = f"Unsupported parameter: '{name}' is not supported with this model."
            return message, name, "unsupported_parameter"
    return None


def gemini_refusal(model: str, req: dict[str, Any]) -> str | None:
    """The INVALID_ARGUMENT message Gemini answers `req` with, or None."""
    if "gemini-3" not in model:
        return None
    config = req.get("generationConfig") or {}
    for name in ("presencePenalty", "frequencyPenalty"):
        if config.get(name) is not None:
            return f"{name} is not supported for this model."
    return None


_UNSUPPORTED = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength"}
    | {"maxLength", "pattern", "maxItems", "uniqueItems", "minProperties", "maxProperties"}
    | {"oneOf", "not", "const", "if", "then", "else", "patternProperties"}
)


def anthropic_format_refusal(schema: Any, where: str = "output_config.format.schema") -> str | None:
    """The 400 message for a native structured-output schema Claude cannot take, or None."""
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    for key in sorted(_UNSUPPORTED & set(schema)):
        return f"{where}: For '{kind}' type, property '{key}' is not supported"
    if kind == "array" and schema.get("minItems", 0) not in (0, 1):
        return f"{where}: For 'array' type, 'minItems' values other than 0 or 1 are not supported"
    if kind == "object" and schema.get("additionalProperties") is not False:
        return f"{where}: For 'object' type, 'additionalProperties' must be explicitly set to false"
    children = [*(schema.get("properties") or {}).values(), *(schema.get("$defs") or {}).values()]
    children += [*(schema.get("anyOf") or []), *(schema.get("allOf") or [])]
    if isinstance(schema.get("items"), dict):
        children.append(schema["items"])
    for child in children:
        refused = anthropic_format_refusal(child, where)
        if refused is not None:
            return refused
    return None
