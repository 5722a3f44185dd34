"""The provider batch API backends, chosen by the provider's `type` (issue 20).

Registering a backend is one line of BACKENDS: the class takes `(provider name,
ProviderConfig, Settings)` like an adapter and implements `types.deferred.DeferredBackend`.
A provider type with no batch API here (or a Vertex provider without `batch_bucket`) gets
None: its lines run through the interactive path with pacing (core/deferred/admit.py).
"""

from __future__ import annotations

from collections.abc import Callable

from nemorouter.config import ProviderConfig, Settings
from nemorouter.providers.deferred_anthropic import AnthropicBatches
from nemorouter.providers.deferred_gemini import GeminiBatches
from nemorouter.providers.deferred_openai import OpenAIBatchBackend
from nemorouter.providers.deferred_vertex import VertexBatches
from nemorouter.providers.deferred_vertex_claude import VertexClaudeBatches
from nemorouter.types.deferred import DeferredBackend

BACKENDS: dict[str, Callable[[str, ProviderConfig, Settings], DeferredBackend]] = {
    "anthropic": AnthropicBatches,
    "gemini": GeminiBatches,
    "vertex": VertexBatches,
    "anthropic-vertex": VertexClaudeBatches,
    "openai": OpenAIBatchBackend,
    "openai-compatible": OpenAIBatchBackend,  # its models' batch price: the deployment's own
}
# Staged in Cloud Storage: no batch API without a bucket.
_STAGED = frozenset({"vertex", "anthropic-vertex"})


def build_deferred(
    name: str, provider: ProviderConfig, settings: Settings
) -> DeferredBackend | None:
    """The provider's batch API backend, or None when it has none."""
    backend = BACKENDS.get(provider.type)
    if backend is None or (provider.type in _STAGED and not provider.batch_bucket):
        return None
    return backend(name, provider, settings)
