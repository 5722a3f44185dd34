"""Fast shared state: sliding rate windows (key/team limits, deployment quotas).

Backends (memory, Redis) sit behind `WindowStore`; `build_state` picks one at start.
"""

from nemorouter.state.factory import State, build_state, build_windows
from nemorouter.state.memory import MemoryWindows
from nemorouter.state.quota import QuotaGate, WaitStats
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
    "MemoryWindows",
    "QuotaGate",
    "Reservation",
    "State",
    "Subject",
    "WaitStats",
    "WindowStore",
    "WindowUsage",
    "build_state",
    "build_windows",
    "deployment_subject",
    "format_duration",
    "key_subject",
    "team_subject",
]
