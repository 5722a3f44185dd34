"""SIGINT/SIGTERM during a batch: stop sending, keep every answer already paid for."""

from __future__ import annotations

import asyncio
import signal
import sys

from nemorouter.batch.pacing import Pacer


class StopOnSignal:
    """SIGINT/SIGTERM: stop sending, let the requests in flight finish and be written.
    A second signal cancels them too (their answers, if any, are then lost)."""

    def __init__(self, pacer: Pacer, workers: list[asyncio.Task[None]]) -> None:
        self.received: int | None = None
        self._pacer = pacer
        self._workers = workers
        self._stopping: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._installed: list[int] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._loop.add_signal_handler(signum, self._on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread (or not a POSIX loop): default handling
            self._installed.append(signum)

    def _on_signal(self, signum: int) -> None:
        if self.received is not None:
            for task in self._workers:
                task.cancel()
            return
        self.received = signum
        waiting = self._pacer.in_flight
        print(
            f"\nnemorouter batch: stopping: waiting for {waiting} request(s) in flight (their "
            "answers are paid for and will be written); signal again to quit at once",
            file=sys.stderr,
            flush=True,
        )
        self._stopping = self._loop.create_task(self._pacer.stop())

    def remove(self) -> None:
        for signum in self._installed:
            self._loop.remove_signal_handler(signum)
