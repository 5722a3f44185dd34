"""build_state picks the backend from the settings once, and builds the quota gate."""

from __future__ import annotations

from nemorouter.config import DeploymentConfig, Settings
from nemorouter.state import MemoryWindows, build_state


async def test_memory_by_default() -> None:
    settings = Settings(master_key="sk-test-master")
    deployments = [
        DeploymentConfig(id="pro", model="gemini-2.5-pro", provider="v", rpm=1, tpm=1000),
        DeploymentConfig(id="flash", model="gemini-2.5-flash", provider="v"),
    ]
    state = build_state(settings, deployments)
    assert isinstance(state.windows, MemoryWindows)
    assert state.quotas.gated("pro") and not state.quotas.gated("flash")
    assert (await state.quotas.try_acquire("pro", 10)).allowed
    assert not (await state.quotas.try_acquire("pro", 10)).allowed
    await state.aclose()
