"""The `nemorouter` command line."""

from __future__ import annotations

import logging
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from nemorouter.batch.cli import batch_app
from nemorouter.check_cli import check
from nemorouter.cli_style import command_group
from nemorouter.config import Config, ConfigError, load_config
from nemorouter.keys_cli import keys_app, teams_app
from nemorouter.spend_cli import spend

app = command_group(
    "OpenAI-compatible LLM gateway for document processing at volume.", name="nemorouter"
)

DEFAULT_CONFIG = "nemorouter.yaml"
LISTEN_FAILED = 3  # `serve`: the address is in use (or not ours); 2 is a config or usage error


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


app.add_typer(batch_app, name="batch")
app.command()(spend)
app.command()(check)
app.add_typer(keys_app, name="keys")
app.add_typer(teams_app, name="teams")
db_app = command_group("The store's database.")
app.add_typer(db_app, name="db")
config_app = command_group("Config files.")
app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"nemorouter {version('nemorouter')}")
        except PackageNotFoundError:  # a source tree that was never installed
            typer.echo("nemorouter (not installed)")
        raise typer.Exit(0)


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """OpenAI-compatible LLM gateway for document processing at volume."""


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"nemorouter: {message}", err=True)
    return typer.Exit(code)


def _load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise _fail(f"config error in {path}: {exc}") from None


@app.command()
def serve(
    config: Annotated[
        Path, typer.Option("--config", "-c", envvar="NEMOROUTER_CONFIG", help="YAML config file")
    ] = Path(DEFAULT_CONFIG),
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 4000,
    workers: Annotated[int, typer.Option(min=1, help="worker processes (needs redis_url)")] = 1,
    log_level: Annotated[
        LogLevel, typer.Option(case_sensitive=False, help="how much the gateway logs")
    ] = LogLevel.info,
) -> None:
    """Run the gateway."""
    from nemorouter import serving

    loaded = _load(config)
    if workers > 1 and not loaded.settings.redis_url:
        raise _fail(
            "--workers > 1 needs settings.redis_url: workers share rate limits, cache, "
            "circuit breakers and budgets only through Redis"
        )
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if workers > 1:
            serving.serve_workers(config, loaded, host, port, workers, log_level.value)
        else:
            serving.serve(loaded, host, port, log_level.value)
    except ConfigError as exc:
        raise _fail(f"config error in {config}: {exc}") from None
    except serving.ListenError as exc:
        raise _fail(str(exc), LISTEN_FAILED) from None


@config_app.command("example")
def config_example() -> None:
    """Print the example config (every setting, commented) to start from."""
    from importlib import resources

    text = resources.files("nemorouter.examples").joinpath("nemorouter.example.yaml")
    typer.echo(text.read_text(encoding="utf-8"), nl=False)


@config_app.command("from-litellm")
def config_from_litellm(
    file: Annotated[Path, typer.Argument(help="a LiteLLM proxy config (model_list, ...)")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="write here (default: standard output)")
    ] = None,
) -> None:
    """Translate a LiteLLM proxy config into a nemorouter config.

    What cannot be translated is listed at the top of the output and on stderr."""
    from nemorouter.litellm.cli import from_litellm

    raise typer.Exit(from_litellm(file, out))


@db_app.command("upgrade")
def db_upgrade(
    config: Annotated[
        Path, typer.Option("--config", "-c", envvar="NEMOROUTER_CONFIG", help="YAML config file")
    ] = Path(DEFAULT_CONFIG),
) -> None:
    """Apply pending schema migrations (the gateway also does this at start)."""
    import asyncio

    from sqlalchemy.exc import SQLAlchemyError

    from nemorouter.store.engine import create_engine, upgrade
    from nemorouter.store.url import redacted

    loaded = _load(config)

    async def run() -> str:
        try:
            engine = create_engine(loaded.settings.database_url)
        except ConfigError as exc:
            raise _fail(f"config error in {config}: {exc}") from None
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        return redacted(engine.url)

    try:
        where = asyncio.run(run())
    except (OSError, SQLAlchemyError) as exc:
        raise _fail(f"cannot migrate the database: {str(exc).splitlines()[0]}", 1) from None
    typer.echo(f"database {where}: schema up to date")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def simulate(ctx: typer.Context) -> None:
    """Run a simulated OpenAI-format provider.

    `nemorouter simulate -h` lists its options."""
    from nemorouter.testing.sim_cli import main as simulated_main

    raise typer.Exit(simulated_main(list(ctx.args)))


@app.command()
def demo(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="config (default: the bundled example)")
    ] = None,
    keep_running: Annotated[
        bool, typer.Option(help="keep the gateway (and its dashboard) up after the batch")
    ] = False,
    port: Annotated[
        int,
        typer.Option(
            help="the gateway's port on 127.0.0.1 (default: a free one)", min=0, max=65535
        ),
    ] = 0,
) -> None:
    """Run a demo batch on simulated providers, on this machine.

    Starts simulated providers and a gateway here, then runs a batch of documents
    through it."""
    from nemorouter.demo import run_demo

    raise typer.Exit(run_demo(config, keep_running=keep_running, port=port))


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        app(prog_name="nemorouter")
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
