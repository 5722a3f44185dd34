"""The output of `nemorouter batch estimate`: one JSON object, or a rich table never cut.

A table is printed at its natural width when stdout is not a terminal (piped, redirected):
every cell whole, whatever the width a pipe would default to.
"""

from __future__ import annotations

import sys
from collections import Counter
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from nemorouter.batch.estimate import (
    CHARS_PER_TOKEN,
    MODES,
    ModeEstimate,
    Scan,
)
from nemorouter.types.money import usd

WIDE = 10_000  # a console this wide never wraps or cuts a table; it takes its natural width


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
    console = Console(width=None if sys.stdout.isatty() else WIDE, soft_wrap=False)
    pages = report["pages"]
    console.print(
        f"{report['documents']} documents, {pages} pages: {report['pdf_pages']} PDF pages "
        f"({report['pdf_pages_born_digital']} born-digital, {report['pdf_pages_scanned']} "
        f"scanned), {report['image_pages']} image pages; "
        f"{len(report['unreadable_inputs'])} unreadable inputs",
        highlight=False,
    )
    for bad in report["unreadable_inputs"]:
        console.print(f"  unreadable: {bad['doc']}: {bad['reason']}", highlight=False)
    console.print(
        f"pages rendered at {report['dpi']} dpi; text at {report['text_rule']}; output: "
        f"{report['output_assumption']}; * = the mode these options run",
        highlight=False,
    )
    table = Table(show_lines=False)
    for header in ("model", "send", "requests", "prompt tokens", "output tokens", "cost USD",
                   "USD per page", "deferred USD"):  # fmt: skip
        table.add_column(header, justify="left" if header in ("model", "send") else "right")
    for name, modes in report["models"].items():
        if "unavailable" in modes:
            table.add_row(name, "-", "", "", "", modes["unavailable"], "", "")
            continue
        for mode in MODES:
            row = modes[mode]
            label = mode + (" *" if mode == report["run_mode"] else "")
            if "unavailable" in row:
                table.add_row(name, label, "", "", "", f"n/a: {row['unavailable']}", "", "")
                continue
            cost = row["cost_usd"]
            per = usd(round(Decimal(cost) / pages, 6)) if cost is not None and pages else ""
            table.add_row(
                name, label, str(row["requests"]), f"{row['prompt_tokens']:,}",
                f"{row['output_tokens']:,}", cost if cost is not None else "n/a", per,
                row.get("deferred_cost_usd") or "n/a",
            )  # fmt: skip
        table.add_section()
    console.print(table)
