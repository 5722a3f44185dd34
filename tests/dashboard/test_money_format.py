"""One money format for people: format.js's `Fmt.money` (the dashboard) and
types/money.display_usd (the CLI) show every amount alike."""

from __future__ import annotations

from importlib import resources

import pytest

from nemorouter.types.money import display_usd

from .browser import chromium, node_money

CASES = {
    "0": "$0.00",
    "1234567.891": "$1,234,567.89",
    "0.5": "$0.50",
    "0.1": "$0.10",
    "0.099999": "$0.10",  # rounds up into cents
    "0.0999": "$0.0999",
    "0.0123": "$0.0123",
    "0.0012": "$0.0012",  # trailing zeros dropped below $0.10
    "0.00123456": "$0.00123",
    "0.000123456": "$0.000123",
    "0.00001125": "$0.0000113",  # half-up
    "0.0000001": "$0.0000001",  # never $0.00 when it is not zero
    "0.000000500001": "$0.0000005",
    "2.005": "$2.01",
    "-3.456": "-$3.46",
    "-0.0000001": "-$0.0000001",
    "0.000000000001": "$0.000000000001",  # one picodollar
    "0.00000000000151": "$0.000000000002",  # beyond the picodollar: half-even, as stored
    "0.00000000000250": "$0.000000000002",
    "0.0000000000035": "$0.000000000004",
    "12.000000000001": "$12.00",
}


@pytest.mark.parametrize(("exact", "shown"), CASES.items())
def test_cli_format(exact: str, shown: str) -> None:
    assert display_usd(exact) == shown


def test_format_js_matches_the_cli() -> None:
    script = resources.files("nemorouter.dashboard").joinpath("static", "format.js")
    with chromium() as browser:
        page = browser.new_page()
        page.add_script_tag(content=script.read_text() + "\nwindow.Fmt = Fmt;")
        shown = page.evaluate("(cases) => cases.map((c) => Fmt.money(c))", list(CASES))
        assert shown == list(CASES.values())
        assert page.evaluate("Fmt.sum(['0.1', '0.2', '0.000000000001'])") == "0.300000000001"


def test_format_js_matches_the_cli_in_node() -> None:
    assert node_money(list(CASES)) == list(CASES.values())
