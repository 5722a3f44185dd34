"""The crash-safe record of finished pages: OUT/results.jsonl, appended as each page ends.

Each line is written with one `write` on an O_APPEND descriptor, so `kill -9` loses at
most the line being written; a torn last line is cut off when the journal is reopened.
A later line for the same (doc, page) supersedes an earlier one (a page that failed and
was retried). `compact` rewrites the file with one line per page, atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

RESULTS = "results.jsonl"
JOB_FILE = "job.json"


class JobMismatch(ValueError):
    """OUT holds another job's results."""


class Journal:
    def __init__(self, out: Path, job_id: str, fingerprint: str) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / RESULTS
        self._bind_job(out / JOB_FILE, job_id, fingerprint)
        self.records: dict[tuple[str, int], dict[str, Any]] = {}
        self._load()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _bind_job(self, job_file: Path, job_id: str, fingerprint: str) -> None:
        """A resume must be the same job with the same task; refuse to mix two."""
        if job_file.exists():
            saved = json.loads(job_file.read_text())
            if saved.get("job_id") != job_id:
                raise JobMismatch(
                    f"{job_file.parent} holds job {saved.get('job_id')!r}, not {job_id!r}"
                )
            if saved.get("task") != fingerprint:
                raise JobMismatch(
                    f"{job_file.parent} holds job {job_id!r} with a different task "
                    "(schema, labels or prompt, or --send / --pages-per-request); use another --out"
                )
            return
        job_file.write_text(json.dumps({"job_id": job_id, "task": fingerprint}) + "\n")

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good = data.rfind(b"\n") + 1  # anything after the last newline is a torn write
        if good < len(data):
            with self.path.open("r+b") as file:
                file.truncate(good)
        for line in data[:good].splitlines():
            if line.strip():
                record = json.loads(line)
                self.records[(record["doc"], record["page"])] = record

    def done(self, doc: str, page: int) -> bool:
        record = self.records.get((doc, page))
        return record is not None and record["status"] == "ok"

    def append(self, record: dict[str, Any]) -> None:
        os.write(self._fd, (json.dumps(record, ensure_ascii=False) + "\n").encode())
        self.records[(record["doc"], record["page"])] = record

    def compact(self) -> None:
        ordered = sorted(self.records.values(), key=lambda r: (r["doc"], r["page"]))
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ordered))
        os.close(self._fd)
        os.replace(tmp, self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def close(self) -> None:
        os.close(self._fd)
