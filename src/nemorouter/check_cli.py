"""`nemorouter check --config FILE`: is every deployment ready for production traffic?

One table (or `--json`), one row per deployment: credentials, model reachable, quota headers
seen, price known, latency, and a short reason on failure. Exit codes: 0 when every
deployment passed, 1 when any failed, 2 on a config error or bad usage.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from nemorouter.cli_table import CliTable, Column, print_table
from nemorouter.config import Config, ConfigError, load_config
from nemorouter.core.deployment_check import (
    DEFAULT_MAX_CALL_USD,
    DEFAULT_TIMEOUT_S,
    QUOTA_PREFIXES,
    CheckRow,
    run_checks,
)
from nemorouter.types.money import display_usd, usd

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def check(
    config: Annotated[
        Path, typer.Option("--config", "-c", envvar="NEMOROUTER_CONFIG", help="YAML config file")
    ] = Path("nemorouter.yaml"),
    no_calls: Annotated[
        bool,
        typer.Option("--no-calls", help="make no model call: fetch credentials, look models up"),
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="seconds allowed per deployment")
    ] = DEFAULT_TIMEOUT_S,
    max_call_usd: Annotated[
        str, typer.Option(help="a deployment whose check call could cost more is looked up")
    ] = str(DEFAULT_MAX_CALL_USD),
    as_json: Annotated[bool, typer.Option("--json", help="print the rows as JSON")] = False,
) -> None:
    """Check every deployment with its real credentials: one minimal call each (a one-word
    prompt, one output token) or, with --no-calls, a credentials fetch and a model lookup.

    Exit 0 when every deployment passed, 1 when any failed, 2 on a config error."""
    try:
        limit = Decimal(max_call_usd)
    except InvalidOperation:
        limit = Decimal("NaN")
    if not limit.is_finite() or limit < 0:
        raise _fail("--max-call-usd must be a non-negative decimal, e.g. 0.01", EXIT_USAGE)
    loaded = _load(config)
    try:
        rows = asyncio.run(
            run_checks(loaded, calls=not no_calls, timeout_s=timeout, max_call_usd=limit)
        )
    except ConfigError as exc:
        raise _fail(f"config error in {config}: {exc}", EXIT_USAGE) from None
    total = sum((r.cost_usd for r in rows if r.cost_usd is not None), Decimal(0))
    calls = sum(1 for r in rows if r.cost_usd is not None)  # answered, and costed
    passed = all(r.passed for r in rows)
    if as_json:
        report = {
            "passed": passed,
            "deployments": [r.as_json() for r in rows],
            "calls": calls,
            "total_cost_usd": usd(total),
        }
        typer.echo(json.dumps(report, indent=2))
    else:
        table = check_table(rows)
        table.caption = (
            f"{sum(r.passed for r in rows)} of {len(rows)} deployments passed; {calls} check "
            f"calls cost {display_usd(total)} (from the usage the providers reported)"
        )
        print_table(table)
    raise typer.Exit(EXIT_PASSED if passed else EXIT_FAILED)


def _load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise _fail(f"config error in {path}: {exc}", EXIT_USAGE) from None


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"nemorouter: {message}", err=True)
    return typer.Exit(code)


def check_table(rows: list[CheckRow]) -> CliTable:
    table = CliTable(None, [
        Column("deployment"), Column("provider", whole=False), Column("model"),
        Column("check"), Column("auth", whole=False), Column("model reachable", whole=False),
        Column("quota headers", whole=False), Column("price", whole=False),
        Column("latency", right=True), Column("cost", right=True),
        Column("result", whole=False),
    ])  # fmt: skip
    for row in rows:
        model = row.model
        if row.provider_model != row.model:
            model += f" ({row.provider_model})"
        table.add_row(
            row.deployment,
            f"{row.provider} ({row.provider_type})",
            model,
            row.mode,
            row.auth,
            row.reachable,
            quota_summary(row.quota_headers),
            row.price,
            _latency(row.latency_ms),
            "-" if row.cost_usd is None else display_usd(row.cost_usd),
            _result(row),
        )
    return table


def _latency(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:,.0f} ms"


def _result(row: CheckRow) -> Text:
    if row.passed:
        text = Text("PASS", style="green")
    else:
        why = row.reason or ("no known price" if row.price == "unknown" else "not checked")
        text = Text(f"FAIL: {why}", style="red")
    if row.note:
        text.append(f" ({row.note})")
    return text


def quota_summary(headers: dict[str, Any]) -> str:
    """`x-ratelimit: requests, tokens`, one family per line; `none` when none was seen."""
    families: dict[str, list[str]] = {}
    for name in headers:
        family = next(p for p in QUOTA_PREFIXES if name.startswith(p))
        dimension = name[len(family) :]
        for part in ("limit", "remaining", "reset"):
            dimension = dimension.removeprefix(f"{part}-").removesuffix(f"-{part}")
        seen = families.setdefault(family.rstrip("-"), [])
        if dimension not in seen:
            seen.append(dimension)
    if not families:
        return "none"
    return "\n".join(f"{family}: {', '.join(dims)}" for family, dims in families.items())
