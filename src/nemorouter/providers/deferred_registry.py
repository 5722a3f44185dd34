"""Provider batch APIs by provider type: the deferred counterpart of the adapter table.

Registering a backend is one line here: `"type": BackendClass`, the class taking
`(provider name, ProviderConfig, Settings)` like an adapter and implementing
`types.deferred.DeferredBackend`. A provider type without one runs its deployments' lines
through the interactive path.
"""

from __future__ import annotations

from collections.abc import Callable

from nemorouter.config import ProviderConfig, Settings
from nemorouter.providers.deferred_openai import OpenAIBatchBackend
from nemorouter.types.deferred import DeferredBackend

DEFERRED_BACKENDS: dict[str, Callable[[str, ProviderConfig, Settings], DeferredBackend]] = {
    "openai": OpenAIBatchBackend,
    "openai-compatible": OpenAIBatchBackend,
}


def build_deferred_backend(
    name: str, provider: ProviderConfig, settings: Settings
) -> DeferredBackend | None:
    backend_class = DEFERRED_BACKENDS.get(provider.type)
    return None if backend_class is None else backend_class(name, provider, settings)
