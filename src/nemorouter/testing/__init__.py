"""Test helpers: a simulated OpenAI-compatible provider and JSON-schema instance generation.

Names are imported lazily so `python -m nemorouter.testing.simulated_provider` does not import
the module twice (runpy warns when the package already imported it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nemorouter.testing.schema_instance import generate_instance
    from nemorouter.testing.sim_types import Fault, RecordedRequest
    from nemorouter.testing.simulated_provider import SimulatedProvider

__all__ = ["Fault", "RecordedRequest", "SimulatedProvider", "generate_instance"]

_HOMES = {
    "Fault": "sim_types",
    "RecordedRequest": "sim_types",
    "SimulatedProvider": "simulated_provider",
    "generate_instance": "schema_instance",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
