"""What /v1/files and /v1/batches do: store a caller's input file, admit each of its lines
(core/deferred/admit.py), group them into parts by deployment, and answer with OpenAI's
objects. The poller (core/deferred/poller.py) does the rest in the background."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from nemorouter.config import DeferredSettings
from nemorouter.core.auth import Caller
from nemorouter.core.deferred.admit import LineAdmission
from nemorouter.core.deferred.input import read_lines
from nemorouter.core.deferred.objects import (
    COMPLETION_WINDOW,
    ENDPOINT,
    WINDOW_S,
    batch_object,
    file_object,
    new_id,
    output_line,
)
from nemorouter.core.record import CallRecord
from nemorouter.store.deferred_repo import ACTIVE, DeferredRepo
from nemorouter.types.errors import GatewayError, invalid_request
from nemorouter.types.options import checked_job_id

# A batch's reservations, by (batch id, line), until each line is settled (the poller's).
Reservations = dict[tuple[str, int], Any]


def _not_found(what: str, ident: str) -> GatewayError:
    return GatewayError(404, "not_found", f"No {what} found with id {ident!r}.")


class DeferredService:
    def __init__(
        self,
        settings: DeferredSettings,
        repo: DeferredRepo,
        admission: LineAdmission,
        reservations: Reservations,
        wake: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.repo = repo
        self.admission = admission
        self.reservations = reservations
        self.wake = wake
        self.max_bytes = int(settings.max_file_mb * (1 << 20))

    # --- files -----------------------------------------------------------------------------
    async def create_file(
        self, caller: Caller, purpose: str, filename: str, data: bytes
    ) -> dict[str, Any]:
        if purpose != "batch":
            raise invalid_request("Only purpose 'batch' files are taken here.", "purpose")
        if len(data) > self.max_bytes:
            raise GatewayError(
                413,
                "request_too_large",
                f"The file is larger than {self.settings.max_file_mb:g} MB "
                "(settings.deferred.max_file_mb).",
            )
        read_lines(data, self.settings.max_lines)  # a malformed file is refused now
        row = {
            "id": new_id("file"),
            "key_id": caller.key_id,
            "purpose": purpose,
            "filename": (filename or "input.jsonl")[:255],
            "bytes": len(data),
            "created_at": int(time.time()),
            "content": data,
        }
        await self.repo.add_file(row)
        return file_object(row)

    async def get_file(self, caller: Caller, file_id: str) -> dict[str, Any]:
        row = await self.repo.file(file_id, caller.key_id)
        if row is None:
            raise _not_found("file", file_id)
        return file_object(row)

    async def file_content(self, caller: Caller, file_id: str) -> bytes:
        if await self.repo.file(file_id, caller.key_id) is None:
            raise _not_found("file", file_id)
        return await self.repo.content(file_id)

    # --- batches ---------------------------------------------------------------------------
    async def create_batch(
        self, caller: Caller, body: Any, header_job: str | None = None
    ) -> dict[str, Any]:
        """The job id of the lines: each line's own `metadata.job_id`, else the batch's
        `metadata.job_id`, else the `x-nemo-job-id` header of the create call."""
        if not isinstance(body, dict):
            raise invalid_request("The body must be a JSON object.")
        file_id = body.get("input_file_id")
        if not isinstance(file_id, str):
            raise invalid_request("'input_file_id' is required.", "input_file_id")
        if body.get("endpoint") != ENDPOINT:
            raise invalid_request(f"'endpoint' must be {ENDPOINT!r}.", "endpoint")
        if body.get("completion_window") != COMPLETION_WINDOW:
            raise invalid_request("'completion_window' must be '24h'.", "completion_window")
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise invalid_request("'metadata' must be an object.", "metadata")
        metadata = metadata or {}
        fallback = metadata.get("fallback")
        if fallback not in (None, "interactive", "none"):
            raise invalid_request("'metadata.fallback' may be 'interactive'.", "metadata")
        job_id = metadata.get("job_id")
        if job_id is not None and not isinstance(job_id, str):
            raise invalid_request("'metadata.job_id' must be a string.", "metadata")
        if job_id is None and header_job:
            job_id = header_job.strip()
        if job_id is not None:
            job_id = checked_job_id(job_id, "metadata.job_id")
        source = await self.repo.file(file_id, caller.key_id)
        if source is None:
            raise _not_found("file", file_id)
        lines = read_lines(await self.repo.content(file_id), self.settings.max_lines)
        return await self._create(caller, file_id, lines, metadata, job_id, fallback)

    async def _create(
        self,
        caller: Caller,
        file_id: str,
        lines: list[tuple[str, dict[str, Any]]],
        metadata: dict[str, Any],
        job_id: str | None,
        fallback: str | None,
    ) -> dict[str, Any]:
        now = int(time.time())
        batch_id = new_id("batch")
        parts: dict[str | None, dict[str, Any]] = {}
        line_rows: list[dict[str, Any]] = []
        refused: list[dict[str, Any]] = []
        held: Reservations = {}
        for number, (custom_id, line_body) in enumerate(lines):
            request_id = f"{batch_id}-{number}"
            row = {"batch_id": batch_id, "line": number, "custom_id": custom_id}
            try:
                admitted = await self.admission.admit(caller, line_body, job_id, request_id)
            except GatewayError as error:
                record = CallRecord(caller, request_id)
                record.status, record.error_code, record.deferred = error.status, error.code, True
                record.job_id = job_id
                outcome = output_line(custom_id, error.status, request_id, error.body())
                line_rows.append({**row, "part_id": None, "status": "error", "outcome": outcome})
                refused.append(record.row())
                continue
            deployment = admitted.deployment
            key = deployment.id if deployment is not None else None
            part = parts.get(key)
            if part is None:
                part = parts[key] = {
                    "id": f"{batch_id}-p{len(parts)}",
                    "batch_id": batch_id,
                    "deployment": key,
                    "mode": "batch" if deployment is not None else "interactive",
                    "provider_id": None,
                    "status": "validating",
                    "polls": 0,
                    "next_poll_at": 0.0,
                }
            if admitted.reservation is not None:
                held[(batch_id, number)] = admitted.reservation
            line_rows.append({**row, "part_id": part["id"], "status": "pending", "outcome": None})
        batch = {
            "id": batch_id,
            "key_id": caller.key_id,
            "job_id": job_id,
            "input_file_id": file_id,
            "status": "validating",
            "metadata": orjson.dumps(metadata).decode() if metadata else None,
            "fallback": fallback == "interactive",
            "total": len(lines),
            "completed": 0,
            "failed": len(refused),
            "created_at": now,
            "expires_at": now + WINDOW_S,
        }
        try:
            await self.repo.add_batch(batch, list(parts.values()), line_rows, refused)
        except BaseException:
            for reservation in held.values():  # nothing will run: give the budget back
                await self.admission.budgets.settle(reservation, 0)
            raise
        self.reservations.update(held)
        self.wake()
        return batch_object(await self._row(batch_id, caller))

    async def _row(self, batch_id: str, caller: Caller) -> dict[str, Any]:
        row = await self.repo.batch(batch_id, caller.key_id)
        if row is None:
            raise _not_found("batch", batch_id)
        if row["status"] in ACTIVE:  # counts as the lines finish
            row["completed"], row["failed"] = await self.repo.counts(batch_id)
        return row

    async def get_batch(self, caller: Caller, batch_id: str) -> dict[str, Any]:
        return batch_object(await self._row(batch_id, caller))

    async def cancel_batch(self, caller: Caller, batch_id: str) -> dict[str, Any]:
        row = await self._row(batch_id, caller)
        if row["status"] in ("validating", "in_progress", "finalizing"):
            await self.repo.set_batch(
                batch_id,
                only_if=("validating", "in_progress", "finalizing"),
                status="cancelling",
                cancelling_at=int(time.time()),
            )
            self.wake()
        elif row["status"] != "cancelling":
            raise GatewayError(
                409,
                "invalid_state",
                f"Batch {batch_id} is {row['status']}: it cannot be cancelled.",
            )
        return batch_object(await self._row(batch_id, caller))

    async def list_batches(self, caller: Caller, limit: int, after: str | None) -> dict[str, Any]:
        rows = await self.repo.batches(caller.key_id, limit + 1, after)
        more = len(rows) > limit
        data = [batch_object(r) for r in rows[:limit]]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": more,
        }
