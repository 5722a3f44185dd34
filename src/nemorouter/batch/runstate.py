"""Who is running a batch in OUT, and how its last run ended.

- OUT/run.lock: a `flock` the runner holds for as long as it runs. The kernel drops it when
  the process dies, `kill -9` included, so "locked" means "a runner is alive right now" (a
  pid in a file alone could be stale or reused). A second `batch run` on the same OUT is
  refused while it is held.
- OUT/run.json: the current or last run: pid, start, total pages, and (once it ends) when
  and how. A run that started but has no end recorded, with the lock free, was killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUN_FILE = "run.json"
LOCK_FILE = "run.lock"
LOCK_TRIES = 20  # `batch status` takes the lock shared for an instant: try for ~1 s


class RunInProgress(ValueError):
    """Another `batch run` holds OUT."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunLock:
    """The exclusive lock of a running batch on OUT (released by close() or by dying)."""

    def __init__(self, out: Path) -> None:
        self._fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(LOCK_TRIES):
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == LOCK_TRIES - 1:
                    os.close(self._fd)
                    pid = (read_run(out) or {}).get("pid", "?")
                    raise RunInProgress(
                        f"another `batch run` (pid {pid}) is running in {out}; wait for it "
                        "to end (`nemorouter batch status --out` shows it) or use another --out"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def close(self) -> None:
        os.close(self._fd)  # releases the lock


def is_running(out: Path) -> bool:
    """True while a live runner holds OUT's lock (never blocks, never takes it for long)."""
    try:
        fd = os.open(out / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def read_run(out: Path) -> dict[str, Any] | None:
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        run = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
        return run if isinstance(run, dict) else None
    return None


def write_run(out: Path, run: dict[str, Any]) -> None:
    tmp = out / (RUN_FILE + ".tmp")
    tmp.write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out / RUN_FILE)
