"""`nemorouter check` as a user runs it (a subprocess, output piped) against simulated
providers of every wire format: passing rows, each failure, --no-calls and config errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from nemorouter.catalog import load_catalog
from nemorouter.core.cost import call_cost
from nemorouter.testing import (
    FakeOAuthServer,
    Fault,
    SimulatedAnthropic,
    SimulatedGemini,
    SimulatedProvider,
)

CLI = [sys.executable, "-m", "nemorouter.cli", "check"]
LONG_ID = "flash-on-the-local-openai-compatible-server-" + "x" * 60
ANTHROPIC_KEY = "sk-ant-sim-right-key"
GEMINI_KEY = "gm-sim-right-key"


def check(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "80"},  # a narrow terminal's width must not cut a pipe
    )


def write_config(tmp_path: Path, providers: dict[str, Any], deployments: list[Any]) -> Path:
    path = tmp_path / "nemorouter.yaml"
    settings = {"master_key": "sk-test-master-key-0123"}
    path.write_text(
        yaml.safe_dump({"settings": settings, "providers": providers, "deployments": deployments})
    )
    return path


def rows_of(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    report = json.loads(result.stdout)
    return {row["deployment"]: row for row in report["deployments"]}


def nothing_listening() -> str:
    with socket.socket() as probe:  # a port just freed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def oauth() -> Iterator[FakeOAuthServer]:
    with FakeOAuthServer() as server:
        yield server


@pytest.fixture
def key_file(oauth: FakeOAuthServer, tmp_path: Path) -> Path:
    return oauth.create_account().write(tmp_path / "sa.json")


def vertex(kind: str, sim: SimulatedProvider, key_file: Path) -> dict[str, Any]:
    return {"type": kind, "project": "sim-project", "location": "us-central1",
            "base_url": sim.base_url, "credentials": str(key_file)}  # fmt: skip


def test_every_wire_format_passes_with_its_cost_quota_headers_and_whole_ids(
    tmp_path: Path, oauth: FakeOAuthServer, key_file: Path
) -> None:
    with ExitStack() as stack:
        local = stack.enter_context(SimulatedProvider(rpm=1000))
        gemini = stack.enter_context(SimulatedGemini(oauth=oauth, api_key=GEMINI_KEY))
        claude = stack.enter_context(SimulatedAnthropic(oauth=oauth, api_key=ANTHROPIC_KEY, rpm=50))
        config = write_config(
            tmp_path,
            {
                "local": {"type": "openai-compatible", "base_url": local.base_url, "api_key": "none"},
                "studio": {"type": "gemini", "base_url": gemini.base_url, "api_key": GEMINI_KEY},
                "vertex": vertex("vertex", gemini, key_file),
                "claude": {"type": "anthropic", "base_url": claude.base_url, "api_key": ANTHROPIC_KEY},
                "claude-vertex": vertex("anthropic-vertex", claude, key_file),
            },
            [
                {"id": LONG_ID, "model": "gemini-2.5-flash", "provider": "local",
                 "provider_model": "flash-upstream-a"},
                {"id": "flash-b", "model": "gemini-2.5-flash", "provider": "local",
                 "provider_model": "flash-upstream-b"},
                {"id": "flash-studio", "model": "gemini-2.5-flash", "provider": "studio"},
                {"id": "pro-vertex", "model": "gemini-2.5-pro", "provider": "vertex"},
                {"id": "sonnet", "model": "claude-sonnet-4-5", "provider": "claude"},
                {"id": "sonnet-vertex", "model": "claude-sonnet-4-5", "provider": "claude-vertex",
                 "provider_model": "claude-sonnet-4-5@20250929"},
            ],
        )  # fmt: skip
        table = check(config)
        assert table.returncode == 0, table.stdout + table.stderr
        lines = table.stdout.splitlines()
        # Piped output is never cut or folded: the long id stands whole on its row's line.
        assert any(LONG_ID in line and "PASS" in line for line in lines), table.stdout
        assert sum("PASS" in line for line in lines) == 6
        assert "6 of 6 deployments passed; 6 check calls cost $" in table.stdout
        assert "x-ratelimit: requests" in table.stdout
        assert "anthropic-ratelimit: requests" in table.stdout
        # What the gateway's adapters sent: one word, one output token, in each wire format.
        sent = local.requests[0].json()
        assert sent["max_tokens"] == 1 and sent["messages"][0]["content"] == "Hi"
        assert sent["model"] in ("flash-upstream-a", "flash-upstream-b")
        configs = [r.json()["generationConfig"] for r in gemini.requests]
        assert configs == [{"maxOutputTokens": 1}] * 2
        assert [r.json()["max_tokens"] for r in claude.requests] == [1, 1]
        assert any("/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict" in r.path
                   for r in claude.requests)  # fmt: skip

        for sim in (local, gemini, claude):
            sim.clear()
        as_json = check(config, "--json")
        # The cost is exact: the usage the provider reports, at the catalog's price.
        direct = httpx.post(
            f"{local.base_url}/chat/completions",
            json={"model": "flash-upstream-b", "messages": [{"role": "user", "content": "Hi"}],
                  "max_tokens": 1},
        ).json()  # fmt: skip
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    rows = rows_of(as_json)
    assert report["passed"] is True and report["calls"] == 6
    assert all(r["auth"] == "ok" and r["model_reachable"] == "ok" for r in rows.values())
    assert all(r["mode"] == "call" and r["latency_ms"] > 0 for r in rows.values())
    assert Decimal(report["total_cost_usd"]) == sum(Decimal(r["cost_usd"]) for r in rows.values())
    expected = call_cost(load_catalog()["gemini-2.5-flash"].pricing, direct["usage"])
    assert Decimal(rows["flash-b"]["cost_usd"]) == expected
    # Each row shows the quota headers of its own answer, even on a shared provider.
    long_headers, b_headers = rows[LONG_ID]["quota_headers"], rows["flash-b"]["quota_headers"]
    assert long_headers["x-ratelimit-limit-requests"] == "1000"
    assert {long_headers["x-ratelimit-remaining-requests"],
            b_headers["x-ratelimit-remaining-requests"]} == {"999", "998"}  # fmt: skip
    assert rows["sonnet"]["quota_headers"]["anthropic-ratelimit-requests-limit"] == "50"
    assert rows["flash-studio"]["quota_headers"] == {}  # Google sends none
    assert rows["pro-vertex"]["quota_headers"] == {}
    assert rows["flash-studio"]["price"] == "catalog (unverified)"
    assert rows["pro-vertex"]["price"] == "catalog"


def test_each_failure_is_its_own_row_and_exit_1(
    tmp_path: Path, oauth: FakeOAuthServer, key_file: Path
) -> None:
    with ExitStack() as stack:
        sims = {
            name: stack.enter_context(SimulatedProvider())
            for name in ("ok", "missing", "slow", "wrong-key")
        }
        sims["wrong-key"].api_key = "sk-the-right-one"
        gemini = stack.enter_context(SimulatedGemini(oauth=oauth, api_key=GEMINI_KEY))
        claude = stack.enter_context(SimulatedAnthropic(api_key=ANTHROPIC_KEY))
        sims["missing"].inject(Fault.status(404))
        sims["slow"].inject(Fault.hang(30))
        gemini.inject(Fault.status(403))  # the Vertex call: the service account lacks the role
        providers: dict[str, Any] = {
            name: {"type": "openai-compatible", "base_url": sim.base_url, "api_key": "none"}
            for name, sim in sims.items()
        }
        providers["wrong-key"]["api_key"] = "sk-a-wrong-key-1234"
        providers["down"] = {"type": "openai-compatible", "base_url": nothing_listening()}
        providers["denied"] = vertex("vertex", gemini, key_file)
        providers["claude"] = {"type": "anthropic", "base_url": claude.base_url,
                               "api_key": "sk-ant-a-wrong-key"}  # fmt: skip
        deployments = [
            {"id": name, "model": "gemini-2.5-pro", "provider": name}
            for name in ("ok", "missing", "slow", "wrong-key", "down", "denied")
        ]
        deployments.append({"id": "claude", "model": "claude-sonnet-4-5", "provider": "claude"})
        config = write_config(tmp_path, providers, deployments)
        started = time.monotonic()
        result = check(config, "--json", "--timeout", "1.5")
        elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    rows = rows_of(result)
    assert rows["ok"]["passed"] is True
    assert rows["ok"]["quota_headers"] == {}  # this provider sends none: still a pass
    missing = rows["missing"]
    assert (missing["auth"], missing["model_reachable"]) == ("ok", "failed")
    assert missing["reason"].startswith("model not found (HTTP 404)")
    slow = rows["slow"]
    assert (slow["passed"], slow["reason"]) == (False, "no answer within 1.5 s")
    assert elapsed < 12  # the checks ran side by side, each under its own timeout
    assert rows["wrong-key"]["auth"] == "failed"
    assert rows["wrong-key"]["reason"].startswith("credentials refused (HTTP 401)")
    assert rows["claude"]["auth"] == "failed"
    down = rows["down"]
    assert (down["auth"], down["model_reachable"]) == ("?", "?")
    assert down["reason"].startswith("provider unreachable")
    denied = rows["denied"]
    assert denied["auth"] == "failed" and "permission denied (HTTP 403)" in denied["reason"]
    for row in rows.values():  # never a secret in the output
        assert "sk-a-wrong-key-1234" not in json.dumps(row)
        assert row["passed"] is (row["deployment"] == "ok")


def test_no_calls_fetches_credentials_and_looks_models_up(
    tmp_path: Path, oauth: FakeOAuthServer, key_file: Path
) -> None:
    with ExitStack() as stack:
        local = stack.enter_context(SimulatedProvider())
        openai_sim = stack.enter_context(SimulatedProvider(api_key="sk-openai-sim"))
        gemini = stack.enter_context(SimulatedGemini(oauth=oauth, api_key=GEMINI_KEY))
        claude = stack.enter_context(SimulatedAnthropic(oauth=oauth, api_key=ANTHROPIC_KEY))
        local.known_models = frozenset({"qwen2.5-vl-7b"})
        gemini.known_models = frozenset({"gemini-2.5-pro"})
        config = write_config(
            tmp_path,
            {
                "local": {"type": "openai-compatible", "base_url": local.base_url, "api_key": "none"},
                "openai": {"type": "openai", "base_url": openai_sim.base_url,
                           "api_key": "sk-openai-sim"},
                "studio": {"type": "gemini", "base_url": gemini.base_url, "api_key": GEMINI_KEY},
                "studio-bad-key": {"type": "gemini", "base_url": gemini.base_url,
                                   "api_key": "gm-wrong"},
                "vertex": vertex("vertex", gemini, key_file),
                "claude": {"type": "anthropic", "base_url": claude.base_url, "api_key": "sk-wrong"},
                "claude-vertex": vertex("anthropic-vertex", claude, key_file),
            },
            [
                {"id": "qwen", "model": "qwen2.5-vl-7b", "provider": "local", "context_window": 32768,
                 "pricing": {"input_per_mtok": "0", "output_per_mtok": "0"}},
                {"id": "gpt", "model": "gpt-4.1-mini", "provider": "openai"},
                {"id": "pro-studio", "model": "gemini-2.5-pro", "provider": "studio"},
                {"id": "flash-studio", "model": "gemini-2.5-flash", "provider": "studio"},
                {"id": "bad-key", "model": "gemini-2.5-pro", "provider": "studio-bad-key"},
                {"id": "pro-vertex", "model": "gemini-2.5-pro", "provider": "vertex"},
                {"id": "sonnet", "model": "claude-sonnet-4-5", "provider": "claude"},
                {"id": "sonnet-vertex", "model": "claude-sonnet-4-5", "provider": "claude-vertex",
                 "provider_model": "claude-sonnet-4-5@20250929"},
            ],
        )  # fmt: skip
        result = check(config, "--no-calls", "--json")
        assert oauth.tokens_issued >= 1  # the service account's token was fetched
        for sim in (local, openai_sim, gemini, claude):
            assert sim.request_count == 0  # no model call at all
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    rows = rows_of(result)
    assert report["calls"] == 0 and report["total_cost_usd"] == "0"
    passing = {"qwen", "gpt", "pro-studio", "pro-vertex", "sonnet-vertex"}
    assert {name for name, row in rows.items() if row["passed"]} == passing
    assert all(row["mode"] == "lookup" and row["cost_usd"] is None for row in rows.values())
    assert rows["qwen"]["price"] == "config"
    flash = rows["flash-studio"]
    assert (flash["auth"], flash["model_reachable"]) == ("ok", "failed")
    assert "HTTP 404" in flash["reason"]
    assert rows["bad-key"]["auth"] == "failed"
    assert rows["bad-key"]["reason"].startswith("credentials refused (HTTP 400)")
    assert rows["sonnet"]["auth"] == "failed"


def test_config_errors_name_the_file_and_exit_2(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "broken.yaml"
    bad_yaml.write_text("settings: {master_key: [unclosed\n")
    result = check(bad_yaml)
    assert result.returncode == 2
    assert f"config error in {bad_yaml}" in result.stderr and "not valid YAML" in result.stderr
    unknown = write_config(
        tmp_path,
        {"p": {"type": "bedrock", "base_url": "http://127.0.0.1:9/v1"}},
        [{"id": "a", "model": "gemini-2.5-pro", "provider": "p"}],
    )
    result = check(unknown)
    assert result.returncode == 2
    assert f"config error in {unknown}" in result.stderr and "providers.p.type" in result.stderr
    named = unknown.read_text().replace("bedrock", "openai-compatible")
    (tmp_path / "named.yaml").write_text(named.replace("provider: p", "provider: vertx"))
    result = check(tmp_path / "named.yaml")
    assert result.returncode == 2
    assert "deployments[0].provider: unknown provider 'vertx'" in result.stderr
    missing = check(tmp_path / "absent.yaml")
    assert missing.returncode == 2 and "no config file at" in missing.stderr
    assert check(unknown, "--max-call-usd", "lots").returncode == 2
