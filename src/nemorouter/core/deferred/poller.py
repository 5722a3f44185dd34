"""The background poller of deferred jobs: one task per instance, started by
`wiring.Services.start`, working only while it holds the store's lease (one poller over
every instance sharing the store; the lease expires if its holder dies, so another instance
or a restarted one takes over and resumes polling from the stored provider ids).

Each tick it steps every active batch: starts it, submits and polls its provider-batch parts
(core/deferred/parts.py), runs its interactive parts as tasks, applies cancel and the 24 h
expiry, and when every line has an outcome writes the output and error files."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

from nemorouter.config import DeferredSettings
from nemorouter.core.auth import Caller
from nemorouter.core.deferred.input import read_lines
from nemorouter.core.deferred.lines import BatchContext, unanswered
from nemorouter.core.deferred.objects import new_id
from nemorouter.core.deferred.parts import PartRunner
from nemorouter.store.deferred_repo import PENDING, DeferredRepo
from nemorouter.store.keys_repo import KeysRepo

log = logging.getLogger("nemorouter.deferred")
LEASE = "deferred-poller"
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})


class DeferredPoller:
    def __init__(
        self, settings: DeferredSettings, repo: DeferredRepo, keys: KeysRepo, parts: PartRunner
    ) -> None:
        self.settings = settings
        self.repo = repo
        self.keys = keys
        self.parts = parts
        self.holder = f"{os.uname().nodename}-{os.getpid()}-{os.urandom(4).hex()}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._live: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}  # by part id
        self._contexts: dict[str, BatchContext] = {}

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="deferred-poller")

    async def close(self) -> None:
        for task, stopped in self._live.values():
            stopped.set()
            task.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task, _ in list(self._live.values()):
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await self.repo.drop_lease(LEASE, self.holder)

    async def _run(self) -> None:
        while True:
            try:
                if await self.repo.take_lease(LEASE, self.holder, self.settings.lease_s):
                    for batch in await self.repo.active_batches():
                        try:
                            await self.step(batch)
                        except Exception:
                            log.exception("deferred batch %s: step failed; retried", batch["id"])
            except Exception as exc:  # the store is down: try again next tick
                log.warning("deferred poller: %s", type(exc).__name__)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.tick_s)

    async def _context(self, batch: dict[str, Any]) -> BatchContext:
        context = self._contexts.get(batch["id"])
        if context is None:
            key_id = batch["key_id"]
            if key_id == "master":
                caller = Caller()
            else:
                key = await self.keys.key(key_id)
                team = await self.keys.team(key.team_id) if key and key.team_id else None
                caller = Caller(key, team)
            content = await self.repo.content(batch["input_file_id"])
            bodies = read_lines(content, max(self.settings.max_lines, batch["total"]))
            context = self._contexts[batch["id"]] = BatchContext(
                batch["id"], caller, batch["job_id"], bodies
            )
        return context

    async def step(self, batch: dict[str, Any]) -> None:
        now = int(time.time())
        batch_id = batch["id"]
        if batch["status"] == "validating":
            await self.repo.set_batch(batch_id, only_if=("validating",),
                                      status="in_progress", in_progress_at=now)  # fmt: skip
        stopping = None
        if batch["status"] == "cancelling":
            stopping = "cancelled"
        elif now >= batch["expires_at"]:
            stopping = "expired"
        context = await self._context(batch)
        for part in await self.repo.parts(batch_id):
            if part["status"] in ENDED:
                continue
            if part["mode"] == "batch":
                await self.parts.run_batch_part(context, part, stopping, batch["fallback"])
            elif stopping:
                self._stop_live(part["id"])
                await self.parts.close_unanswered(context, part, stopping)
            else:
                self._start_live(context, part)
        if all(p["status"] in ENDED for p in await self.repo.parts(batch_id)):
            await self._finish(batch, context, stopping)

    def _start_live(self, context: BatchContext, part: dict[str, Any]) -> None:
        if part["id"] in self._live:
            return
        stopped = asyncio.Event()
        task = asyncio.create_task(self.parts.run_interactive_part(context, part, stopped))
        self._live[part["id"]] = (task, stopped)

        def done(finished: asyncio.Task[None]) -> None:
            self._live.pop(part["id"], None)
            if not finished.cancelled() and finished.exception() is not None:
                log.error("deferred part %s: %r", part["id"], finished.exception())
            self.wake()

        task.add_done_callback(done)

    def _stop_live(self, part_id: str) -> None:
        live = self._live.pop(part_id, None)
        if live is not None:
            live[1].set()
            live[0].cancel()

    async def _finish(
        self, batch: dict[str, Any], context: BatchContext, stopping: str | None
    ) -> None:
        """Every part has ended: the output and error files, the counts, the final status."""
        batch_id = batch["id"]
        now = int(time.time())
        leftover = await self.repo.lines(batch_id, status=PENDING)
        if leftover:
            why = stopping or "failed"
            await self.repo.record(batch_id, [
                unanswered(context, r["line"], f"batch_{why}", f"the batch {why} before this line ran")
                for r in leftover
            ])  # fmt: skip
        lines = await self.repo.lines(batch_id)
        done = [r["outcome"] for r in lines if r["status"] == "done"]
        failed = [r["outcome"] for r in lines if r["status"] != "done"]
        files, values = [], {"completed": len(done), "failed": len(failed), "finalizing_at": now}
        for key, outcomes in (("output_file_id", done), ("error_file_id", failed)):
            if not outcomes:
                continue
            content = ("\n".join(outcomes) + "\n").encode()
            file_id = new_id("file")
            files.append({
                "id": file_id, "key_id": batch["key_id"], "purpose": "batch_output",
                "filename": f"{batch_id}_{key.split('_')[0]}.jsonl", "bytes": len(content),
                "created_at": now, "content": content,
            })  # fmt: skip
            values[key] = file_id
        status = stopping or "completed"
        values["status"] = status
        values[f"{status}_at"] = now
        await self.repo.finish_batch(batch_id, files, values)
        self._contexts.pop(batch_id, None)
        log.info(
            "deferred batch %s %s: %d answered, %d failed", batch_id, status, len(done), len(failed)
        )
