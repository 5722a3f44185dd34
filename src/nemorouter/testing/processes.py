"""`nemorouter serve` in a child process, and a client that keeps it busy: for tests and
benchmarks that need a real process (signals, kill -9, several instances sharing Redis)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_process(
    config: dict[str, Any], workdir: Path, name: str = "gateway", log_level: str = "info"
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start `nemorouter serve` on a free port and wait until it is ready; yields
    (process, base URL without /v1); kills it if the caller has not stopped it."""
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "nemorouter.cli", "serve", "--config", str(path),
         "--port", str(port), "--log-level", log_level],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=workdir,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {process.communicate()[1]}")
            try:
                if httpx.get(f"{url}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not become ready")
            time.sleep(0.05)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def send_until_stopped(
    url: str,
    api_key: str,
    answered: list[str],
    stop: threading.Event,
    model: str = "gemini-2.5-flash",
) -> None:
    """Send chat requests back to back until `stop` or the gateway goes away; append the
    x-request-id of each one answered 200 (each request carries its own)."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            request_id = uuid.uuid4().hex
            try:
                response = client.post(
                    f"{url}/v1/chat/completions",
                    json=body,
                    headers={"Authorization": f"Bearer {api_key}", "x-request-id": request_id},
                )
            except httpx.TransportError:
                return
            if response.status_code == 200:
                answered.append(request_id)
