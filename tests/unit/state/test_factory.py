"""build_state: memory without a Redis client, and builds the quota gate."""

from __future__ import annotations

from nemorouter.config import DeploymentConfig
from nemorouter.state import MemoryWindows, build_state


async def test_memory_by_default() -> None:
    deployments = [
        DeploymentConfig(id="pro", model="gemini-2.5-pro", provider="v", rpm=1, tpm=1000),
        DeploymentConfig(id="flash", model="gemini-2.5-flash", provider="v"),
    ]
    state = build_state(None, deployments)
    assert isinstance(state.windows, MemoryWindows)
    assert state.quotas.gated("pro") and not state.quotas.gated("flash")
    assert (await state.quotas.try_acquire("pro", 10)).allowed
    assert not (await state.quotas.try_acquire("pro", 10)).allowed
    await state.aclose()


async def test_quota_windows_are_guarded_and_key_windows_are_not() -> None:
    from nemorouter.state.factory import QUOTA_GUARD_S

    pro = DeploymentConfig(id="pro", model="gemini-2.5-pro", provider="v", rpm=1)
    state = build_state(None, [pro])
    assert state.windows.window_s == 60.0
    assert (await state.quotas.try_acquire("pro")).allowed
    refused = await state.quotas.try_acquire("pro")
    assert 60.0 < refused.retry_after_s <= 60.0 + QUOTA_GUARD_S
    unguarded = build_state(None, [pro], guard_s=0.0)
    assert (await unguarded.quotas.try_acquire("pro")).allowed
    assert (await unguarded.quotas.try_acquire("pro")).retry_after_s <= 60.0
