"""format.js's money format, run in chromium against its Python mirror."""

from __future__ import annotations

from importlib import resources

import pytest

from .browser import chromium, money

CASES = {
    "0": "$0.00",
    "1234567.891": "$1,234,567.89",
    "0.5": "$0.50",
    "0.1": "$0.10",
    "0.099999": "$0.1000",
    "0.0123": "$0.0123",
    "0.00123456": "$0.00123",
    "0.000123456": "$0.000123",
    "0.0000001": "$0.000000",
    "0.000000500001": "$0.000001",
    "2.005": "$2.01",
    "-3.456": "-$3.46",
    "0.000000000001": "$0.000000",
}


@pytest.mark.parametrize(("exact", "shown"), CASES.items())
def test_python_mirror(exact: str, shown: str) -> None:
    assert money(exact) == shown


def test_format_js_matches_the_mirror() -> None:
    script = resources.files("nemorouter.dashboard").joinpath("static", "format.js")
    with chromium() as browser:
        page = browser.new_page()
        page.add_script_tag(content=script.read_text() + "\nwindow.Fmt = Fmt;")
        shown = page.evaluate("(cases) => cases.map((c) => Fmt.money(c))", list(CASES))
        assert shown == list(CASES.values())
        assert page.evaluate("Fmt.sum(['0.1', '0.2', '0.000000000001'])") == "0.300000000001"
