"""The `nemorouter` command: serve (validation, workers rule, a live server) and demo."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from nemorouter.demo import sample_documents
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider
from nemorouter.testing.processes import free_port

from .conftest import MASTER_KEY

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "nemorouter.cli"]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "settings: {master_key: sk-test-master-key}\n"
        "providers: {p: {type: openai-compatible, base_url: 'http://127.0.0.1:9/v1'}}\n"
        "deployments: [{id: a, model: gemini-2.5-pro, provider: q}]\n"
    )
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 2
    assert "deployments[0].provider" in result.stderr
    assert "unknown provider 'q'" in result.stderr


def test_workers_need_redis() -> None:
    env = {
        "NEMOROUTER_MASTER_KEY": "sk-test-master-key",
        "NEMOROUTER_SIM_URL": "http://127.0.0.1:9/v1",
    }
    result = run_cli(
        "serve", "--config", str(ROOT / "nemorouter.example.yaml"), "--workers", "2", env=env
    )
    assert result.returncode == 2
    assert "redis_url" in result.stderr


def serve_and_check(sim: SimulatedProvider, config: Path, workdir: Path, *extra: str) -> None:
    """Run `nemorouter serve` in `workdir` (where the default SQLite store goes), wait until
    ready, send one request, stop it with SIGTERM."""
    port = free_port()
    env = {
        **os.environ,
        "NEMOROUTER_MASTER_KEY": "sk-test-master-key",
        "NEMOROUTER_SIM_URL": sim.base_url,
    }
    started = time.monotonic()
    process = subprocess.Popen(
        [*CLI, "serve", "--config", str(config), "--port", str(port), "--log-level", "warning", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=workdir,
        start_new_session=True,  # its workers too can be killed if it does not stop
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                if httpx.get(f"{url}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() - started < 20, "gateway did not become ready"
            time.sleep(0.05)
        response = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "document-vision", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer sk-test-master-key"},
        )
        assert response.status_code == 200
        assert response.headers["x-nemo-model"] == "gemini-2.5-pro"
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stderr = process.communicate(timeout=10)[1]
            pytest.fail(f"no exit 30 s after SIGTERM; stderr:\n{stderr[-3000:]}")
    # uvicorn shuts down gracefully, then re-raises the signal it caught
    assert process.returncode in (0, -signal.SIGTERM), process.communicate()[1]


def test_serve_example_config(sim: SimulatedProvider, tmp_path: Path) -> None:
    serve_and_check(sim, ROOT / "nemorouter.example.yaml", tmp_path)
    assert (tmp_path / "nemorouter.db").exists()


def test_serve_workers_with_redis(sim: SimulatedProvider, tmp_path: Path) -> None:
    text = (ROOT / "nemorouter.example.yaml").read_text()
    config = tmp_path / "workers.yaml"
    config.write_text(text.replace("redis_url: null", "redis_url: redis://127.0.0.1:6379/0"))
    serve_and_check(sim, config, tmp_path, "--workers", "2")


@pytest.mark.timeout(120)
def test_demo_runs_on_the_embedded_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEMOROUTER_")}
    result = subprocess.run(
        [*CLI, "demo"], capture_output=True, text=True, timeout=100, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SIMULATED" in result.stdout
    assert "5/5 pages ok, 0 failed" in result.stdout
    summary = json.loads((tmp_path / "nemorouter-demo" / "results" / "summary.json").read_text())
    assert summary["ok"] == 5
    assert Decimal(summary["cost_total_usd"]) > 0
    # The answers are placeholders and say so; the gateway counts the pages the runner did.
    assert "(simulated)" in (tmp_path / "nemorouter-demo" / "results" / "results.jsonl").read_text()
    assert "placeholders from the simulated provider" in result.stdout
    assert "5 requests for 5 pages of 4 documents" in result.stdout
    # No address that died with the process is offered as one to open.
    assert "/ui" not in result.stdout and "stopped" in result.stdout.splitlines()[-1]


@pytest.mark.timeout(120)
def test_demo_keep_running_serves_the_dashboard_on_the_chosen_port(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEMOROUTER_")}
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "demo", "--keep-running", "--port", str(port)], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        lines: list[str] = []
        assert process.stdout is not None
        while not lines or "Ctrl-C stops it" not in lines[-1]:
            line = process.stdout.readline()
            assert line, "".join(lines)  # the demo ended instead of staying up
            lines.append(line)
        output = "".join(lines)
        shown = re.search(
            r"dashboard: (http://\S+)/ui \(sign in with the master key: (\S+)\)", output
        )
        assert shown is not None, output
        url, key = shown.groups()
        assert url == f"http://127.0.0.1:{port}"
        # The printed address answers: the sign-in page, and the job with the key shown.
        assert httpx.get(f"{url}/ui/login").status_code == 200
        jobs = httpx.get(f"{url}/admin/jobs", headers={"Authorization": f"Bearer {key}"}).json()
        (job,) = jobs["jobs"]
        detail = httpx.get(f"{url}/admin/jobs/{job['job_id']}",
                           headers={"Authorization": f"Bearer {key}"}).json()  # fmt: skip
        assert (detail["pages"], detail["documents"]) == (5, 4)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail("the demo did not stop on Ctrl-C")
    assert process.returncode == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/ui/login")


def test_demo_port_in_use_is_refused(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEMOROUTER_")}
        result = subprocess.run(
            [*CLI, "demo", "--port", str(busy.getsockname()[1])], capture_output=True, text=True,
            timeout=60, env=env, cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == 3
    assert "cannot listen on 127.0.0.1:" in result.stdout


def test_batch_classify_passes_against_the_simulated_provider(
    tmp_path: Path, gateway: BackgroundGateway
) -> None:
    docs = tmp_path / "docs"
    sample_documents(docs)
    out = tmp_path / "out"
    result = run_cli(
        "batch", "run", str(docs), "--job-id", "labels", "--classify", "invoice,receipt,letter",
        "--out", str(out), "--base-url", gateway.base_url, "--model", "gemini-2.5-pro",
        env={"NEMOROUTER_API_KEY": MASTER_KEY},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5/5 pages ok, 0 failed" in result.stdout
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["output"] for r in records} <= {"invoice", "receipt", "letter"}


def test_batch_usage_errors_and_status(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "page.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    no_task = run_cli("batch", "run", str(docs), "--job-id", "j")
    assert no_task.returncode == 2
    assert "exactly one of --schema" in no_task.stderr
    missing = run_cli("batch", "run", str(tmp_path / "nowhere"), "--job-id", "j", "--prompt", "x")
    assert missing.returncode == 2
    one_label = run_cli("batch", "run", str(docs), "--job-id", "j", "--classify", "invoice")
    assert one_label.returncode == 2
    assert "at least two labels" in one_label.stderr
    bad_url = run_cli(
        "batch", "run", str(docs), "--job-id", "j", "--prompt", "x", "--base-url", "gw:4000"
    )
    assert bad_url.returncode == 2
    assert "--base-url" in bad_url.stderr
    not_started = run_cli("batch", "status", "--out", str(tmp_path / "empty"))
    assert not_started.returncode == 2


def test_batch_status_reports_a_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "job.json").write_text('{"job_id": "j7", "task": "t"}\n')
    (out / "results.jsonl").write_text(
        '{"doc": "a.pdf", "page": 1, "status": "ok"}\n'
        '{"doc": "a.pdf", "page": 2, "status": "failed"}\n'
        '{"doc": "a.pdf", "page": 2, "status": "ok"}\n'
        '{"doc": "b.pdf", "page": 1, "sta'
    )
    status = run_cli("batch", "status", "--out", str(out))
    assert status.returncode == 0
    assert "job j7 in" in status.stdout and ": not running" in status.stdout
    # No run.json (a folder written by hand, or by an older runner): the total is unknown.
    assert "pages: ? total, 2 done, 0 failed, ? pending" in status.stdout
