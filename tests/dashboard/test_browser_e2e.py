"""End to end in a real browser: a batch runs through the gateway, an operator signs in
to /ui with the master key, opens the job, and sees exactly the admin API's numbers."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import openai

from nemorouter.batch.prompts import extraction
from nemorouter.batch.runner import BatchOptions, run_batch
from nemorouter.demo import INVOICE_SCHEMA, sample_documents
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import Fault, SimulatedProvider

from .browser import chromium, money, require_chromium
from .conftest import MASTER_KEY, admin_get

JOB = "e2e-invoices"


def run_test_batch(gateway: BackgroundGateway, sim: SimulatedProvider, folder: Path) -> None:
    sample_documents(folder / "documents")
    sim.inject(Fault.status(503), times=2)  # the first page falls back from pro to flash
    options = BatchOptions(
        inputs=[folder / "documents"],
        job_id=JOB,
        task=extraction(INVOICE_SCHEMA),
        out=folder / "results",
        base_url=gateway.base_url,
        api_key=MASTER_KEY,
        model="document-vision",
        concurrency=1,
        dpi=72,
        plain_progress=True,
    )
    outcome = asyncio.run(run_batch(options))
    assert outcome.summary["pages"] == 5


def stat(page: Any, name: str) -> tuple[str, str]:
    """(text shown, exact value) of a figure on the page."""
    value = page.locator(f'[data-stat="{name}"] .stat-value')
    return value.inner_text(), value.get_attribute("data-value")


def screenshot_path(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("NEMOROUTER_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "dashboard-job.png"


def test_sign_in_open_the_job_and_see_the_api_numbers(
    dash_gateway: BackgroundGateway, sim: SimulatedProvider, tmp_path: Path
) -> None:
    require_chromium()  # before the batch, so a missing browser costs nothing
    run_test_batch(dash_gateway, sim, tmp_path)
    base = dash_gateway.url
    problems: list[str] = []
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

        # No session: the job page sends the browser to the sign-in form.
        page.goto(f"{base}/ui/jobs/{JOB}")
        assert page.url == f"{base}/ui/login?next=/ui/jobs/{JOB}"
        page.fill("#key", "sk-not-the-master-key")
        page.click("button[type=submit]")
        assert page.locator(".error").inner_text() == "That is not the master key."
        assert context.cookies() == []
        problems.clear()  # the refused sign-in's 401 is logged by chromium as an error

        page.fill("#key", MASTER_KEY)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/ui/jobs/{JOB}")
        assert MASTER_KEY not in page.url
        (cookie,) = context.cookies()
        assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
        assert page.evaluate("document.cookie") == ""  # scripts cannot read the session

        page.wait_for_selector('[data-stat="cost"]')
        api = admin_get(dash_gateway, f"/admin/jobs/{JOB}").json()
        assert api["requests"] == 5 and api["fallbacks"] == 1
        assert stat(page, "requests") == (str(api["requests"]), str(api["requests"]))
        assert stat(page, "cost") == (money(api["cost_usd"]), api["cost_usd"])
        assert stat(page, "cost_per_request") == (
            money(api["cost_per_request_usd"]),
            api["cost_per_request_usd"],
        )
        assert stat(page, "fallbacks")[0] == str(api["fallbacks"])
        assert stat(page, "failed")[0] == str(api["failed"])
        assert stat(page, "cache_hit_rate")[1] == str(api["cache_hits"])
        for model, figures in api["models"].items():
            row = page.locator("tr", has_text=model).last
            assert money(figures["cost_usd"]) in row.inner_text()
        assert (
            page.locator("#chart-timeline svg.chart .bar, #chart-timeline svg.chart .dot").count()
            >= 1
        )
        assert page.locator("#chart-models svg.chart .bar").count() == len(api["models"])
        assert page.locator("#job-state").inner_text() == "live"
        fallback_row = page.locator("tr", has_text="document-vision → gemini-2.5-flash")
        assert fallback_row.count() == 1
        shot = screenshot_path(tmp_path)
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000

        # The job page follows a running job: one more request shows up by itself.
        client = openai.OpenAI(base_url=dash_gateway.base_url, api_key=MASTER_KEY, max_retries=0)
        client.chat.completions.create(
            model="gemini-2.5-flash",
            messages=[{"role": "user", "content": "one more page"}],
            extra_body={"metadata": {"job_id": JOB}},
        )
        page.wait_for_function(
            """() => document.querySelector('[data-stat="requests"] .stat-value')
                ?.dataset.value === "6" """,
            timeout=10_000,
        )
        api = admin_get(dash_gateway, f"/admin/jobs/{JOB}").json()
        assert stat(page, "cost") == (money(api["cost_usd"]), api["cost_usd"])

        # The other pages draw from the same API without a script error.
        page.click("nav >> text=Jobs")
        page.wait_for_selector(f'tr[data-job="{JOB}"]')
        row = page.locator(f'tr[data-job="{JOB}"]').inner_text()
        assert money(api["cost_usd"]) in row and money(api["cost_per_request_usd"]) in row
        page.click("nav >> text=Overview")
        page.wait_for_selector('[data-stat="today"]')
        today = admin_get(dash_gateway, "/admin/spend", group_by="day").json()["rows"][-1]
        assert stat(page, "today") == (money(today["cost_usd"]), today["cost_usd"])
        assert page.locator("#chart-days svg.chart .bar").count() == 30
        page.click("nav >> text=Keys and teams")
        page.wait_for_selector("h2:has-text('Keys')")
        page.click("nav >> text=Fallbacks and errors")
        page.wait_for_selector("h2:has-text('Recent fallbacks')")
        assert page.locator("tr", has_text="document-vision → gemini-2.5-flash").count() == 1
        assert problems == []

        # Signing out ends the session: the pages are unreachable again.
        page.click("text=Sign out")
        page.wait_for_url(f"{base}/ui/login")
        assert context.cookies() == []
        page.goto(f"{base}/ui/jobs/{JOB}")
        assert re.search(r"/ui/login\?next=", page.url)
        assert page.request.get(f"{base}/admin/jobs/{JOB}").status == 401


def test_the_job_view_counts_pages_and_documents_as_the_runner_does(
    dash_gateway: BackgroundGateway, sim: SimulatedProvider, tmp_path: Path
) -> None:
    """A batch with a re-ask: the runner counts 5 pages of 4 documents, the gateway 6
    requests; the job view shows the pages and documents of summary.json, and the extra
    request as the re-ask it is."""
    require_chromium()
    sample_documents(tmp_path / "documents")
    sim.inject(Fault.answer("not JSON: the page is an invoice"))  # the first page is re-asked
    options = BatchOptions(
        inputs=[tmp_path / "documents"], job_id="reasked", task=extraction(INVOICE_SCHEMA),
        out=tmp_path / "results", base_url=dash_gateway.base_url, api_key=MASTER_KEY,
        model="document-vision", concurrency=1, dpi=72, plain_progress=True,
    )  # fmt: skip
    asyncio.run(run_batch(options))
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert (summary["pages"], summary["ok"], len(summary["cost_per_document_usd"])) == (5, 5, 4)
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{dash_gateway.url}/ui/login?next=/ui/jobs/reasked")
        page.fill("#key", MASTER_KEY)
        page.click("button[type=submit]")
        page.wait_for_selector('[data-stat="pages"]')
        assert stat(page, "pages") == (str(summary["pages"]), str(summary["pages"]))
        documents = str(len(summary["cost_per_document_usd"]))
        assert stat(page, "documents") == (documents, documents)
        assert stat(page, "reasked_pages") == ("1", "1")
        assert stat(page, "requests")[1] == "6"  # five first asks and the re-ask
        note = page.locator("#job-work-note").inner_text()
        assert "6 requests for 5 pages of 4 documents; 1 page was asked again" in note
