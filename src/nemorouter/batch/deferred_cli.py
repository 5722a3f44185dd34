"""The deferred side of `nemorouter batch`: `run --deferred`'s options and `batch collect`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from nemorouter.batch.deferred_job import DeferredOutcome

REASK_MODES = ("off", "interactive")
DEFAULT_POLL_S = 30.0  # deferred.DEFAULT_POLL_S (not imported: the CLI loads no runner)

DeferredOption = Annotated[
    bool,
    typer.Option(
        "--deferred",
        help="send the pages as deferred batches (OpenAI Batch API through the gateway, at "
        "the providers' batch price, results within 24 h) and wait for them",
    ),
]
DetachOption = Annotated[
    bool,
    typer.Option("--detach", help="with --deferred: return once submitted; `batch collect` later"),
]
MaxLinesOption = Annotated[
    int,
    typer.Option("--deferred-max-lines", min=1, max=50_000,
                 help="requests a deferred batch holds at most (more make more batches)"),
]  # fmt: skip
MaxBytesOption = Annotated[
    int,
    typer.Option("--deferred-max-bytes", min=1_000, max=200_000_000,
                 help="bytes a deferred batch's input file holds at most (OpenAI takes 200 MB, "
                 "the gateway its settings.deferred.max_file_mb, 100 MiB by default)"),
]  # fmt: skip
PollOption = Annotated[
    float,
    typer.Option("--poll-interval", min=0.05, max=3600.0,
                 help="seconds between polls of deferred batches"),
]  # fmt: skip
ReaskOption = Annotated[
    str,
    typer.Option(
        "--reask",
        help="with --deferred: an answer that fails validation is asked once more through "
        "the interactive path (at the interactive price) with `interactive`; `off` fails the "
        "page with the reason",
    ),
]


def reask_flag(reask: str) -> bool:
    if reask not in REASK_MODES:
        raise typer.BadParameter(f"--reask must be one of {', '.join(REASK_MODES)}")
    return reask == "interactive"


def run_deferred_command(options: Any, deferred: Any) -> None:
    """`batch run --deferred`: submit, then wait (or detach); exits with the outcome's code."""
    from nemorouter.batch.deferred import run_deferred

    finish(run_deferred(options, deferred), options.out)


def finish(outcome: DeferredOutcome, out: Path) -> None:
    from nemorouter.batch.cli import print_summary

    print_summary(outcome.summary, out)
    deferred = outcome.summary.get("deferred") or {}
    typer.echo(f"deferred batches: {len(deferred.get('batches', ()))}, still running: "
               f"{len(outcome.running)}; cost {outcome.summary['cost_total_usd']} "
               "(as the gateway reported each line)")  # fmt: skip
    if outcome.message:
        typer.echo(f"nemorouter batch: {outcome.message}", err=True)
    raise typer.Exit(outcome.exit_code)


def register(app: typer.Typer, usage: Any, default_base_url: str) -> None:
    @app.command(
        "collect",
        epilog="Exit codes: 0 every page done; 1 results written, some pages failed or were "
        "not sent; 2 OUT holds no deferred batch, or the gateway refused; 3 the gateway is "
        "unreachable; 4 batches still running (collect again later).",
    )
    def collect(
        out: Annotated[Path, typer.Option(help="the job's output folder")],
        wait: Annotated[bool, typer.Option("--wait", help="poll until every batch ended")] = False,
        cancel: Annotated[bool, typer.Option(
            "--cancel", help="first ask the running batches to stop; what they finished is "
            "collected, the rest fail and are submitted again by the next `batch run`")] = False,
        poll_interval: PollOption = DEFAULT_POLL_S,
        reask: ReaskOption = "off",
        base_url: Annotated[str | None, typer.Option(envvar="NEMOROUTER_BASE_URL",
                                                     help="the gateway's API")] = None,
        api_key: Annotated[str | None, typer.Option(envvar="NEMOROUTER_API_KEY",
                                                    help="a virtual key, or the master key")] = None,
    ) -> None:  # fmt: skip
        """Fetch the results of a job's deferred batches that have ended.

        Writes them to OUT/results.jsonl and OUT/summary.json as `batch run` does; with
        --wait, polls until every batch has ended."""
        from nemorouter.batch.deferred import collect_deferred
        from nemorouter.batch.journal import JobMismatch
        from nemorouter.batch.runstate import RunInProgress

        url = base_url or os.environ.get("NEMOROUTER_BASE_URL") or default_base_url
        try:
            outcome = collect_deferred(out, url, api_key, wait=wait, poll_s=poll_interval,
                                       reask=reask_flag(reask), cancel=cancel)  # fmt: skip
        except (FileNotFoundError, JobMismatch, RunInProgress) as exc:
            raise usage(str(exc)) from None
        finish(outcome, out)


def render_deferred(parts: list[dict[str, Any]]) -> list[str]:
    """`batch status` lines for a job's deferred batches."""
    if not parts:
        return []
    lines = [f"deferred batches: {len(parts)}"]
    for part in parts:
        counts = part.get("request_counts") or {}
        done = counts.get("completed", 0) + counts.get("failed", 0)
        state = "collected" if part["collected"] else (part["status"] or "not created")
        polled = "" if part.get("polled", True) else f" (as last recorded: {part['poll_error']})"
        lines.append(
            f"  {part['batch_id'] or '(upload ' + str(part['input_file_id']) + ')'}: {state}, "
            f"{done}/{counts.get('total', part['requests'])} requests "
            f"({counts.get('failed', 0)} failed), submitted {part['submitted_at']}{polled}"
        )
    return lines
