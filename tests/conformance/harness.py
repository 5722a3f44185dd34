"""The gateway's side of a comparison: adapters built as the gateway builds them (config parsed,
`build_adapter` per provider, deployments resolved against the catalog by `DeploymentPool`),
pointed at the recording server, and sent one canonical request each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from nemorouter.config import parse_config
from nemorouter.core.deployments import Deployment, DeploymentPool
from nemorouter.providers import build_adapter
from nemorouter.types.request import parse_chat_request

MASTER_KEY = "conformance-master-key-0123456789"
PROJECT = "conf-project"
GEMINI_KEY = "gemini-key-123"
ANTHROPIC_KEY = "anthropic-key-123"
OPENAI_KEY = "openai-key-123"
GEMINI_MODEL = "gemini-3.5-flash"  # current (2.5 retired on the Gemini API 2026-12-01)
CLAUDE_MODEL = "claude-sonnet-4-5"
CLAUDE_DIRECT = "claude-sonnet-4-5-20250929"
CLAUDE_VERTEX = "claude-sonnet-4-5@20250929"
OPENAI_MODEL = "gpt-conformance"
# provider name -> (model the client names, the provider's name for it)
MODELS = {
    "gemini": (GEMINI_MODEL, GEMINI_MODEL),
    "vertex": (GEMINI_MODEL, GEMINI_MODEL),
    "anthropic": (CLAUDE_MODEL, CLAUDE_DIRECT),
    "anthropic-vertex": (CLAUDE_MODEL, CLAUDE_VERTEX),
    "openai": (OPENAI_MODEL, OPENAI_MODEL),
}
VERTEX_LOCATION = {"vertex": "us-central1", "anthropic-vertex": "us-east5"}


def provider_entry(kind: str, origin: str, key_file: Path) -> dict[str, Any]:
    if kind in VERTEX_LOCATION:
        return {
            "type": kind,
            "project": PROJECT,
            "location": VERTEX_LOCATION[kind],
            "base_url": origin,
            "credentials": str(key_file),
        }
    key = {"gemini": GEMINI_KEY, "anthropic": ANTHROPIC_KEY, "openai": OPENAI_KEY}[kind]
    base = f"{origin}/v1" if kind == "openai" else origin
    return {"type": kind, "base_url": base, "api_key": key}


def deployment(
    kind: str, origin: str, key_file: Path, models: tuple[str, str] | None = None
) -> Deployment:
    """The one deployment of a one-provider config, its adapter built (not started); `models`:
    (the model's name, the provider's name for it), else the kind's usual one (`MODELS`)."""
    model, upstream = models or MODELS[kind]
    entry: dict[str, Any] = {"id": f"{kind}-dep", "model": model, "provider": kind}
    if upstream != model:
        entry["provider_model"] = upstream
    if kind == "openai":  # not in the catalog: the deployment declares its price
        entry["pricing"] = {"input_per_mtok": "1", "output_per_mtok": "2"}
        entry["context_window"] = 128000
        entry["tags"] = ["vision", "pdf", "structured-output", "tools", "streaming"]
    config = parse_config(
        {
            "settings": {"master_key": MASTER_KEY, "database_url": "sqlite:///:memory:"},
            "providers": {kind: provider_entry(kind, origin, key_file)},
            "deployments": [entry],
        }
    )
    adapters = {kind: build_adapter(kind, config.providers[kind], config.settings)}
    return DeploymentPool(config, adapters).by_model[model][0]


async def send(
    kind: str,
    origin: str,
    key_file: Path,
    case: dict[str, Any],
    models: tuple[str, str] | None = None,
) -> Any:
    """Send `case` through the adapter of `kind` (what the router does for one attempt); the
    translated answer (a completion, or the list of chunks of a stream)."""
    model, _ = models or MODELS[kind]
    request = parse_chat_request(orjson.dumps({**case, "model": model}))
    dep = deployment(kind, origin, key_file, models)
    adapter = dep.adapter
    await adapter.start()
    try:
        upstream = adapter.prepare(dep.target, request.body, {}, request.stream)
        if not request.stream:
            return await adapter.complete(upstream)
        stream = await adapter.open_stream(upstream)
        return [chunk async for chunk in stream]
    finally:
        await adapter.close()


def answer_text(result: Any) -> str:
    """The text of what `send` returned (a completion, or a stream's chunks)."""
    if isinstance(result, dict):
        return result["choices"][0]["message"]["content"]
    return "".join(
        chunk["choices"][0]["delta"].get("content") or "" for chunk in result if chunk["choices"]
    )
