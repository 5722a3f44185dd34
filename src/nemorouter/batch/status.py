"""`nemorouter batch status --out OUT`: how far a job got, whether it runs now, what it cost.

Read-only: it may be called while a run writes OUT, or after the run was killed.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from nemorouter.batch.journal import JOB_FILE, RESULTS
from nemorouter.batch.runstate import is_running, read_run
from nemorouter.batch.sentlog import unanswered
from nemorouter.batch.summary import NOT_AVAILABLE, lost_summary, pages_of, shown
from nemorouter.types.money import usd

BILLED_TWICE = "they may be billed twice"


def job_status(out: Path) -> dict[str, Any]:
    """Raises FileNotFoundError when OUT holds no batch."""
    if not (out / JOB_FILE).exists():
        raise FileNotFoundError(f"no batch in {out} (no {JOB_FILE})")
    job = json.loads((out / JOB_FILE).read_text(encoding="utf-8"))
    latest = _latest_results(out / RESULTS)
    run = read_run(out) or {}
    running = is_running(out)
    done = sum(len(pages_of(r)) for r in latest.values() if r.get("status") == "ok")
    failed = sum(len(pages_of(r)) for r in latest.values()) - done
    total = run.get("pages_total")
    current = run.get("run")
    sends = unanswered(out)
    in_flight = [x for x in sends if running and x.run == current]
    lost = lost_summary(x for x in sends if not (running and x.run == current))
    for page in lost["pages"]:
        page["sent_again"] = page["run"] != current  # a later run has been started since
    costs = [Decimal(r["cost_usd"]) for r in latest.values() if r.get("cost_usd") is not None]
    if running:
        state = "running"
    elif run.get("ended_at"):
        state = "ended"
    elif run:
        state = "interrupted"  # started, no end recorded, lock free: killed (or crashed hard)
    else:
        state = "unknown"  # written by a runner that kept no run.json
    return {
        "job_id": job.get("job_id"),
        "out": str(out),
        "running": running,
        "state": state,
        "pid": run.get("pid"),
        "started_at": run.get("started_at"),
        "ended_at": run.get("ended_at"),
        "ended": run.get("ended"),
        "exit_code": run.get("exit_code"),
        "pages": {
            "total": total,
            "done": done,
            "failed": failed,
            "pending": max(total - done - failed, 0) if total is not None else None,
        },
        "cost_usd": usd(sum(costs, Decimal(0))) if costs else NOT_AVAILABLE,
        "in_flight": len(in_flight),
        "paid_answer_lost": lost,
    }


def render_status(status: dict[str, Any]) -> str:
    pages = status["pages"]
    total = "?" if pages["total"] is None else pages["total"]
    pending = "?" if pages["pending"] is None else pages["pending"]
    lines = [
        f"job {status['job_id']} in {status['out']}: {_state_line(status)}",
        f"pages: {total} total, {pages['done']} done, {pages['failed']} failed, {pending} pending",
        f"cost so far: {shown(status['cost_usd'])} (answers written)",
    ]
    lost = status["paid_answer_lost"]
    if lost["count"]:
        lines.append(render_lost(lost["pages"]))
    return "\n".join(lines)


def render_lost(pages: list[dict[str, Any]]) -> str:
    """The "paid, answer lost" line of `batch status` and of a resumed run."""
    ids = ", ".join(f"{p['doc']} p{p['page']}" for p in pages[:20])
    more = f" and {len(pages) - 20} more" if len(pages) > 20 else ""
    waiting = [p for p in pages if not p.get("sent_again")]
    then = (
        f"{len(waiting)} will be sent again on resume"
        if waiting
        else "they were sent again by a later run"
    )
    return (
        f"paid, answer lost: {len(pages)} page(s) were sent but the runner was killed before "
        f"their answers were written ({ids}{more}); {then}, so {BILLED_TWICE}"
    )


def _state_line(status: dict[str, Any]) -> str:
    if status["state"] == "running":
        return (
            f"running (pid {status['pid']}, started {status['started_at']}), "
            f"{status['in_flight']} request(s) in flight"
        )
    if status["state"] == "ended":
        return f"not running (last run ended at {status['ended_at']}: {status['ended']})"
    if status["state"] == "interrupted":
        return (
            f"not running (the last run, pid {status['pid']} started {status['started_at']}, "
            "was interrupted: killed before it could end; run the same command to resume)"
        )
    return "not running"


def _latest_results(path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return latest
    for line in text.splitlines():
        try:
            record = json.loads(line)
            latest[(record["doc"], record["page"])] = record
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a torn last line while the batch is being killed
    return latest
