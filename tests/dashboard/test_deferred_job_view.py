"""The job view shows a deferred job's cost at the batch price beside its interactive cost,
exactly the admin API's figures."""

from __future__ import annotations

import time
from pathlib import Path

import openai

from nemorouter.config import parse_config
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider
from tests.integration.test_deferred import deferred_config, request_line, run

from .browser import chromium, money, require_chromium
from .conftest import MASTER_KEY, admin_get

JOB = "deferred-view"


def test_the_job_view_shows_deferred_and_interactive_cost(tmp_path: Path) -> None:
    require_chromium()
    with SimulatedProvider() as sim:
        config = deferred_config(sim, database_url=f"sqlite:///{tmp_path}/store.db")
        with BackgroundGateway(parse_config(config, env={})) as gateway:
            client = openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)
            lines = [request_line(i) for i in range(4)]
            lines += [request_line(i, model="gemini-2.5-flash") for i in range(4, 6)]
            assert run(client, lines, metadata={"job_id": JOB}).request_counts.completed == 6
            deadline = time.monotonic() + 10
            api = admin_get(gateway, f"/admin/jobs/{JOB}").json()
            while api["interactive_requests"] < 2:  # live lines' rows: the batched writer
                assert time.monotonic() < deadline
                time.sleep(0.1)
                api = admin_get(gateway, f"/admin/jobs/{JOB}").json()
            assert (api["deferred_requests"], api["interactive_requests"]) == (4, 2)
            with chromium() as browser:
                page = browser.new_page()
                page.goto(f"{gateway.url}/ui/login?next=/ui/jobs/{JOB}")
                page.fill("#key", MASTER_KEY)
                page.click("button[type=submit]")
                page.wait_for_selector('[data-stat="deferred_cost"]')
                for name, field in (("deferred_cost", "deferred_cost_usd"),
                                    ("interactive_cost", "interactive_cost_usd")):  # fmt: skip
                    value = page.locator(f'[data-stat="{name}"] .stat-value')
                    assert value.get_attribute("data-value") == api[field]
                    assert value.inner_text() == money(api[field])
