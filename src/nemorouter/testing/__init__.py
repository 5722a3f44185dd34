"""Test helpers: simulated providers (OpenAI-compatible, Gemini/Vertex, Anthropic), a fake OAuth
token endpoint, and JSON-schema instance generation.

Names are imported lazily so `python -m nemorouter.testing.simulated_provider` does not import
the module twice (runpy warns when the package already imported it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nemorouter.testing.fake_oauth import FakeOAuthServer, SimServiceAccount
    from nemorouter.testing.schema_instance import generate_instance
    from nemorouter.testing.sim_anthropic import SimulatedAnthropic
    from nemorouter.testing.sim_gemini import SimulatedGemini
    from nemorouter.testing.sim_types import Fault, RecordedRequest
    from nemorouter.testing.simulated_provider import SimulatedProvider

__all__ = [
    "FakeOAuthServer",
    "Fault",
    "RecordedRequest",
    "SimServiceAccount",
    "SimulatedAnthropic",
    "SimulatedGemini",
    "SimulatedProvider",
    "generate_instance",
]

_HOMES = {
    "Fault": "sim_types",
    "RecordedRequest": "sim_types",
    "SimulatedProvider": "simulated_provider",
    "SimulatedGemini": "sim_gemini",
    "SimulatedAnthropic": "sim_anthropic",
    "FakeOAuthServer": "fake_oauth",
    "SimServiceAccount": "fake_oauth",
    "generate_instance": "schema_instance",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
