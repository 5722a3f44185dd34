"""OUT/deferred.json: every deferred batch of a job, recorded as soon as it exists.

A part is a chunk of the job's units written to OUT/deferred/part-N.jsonl. Its steps are
recorded one by one (written, uploaded: `input_file_id`, created: `batch_id`, ended: the
batch's last state, collected: its lines are in results.jsonl), each by an atomic rewrite
of the file, so a run killed at any moment resumes from the last recorded step:

- written, not uploaded: the file may be torn; the part is dropped, its units planned again;
- uploaded, no batch id: the batch is looked up by its input file (the run may have died
  after creating it), else created from the uploaded file (never uploaded twice);
- a batch id: polled and collected, never submitted again.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LEDGER = "deferred.json"
PARTS_DIR = "deferred"


@dataclass
class Part:
    number: int
    file: str  # relative to OUT
    units: dict[str, list[Any]]  # custom_id -> [doc, [pages], sent]
    lines: int
    bytes: int
    input_file_id: str | None = None
    batch_id: str | None = None
    submitted_at: str | None = None
    status: str | None = None  # the batch's status as last polled (OpenAI's vocabulary)
    request_counts: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[str] = field(default_factory=list)  # why the batch failed, if it did
    collected: bool = False

    @property
    def live(self) -> bool:
        """Submitted and not yet collected: its units are not planned again."""
        return self.input_file_id is not None and not self.collected


class Ledger:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = out / LEDGER
        self.parts: list[Part] = []
        if self.path.exists():
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            self.parts = [Part(**p) for p in raw.get("parts", ())]

    def drop_unsent(self) -> int:
        """Forget parts written but never uploaded (their files may be torn)."""
        unsent = [p for p in self.parts if p.input_file_id is None]
        for part in unsent:
            (self.out / part.file).unlink(missing_ok=True)
        self.parts = [p for p in self.parts if p.input_file_id is not None]
        if unsent:
            self.save()
        return len(unsent)

    def next_number(self) -> int:
        return max((p.number for p in self.parts), default=0) + 1

    def add(self, part: Part) -> None:
        self.parts.append(part)
        self.save()

    def live_units(self) -> set[str]:
        return {cid for p in self.parts if p.live for cid in p.units}

    def save(self) -> None:
        tmp = self.path.with_suffix(".json.tmp")
        data = {"parts": [asdict(p) for p in self.parts]}
        with tmp.open("w", encoding="utf-8") as file:
            file.write(json.dumps(data, indent=1) + "\n")
            file.flush()
            os.fsync(file.fileno())  # a batch id recorded is a batch never submitted twice
        os.replace(tmp, self.path)


def part_view(part: Part) -> dict[str, Any]:
    """A part as summary.json and `batch status --json` show it."""
    return {"part": part.number, "batch_id": part.batch_id, "input_file_id": part.input_file_id,
            "status": part.status, "requests": part.lines, "request_counts": part.request_counts,
            "output_file_id": part.output_file_id, "error_file_id": part.error_file_id,
            "collected": part.collected, "submitted_at": part.submitted_at}  # fmt: skip


def read_parts(out: Path) -> list[Part]:
    """The job's parts (read-only, for `batch status`); none when it ran interactively."""
    try:
        return Ledger(out).parts
    except (OSError, ValueError, TypeError):
        return []
