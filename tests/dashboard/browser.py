"""Debian's chromium driven by Playwright (never a downloaded browser), and the money
format the pages use (the CLI's, in Python) so a test can say what the screen must show."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from nemorouter.types.money import display_usd
from tests.services import unavailable

CHROMIUM = os.environ.get("NEMOROUTER_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def require_chromium() -> None:
    """Skip (fail under NEMOROUTER_TEST_SERVICES=required) without chromium or Playwright."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        unavailable("chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        unavailable("playwright", str(exc))


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless chromium. Playwright's sync API runs an event loop on this thread while
    it is open: no asyncio.run() inside."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def money(text: str) -> str:
    """What format.js shows for an exact decimal string: the CLI's own money format
    (tests/dashboard/test_money_format.py checks that the two agree)."""
    return display_usd(text)


def node_money(amounts: list[str]) -> list[str]:
    """The dashboard's own format.js `Fmt.money`, run by node (skips without node)."""
    import pytest

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = resources.files("nemorouter.dashboard").joinpath("static", "format.js").read_text()
    program = script + (
        "\nprocess.stdout.write(JSON.stringify(JSON.parse(process.argv[1]).map(Fmt.money)));"
    )
    done = subprocess.run(
        [node, "-e", program, json.dumps(amounts)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    shown: list[str] = json.loads(done.stdout)
    return shown
