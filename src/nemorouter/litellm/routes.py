"""Which nemorouter provider a LiteLLM `litellm_params.model` ("<provider>/<model id>")
reaches, with its credentials: part of `nemorouter config from-litellm`.

LiteLLM's prefixes (BerriAI/litellm docs/my-website/docs/providers/vertex.md, gemini.md,
anthropic.md, openai_compatible.md, vllm.md): `vertex_ai/` with `vertex_project`,
`vertex_location`, `vertex_credentials` (or `vertex_ai_project` / `vertex_ai_location`);
`vertex_ai/<publisher>/<model>-maas` for Vertex's model garden; `gemini/`, `anthropic/` and
`openai/` with `api_key`; `openai/`, `hosted_vllm/` and `litellm_proxy/` with `api_base`
for OpenAI-compatible servers. A bare name is inferred from well-known model names.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from nemorouter.config import ENV_PREFIX

Route = tuple[dict[str, Any], str]  # (provider settings, the model id the provider knows)
PROVIDER_TYPES = "vertex, anthropic-vertex, gemini, anthropic, openai, openai-compatible"


def route(
    litellm_model: str, params: dict[str, Any], defaults: dict[str, Any], said: list[str]
) -> Route | str:
    """The provider and upstream id, or why there is none. `said` collects notes on what
    was carried over with a difference."""
    prefix, _, rest = litellm_model.partition("/")
    if not rest:  # no prefix: LiteLLM infers the provider from well-known names
        prefix, rest = _inferred_prefix(litellm_model), litellm_model
    base, key = params.get("api_base"), params.get("api_key")
    provider: dict[str, Any]
    if prefix in ("vertex_ai", "vertex_ai_beta"):
        google = _vertex(params, defaults, said)
        if "/" in rest:  # a model-garden (MaaS) model: Vertex's OpenAI-compatible endpoint
            return _model_garden(google, rest)
        kind = "anthropic-vertex" if rest.startswith("claude") else "vertex"
        provider = {"type": kind, **google}
        if key is not None and not provider.get("credentials"):
            provider["api_key"] = key
    elif prefix == "gemini":
        provider = {"type": "gemini", "api_key": key or "os.environ/GEMINI_API_KEY"}
    elif prefix == "anthropic":
        provider = {"type": "anthropic", "api_key": key or "os.environ/ANTHROPIC_API_KEY"}
    elif prefix == "openai" and (not base or "api.openai.com" in str(base)):
        provider = {"type": "openai", "api_key": key or "os.environ/OPENAI_API_KEY"}
    elif prefix in ("openai", "hosted_vllm", "litellm_proxy") and base:
        provider = {"type": "openai-compatible", "base_url": base, "api_key": key or "none"}
    elif prefix in ("hosted_vllm", "litellm_proxy"):
        return "no api_base"
    else:
        return f"provider `{prefix}/` has no nemorouter provider type ({PROVIDER_TYPES})"
    if base and provider["type"] not in ("openai-compatible", "openai"):
        provider["base_url"] = base
        said.append("api_base kept as the provider's base_url")
    return provider, rest


def _vertex(params: dict[str, Any], defaults: dict[str, Any], said: list[str]) -> dict[str, Any]:
    project = params.get("vertex_project") or params.get("vertex_ai_project")
    location = params.get("vertex_location") or params.get("vertex_ai_location")
    project = project or defaults.get("vertex_project")
    location = location or defaults.get("vertex_location")
    if not location:
        location = "us-central1"
        said.append(
            "no vertex_location: us-central1 assumed (LiteLLM reads VERTEXAI_LOCATION when "
            "unset; write its value here if it was set)"
        )
    found = {"project": project, "location": location,
             "credentials": params.get("vertex_credentials")}  # fmt: skip
    return {k: v for k, v in found.items() if v is not None}


def _model_garden(google: dict[str, Any], upstream: str) -> Route | str:
    """Llama, Mistral, DeepSeek, Qwen on Vertex: its OpenAI-compatible endpoint with a Google
    token (the URL form of nemorouter.example.yaml's `vertex-maas` provider)."""
    project, location = google.get("project"), str(google["location"])
    if not project or any(str(v).startswith(ENV_PREFIX) for v in (project, location)):
        return (
            "a Vertex model-garden model is reached through Vertex's OpenAI-compatible "
            "endpoint, whose URL needs a literal vertex_project and vertex_location: add a "
            "provider {type: openai-compatible, auth: google, base_url: https://LOCATION-"
            "aiplatform.googleapis.com/v1/projects/PROJECT/locations/LOCATION/endpoints/openapi}"
        )
    host = (
        "aiplatform.googleapis.com"
        if location == "global"
        else f"{location}-aiplatform.googleapis.com"
    )
    provider = {
        "type": "openai-compatible",
        "base_url": f"https://{host}/v1/projects/{project}/locations/{location}/endpoints/openapi",
        "auth": "google",
    }
    if google.get("credentials"):
        provider["credentials"] = google["credentials"]
    return provider, upstream


def _inferred_prefix(model: str) -> str:
    if model.startswith(("gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-")):
        return "openai"
    if model.startswith("claude"):
        return "anthropic"
    if model.startswith("gemini"):
        return "vertex_ai"  # LiteLLM sends bare Gemini names to Vertex AI
    return model or "(empty)"


def provider_stem(settings: dict[str, Any]) -> str:
    """A readable provider name: its type, and its region or host."""
    kind = settings["type"]
    location = settings.get("location")
    if kind in ("vertex", "anthropic-vertex"):
        stem = "vertex" if kind == "vertex" else "claude-vertex"
        literal = location and not str(location).startswith(ENV_PREFIX)
        return f"{stem}-{slug(str(location))}" if literal else stem
    if kind == "openai-compatible":
        base = str(settings.get("base_url", ""))
        host = urlsplit(base).hostname if not base.startswith(ENV_PREFIX) else None
        if not host:
            return "openai-compatible"
        if host.endswith("aiplatform.googleapis.com"):
            return f"vertex-maas-{slug(host.split('-aiplatform')[0])}"
        return slug(host.replace(".", "-") if host[0].isdigit() else host.split(".")[0])
    return str(kind)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")
