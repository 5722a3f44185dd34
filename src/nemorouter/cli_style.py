"""One style for every `nemorouter` command group: `-h` and `--help`, plain help text that
wraps instead of being cut (piped or in a narrow terminal), no shell-completion options."""

from __future__ import annotations

from typing import Any

import typer

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}


def command_group(help: str, **options: Any) -> typer.Typer:
    return typer.Typer(
        help=help,
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        context_settings=HELP_OPTIONS,
        **options,
    )
