"""The dashboard's admin endpoints through a real gateway: /admin/spend/timeline,
/admin/events, /admin/budgets agree with /admin/jobs and /admin/keys."""

from __future__ import annotations

from decimal import Decimal

import httpx
import openai
import pytest

from nemorouter.serving import BackgroundGateway
from nemorouter.testing import Fault, SimulatedProvider

from .conftest import ADMIN, MASTER_KEY, admin_get

JOB = "scan/2026-11 batch"  # a slash and a space: ids travel in paths and query strings


def ask(client: openai.OpenAI, model: str = "gemini-2.5-flash", job: str = JOB) -> None:
    client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Read this page."}],
        extra_body={"metadata": {"job_id": job}},
    )


def test_timeline_and_events_agree_with_the_job(
    dash_gateway: BackgroundGateway, sim: SimulatedProvider
) -> None:
    client = openai.OpenAI(base_url=dash_gateway.base_url, api_key=MASTER_KEY, max_retries=0)
    for _ in range(3):
        ask(client)
    sim.inject(Fault.status(503), times=2)  # both attempts on pro fail: falls back to flash
    ask(client, "document-vision")
    sim.inject(Fault.status(500), times=2)
    with pytest.raises(openai.InternalServerError):
        ask(client, "gemini-2.5-pro")

    job = admin_get(dash_gateway, f"/admin/jobs/{JOB}").json()
    assert (job["requests"], job["failed"], job["fallbacks"]) == (5, 1, 1)
    timeline = admin_get(dash_gateway, "/admin/spend/timeline", job_id=JOB, bucket="minute")
    assert timeline.status_code == 200
    body = timeline.json()
    assert body["bucket"] == "minute"
    assert body["total_cost_usd"] == job["cost_usd"]
    assert sum(Decimal(r["cost_usd"]) for r in body["rows"]) == Decimal(job["cost_usd"])
    assert sum(r["requests"] for r in body["rows"]) == 5
    assert sum(r["failed"] for r in body["rows"]) == 1

    fallbacks = admin_get(dash_gateway, "/admin/events", kind="fallback").json()["events"]
    assert [(e["job_id"], e["model_requested"], e["model"]) for e in fallbacks] == [
        (JOB, "document-vision", "gemini-2.5-flash")
    ]
    errors = admin_get(dash_gateway, "/admin/events", kind="error", job_id=JOB).json()["events"]
    assert [(e["status"], e["error_code"]) for e in errors] == [(503, "all_deployments_failed")]
    both = admin_get(dash_gateway, "/admin/events", limit="10").json()["events"]
    assert len(both) == 2


def test_budgets_agree_with_each_key(dash_gateway: BackgroundGateway) -> None:
    base = dash_gateway.url
    team = httpx.post(
        f"{base}/admin/teams", json={"name": "ops", "budget_usd": "5", "rpm": 60}, headers=ADMIN
    ).json()
    key = httpx.post(
        f"{base}/admin/keys",
        json={
            "name": "scanner",
            "team_id": team["id"],
            "budget_usd": "1",
            "budget_period": "daily",
        },
        headers=ADMIN,
    ).json()
    client = openai.OpenAI(base_url=dash_gateway.base_url, api_key=key["key"], max_retries=0)
    ask(client)
    ask(client)

    budgets = admin_get(dash_gateway, "/admin/budgets").json()
    (listed,) = budgets["keys"]
    single = admin_get(dash_gateway, f"/admin/keys/{key['id']}").json()
    assert listed == single  # the same record and the same spend in its period
    assert Decimal(listed["spend"]["usd"]) > 0
    (listed_team,) = budgets["teams"]
    assert listed_team["spend"]["usd"] == listed["spend"]["usd"]
    assert (listed_team["budget_usd"], listed_team["rpm"]) == ("5", 60)


def test_refusals_and_bad_queries(dash_gateway: BackgroundGateway) -> None:
    for path in ("/admin/spend/timeline", "/admin/events", "/admin/budgets"):
        assert httpx.get(f"{dash_gateway.url}{path}").status_code == 401
        wrong = httpx.get(f"{dash_gateway.url}{path}", headers={"Authorization": "Bearer x"})
        assert wrong.json()["error"]["code"] == "invalid_api_key"
    bad = admin_get(dash_gateway, "/admin/spend/timeline", bucket="week")
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "bucket")
    assert admin_get(dash_gateway, "/admin/spend/timeline", start="soon").status_code == 400
    assert admin_get(dash_gateway, "/admin/events", kind="warning").status_code == 400
    assert admin_get(dash_gateway, "/admin/events", limit="0").status_code == 400
    empty = admin_get(dash_gateway, "/admin/spend/timeline", bucket="day").json()
    assert empty == {"bucket": "day", "rows": [], "total_cost_usd": "0"}


def test_a_valid_virtual_key_on_the_admin_api_is_told_it_is_not_an_admin_key(
    dash_gateway: BackgroundGateway,
) -> None:
    base = dash_gateway.url
    key = httpx.post(f"{base}/admin/keys", json={"name": "worker"}, headers=ADMIN).json()
    own = {"Authorization": f"Bearer {key['key']}"}
    for method, path in (
        ("GET", "/admin/keys"),
        ("GET", "/admin/budgets"),
        ("POST", "/admin/keys"),
    ):
        answer = httpx.request(method, f"{base}{path}", headers=own, json={"name": "x"})
        assert answer.status_code == 403, path
        assert answer.json()["error"]["code"] == "not_admin"
    httpx.delete(f"{base}/admin/keys/{key['id']}", headers=ADMIN).raise_for_status()
    revoked = httpx.get(f"{base}/admin/keys", headers=own)
    assert revoked.status_code == 401  # a revoked key authenticates no more
