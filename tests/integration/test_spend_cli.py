"""`nemorouter spend` and `nemorouter db upgrade` against a real gateway and database."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from nemorouter.serving import BackgroundGateway

from .conftest import MASTER_KEY

CLI = [sys.executable, "-m", "nemorouter.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def test_spend_shows_a_job_and_groups(gateway: BackgroundGateway, client: openai.OpenAI) -> None:
    costs = []
    for i in range(3):
        raw = client.chat.completions.with_raw_response.create(
            model="gemini-2.5-flash",
            messages=[{"role": "user", "content": f"page {i}"}],
            extra_body={"metadata": {"job_id": "cli-job"}},
        )
        costs.append(raw.headers["x-nemo-response-cost"])
    auth = ["--base-url", gateway.base_url, "--api-key", MASTER_KEY]
    shown = run("spend", "--job", "cli-job", *auth)
    assert shown.returncode == 0, shown.stderr
    assert "cli-job" in shown.stdout
    assert "gemini-2.5-flash" in shown.stdout
    as_json = json.loads(run("spend", "--job", "cli-job", "--json", *auth).stdout)
    assert as_json["requests"] == 3
    grouped = json.loads(run("spend", "--group-by", "model", "--json", *auth).stdout)
    assert any(row["group"] == "gemini-2.5-flash" for row in grouped["rows"])
    table = run("spend", "--group-by", "day", *auth)
    assert table.returncode == 0 and "total" in table.stdout


def test_spend_errors_are_plain(gateway: BackgroundGateway) -> None:
    wrong_key = run("spend", "--base-url", gateway.base_url, "--api-key", "sk-wrong-key")
    assert wrong_key.returncode == 1
    assert "401 invalid_api_key" in wrong_key.stderr
    unknown = run("spend", "--job", "nope", "--base-url", gateway.base_url, "--api-key", MASTER_KEY)
    assert unknown.returncode == 1 and "job_not_found" in unknown.stderr
    bad_group = run("spend", "--group-by", "colour", "--api-key", MASTER_KEY)
    assert bad_group.returncode == 2
    down = run("spend", "--base-url", "http://127.0.0.1:9/v1", "--api-key", MASTER_KEY)
    assert down.returncode == 1 and "cannot reach the gateway" in down.stderr


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    database = tmp_path / "nested" / "store.db"
    config.write_text(
        f"settings: {{master_key: sk-test-master-key, database_url: 'sqlite:///{database}'}}\n"
        "providers: {p: {type: openai-compatible, base_url: 'http://127.0.0.1:9/v1'}}\n"
        "deployments: [{id: a, model: gemini-2.5-pro, provider: p}]\n"
    )
    result = run("db", "upgrade", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "schema up to date" in result.stdout
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "spend" in tables
    bad = config.read_text().replace(f"sqlite:///{database}", "mysql://x/y")
    config.write_text(bad)
    refused = run("db", "upgrade", "--config", str(config))
    assert refused.returncode == 2 and "settings.database_url" in refused.stderr


def test_keys_and_teams_commands(gateway: BackgroundGateway) -> None:
    auth = ["--base-url", gateway.base_url, "--api-key", MASTER_KEY]
    team = run("teams", "create", "--name", "cli-team", "--budget-usd", "5", *auth)
    assert team.returncode == 0, team.stderr
    team_id = team.stdout.split()[1]
    created = run(
        "keys", "create", "--name", "cli-key", "--team-id", team_id,
        "--models", "gemini-2.5-flash,document-vision", "--budget-usd", "1.50",
        "--budget-period", "daily", "--json", *auth,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["models"] == ["gemini-2.5-flash", "document-vision"]
    assert key["budget_usd"] == "1.5" and key["budget_period"] == "daily"
    client = openai.OpenAI(base_url=gateway.base_url, api_key=key["key"], max_retries=0)
    client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "x"}]
    )

    listed = run("keys", "list", "--team-id", team_id, *auth)
    assert listed.returncode == 0 and key["key"] not in listed.stdout  # never the secret
    as_json = run("keys", "list", "--team-id", team_id, "--json", *auth).stdout
    assert [k["id"] for k in json.loads(as_json)] == [key["id"]]
    assert key["key"] not in as_json
    assert json.loads(run("teams", "list", "--json", *auth).stdout)[0]["name"] == "cli-team"
    revoked = run("keys", "revoke", key["id"], *auth)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "x"}]
        )
    bad = run("keys", "create", "--name", "x", "--models", "nope", *auth)
    assert bad.returncode == 1 and "Unknown model" in bad.stderr
