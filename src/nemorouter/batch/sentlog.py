"""OUT/sent.jsonl: each request is journalled before it is sent, each page settled after.

An answer is paid for once the gateway has it, but it reaches results.jsonl only when the
page is written. A process killed in between (kill -9, a crash, a second Ctrl-C) leaves
pages that were sent and never answered here: "paid, answer lost". They are sent again on
resume (and may be billed twice). This file makes them known: a page with a `sent` line and
no `settled` line after it in the same run.

Lines: {"run": RUN_ID, "doc": DOC, "page": N, "event": "sent" | "settled"}. At the end of a
run the file is compacted to the unsettled pages (the job's history of lost answers).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

SENT_FILE = "sent.jsonl"


@dataclass(frozen=True, order=True)
class LostAnswer:
    run: str
    doc: str
    page: int


class SentLog:
    def __init__(self, out: Path, run: str) -> None:
        self.path = out / SENT_FILE
        self.run = run
        _cut_torn_line(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def sent(self, doc: str, page: int) -> None:
        os.write(self._fd, _line(self.run, doc, page, "sent"))

    def settled(self, doc: str, page: int) -> None:
        os.write(self._fd, _line(self.run, doc, page, "settled"))

    def compact(self) -> list[LostAnswer]:
        """Keep only the unsettled pages; they are returned (every run's, this one's too)."""
        lost = unanswered(self.path.parent)
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_bytes(b"".join(_line(x.run, x.doc, x.page, "sent") for x in lost))
        os.close(self._fd)
        os.replace(tmp, self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return lost

    def close(self) -> None:
        os.close(self._fd)


def unanswered(out: Path) -> list[LostAnswer]:
    """Pages sent and not settled, per run, in order (read-only: safe while a run writes)."""
    try:
        data = (out / SENT_FILE).read_bytes()
    except FileNotFoundError:
        return []
    open_sends: dict[LostAnswer, None] = {}  # ordered set
    for line in data[: data.rfind(b"\n") + 1].splitlines():
        try:
            entry = json.loads(line)
            key = LostAnswer(str(entry["run"]), str(entry["doc"]), int(entry["page"]))
        except (ValueError, KeyError, TypeError):
            continue
        if entry.get("event") == "settled":
            open_sends.pop(key, None)
        else:
            open_sends[key] = None
    return list(open_sends)


def _cut_torn_line(path: Path) -> None:
    """A kill -9 mid-write leaves a line without its newline: cut it before appending."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    good = data.rfind(b"\n") + 1
    if good < len(data):
        with path.open("r+b") as file:
            file.truncate(good)


def _line(run: str, doc: str, page: int, event: str) -> bytes:
    entry = {"run": run, "doc": doc, "page": page, "event": event}
    return (json.dumps(entry, ensure_ascii=False) + "\n").encode()
