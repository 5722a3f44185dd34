"""OUT's run lock (held while a runner lives, freed by its death, kill -9 included) and the
sent journal that tells which paid answers a killed run lost."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nemorouter.batch.runstate import RunInProgress, RunLock, is_running, write_run
from nemorouter.batch.sentlog import SENT_FILE, LostAnswer, SentLog, unanswered


def test_one_runner_at_a_time_and_status_sees_it(tmp_path: Path) -> None:
    assert not is_running(tmp_path)  # never ran
    write_run(tmp_path, {"pid": 4242})
    lock = RunLock(tmp_path)
    try:
        assert is_running(tmp_path)
        with pytest.raises(RunInProgress, match=r"\(pid 4242\) is running"):
            RunLock(tmp_path)
    finally:
        lock.close()
    assert not is_running(tmp_path)
    RunLock(tmp_path).close()  # free again


def test_a_killed_runner_frees_the_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from nemorouter.batch.runstate import "
         "RunLock; RunLock(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)",
         str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert is_running(tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    deadline = time.monotonic() + 5
    while is_running(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not is_running(tmp_path)  # a pid file alone would still name the dead runner


def test_sent_and_not_settled_pages_are_the_lost_answers(tmp_path: Path) -> None:
    first = SentLog(tmp_path, "run-1")
    first.sent("a.png", 1)
    first.settled("a.png", 1)  # answered and written
    first.sent("b.pdf", 2)
    first.sent("b.pdf", 2)  # a retry of the same page: still one page
    first.sent("c.png", 1)
    first.settled("c.png", 1)
    # killed here: b.pdf p2 was sent and never written
    with (tmp_path / SENT_FILE).open("ab") as torn:
        torn.write(b'{"run": "run-1", "doc": "c.pn')  # a write cut by the kill
    assert unanswered(tmp_path) == [LostAnswer("run-1", "b.pdf", 2)]

    second = SentLog(tmp_path, "run-2")  # the resume: the torn line is cut, not glued to
    second.sent("b.pdf", 2)
    second.settled("b.pdf", 2)
    second.sent("d.png", 1)  # in flight
    assert unanswered(tmp_path) == [
        LostAnswer("run-1", "b.pdf", 2),
        LostAnswer("run-2", "d.png", 1),
    ]
    second.settled("d.png", 1)
    lost = second.compact()
    second.close()
    assert lost == [LostAnswer("run-1", "b.pdf", 2)]  # the job's history of lost answers
    lines = [json.loads(x) for x in (tmp_path / SENT_FILE).read_text().splitlines()]
    assert lines == [{"run": "run-1", "doc": "b.pdf", "page": 2, "event": "sent"}]
