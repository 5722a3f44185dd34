"""Provider adapters, one per wire format, chosen by the provider's `type`."""

from __future__ import annotations

from collections.abc import Callable

from nemorouter.config import ConfigError, ProviderConfig, Settings
from nemorouter.providers.anthropic import AnthropicAdapter
from nemorouter.providers.base import ProviderAdapter
from nemorouter.providers.gemini import GeminiAdapter
from nemorouter.providers.openai import OpenAIAdapter

_ADAPTERS: dict[str, Callable[[str, ProviderConfig, Settings], ProviderAdapter]] = {
    "openai": OpenAIAdapter,
    "openai-compatible": OpenAIAdapter,
    "vertex": GeminiAdapter,
    "gemini": GeminiAdapter,
    "anthropic": AnthropicAdapter,
    "anthropic-vertex": AnthropicAdapter,
}


def build_adapter(name: str, provider: ProviderConfig, settings: Settings) -> ProviderAdapter:
    adapter_class = _ADAPTERS.get(provider.type)
    if adapter_class is None:
        available = ", ".join(sorted(_ADAPTERS))
        raise ConfigError(
            f"providers.{name}.type",
            f"provider type {provider.type!r} has no adapter in this version (available: {available})",
        )
    return adapter_class(name, provider, settings)
