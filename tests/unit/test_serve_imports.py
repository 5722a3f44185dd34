"""`nemorouter serve` loads no document renderers: pdfium and Pillow cost every gateway
process ~8 MiB of resident memory (bench/overhead's "resident memory when ready")."""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_and_the_gateway_load_no_renderers() -> None:
    code = (
        "import sys, nemorouter.cli, nemorouter.gateway.app, nemorouter.serving\n"
        "print(sorted(m for m in ('PIL', 'pypdfium2') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
