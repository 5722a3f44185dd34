"""What the provider batch backend tests share: settings, lines prepared by the real adapter,
and polling an ended part."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from nemorouter.config import Settings
from nemorouter.providers.base import ProviderAdapter
from nemorouter.types.deferred import DeferredBackend, DeferredLine, LineOutcome, PartProgress
from nemorouter.types.target import Target

SETTINGS = Settings(master_key="sk-test-master-key-0123456789abcdef", request_timeout_s=5)
SCHEMA = {
    "type": "object",
    "properties": {"doc_type": {"type": "string", "enum": ["invoice", "receipt"]}},
    "required": ["doc_type"],
    "additionalProperties": False,
}


def body(i: int) -> dict[str, Any]:
    """Line i's chat request: every 50th asks for structured output, line 7 fails."""
    text = f"Read page {i} of the invoice."
    if i == 7:
        text += " SIM_BATCH_FAIL"
    request: dict[str, Any] = {"messages": [{"role": "user", "content": text}], "max_tokens": 200}
    if i % 50 == 0:
        request["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "doc", "schema": SCHEMA, "strict": True},
        }
    return request


def lines(adapter: ProviderAdapter, target: Target, n: int) -> list[DeferredLine]:
    out = []
    for i in range(n):
        prepared = adapter.prepare(target, body(i), {}, stream=False)
        custom_id = f"line-{i:04d}"
        out.append(DeferredLine(custom_id, prepared.wire, prepared.path, prepared.structured))
    return out


async def wait_ended(
    backend: DeferredBackend, provider_id: str, limit_s: float = 20
) -> list[PartProgress]:
    """Every progress seen until the part ended."""
    seen = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        progress = await backend.poll(provider_id)
        seen.append(progress)
        if progress.status.ended:
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"the part did not end: {seen[-1] if seen else None}")


async def outcomes(
    backend: DeferredBackend, target: Target, provider_id: str, sent: list[DeferredLine]
) -> dict[str, LineOutcome]:
    got: dict[str, LineOutcome] = {}
    async for outcome in backend.results(target, provider_id, sent):
        assert outcome.custom_id not in got
        assert (outcome.response is None) != (outcome.error is None)
        got[outcome.custom_id] = outcome
    return got
