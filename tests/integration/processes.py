"""`nemorouter serve` in a child process, for tests that need real processes
(signals, several instances sharing Redis)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from .test_errors import free_port


@contextmanager
def serve_process(
    config: dict[str, Any], workdir: Path, name: str = "gateway"
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start `nemorouter serve` on a free port and wait until it is ready;
    yields (process, base URL without /v1); kills it if the test has not stopped it."""
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "nemorouter.cli", "serve", "--config", str(path), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=workdir,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                if httpx.get(f"{url}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{name} did not become ready"
            time.sleep(0.05)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
