"""Per-key and per-team RPM/TPM through a real gateway, and a batch paced by them.

Windows are scaled down from 60 s to WINDOW_S (build_state's test-only knob) so several
pass in a test."""

from __future__ import annotations

import asyncio
import functools
import math
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from nemorouter import wiring
from nemorouter.batch.prompts import free_prompt
from nemorouter.batch.runner import BatchOptions, run_batch
from nemorouter.serving import BackgroundGateway
from nemorouter.state import build_state
from nemorouter.testing import SimulatedProvider
from tests.unit.cache.images import page_png

from .conftest import MASTER_KEY, GatewayFactory, gateway_config

WINDOW_S = 2.0
ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
HI = [{"role": "user", "content": "hello"}]


@pytest.fixture
def limited(
    sim: SimulatedProvider, start_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> BackgroundGateway:
    monkeypatch.setattr(
        wiring, "build_state", functools.partial(build_state, window_s=WINDOW_S, guard_s=0.0)
    )
    return start_gateway(gateway_config(sim))


def new_key(gateway: BackgroundGateway, **fields: Any) -> str:
    body = {"name": "limited", **fields}
    response = httpx.post(f"{gateway.url}/admin/keys", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()["key"]


def test_rpm_headers_and_retry_after(limited: BackgroundGateway) -> None:
    client = openai.OpenAI(
        base_url=limited.base_url, api_key=new_key(limited, rpm=3), max_retries=0
    )
    started = time.monotonic()
    for remaining in (2, 1, 0):
        raw = client.chat.completions.with_raw_response.create(
            model="gemini-2.5-flash", messages=HI
        )
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
        assert raw.headers["x-ratelimit-remaining-requests"] == str(remaining)
        assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gemini-2.5-flash", messages=HI)
    assert refused.value.code == "rate_limit_exceeded"
    retry_after = int(refused.value.response.headers["retry-after"])
    # The next slot frees when the first request leaves the window: not a constant.
    assert (
        retry_after == math.ceil(WINDOW_S - (time.monotonic() - started)) or retry_after <= WINDOW_S
    )
    time.sleep(retry_after)
    client.chat.completions.create(model="gemini-2.5-flash", messages=HI)  # honoured: admitted


def test_tpm_and_team_limits(limited: BackgroundGateway) -> None:
    small = openai.OpenAI(
        base_url=limited.base_url, api_key=new_key(limited, tpm=50), max_retries=0
    )
    with pytest.raises(openai.RateLimitError) as too_big:  # can never fit: no retry-after
        small.chat.completions.create(model="gemini-2.5-flash", messages=HI, max_tokens=100)
    assert "retry-after" not in too_big.value.response.headers
    team = httpx.post(
        f"{limited.url}/admin/teams", json={"name": "t", "rpm": 2}, headers=ADMIN
    ).json()
    keys = [new_key(limited, team_id=team["id"]) for _ in range(2)]
    clients = [openai.OpenAI(base_url=limited.base_url, api_key=k, max_retries=0) for k in keys]
    clients[0].chat.completions.create(model="gemini-2.5-flash", messages=HI)
    clients[1].chat.completions.create(model="gemini-2.5-flash", messages=HI)
    with pytest.raises(openai.RateLimitError) as team_full:
        clients[0].chat.completions.create(model="gemini-2.5-flash", messages=HI)
    assert "team" in str(team_full.value)


@pytest.mark.timeout(120)
def test_a_batch_paces_itself_against_a_low_key_rpm(
    limited: BackgroundGateway, sim: SimulatedProvider, tmp_path: Path
) -> None:
    """No 429 storm: at most a handful of 429s, each honoured, every page done."""
    rpm, pages = 8, 24  # three windows' worth
    folder = tmp_path / "pages"
    folder.mkdir()
    for i in range(pages):
        (folder / f"page-{i:02d}.png").write_bytes(page_png((120, 90), flip=(i, i)))
    key = new_key(limited, rpm=rpm)
    options = BatchOptions(
        inputs=[folder],
        job_id="paced",
        task=free_prompt("Read the page."),
        out=tmp_path / "out",
        base_url=limited.base_url,
        api_key=key,
        model="gemini-2.5-flash",
        concurrency=8,
        plain_progress=True,
    )
    started = time.monotonic()
    outcome = asyncio.run(run_batch(options))
    elapsed = time.monotonic() - started
    assert outcome.summary["ok"] == pages, outcome.summary
    metrics = httpx.get(f"{limited.url}/metrics").text
    refused = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("nemorouter_requests_total") and 'status="429"' in line
    )
    # No storm: at most one 429 per worker (requests already in flight when the window
    # filled); a client ignoring retry-after would collect dozens here.
    assert refused <= options.concurrency, f"{refused} 429s: the batch hammered the limit"
    # Paced at the limit, not far below it: 24 pages at 8 a window need 2 window turns.
    assert elapsed < (pages / rpm) * WINDOW_S + 4 * WINDOW_S
    assert sim.request_count == pages
