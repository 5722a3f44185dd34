"""summary.json and errors.jsonl: what a finished (or resumed) batch amounts to."""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nemorouter.batch.sentlog import LostAnswer
from nemorouter.types.money import average, display_usd, usd

if TYPE_CHECKING:  # sources loads pdfium and Pillow: not for `nemorouter serve`
    from nemorouter.batch.sources import SourceError

NOT_AVAILABLE = "n/a"  # no cost headers yet: never a made-up number


def write_errors(out: Path, errors: Iterable[SourceError]) -> None:
    lines = [json.dumps({"doc": e.doc, "path": e.path, "reason": e.reason}) for e in errors]
    (out / "errors.jsonl").write_text("".join(line + "\n" for line in lines))


def summarize(
    job_id: str,
    records: Iterable[dict[str, Any]],
    unreadable: int,
    wall_time_s: float,
    pages_this_run: int,
    throttled: int,
) -> dict[str, Any]:
    records = list(records)
    pages = sum(len(pages_of(r)) for r in records)
    ok = sum(len(pages_of(r)) for r in records if r["status"] == "ok")
    per_doc: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        per_doc.setdefault(record["doc"], []).append(record)
    total = _total(records)
    return {
        "job_id": job_id,
        "pages": pages,
        "requests": len(records),  # one per page, or per PDF (chunk) with --send document
        "ok": ok,
        "failed": pages - ok,
        "unreadable_inputs": unreadable,
        "cache_hits": sum(1 for r in records if r.get("cache") == "HIT"),
        "fallbacks": sum(r.get("fallbacks") or 0 for r in records),
        "throttled": throttled,
        "cost_total_usd": total,
        "cost_per_page_usd": _per(total, pages),
        "cost_per_document_usd": {doc: _total(rs) for doc, rs in sorted(per_doc.items())},
        "wall_time_s": round(wall_time_s, 2),
        "pages_this_run": pages_this_run,
        "pages_per_minute": round(pages_this_run / wall_time_s * 60, 1) if wall_time_s else 0.0,
    }


def pages_of(record: dict[str, Any]) -> list[int]:
    """The pages a result covers (one, or a PDF's chunk; older results name only `page`)."""
    return record.get("pages") or [record["page"]]


def covered_pages(records: Iterable[dict[str, Any]]) -> set[tuple[str, int]]:
    return {(r["doc"], n) for r in records for n in pages_of(r)}


def _total(records: list[dict[str, Any]]) -> str:
    """The sum of the costs the gateway reported; n/a when it reported none."""
    costs = [r["cost_usd"] for r in records if r.get("cost_usd") is not None]
    if not costs:
        return NOT_AVAILABLE
    return usd(sum((Decimal(c) for c in costs), Decimal(0)))


def _per(total: str, pages: int) -> str:
    if total == NOT_AVAILABLE or not pages:
        return NOT_AVAILABLE
    return average(Decimal(total), pages)


def shown(amount: str | None) -> str:
    """A summary's exact amount as people read it (types/money.display_usd), or n/a; a
    figure that is not a number (a header from elsewhere) is shown as it came."""
    if amount is None or amount == NOT_AVAILABLE:
        return NOT_AVAILABLE
    try:
        return display_usd(amount)
    except InvalidOperation:
        return amount


def render_job_estimate(estimate: dict[str, Any]) -> str:
    """The estimate line beside the actual cost (`batch run`'s printed summary)."""
    where = f"{estimate.get('model')}, send {estimate.get('send')}"
    if estimate.get("unavailable"):
        return f"estimate ({where}): n/a, {estimate['unavailable']}"
    return (
        f"estimate ({where}): {shown(estimate['cost_usd'])} for {estimate['prompt_tokens']:,} prompt "
        f"+ {estimate['output_tokens']:,} output tokens ({estimate['output_assumption']}); "
        f"deferred {shown(estimate.get('deferred_cost_usd'))}"
    )


def write_summary(out: Path, summary: dict[str, Any]) -> None:
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(out / "summary.json")


def lost_summary(lost: Iterable[LostAnswer]) -> dict[str, Any]:
    """Pages sent and never answered here (the runner was killed with them in flight): paid
    for, sent again by the next run, so maybe billed twice. Each page once, by first loss."""
    pages: dict[tuple[str, int], str] = {}
    for entry in lost:
        pages.setdefault((entry.doc, entry.page), entry.run)
    return {
        "count": len(pages),
        "pages": [{"doc": d, "page": n, "run": run} for (d, n), run in sorted(pages.items())],
    }
