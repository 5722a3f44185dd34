"""`--compare litellm`: the LiteLLM proxy, from a throw-away virtual environment, as a target.

Not used in CI. The virtual environment is created under the system temp directory on first
use and reused by later runs (delete it to get the newest LiteLLM).

Besides `litellm[proxy]` it gets uvloop and httptools (so uvicorn serves LiteLLM with the
same HTTP stack as nemorouter) and opentelemetry-sdk (without it LiteLLM 1.108 retries a
failing import of its OTel modules on every request, ~10% of its CPU): LiteLLM at its best.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from procs import HOST, Server, free_port, pinned, spawn

VENV = Path(tempfile.gettempdir()) / "nemorouter-bench-litellm-venv"
READY_PATH = "/health/readiness"
EXTRAS = ("uvloop", "httptools", "opentelemetry-sdk")


def _base_python() -> str:
    return getattr(sys, "_base_executable", None) or sys.executable


def ensure_litellm() -> Path:
    """The `litellm` executable, installing `litellm[proxy]` first if needed."""
    exe = VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    print(f"installing litellm[proxy] into {VENV} (first run only) ...", file=sys.stderr)
    subprocess.run([_base_python(), "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "litellm[proxy]", *EXTRAS], check=True)
    if not exe.exists():
        raise RuntimeError(f"litellm[proxy] installed but {exe} is missing")
    return exe


def litellm_version() -> str:
    out = subprocess.run(
        [str(VENV / "bin" / "python"), "-m", "pip", "show", "litellm"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for line in out.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return "?"


def spawn_litellm(
    sim_port: int, model: str, master_key: str, core: int | None, workdir: Path
) -> Server:
    exe = ensure_litellm()
    config = {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {
                    "model": f"openai/{model}",
                    "api_base": f"http://{HOST}:{sim_port}/v1",
                    "api_key": "none",
                },
            }
        ],
        "general_settings": {"master_key": master_key},
        "litellm_settings": {"telemetry": False, "set_verbose": False},
    }
    path = workdir / "litellm.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    env = dict(os.environ)
    env.update(
        LITELLM_LOCAL_MODEL_COST_MAP="True",  # no fetch of the price list from the internet
        LITELLM_LOG="ERROR",
        LITELLM_TELEMETRY="False",
        DISABLE_SCHEMA_UPDATE="True",
    )
    env.pop("DATABASE_URL", None)
    argv = [str(exe), "--config", str(path), "--host", HOST, "--port", str(port)]
    return spawn("litellm", pinned(argv, core), port, workdir, env)
