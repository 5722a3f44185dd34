"""Spend rows for store tests."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

_ids = itertools.count()


def spend_row(**changes: Any) -> dict[str, Any]:
    created = changes.pop("created_at", datetime(2026, 11, 20, 12, 0, 0))
    row = {
        "request_id": f"req-{next(_ids)}",
        "created_at": created,
        "day": created.date(),
        "key_id": "master",
        "team_id": None,
        "job_id": None,
        "metadata": None,
        "model_requested": "document-vision",
        "model": "gemini-2.5-flash",
        "deployment": "flash-a",
        "provider": "sim",
        "prompt_tokens": 1000,
        "completion_tokens": 100,
        "cached_tokens": 0,
        "cost_pico": 550_000_000,  # $0.00055
        "cache_hit": False,
        "saved_pico": 0,
        "fallbacks": 0,
        "attempts": 1,
        "stream": False,
        "status": 200,
        "error_code": None,
        "latency_ms": 12.5,
        "pages": 0,
        "deferred": False,
    }
    row.update(changes)
    return row
