"""Every relative link of README.md and docs/*.md resolves (issue 21, item 10): a link to a
repository file names a file that exists, and a `#anchor` names a heading of its target, by
GitHub's rule for heading ids. Links to the web are not followed (no network here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
EXTERNAL = ("http://", "https://", "mailto:")


def _prose(text: str) -> str:
    """The text with fenced blocks and code spans blanked: links inside code are not links.
    A code span inside a link's text is kept as a word, so the link still parses."""
    text = FENCE.sub("", text)
    return CODE_SPAN.sub("code", text)


def slug(heading: str) -> str:
    """GitHub's heading id: markup dropped, lower case, punctuation removed, spaces to -."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    text = re.sub(r"[*_]{1,2}([^*_]+)[*_]{1,2}", r"\1", text)
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading id of a markdown file; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    ids = set()
    for match in HEADING.finditer(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        ids.add(base if count == 0 else f"{base}-{count}")
    return ids


def broken_links(path: Path) -> tuple[int, list[str]]:
    """(links checked, the ones that do not resolve, each with the reason)."""
    checked, broken = 0, []
    for match in LINK.finditer(_prose(path.read_text(encoding="utf-8"))):
        target = match.group(1)
        if target.startswith(EXTERNAL):
            continue
        checked += 1
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target}: no such file {dest}")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return checked, broken


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc: Path) -> None:
    _, broken = broken_links(doc)
    assert not broken, "\n".join(broken)


def test_the_docs_are_linked() -> None:
    """The README reaches every page of docs/, and the pages link to each other's sections:
    the check above has links to check."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in (ROOT / "docs").glob("*.md"):
        assert f"(docs/{page.name}" in readme, f"README.md does not link docs/{page.name}"
    assert sum(broken_links(doc)[0] for doc in DOCS) >= 20


def test_the_checker_finds_a_broken_file_and_anchor(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## Keys, teams and budgets\n\n## A\n## A\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "[ok](other.md#keys-teams-and-budgets) [dup](other.md#a-1) [self](#title)\n"
        "# Title\n"
        "[gone](missing.md) [bad anchor](other.md#keys) [web](https://example.com/x)\n"
        "`[in code](nowhere.md)`\n```\n[fenced](nowhere.md)\n```\n"
    )
    checked, broken = broken_links(doc)
    assert checked == 5
    assert [b.split(":")[0] for b in broken] == ["missing.md", "other.md#keys"]


def test_slug_follows_github() -> None:
    assert slug("Outages: Redis or the database down") == "outages-redis-or-the-database-down"
    assert slug("Tracing (OpenTelemetry)") == "tracing-opentelemetry"
    assert slug("`nemorouter check` and keys") == "nemorouter-check-and-keys"
    assert slug("2.4 Configuration") == "24-configuration"
