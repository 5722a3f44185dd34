"""Fast shared state: sliding rate windows (key/team limits, deployment quotas), the
response cache and single flight.

Backends (memory, Redis) sit behind `WindowStore` and `ResponseCache`; `build_state` and
`build_cache` pick one at start.
"""

from nemorouter.state.cache import ResponseCache, build_cache
from nemorouter.state.cache_memory import MemoryCache
from nemorouter.state.factory import State, build_state, build_windows
from nemorouter.state.memory import MemoryWindows
from nemorouter.state.quota import QuotaGate, WaitStats
from nemorouter.state.single_flight import SingleFlight
from nemorouter.state.types import (
    ALLOWED,
    NEVER,
    WINDOW_S,
    Decision,
    Reservation,
    Subject,
    WindowUsage,
    deployment_subject,
    format_duration,
    key_subject,
    team_subject,
)
from nemorouter.state.windows import WindowStore

__all__ = [
    "ALLOWED",
    "NEVER",
    "WINDOW_S",
    "Decision",
    "MemoryCache",
    "MemoryWindows",
    "QuotaGate",
    "Reservation",
    "ResponseCache",
    "SingleFlight",
    "State",
    "Subject",
    "WaitStats",
    "WindowStore",
    "WindowUsage",
    "build_cache",
    "build_state",
    "build_windows",
    "deployment_subject",
    "format_duration",
    "key_subject",
    "team_subject",
]
