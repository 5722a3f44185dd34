"""`nemorouter batch run|status|estimate` (DESIGN §2.5)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nemorouter.batch.deferred_cli import (
    DeferredOption,
    DetachOption,
    MaxBytesOption,
    MaxLinesOption,
    PollOption,
    ReaskOption,
    reask_flag,
    register,
    render_deferred,
    run_deferred_command,
)
from nemorouter.batch.deferred_ledger import read_parts
from nemorouter.batch.journal import RESULTS, JobMismatch
from nemorouter.batch.plan import SEND_MODES, TEXT_LAYER_MODES, SendPlan
from nemorouter.batch.prompts import (
    DEFAULT_MAX_TOKENS,
    Task,
    UsageError,
    classification,
    extraction,
    free_prompt,
)
from nemorouter.batch.status import job_status, render_lost, render_status
from nemorouter.batch.summary import lost_summary, render_job_estimate, shown
from nemorouter.cli_style import command_group

if TYPE_CHECKING:  # the runner (PDF rendering and all) is imported only when a batch runs
    from nemorouter.batch.runner import BatchOutcome

DEFAULT_BASE_URL = "http://127.0.0.1:4000/v1"

batch_app = command_group("Run documents through the gateway as one job.")


def _usage(message: str) -> typer.Exit:
    typer.echo(f"nemorouter batch: {message}", err=True)
    return typer.Exit(2)


def build_task(schema: Path | None, classify: str | None, prompt: str | None) -> Task:
    chosen = [x for x in (schema, classify, prompt) if x is not None]
    if len(chosen) != 1:
        raise UsageError("give exactly one of --schema FILE.json, --classify a,b,c, --prompt TEXT")
    if schema is not None:
        try:
            return extraction(json.loads(schema.read_text(encoding="utf-8")))
        except OSError as exc:
            raise UsageError(f"cannot read the schema file {schema}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"the schema file {schema} is not JSON: {exc.msg}") from None
    if classify is not None:
        return classification(classify.split(","))
    assert prompt is not None
    return free_prompt(prompt)


def build_plan(send: str, text_layer: str, pages_per_request: int | None) -> SendPlan:
    if send not in SEND_MODES:
        raise UsageError(f"--send must be one of {', '.join(SEND_MODES)}, got {send!r}")
    if text_layer not in TEXT_LAYER_MODES:
        raise UsageError(
            f"--text-layer must be one of {', '.join(TEXT_LAYER_MODES)}, got {text_layer!r}"
        )
    if pages_per_request is not None and send != "document":
        raise UsageError("--pages-per-request goes with --send document")
    if text_layer != "off" and send == "document":
        raise UsageError(
            "--text-layer goes with --send pages (a PDF sent whole carries its text layer)"
        )
    return SendPlan(send, text_layer, pages_per_request)


SendOption = Annotated[
    str,
    typer.Option(
        "--send",
        help="pages: each page as an image (one request a page); document: each PDF (or "
        "chunk of --pages-per-request pages) as one PDF file part for a PDF-capable model",
    ),
]
PagesPerRequestOption = Annotated[
    int | None,
    typer.Option("--pages-per-request", min=1, max=1000,
                 help="with --send document: cut each PDF into PDFs of N pages"),
]  # fmt: skip
TextLayerOption = Annotated[
    str,
    typer.Option(
        "--text-layer",
        help="off; with-image: a born-digital PDF page's extracted text beside its image; "
        "instead: the text in place of the image (scanned pages always go as images)",
    ),
]
MaxTokensOption = Annotated[
    int | None,
    typer.Option(
        "--max-tokens",
        min=1,
        max=1_000_000,
        help="output bound sent as max_tokens on every request; a budgeted key reserves "
        "each call's worst case from it, so it sets how many calls fit at once "
        "(default by task: --schema {extract}, --classify {classify}, --prompt {prompt})".format(
            **DEFAULT_MAX_TOKENS
        ),
    ),
]


RUN_EPILOG = (
    "Exit codes: 0 every page of every input done; "
    "1 results written but not all: some pages failed or were not sent (a spent budget), "
    "or some inputs were unreadable (OUT/errors.jsonl); "
    "2 bad usage: bad options, no readable document in INPUTS, OUT busy or holding another "
    "job, or the gateway refuses the job (key, model, tags); "
    "3 the gateway is unreachable at the base URL (results so far written); "
    "128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM). "
    "With --deferred --detach: 0 once every batch is submitted (`batch collect` later). "
    "Run the same command again to resume."
)


@batch_app.command("run", epilog=RUN_EPILOG)
def run(
    inputs: Annotated[
        list[Path], typer.Argument(help="files or folders of PDF, PNG, JPEG, TIFF, WebP")
    ],
    job_id: Annotated[str, typer.Option("--job-id", help="the job's id (spend is grouped by it)")],
    schema: Annotated[Path | None, typer.Option(help="extract fields: a JSON Schema file")] = None,
    classify: Annotated[str | None, typer.Option(help="classify into labels: a,b,c")] = None,
    prompt: Annotated[str | None, typer.Option(help="a free prompt for every page")] = None,
    model: Annotated[str, typer.Option(help="model, group or auto")] = "auto",
    tags: Annotated[str | None, typer.Option(help="capability tags: vision,pdf,...")] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=512, help="requests in flight at once")
    ] = 8,
    max_tokens: MaxTokensOption = None,
    dpi: Annotated[
        int, typer.Option(min=50, max=600, help="PDF pages are rendered at this resolution")
    ] = 150,
    send: SendOption = "pages",
    pages_per_request: PagesPerRequestOption = None,
    text_layer: TextLayerOption = "off",
    out: Annotated[
        Path | None, typer.Option(help="output folder (default: ./batch-JOB_ID)")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="skip the gateway cache")] = False,
    base_url: Annotated[
        str | None,
        typer.Option(
            envvar="NEMOROUTER_BASE_URL",
            help="the gateway's API (default: http://127.0.0.1:4000/v1)",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="NEMOROUTER_API_KEY", help="a virtual key, or the master key"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print summary.json on stdout (progress on stderr)")
    ] = False,
    # Deferred batches (batch/deferred.py, issue 20)
    deferred: DeferredOption = False,
    detach: DetachOption = False,
    deferred_max_lines: MaxLinesOption = 10_000,
    deferred_max_bytes: MaxBytesOption = 100_000_000,
    poll_interval: PollOption = 30.0,
    reask: ReaskOption = "off",
) -> None:
    """Send every page of INPUT through the gateway.

    Resumable: run it again with the same --job-id and --out."""
    from nemorouter.batch.runner import BatchOptions, NoDocuments, run_batch
    from nemorouter.batch.runstate import RunInProgress

    try:
        task = build_task(schema, classify, prompt)
        plan = build_plan(send, text_layer, pages_per_request)
    except UsageError as exc:
        raise _usage(str(exc)) from None
    options = BatchOptions(
        inputs=inputs,
        job_id=job_id,
        task=task,
        out=out or Path(f"batch-{job_id}"),
        base_url=base_url or os.environ.get("NEMOROUTER_BASE_URL") or DEFAULT_BASE_URL,
        api_key=api_key,
        model=model,
        tags=[t.strip() for t in (tags or "").split(",") if t.strip()],
        concurrency=concurrency,
        dpi=dpi,
        no_cache=no_cache,
        max_tokens=max_tokens,
        plan=plan,
    )
    if not options.base_url.startswith(("http://", "https://")):
        raise _usage(f"--base-url must be an http(s) URL, got {options.base_url!r}")
    if deferred:
        from nemorouter.batch.deferred_job import DeferredOptions

        settings = DeferredOptions(detach, deferred_max_lines, deferred_max_bytes,
                                   poll_interval, reask_flag(reask))  # fmt: skip
        try:
            run_deferred_command(options, settings)
        except (FileNotFoundError, JobMismatch, NoDocuments, RunInProgress) as exc:
            raise _usage(str(exc)) from None
    if detach or reask != "off":
        raise _usage("--detach and --reask go with --deferred")
    live = [p for p in read_parts(options.out) if p.live]
    if live:  # their pages sent again interactively would be paid for twice
        raise _usage(
            f"{options.out} has {len(live)} deferred batch(es) not yet collected: run "
            f"`nemorouter batch collect --out {options.out}`, or this command with --deferred"
        )
    # With --json, stdout carries the summary alone: progress goes to stderr.
    progress_out = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    try:
        with progress_out:
            outcome = asyncio.run(run_batch(options))
    except (FileNotFoundError, JobMismatch, NoDocuments, RunInProgress) as exc:
        raise _usage(str(exc)) from None
    if outcome.lost:  # a killed earlier run: those pages were sent again just now
        pages = lost_summary(outcome.lost)["pages"]
        typer.echo(f"nemorouter batch: {render_lost([{**p, 'sent_again': True} for p in pages])}",
                   err=True)  # fmt: skip
    if as_json:
        typer.echo(json.dumps(outcome.summary, indent=2))
    else:
        print_summary(outcome.summary, options.out)
    print_stop(outcome, options.out)
    raise typer.Exit(outcome.exit_code)


def print_stop(outcome: BatchOutcome, out: Path) -> None:
    """Why the job stopped early, how far it got, and that nothing received was lost."""
    summary = outcome.summary
    if outcome.budget is not None:
        budget = outcome.budget
        numbers = (
            f"limit {shown(budget.limit)}, spent {shown(budget.spent)}"
            if budget.limit is not None and budget.spent is not None
            else "no numbers given"
        )
        why = f"stopped: the budget is spent ({numbers}): {budget}"
        then = "raise the budget (or wait for its next period) and run the same command"
    elif outcome.fatal is not None:
        why = f"stopped, the gateway refused the job: {outcome.fatal}"
        then = "fix the cause and run the same command"
    elif outcome.unreachable is not None:
        why = (
            f"stopped: {outcome.unreachable}. Is `nemorouter serve` running there? "
            "Check --base-url / NEMOROUTER_BASE_URL (scheme, host, port and the /v1 path)"
        )
        then = "start the gateway (or fix the URL) and run the same command"
    elif outcome.interrupted is not None:
        why = f"stopped by {signal.Signals(outcome.interrupted).name}"
        then = "run the same command"
    else:
        return
    typer.echo(
        f"nemorouter batch: {why}\n"
        f"nemorouter batch: {summary['ok']} pages done, {summary['failed']} failed, "
        f"{summary['not_sent']} not sent; every answer received is in {out / RESULTS}; "
        f"{then} to resume.",
        err=True,
    )


def print_summary(summary: dict[str, Any], out: Path) -> None:
    pages = summary["pages"] + summary.get("not_sent", 0)  # a stopped job left some unsent
    typer.echo(
        f"job {summary['job_id']}: {summary['ok']}/{pages} pages ok, "
        f"{summary['failed']} failed, {summary['unreadable_inputs']} unreadable inputs, "
        f"{summary['cache_hits']} cache hits, {summary['fallbacks']} fallbacks; "
        f"cost {shown(summary['cost_total_usd'])} (per page {shown(summary['cost_per_page_usd'])}); "
        f"{summary['pages_per_minute']} pages/min over {summary['wall_time_s']} s"
    )
    estimate = summary.get("estimate")
    if estimate:
        typer.echo(f"{render_job_estimate(estimate)}; actual {shown(summary['cost_total_usd'])}")
    typer.echo(
        f"results: {out / RESULTS}, errors: {out / 'errors.jsonl'}, summary: {out / 'summary.json'}"
    )


@batch_app.command("status")
def status(
    out: Annotated[Path, typer.Option(help="the batch's output folder")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    base_url: Annotated[
        str | None,
        typer.Option(
            envvar="NEMOROUTER_BASE_URL",
            help="the gateway's API, asked for the state of deferred batches",
        ),
    ] = None,
    api_key: Annotated[str | None, typer.Option(envvar="NEMOROUTER_API_KEY")] = None,
) -> None:
    """How far a batch got, and whether it is running.

    Its cost so far and any paid answers lost to a kill; works while it runs, or after a
    crash. A deferred job's batches are asked for their state at the gateway."""
    from nemorouter.batch.deferred_status import deferred_status

    try:
        found = job_status(out)
    except FileNotFoundError as exc:
        raise _usage(str(exc)) from None
    url = base_url or os.environ.get("NEMOROUTER_BASE_URL") or DEFAULT_BASE_URL
    parts = deferred_status(out, url, api_key)
    if parts:
        found["deferred"] = parts
    if as_json:
        typer.echo(json.dumps(found, indent=2))
    else:
        typer.echo("\n".join([render_status(found), *render_deferred(parts)]))


register(batch_app, _usage, DEFAULT_BASE_URL)  # `batch collect` (batch/deferred_cli.py)


@batch_app.command("estimate")
def estimate(
    inputs: Annotated[
        list[Path], typer.Argument(help="files or folders of PDF, PNG, JPEG, TIFF, WebP")
    ],
    schema: Annotated[Path | None, typer.Option(help="extract fields: a JSON Schema file")] = None,
    classify: Annotated[str | None, typer.Option(help="classify into labels: a,b,c")] = None,
    prompt: Annotated[str | None, typer.Option(help="a free prompt for every page")] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="a catalog model (repeat it); default: every model that reads images or PDFs",
        ),
    ] = None,
    max_tokens: MaxTokensOption = None,
    dpi: Annotated[
        int, typer.Option(min=50, max=600, help="PDF pages would be rendered at this resolution")
    ] = 150,
    send: SendOption = "pages",
    pages_per_request: PagesPerRequestOption = None,
    text_layer: TextLayerOption = "off",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    job_id: Annotated[str | None, typer.Option("--job-id", hidden=True)] = None,
    tags: Annotated[str | None, typer.Option(hidden=True)] = None,
    concurrency: Annotated[int, typer.Option(hidden=True)] = 8,
    out: Annotated[Path | None, typer.Option(hidden=True)] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", hidden=True)] = False,
) -> None:
    """Pages found, unreadable inputs, and per model the prompt tokens and cost of each send
    mode (no call is made; `run`'s options are taken as they are)."""
    from nemorouter.batch.estimate import (
        default_models,
        estimate_models,
        output_assumption,
        run_mode,
        scan,
    )
    from nemorouter.batch.estimate_view import estimate_json, render_estimate

    try:
        task = build_task(schema, classify, prompt)
        plan = build_plan(send, text_layer, pages_per_request)
        scanned = scan(inputs, dpi)
    except (UsageError, FileNotFoundError) as exc:
        raise _usage(str(exc)) from None
    chosen = [m for m in models or () if m != "auto"] or default_models()
    found = estimate_models(chosen, scanned.pages, task, max_tokens, plan.pages_per_request)
    report = estimate_json(
        scanned, found, run_mode=run_mode(plan.send, plan.text_layer), dpi=dpi,
        assumption=output_assumption(task, max_tokens),
    )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        render_estimate(report)
