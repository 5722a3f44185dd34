"""`nemorouter spend`: spend by job, model, key, team or day, from the admin API."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from nemorouter.admin_client import DEFAULT_BASE_URL, AdminClient, AdminError
from nemorouter.cli_table import CliTable, Column, print_table
from nemorouter.types.money import display_usd

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
    if "rows" in report:
        print_table(_spend_table(report, group_by))
    else:
        print_table(_job_table(report))


COUNTS = ("requests", "cache hits", "fallbacks", "prompt tokens", "completion tokens")


def _spend_table(report: dict[str, Any], group_by: str) -> CliTable:
    columns = [Column(group_by), *(Column(name, right=True) for name in COUNTS)]
    table = CliTable(f"Spend by {group_by}", [*columns, Column("cost", right=True)])
    for row in report["rows"]:
        table.add_row(
            row["group"] if row["group"] is not None else "(none)",
            f"{row['requests']:,}",
            f"{row['cache_hits']:,}",
            f"{row['fallbacks']:,}",
            f"{row['prompt_tokens']:,}",
            f"{row['completion_tokens']:,}",
            display_usd(row["cost_usd"]),
        )
    table.add_section()
    table.add_row("total", *("",) * len(COUNTS), display_usd(report["total_cost_usd"]))
    return table


def _job_table(job: dict[str, Any]) -> CliTable:
    table = CliTable(
        f"Job {job['job_id']}  ({job['first_at']} to {job['last_at']})",
        [Column("model"), Column("requests", right=True), Column("cost", right=True)],
    )
    for name, model in job["models"].items():
        table.add_row(name, f"{model['requests']:,}", display_usd(model["cost_usd"]))
    table.add_section()
    table.add_row("total", f"{job['requests']:,}", display_usd(job["cost_usd"]))
    table.caption = (
        f"{job['succeeded']:,} succeeded, {job['failed']:,} failed, "
        f"{job['cache_hits']:,} cache hits, {job['fallbacks']:,} fallbacks; "
        f"{display_usd(job['cost_per_request_usd'])} per request"
    )
    return table
