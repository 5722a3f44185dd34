"""What the CLI prints (DESIGN §2.5): nothing cut, piped or on a narrow terminal; `--json`
on every command that prints data; one money format shared by the CLI, summary.json's
exact figures and the dashboard. Every command runs as a subprocess, as a user runs it."""

from __future__ import annotations

import fcntl
import json
import os
import re
import struct
import subprocess
import sys
import termios
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from nemorouter.admin_client import AdminClient
from nemorouter.demo import sample_documents
from nemorouter.serving import BackgroundGateway
from nemorouter.store.spend_columns import NOT_ANSWERED
from nemorouter.types.money import display_usd
from tests.dashboard.browser import node_money

from .conftest import MASTER_KEY

CLI = [sys.executable, "-m", "nemorouter.cli"]
NARROW = {**os.environ, "COLUMNS": "40", "NEMOROUTER_API_KEY": MASTER_KEY}
LONG_NAME = "invoices-of-the-northern-region-2026"  # longer than any 40-column cell
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Stdout piped, COLUMNS=40: what `| grep`, `| less` or a CI log gets."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=NARROW)


def run_json(*args: str) -> Any:
    done = run(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def in_terminal(*args: str, columns: int = 40) -> str:
    """Stdout on a pseudo-terminal `columns` wide: what a person in a narrow window sees."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {**NARROW, "COLUMNS": str(columns), "TERM": "xterm-256color"}
    process = subprocess.Popen(
        [*CLI, *args], stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE, env=env
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


def words(text: str) -> set[str]:
    return set(re.split(r"[\s│┃|]+", text))


@pytest.fixture
def auth(gateway: BackgroundGateway) -> list[str]:
    return ["--base-url", gateway.base_url, "--api-key", MASTER_KEY]


def test_keys_list_prints_every_id_whole_piped_and_in_a_narrow_terminal(
    gateway: BackgroundGateway, auth: list[str]
) -> None:
    team = run_json("teams", "create", "--name", LONG_NAME, "--budget-usd", "0.0000004", *auth)
    created = run_json(
        "keys", "create", "--name", LONG_NAME, "--team-id", team["id"], "--budget-usd", "1.5",
        "--budget-period", "daily", "--models", "gemini-2.5-flash,document-vision", *auth,
    )  # fmt: skip
    piped = run("keys", "list", "--team-id", team["id"], *auth)
    assert piped.returncode == 0, piped.stderr
    assert "…" not in piped.stdout
    # The id `keys revoke` needs, the team id, the name, the budget: each one whole word.
    assert {created["id"], team["id"], LONG_NAME, "$1.50"} <= words(piped.stdout)
    narrow = in_terminal("keys", "list", "--team-id", team["id"], *auth)
    assert "…" not in narrow
    assert {created["id"], team["id"], LONG_NAME, "$1.50"} <= words(narrow), narrow
    assert max(len(line) for line in narrow.splitlines()) <= 40
    teams = run("teams", "list", *auth)
    # $0.0000004, never rounded to $0.00
    assert {team["id"], LONG_NAME, "$0.0000004"} <= words(teams.stdout), teams.stdout
    listed = run_json("keys", "list", "--team-id", team["id"], *auth)
    assert [k["id"] for k in listed] == [created["id"]] and created["key"] not in str(listed)
    assert team["id"] in [t["id"] for t in run_json("teams", "list", *auth)]
    # The id as printed is the id revoke takes.
    revoked = run_json("keys", "revoke", created["id"], *auth)
    assert revoked["id"] == created["id"] and revoked["revoked_at"]


def test_spend_tables_keep_model_names_and_money_whole(
    gateway: BackgroundGateway, client: openai.OpenAI, auth: list[str]
) -> None:
    for i in range(3):
        client.chat.completions.create(
            model="document-vision",
            messages=[{"role": "user", "content": f"page {i}"}],
            extra_body={"metadata": {"job_id": LONG_NAME}},
        )
    report = run_json("spend", "--group-by", "model", *auth)
    job = run_json("spend", "--job", LONG_NAME, *auth)
    assert job["requests"] == 3
    by_model = run("spend", "--group-by", "model", *auth)
    assert by_model.returncode == 0, by_model.stderr
    shown = words(by_model.stdout)
    assert {"gemini-2.5-pro", display_usd(report["total_cost_usd"])} <= shown, by_model.stdout
    assert all(display_usd(row["cost_usd"]) in shown for row in report["rows"])
    one_job = run("spend", "--job", LONG_NAME, *auth)
    assert {LONG_NAME, "gemini-2.5-pro", display_usd(job["cost_usd"])} <= words(one_job.stdout)
    assert f"{display_usd(job['cost_per_request_usd'])} per request" in one_job.stdout
    narrow = in_terminal("spend", "--group-by", "model", *auth)
    assert {"gemini-2.5-pro", display_usd(report["total_cost_usd"])} <= words(narrow), narrow
    for text in (by_model.stdout, one_job.stdout, narrow):
        assert "…" not in text


def test_spend_by_model_counts_the_model_that_answered(
    gateway: BackgroundGateway, client: openai.OpenAI, auth: list[str]
) -> None:
    """A request for `gpt-9`, refused 404, is not a model in spend by model: it is counted
    on the one `(not answered)` line, and the rows still add up to every request."""
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="gpt-9",
            messages=[{"role": "user", "content": "x"}],
            extra_body={"metadata": {"job_id": "refused-job"}},
        )
    client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[{"role": "user", "content": "x"}],
        extra_body={"metadata": {"job_id": "refused-job"}},
    )
    # (an admin read first writes what the spend writer holds: core/store_read.flushed)
    rows = {r["group"]: r for r in run_json("spend", "--group-by", "model", *auth)["rows"]}
    assert "gpt-9" not in rows
    assert rows[NOT_ANSWERED]["requests"] >= 1 and rows[NOT_ANSWERED]["cost_usd"] == "0"
    job = run_json("spend", "--job", "refused-job", *auth)
    assert job["models"] == {
        "gemini-2.5-flash": {"requests": 1, "cost_usd": job["cost_usd"]},
        NOT_ANSWERED: {"requests": 1, "cost_usd": "0"},
    }
    table = run("spend", "--group-by", "model", "--job", "refused-job", *auth)
    assert "gpt-9" not in table.stdout and NOT_ANSWERED in table.stdout


def test_one_job_shows_the_same_money_in_the_cli_summary_json_and_the_dashboard(
    gateway: BackgroundGateway, auth: list[str], tmp_path: Path
) -> None:
    docs, out = tmp_path / "docs", tmp_path / "out"
    sample_documents(docs)  # 5 pages
    job_id = "same-money"
    args = ["batch", "run", str(docs), "--job-id", job_id, "--prompt", "Describe the page.",
            "--out", str(out), "--base-url", gateway.base_url, "--model", "gemini-2.5-pro"]  # fmt: skip
    done = run(*args, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert json.loads(done.stdout) == summary  # stdout is the summary alone
    assert "5/5 pages" in done.stderr  # the progress lines went to stderr
    api = AdminClient(gateway.base_url, MASTER_KEY).get(f"/admin/jobs/{job_id}")
    # Exact figures: summary.json (the runner's sum of cost headers) and the gateway agree.
    assert summary["cost_total_usd"] == api["cost_usd"]
    assert Decimal(summary["cost_per_page_usd"]) * 5 == Decimal(summary["cost_total_usd"])
    assert sum(map(Decimal, summary["cost_per_document_usd"].values())) == Decimal(api["cost_usd"])
    total = display_usd(summary["cost_total_usd"])
    per_page = display_usd(summary["cost_per_page_usd"])
    # The dashboard's format.js shows the same strings as the CLI.
    assert node_money([api["cost_usd"], summary["cost_per_page_usd"]]) == [total, per_page]
    again = run(*args)  # resumed: nothing left to send, the same summary printed
    assert f"cost {total} (per page {per_page})" in again.stdout, again.stdout
    status = run("batch", "status", "--out", str(out))
    assert f"cost so far: {total} " in status.stdout
    assert run_json("batch", "status", "--out", str(out))["cost_usd"] == api["cost_usd"]
    spend = run("spend", "--job", job_id, *auth)
    assert total in words(spend.stdout), spend.stdout
