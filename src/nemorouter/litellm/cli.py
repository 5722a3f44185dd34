"""`nemorouter config from-litellm FILE [-o OUT]`: read, translate, check, write, report."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import yaml

from nemorouter.config import ConfigError, parse_config
from nemorouter.litellm.convert import convert, is_litellm_config

# Stands for an environment variable that is not set where the conversion runs: the output
# is checked as it will load once the variables are set.
PLACEHOLDER = "https://placeholder.invalid/set-by-environment"


class _EnvForCheck(Mapping[str, str]):
    def __getitem__(self, name: str) -> str:
        return os.environ.get(name, PLACEHOLDER)

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(os.environ)

    def __len__(self) -> int:
        return len(os.environ)


def from_litellm(file: Path, out: Path | None) -> int:
    """0: converted and the result loads; 1: written, but it does not load yet (the reason
    on stderr); 2: the input is unreadable or not a LiteLLM config."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        return _say(f"cannot read {file}: {exc.strerror}", 2)
    except yaml.YAMLError as exc:
        return _say(f"{file} is not valid YAML: {exc}", 2)
    if not is_litellm_config(data):
        return _say(
            f"{file} is not a LiteLLM config (no model_list, litellm_settings, "
            "router_settings or general_settings)",
            2,
        )
    conversion = convert(data)
    text = conversion.render(file.name)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
    for title, items in (("not translated", conversion.untranslated),
                         ("translated with a difference", conversion.notes),
                         ("create keys and teams with", conversion.commands)):  # fmt: skip
        if items:
            print(f"nemorouter: {len(items)} {title}:", file=sys.stderr)
            for item in items:
                print(f"  - {item}", file=sys.stderr)
    try:
        parse_config(yaml.safe_load(text), env=_EnvForCheck(), source=str(out or "OUT"))
    except ConfigError as exc:
        return _say(f"the converted config does not load yet: {exc}", 1)
    if out is not None:
        print(
            f"nemorouter: wrote {out}; check it with `nemorouter check -c {out}`", file=sys.stderr
        )
    return 0


def _say(message: str, code: int) -> int:
    print(f"nemorouter: {message}", file=sys.stderr)
    return code
