"""The output of `nemorouter batch estimate`: one JSON object, or a table never cut
(cli_table: natural width when piped; on a terminal, free text folds, figures never)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from rich.text import Text

from nemorouter.batch.estimate import (
    CHARS_PER_TOKEN,
    MODES,
    ModeEstimate,
    Scan,
)
from nemorouter.cli_table import CliTable, Column, cli_console, print_table
from nemorouter.types.money import display_usd, quantize


def estimate_json(
    scanned: Scan, found: dict[str, dict[str, ModeEstimate] | str], *, run_mode: str,
    dpi: int, assumption: str,
) -> dict[str, Any]:  # fmt: skip
    return {
        **page_counts(scanned),
        "unreadable_inputs": [{"doc": e.doc, "reason": e.reason} for e in scanned.unreadable],
        "dpi": dpi,
        "run_mode": run_mode,
        "output_assumption": assumption,
        "text_rule": f"{CHARS_PER_TOKEN} characters a token",
        "models": {
            name: {"unavailable": modes}
            if isinstance(modes, str)
            else {mode: est.as_json() for mode, est in modes.items()}
            for name, modes in found.items()
        },
    }


def page_counts(scanned: Scan) -> dict[str, int]:
    kinds = Counter(p.kind for p in scanned.pages)
    born = sum(1 for p in scanned.pages if p.text is not None and p.text.born_digital)
    return {
        "documents": len(scanned.documents),
        "pages": len(scanned.pages),
        "pdf_pages": kinds["pdf"],
        "pdf_pages_born_digital": born,
        "pdf_pages_scanned": kinds["pdf"] - born,
        "image_pages": kinds["image"] + kinds["tiff"],
    }


def render_estimate(report: dict[str, Any]) -> None:
    console = cli_console()
    pages = report["pages"]
    say = [
        f"{report['documents']} documents, {pages} pages: {report['pdf_pages']} PDF pages "
        f"({report['pdf_pages_born_digital']} born-digital, {report['pdf_pages_scanned']} "
        f"scanned), {report['image_pages']} image pages; "
        f"{len(report['unreadable_inputs'])} unreadable inputs",
        *(f"  unreadable: {bad['doc']}: {bad['reason']}" for bad in report["unreadable_inputs"]),
        f"pages rendered at {report['dpi']} dpi; text at {report['text_rule']}; output: "
        f"{report['output_assumption']}; * = the mode these options run",
    ]
    for line in say:
        console.print(Text(line))
    table = CliTable(None, [
        Column("model"), Column("send"), Column("requests", right=True),
        Column("prompt tokens", right=True), Column("output tokens", right=True),
        Column("cost", right=True), Column("per page", right=True),
        Column("deferred cost", right=True),
        Column("note", whole=False),
    ])  # fmt: skip
    for name, modes in report["models"].items():
        if "unavailable" in modes:
            table.add_row(name, "-", "", "", "", "n/a", "", "", modes["unavailable"])
            table.add_section()
            continue
        for mode in MODES:
            row = modes[mode]
            label = mode + (" *" if mode == report["run_mode"] else "")
            if "unavailable" in row:
                table.add_row(name, label, "", "", "", "n/a", "", "", row["unavailable"])
                continue
            cost = row["cost_usd"]
            per = display_usd(quantize(Decimal(cost) / pages)) if cost is not None and pages else ""
            table.add_row(
                name, label, str(row["requests"]), f"{row['prompt_tokens']:,}",
                f"{row['output_tokens']:,}", display_usd(cost) if cost is not None else "n/a",
                per, display_usd(row["deferred_cost_usd"]) if row.get("deferred_cost_usd") else "n/a",
                "" if cost is not None else "no price",
            )  # fmt: skip
        table.add_section()
    print_table(table, console)
