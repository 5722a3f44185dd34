"""Processes under test: spawn pinned to a core, wait until ready, read CPU time and memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from loadgen import get

HOST = "127.0.0.1"
_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pinned(argv: list[str], core: int | None) -> list[str]:
    """`argv` run through `taskset -c CORE` when pinning is possible."""
    if core is None or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", str(core), *argv]


def pin_self(core: int | None) -> None:
    if core is not None:
        os.sched_setaffinity(0, {core})


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (a server may fork workers)."""
    tree = _children()
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(tree.get(p, []))
    return found


def cpu_times(pids: list[int]) -> tuple[float, float]:
    """User and system CPU time of `pids`, in seconds."""
    user = system = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            user += int(fields[11])  # utime (field 14)
            system += int(fields[12])  # stime (field 15)
    return user / _TICK, system / _TICK


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of `pids`, in seconds."""
    return sum(cpu_times(pids))


def rss_mib(pids: list[int]) -> float:
    """Resident memory (VmRSS) of `pids`, in MiB."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024.0


@dataclass
class Server:
    """A spawned server process and where it listens."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    started: float = field(default_factory=time.perf_counter)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def wait_ready(self, path: str, limit_s: float) -> float:
        """Poll `path` until it answers 200; return seconds since spawn."""
        deadline = self.started + limit_s
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} during start-up:\n"
                    + self.log_tail()
                )
            with contextlib.suppress(OSError, TimeoutError, ConnectionError):
                status, _ = await get(HOST, self.port, path)
                if status == 200:
                    return time.perf_counter() - self.started
            await asyncio.sleep(0.005)
        raise RuntimeError(f"{self.name} not ready after {limit_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def spawn(
    name: str, argv: list[str], port: int, logdir: Path, env: dict[str, str] | None = None
) -> Server:
    log = logdir / f"{name}.log"
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    return Server(name, proc, port, log, started)


def spawn_provider(core: int | None, logdir: Path) -> Server:
    """The project's simulated provider (`nemorouter.testing.simulated_provider`, not
    recording bodies) on a free port with 0 ms latency; it prints its URL when ready."""
    argv = [sys.executable, "-m", "nemorouter.testing.simulated_provider", "--no-record"]
    argv += ["--host", HOST, "--port", "0", "--latency-ms", "0"]
    log = logdir / "provider.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            pinned(argv, core), stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL
        )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30.0)
    line = proc.stdout.readline().decode() if ready else ""
    if "listening on http://" not in line:
        proc.kill()
        raise RuntimeError(f"simulated provider did not start: {line!r}\n{log.read_text()}")
    port = int(line.rsplit(":", 1)[1].split("/", 1)[0])
    return Server("simulated provider", proc, port, log)
