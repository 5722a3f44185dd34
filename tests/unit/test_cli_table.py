"""cli_table: no cell is ever cut, at any width; ids and money stay one word."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from nemorouter.cli_table import CliTable, Column, print_table

KEY_ID = "key_3583f21e76b5cd32a1b2"
NOTE = "expires 2026-12-31T00:00:00Z after the northern region's budget review"


def table() -> CliTable:
    built = CliTable("Keys [bold]x[/bold]", [
        Column("id"), Column("budget", right=True), Column("models", whole=False),
        Column("status", whole=False),
    ])  # fmt: skip
    built.add_row(KEY_ID, "$0.0000004", "gemini-2.5-flash,document-vision", NOTE)
    built.add_section()
    built.add_row("[red]key_2[/red]", "$1,234.50", "all", "active")
    built.caption = "2 keys; " + "a-very-long-word-" * 6
    return built


def printed(width: int) -> str:
    out = io.StringIO()
    print_table(table(), Console(file=out, width=width, highlight=False))
    return out.getvalue()


@pytest.mark.parametrize("width", [30, 40, 60, 80, 100, 200, 100_000])
def test_nothing_is_cut_and_ids_stay_whole(width: int) -> None:
    text = printed(width)
    assert max(len(line) for line in text.splitlines()) <= width
    lines = text.splitlines()
    assert any(KEY_ID in line for line in lines)  # one word, on one line: copyable
    assert any("$0.0000004" in line for line in lines)
    assert any("$1,234.50" in line for line in lines)
    assert "[red]key_2[/red]" in text and "Keys [bold]x[/bold]" in text  # text, not markup
    assert "…" not in text
    for k, whole in ((3, "gemini-2.5-flash,document-vision"), (4, NOTE)):
        assert "".join(whole.split()) in "".join("".join(cells(text, k)).split()), text  # folded


def cells(text: str, k: int) -> list[str]:
    """Column k's text, line by line (a table), or every line's text (records)."""
    rows = [line.split("│") for line in text.splitlines() if line.startswith("│")]
    if rows:
        return [row[k].strip() for row in rows]
    return ["".join(line.split()) for line in text.splitlines()]


def test_a_wide_enough_terminal_gets_a_table_a_narrow_one_records() -> None:
    assert "┃ id" in printed(100)
    narrow = printed(40)
    assert "┃" not in narrow
    assert f"id      {KEY_ID}" in narrow
