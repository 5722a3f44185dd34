"""The results journal survives torn writes and refuses to mix jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nemorouter.batch.journal import RESULTS, JobMismatch, Journal


def record(doc: str, page: int, status: str = "ok") -> dict[str, object]:
    return {"doc": doc, "page": page, "status": status, "output": {"n": page}}


def test_resume_skips_finished_pages_and_cuts_a_torn_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "job-1", "task")
    journal.append(record("a.pdf", 1))
    journal.append(record("a.pdf", 2, "failed"))
    journal.close()
    with (tmp_path / RESULTS).open("ab") as file:
        file.write(b'{"doc": "a.pdf", "page": 3, "sta')  # killed mid-write
    again = Journal(tmp_path, "job-1", "task")
    assert again.done("a.pdf", 1)
    assert not again.done("a.pdf", 2)  # failed pages are tried again
    assert not again.done("a.pdf", 3)
    again.append(record("a.pdf", 2))
    again.compact()
    again.close()
    lines = [json.loads(line) for line in (tmp_path / RESULTS).read_text().splitlines()]
    assert [(r["page"], r["status"]) for r in lines] == [(1, "ok"), (2, "ok")]


def test_other_job_or_task_in_the_same_out_is_refused(tmp_path: Path) -> None:
    Journal(tmp_path, "job-1", "task").close()
    with pytest.raises(JobMismatch, match="job-1"):
        Journal(tmp_path, "job-2", "task")
    with pytest.raises(JobMismatch, match="different task"):
        Journal(tmp_path, "job-1", "another task")
