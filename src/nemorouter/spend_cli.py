"""`nemorouter spend`: spend by job, model, key, team or day, from the admin API."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from nemorouter.admin_client import DEFAULT_BASE_URL, AdminClient, AdminError

GROUPS = ("job", "model", "key", "team", "day")


def admin_client(base_url: str | None, api_key: str | None) -> AdminClient:
    key = api_key or os.environ.get("NEMOROUTER_MASTER_KEY")
    if not key:
        raise fail("the admin API needs the master key: --api-key or NEMOROUTER_MASTER_KEY", 2)
    try:
        return AdminClient(
            base_url or os.environ.get("NEMOROUTER_BASE_URL") or DEFAULT_BASE_URL, key
        )
    except AdminError as exc:
        raise fail(str(exc), 2) from None


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"nemorouter: {message}", err=True)
    return typer.Exit(code)


def spend(
    job: Annotated[str | None, typer.Option("--job", help="one job: its totals and models")] = None,
    group_by: Annotated[
        str, typer.Option("--group-by", help="job, model, key, team or day")
    ] = "job",
    start: Annotated[str | None, typer.Option(help="from this ISO date or date-time (UTC)")] = None,
    end: Annotated[
        str | None, typer.Option(help="until this ISO date (inclusive) or date-time")
    ] = None,
    model: Annotated[str | None, typer.Option(help="only this model")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON")] = False,
    base_url: Annotated[
        str | None,
        typer.Option(
            envvar="NEMOROUTER_BASE_URL",
            help="the gateway's API (default: http://127.0.0.1:4000/v1)",
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="the master key (or NEMOROUTER_MASTER_KEY)")
    ] = None,
) -> None:
    """Spend recorded by the gateway.

    Asks the gateway's admin API, with the master key."""
    if group_by not in GROUPS:
        raise fail(f"--group-by must be one of {', '.join(GROUPS)}", 2)
    client = admin_client(base_url, api_key)
    try:
        if job is not None and group_by == "job":
            report = client.get(f"/admin/jobs/{job}")
        else:
            report = client.get(
                "/admin/spend", group_by=group_by, start=start, end=end, job_id=job, model=model
            )
    except AdminError as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    console = Console()
    if "rows" in report:
        console.print(_spend_table(report, group_by))
    else:
        console.print(_job_table(report))


def _spend_table(report: dict[str, Any], group_by: str) -> Table:
    table = Table(title=f"Spend by {group_by}", show_footer=True)
    table.add_column(group_by, footer="total")
    for name in ("requests", "cache hits", "fallbacks", "prompt tokens", "completion tokens"):
        table.add_column(name, justify="right")
    table.add_column("cost (USD)", justify="right", footer=f"${report['total_cost_usd']}")
    for row in report["rows"]:
        table.add_row(
            row["group"] if row["group"] is not None else "(none)",
            f"{row['requests']:,}",
            f"{row['cache_hits']:,}",
            f"{row['fallbacks']:,}",
            f"{row['prompt_tokens']:,}",
            f"{row['completion_tokens']:,}",
            f"${row['cost_usd']}",
        )
    return table


def _job_table(job: dict[str, Any]) -> Table:
    table = Table(title=f"Job {job['job_id']}  ({job['first_at']} to {job['last_at']})")
    table.add_column("model")
    table.add_column("requests", justify="right")
    table.add_column("cost (USD)", justify="right")
    for name, model in job["models"].items():
        table.add_row(name, f"{model['requests']:,}", f"${model['cost_usd']}")
    table.add_section()
    table.add_row("total", f"{job['requests']:,}", f"${job['cost_usd']}")
    table.caption = (
        f"{job['succeeded']:,} succeeded, {job['failed']:,} failed, "
        f"{job['cache_hits']:,} cache hits, {job['fallbacks']:,} fallbacks; "
        f"${job['cost_per_request_usd']} per request"
    )
    return table
