"""`nemorouter spend` and `nemorouter db upgrade` against a real gateway and database."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import openai

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
        f"settings: {{master_key: sk-test-master, database_url: 'sqlite:///{database}'}}\n"
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
