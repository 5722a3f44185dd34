"""Every `nemorouter ...` command the README and docs/ show exists (issue 21, item 10): its
subcommands are real and each `--option` it names is one that command takes. Commands are
read from code blocks and code spans; `[--opt]`, `a|b` alternatives and placeholders count."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer

from nemorouter.cli import app

ROOT = Path(__file__).parent.parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.M | re.S)
CODE_SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")  # may run over a line break
INVOCATION = re.compile(
    r"(?:^|[\s;&|(])(?:\.venv/bin/)?nemorouter((?:[ \t]+(?:[^\s;&|)#>]|\|(?=\S))+)*)"
)
PLACEHOLDER = ("…", "...")


def invocations(text: str) -> list[str]:
    """The argument strings after each `nemorouter` of the text's code."""
    code = [block.replace("\\\n", " ") for block in FENCE.findall(text)]
    code += [span.replace("\n", " ") for span in CODE_SPAN.findall(FENCE.sub("", text))]
    found = []
    for chunk in code:
        for line in chunk.splitlines():
            line = line.split(" #", 1)[0]
            found += [" ".join(m.group(1).split()) for m in INVOCATION.finditer(line)]
    return found


def _is_group(command: object) -> bool:
    """A command group (typer vendors its own click, so its Group class is not click's)."""
    return isinstance(getattr(command, "commands", None), dict)


def problems(args: str, root: typer.core.TyperGroup) -> list[str]:
    """Why `nemorouter ARGS` is not a real command line (empty: it is)."""
    try:
        words = shlex.split(args.replace("[", " ").replace("]", " "))
    except ValueError:
        words = args.replace("[", " ").replace("]", " ").split()
    command = root
    path = ["nemorouter"]
    while _is_group(command) and words and not words[0].startswith("-"):
        word = words.pop(0)
        if any(p in word for p in PLACEHOLDER):
            return []
        names = word.split("|")
        subs = [command.commands.get(name) for name in names]
        if any(sub is None for sub in subs):
            return [f"{' '.join(path)} has no command {word!r}"]
        path.append(word)
        command = subs[0]  # alternatives of one group share its options' check below
        for sub in subs[1:]:
            if _is_group(sub) != _is_group(command):
                return [f"{' '.join(path)}: alternatives of different kinds"]
    if command.context_settings.get("ignore_unknown_options"):
        return []  # a command that hands its arguments on (simulate)
    known = {"-h", "--help"}
    for param in command.params:
        known.update(param.opts + param.secondary_opts)
    out = []
    for word in words:
        if word.startswith("-") and word not in ("-", "--") and not word[1:2].isdigit():
            option = word.split("=", 1)[0]
            if option not in known:
                out.append(f"{' '.join(path)} takes no {option}")
    return out


def test_every_shown_command_exists() -> None:
    root = typer.main.get_command(app)
    assert _is_group(root)
    seen, bad = 0, []
    for doc in DOCS:
        for args in invocations(doc.read_text(encoding="utf-8")):
            seen += 1
            bad += [f"{doc.name}: nemorouter {args}: {p}" for p in problems(args, root)]
    assert not bad, "\n".join(bad)
    assert seen >= 30  # the docs show the commands: the check has lines to check


def test_the_check_finds_a_wrong_command_and_option() -> None:
    root = typer.main.get_command(app)
    text = (
        "```bash\n.venv/bin/nemorouter batch run in/ --job-id j \\\n    --no-such-flag\n"
        "nemorouter batch frobnicate --out o\n```\n"
        "and `nemorouter keys create|list|revoke`, `nemorouter serve [--port 4000]`\n"
    )
    found = invocations(text)
    assert found == [
        "batch run in/ --job-id j --no-such-flag",
        "batch frobnicate --out o",
        "keys create|list|revoke",
        "serve [--port 4000]",
    ]
    assert problems(found[0], root) == ["nemorouter batch run takes no --no-such-flag"]
    assert problems(found[1], root) == ["nemorouter batch has no command 'frobnicate'"]
    assert problems(found[2], root) == []
    assert problems(found[3], root) == []
