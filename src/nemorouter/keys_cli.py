"""`nemorouter keys create|list|revoke` and `nemorouter teams create|list` (admin API)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from nemorouter.admin_client import AdminError
from nemorouter.cli_style import command_group
from nemorouter.cli_table import CliTable, Column, print_table
from nemorouter.spend_cli import admin_client, fail
from nemorouter.types.money import display_usd

keys_app = command_group("Virtual keys (through the admin API, with the master key).")
teams_app = command_group("Teams (through the admin API, with the master key).")

BaseUrl = Annotated[
    str | None,
    typer.Option(
        envvar="NEMOROUTER_BASE_URL", help="the gateway's API (default: http://127.0.0.1:4000/v1)"
    ),
]
ApiKey = Annotated[str | None, typer.Option(help="the master key (or NEMOROUTER_MASTER_KEY)")]
AsJson = Annotated[bool, typer.Option("--json", help="print the API's JSON")]


def _budget(subject: dict[str, Any]) -> str:
    if not subject["budget_usd"]:
        return "-"
    return f"{display_usd(subject['budget_usd'])} {subject['budget_period'] or 'lifetime'}"


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [item.strip() for item in value.split(",") if item.strip()]


def _call(
    base_url: str | None,
    api_key: str | None,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
) -> Any:
    client = admin_client(base_url, api_key)
    try:
        return client.request(method, path, body=body)
    except AdminError as exc:
        raise fail(str(exc)) from None


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Option(help="what the key is for")],
    team_id: Annotated[str | None, typer.Option(help="team the key belongs to")] = None,
    models: Annotated[
        str | None, typer.Option(help="allowed models or groups, comma-separated")
    ] = None,
    default_tags: Annotated[
        str | None, typer.Option(help="tags required when a request names none")
    ] = None,
    rpm: Annotated[int | None, typer.Option(min=0, help="requests per minute")] = None,
    tpm: Annotated[int | None, typer.Option(min=0, help="tokens per minute")] = None,
    budget_usd: Annotated[str | None, typer.Option(help="e.g. 25.00")] = None,
    budget_period: Annotated[
        str | None, typer.Option(help="daily or monthly (default: lifetime)")
    ] = None,
    expires_at: Annotated[str | None, typer.Option(help="ISO 8601 date-time (UTC)")] = None,
    as_json: AsJson = False,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Create a key; its secret is printed this once."""
    body = {
        "name": name,
        "team_id": team_id,
        "models": _csv(models),
        "default_tags": _csv(default_tags),
        "rpm": rpm,
        "tpm": tpm,
        "budget_usd": budget_usd,
        "budget_period": budget_period,
        "expires_at": expires_at,
    }
    created = _call(
        base_url, api_key, "POST", "/admin/keys", {k: v for k, v in body.items() if v is not None}
    )
    if as_json:
        _echo_json(created)
        return
    typer.echo(f"key {created['id']} ({created['name']})")
    typer.echo(f"secret: {created['key']}")
    typer.echo(
        "Store the secret now: it is not shown again (the gateway keeps only its hash).", err=True
    )


@keys_app.command("list")
def list_keys(
    team_id: Annotated[str | None, typer.Option(help="only this team's keys")] = None,
    as_json: AsJson = False,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
) -> None:
    """List keys (never their secrets)."""
    path = "/admin/keys" + (f"?team_id={team_id}" if team_id else "")
    keys = _call(base_url, api_key, "GET", path)["keys"]
    if as_json:
        _echo_json(keys)
        return
    table = CliTable("Keys", [
        Column("id"), Column("name"), Column("prefix"), Column("team"),
        Column("models", whole=False), Column("rpm", right=True), Column("tpm", right=True),
        Column("budget"), Column("status", whole=False),
    ])  # fmt: skip
    for key in keys:
        status = (
            "revoked"
            if key["revoked_at"]
            else (f"expires {key['expires_at']}" if key["expires_at"] else "active")
        )
        table.add_row(
            key["id"], key["name"], key["key_prefix"], key["team_id"] or "-",
            ",".join(key["models"]) if key["models"] else "all",
            str(key["rpm"] or "-"), str(key["tpm"] or "-"), _budget(key), status,
        )  # fmt: skip
    print_table(table)


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="the key's id (key_…)")],
    as_json: AsJson = False,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Revoke a key at once."""
    revoked = _call(base_url, api_key, "DELETE", f"/admin/keys/{key_id}")
    if as_json:
        _echo_json(revoked)
        return
    typer.echo(f"key {revoked['id']} ({revoked['name']}) revoked at {revoked['revoked_at']}")


@teams_app.command("create")
def create_team(
    name: Annotated[str, typer.Option(help="the team's name")],
    budget_usd: Annotated[str | None, typer.Option(help="e.g. 500")] = None,
    budget_period: Annotated[
        str | None, typer.Option(help="daily or monthly (default: lifetime)")
    ] = None,
    rpm: Annotated[int | None, typer.Option(min=0, help="requests per minute")] = None,
    tpm: Annotated[int | None, typer.Option(min=0, help="tokens per minute")] = None,
    as_json: AsJson = False,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Create a team."""
    body = {
        "name": name,
        "budget_usd": budget_usd,
        "budget_period": budget_period,
        "rpm": rpm,
        "tpm": tpm,
    }
    team = _call(
        base_url, api_key, "POST", "/admin/teams", {k: v for k, v in body.items() if v is not None}
    )
    if as_json:
        _echo_json(team)
        return
    typer.echo(f"team {team['id']} ({team['name']})")


@teams_app.command("list")
def list_teams(as_json: AsJson = False, base_url: BaseUrl = None, api_key: ApiKey = None) -> None:
    """List teams."""
    teams = _call(base_url, api_key, "GET", "/admin/teams")["teams"]
    if as_json:
        _echo_json(teams)
        return
    table = CliTable("Teams", [
        Column("id"), Column("name"), Column("budget"), Column("rpm", right=True),
        Column("tpm", right=True),
    ])  # fmt: skip
    for team in teams:
        table.add_row(
            team["id"], team["name"], _budget(team), str(team["rpm"] or "-"),
            str(team["tpm"] or "-"),
        )  # fmt: skip
    print_table(table)
