"""The submitting half of `batch run --deferred`: units rendered into request lines, parts
written, uploaded and their batches created, each step recorded in the ledger."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, BinaryIO

from nemorouter.batch.deferred_api import CHAT_ENDPOINT, DeferredApiError
from nemorouter.batch.deferred_job import DeferredJob
from nemorouter.batch.deferred_ledger import PARTS_DIR, Part
from nemorouter.batch.journal import Journal
from nemorouter.batch.prompts import request_body
from nemorouter.batch.runner import BatchOptions
from nemorouter.batch.sources import PageError, SourceError
from nemorouter.batch.units import Unit, build_payload, plan_units


def custom_id(unit: Unit) -> str:
    """The unit's stable id (its document and pages), within 64 characters."""
    first, last = unit.pages[0], unit.pages[-1]
    span = f"p{first}" if first == last else f"p{first}-{last}"
    cid = f"{unit.document.doc}#{span}"
    if len(cid) <= 64:
        return cid
    return f"{hashlib.sha256(unit.document.doc.encode()).hexdigest()[:24]}#{span}"


def submit_pending(
    job: DeferredJob, options: BatchOptions, documents: list[Any], errors: list[SourceError]
) -> None:
    for part in job.ledger.parts:  # uploaded by a killed run, batch not recorded
        if part.live and part.batch_id is None:
            job.create(part)
    live = job.ledger.live_units()
    todo = [u for u in plan_units(documents, options.plan)
            if not _done(job.journal, u) and custom_id(u) not in live]  # fmt: skip
    writer: _PartWriter | None = None
    limits = job.deferred
    for unit in todo:
        job.check()
        try:
            payload = build_payload(unit, options.plan, dpi=options.dpi,
                                    max_image_bytes=options.max_image_bytes)  # fmt: skip
        except PageError as exc:
            errors.append(SourceError(unit.document.doc, str(unit.document.path), str(exc)))
            job.journal.append(_failed(unit, f"pages could not be sent: {exc}"))
            continue
        metadata: dict[str, Any] = {"job_id": options.job_id, "doc": payload.doc,
                                    "page": payload.page}  # fmt: skip
        if len(payload.pages) > 1:
            metadata["pages"] = list(payload.pages)
        body = request_body(options.task, model=options.model, parts=payload.parts,
                            metadata=metadata, tags=options.tags, no_cache=options.no_cache,
                            max_tokens=options.max_tokens)  # fmt: skip
        cid = custom_id(unit)
        line = json.dumps({"custom_id": cid, "method": "POST", "url": CHAT_ENDPOINT,
                           "body": body}).encode() + b"\n"  # fmt: skip
        if len(line) > limits.max_bytes:
            job.journal.append(_failed(unit, f"the request is {len(line):,} bytes, over the "
                                             f"deferred file bound of {limits.max_bytes:,}"))  # fmt: skip
            continue
        if writer and (writer.lines >= limits.max_lines or
                       writer.bytes + len(line) > limits.max_bytes):  # fmt: skip
            _send(job, writer)
            writer = None
        writer = writer or _PartWriter(job.out, job.ledger.next_number())
        writer.add(cid, [unit.document.doc, list(unit.pages), payload.sent], line)
    if writer is not None:
        _send(job, writer)


def _send(job: DeferredJob, writer: _PartWriter) -> None:
    """Record the part, upload it, create its batch; each step recorded as it happens."""
    writer.close()
    part = Part(writer.number, writer.relative, writer.units, writer.lines, writer.bytes)
    job.ledger.add(part)
    job.check()
    name = f"{job.job_id}-part-{part.number}.jsonl"
    try:
        uploaded = job.retry(lambda: job.api.upload(job.out / part.file, name))
    except DeferredApiError as exc:
        if exc.status != 413:
            raise
        raise DeferredApiError(413, f"{exc.message}; use a smaller --deferred-max-bytes") from None
    part.input_file_id = str(uploaded["id"])
    job.ledger.save()
    job.create(part)


class _PartWriter:
    def __init__(self, out: Path, number: int) -> None:
        self.number = number
        self.relative = f"{PARTS_DIR}/part-{number:04d}.jsonl"
        (out / PARTS_DIR).mkdir(exist_ok=True)
        self._file: BinaryIO = (out / self.relative).open("wb")
        self.units: dict[str, list[Any]] = {}
        self.lines = self.bytes = 0

    def add(self, cid: str, unit: list[Any], line: bytes) -> None:
        self._file.write(line)
        self.units[cid] = unit
        self.lines += 1
        self.bytes += len(line)

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


def _done(journal: Journal, unit: Unit) -> bool:
    record = journal.records.get((unit.document.doc, unit.page))
    if record is None or record["status"] != "ok":
        return False
    return tuple(record.get("pages") or (record["page"],)) == unit.pages


def _failed(unit: Unit, reason: str) -> dict[str, Any]:
    return {"doc": unit.document.doc, "page": unit.page, "pages": list(unit.pages),
            "sent": None, "status": "failed", "output": None, "model": None, "cost_usd": None,
            "cache": None, "fallbacks": None, "latency_ms": None, "error": reason}  # fmt: skip
