"""OpenAI's Batch API on the simulated provider: `/v1/files` (multipart upload, retrieve,
content) and `/v1/batches` (create, retrieve, cancel, list), with states over time.

A batch is `validating` for `validating_s`, `in_progress` for `progress_s`, then
`completed` (`refuse_create` answers the next creates with error statuses): every line
answered as the chat endpoint answers it (same rules, same usage),
lines named in `fail_custom_ids` answered with a 500 in the error file. With `expire` set,
a batch ends `expired` instead, its second half in the error file as `batch_expired`.
A cancel is `cancelling` for `validating_s`, then `cancelled` (no line answered). Shapes
follow openai-python types/batch.py, types/file_object.py and the batch guide
(https://platform.openai.com/docs/guides/batch): output lines are `{"id", "custom_id",
"response": {"status_code", "request_id", "body"}, "error"}`.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from nemorouter.testing import sim_http as http
from nemorouter.types.multipart import parse_form

_encode = msgspec.json.encode
_decode = msgspec.json.decode
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."
Answer = Callable[[bytes, bytes | None], bytes]  # (chat body, auth) -> full HTTP response


@dataclass
class _Batch:
    id: str
    input_file_id: str
    created: float
    created_at: int
    metadata: Any
    lines: list[dict[str, Any]]
    cancelled: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    final: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


class SimBatches:
    def __init__(self) -> None:
        self.validating_s = 0.2
        self.progress_s = 0.5
        self.fail_custom_ids: set[str] = set()
        self.expire = False
        # HTTP statuses the next batches.create calls answer with, in turn (429, 400, ...)
        self.refuse_create: list[int] = []
        self.files: dict[str, tuple[str, bytes, str]] = {}
        self.batches: dict[str, _Batch] = {}
        self.submitted_lines = 0  # request lines received in batches (every batch)
        self._ids = itertools.count(1)

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{os.urandom(4).hex()}{next(self._ids)}"

    def handle(
        self, answer: Answer, method: bytes, path: bytes, headers: list[tuple[bytes, bytes]],
        body: bytes, auth: bytes | None,
    ) -> bytes:  # fmt: skip
        parts = path.decode().strip("/").split("/")[1:]  # after "v1"
        if parts[0] == "files":
            return self._files(method, parts, headers, body)
        if parts == ["batches"] and method == b"POST":
            return self._create(body)
        if parts == ["batches"] and method == b"GET":
            data = [self._object(b, answer, auth) for b in reversed(self.batches.values())]
            return http.json_response(200, {"object": "list", "data": data, "has_more": False})
        batch = self.batches.get(parts[1]) if len(parts) > 1 else None
        if batch is None:
            return _not_found(path)
        if len(parts) == 3 and parts[2] == "cancel" and method == b"POST":
            if batch.final is None and batch.cancelled is None:
                batch.cancelled = time.monotonic()
            return http.json_response(200, self._object(batch, answer, auth))
        if len(parts) == 2 and method == b"GET":
            return http.json_response(200, self._object(batch, answer, auth))
        return http.invalid_url(405, method, path)

    def _files(self, method: bytes, parts: list[str], headers: list[tuple[bytes, bytes]],
               body: bytes) -> bytes:  # fmt: skip
        if len(parts) == 1 and method == b"POST":
            kind = next((v.decode() for k, v in headers if k.lower() == b"content-type"), "")
            form = parse_form(kind, body)
            if form is None or "file" not in form or "purpose" not in form:
                return http.json_response(400, http.error_body(
                    "Expected a multipart form with 'file' and 'purpose'", "invalid_request_error",
                    None, None))  # fmt: skip
            file_id = self._id("file")
            upload = form["file"]
            purpose = form["purpose"].data.decode()
            self.files[file_id] = (upload.filename or "upload.jsonl", upload.data, purpose)
            return http.json_response(200, self._file(file_id))
        found = self.files.get(parts[1]) if len(parts) > 1 else None
        if found is None or method != b"GET":
            return _not_found(("/v1/" + "/".join(parts)).encode())
        if len(parts) == 3 and parts[2] == "content":
            data = found[1]
            head = b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: %d\r\n\r\n"
            return head % len(data) + data
        return http.json_response(200, self._file(parts[1]))

    def _file(self, file_id: str) -> dict[str, Any]:
        name, data, purpose = self.files[file_id]
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": name, "purpose": purpose, "status": "processed"}  # fmt: skip

    def _create(self, body: bytes) -> bytes:
        if self.refuse_create:
            status = self.refuse_create.pop(0)
            kind = "rate_limit_exceeded" if status == 429 else "invalid_request_error"
            return http.json_response(status, http.error_body(
                f"Simulated refusal of batches.create: HTTP {status}", kind, None, None))  # fmt: skip
        request = _decode(body)
        file_id = request.get("input_file_id")
        if file_id not in self.files or request.get("endpoint") != "/v1/chat/completions":
            return http.json_response(400, http.error_body(
                "unknown input_file_id or endpoint", "invalid_request_error", None, None))  # fmt: skip
        lines = [_decode(raw) for raw in self.files[file_id][1].splitlines() if raw.strip()]
        self.submitted_lines += len(lines)
        batch = _Batch(self._id("batch"), file_id, time.monotonic(), int(time.time()),
                       request.get("metadata"), lines)  # fmt: skip
        self.batches[batch.id] = batch
        return http.json_response(200, self._object(batch, None, None))

    def _status(self, batch: _Batch, answer: Answer | None, auth: bytes | None) -> str:
        if batch.final is not None:
            return batch.final
        now = time.monotonic()
        if batch.cancelled is not None:
            if now - batch.cancelled < self.validating_s:
                return "cancelling"
            batch.final = "cancelled"
            return batch.final
        age = now - batch.created
        if age < self.validating_s:
            return "validating"
        if age < self.validating_s + self.progress_s or answer is None:
            return "in_progress"
        self._finish(batch, answer, auth)
        assert batch.final is not None
        return batch.final

    def _finish(self, batch: _Batch, answer: Answer, auth: bytes | None) -> None:
        output, errors = [], []
        cut = len(batch.lines) // 2 if self.expire else len(batch.lines)
        for i, line in enumerate(batch.lines):
            custom_id = line["custom_id"]
            request_id = f"req_{os.urandom(6).hex()}"
            if i >= cut:
                expired = {"code": "batch_expired", "message": EXPIRED_MESSAGE}
                errors.append(
                    {"id": self._id("batch_req"), "custom_id": custom_id, "response": None,
                     "error": expired}
                )  # fmt: skip
                continue
            if custom_id in self.fail_custom_ids:
                reply = http.render_status_fault_body(500)
                status, payload = 500, reply
            else:
                raw = answer(_encode(line["body"]), auth)
                status = int(raw.split(b" ", 2)[1])
                payload = _decode(raw.split(b"\r\n\r\n", 1)[1])
            entry = {"id": self._id("batch_req"), "custom_id": custom_id,
                     "response": {"status_code": status, "request_id": request_id, "body": payload},
                     "error": None}  # fmt: skip
            (output if status == 200 else errors).append(entry)
        for key, entries in (("output", output), ("error", errors)):
            if entries:
                file_id = self._id("file")
                data = b"".join(_encode(e) + b"\n" for e in entries)
                self.files[file_id] = (f"{batch.id}_{key}.jsonl", data, "batch_output")
                setattr(batch, f"{key}_file_id", file_id)
        batch.counts = {"total": len(batch.lines), "completed": len(output), "failed": len(errors)}
        batch.final = "expired" if self.expire else "completed"

    def _object(self, batch: _Batch, answer: Answer | None, auth: bytes | None) -> dict[str, Any]:
        status = self._status(batch, answer, auth)
        counts = batch.counts or {"total": len(batch.lines), "completed": 0, "failed": 0}
        return {
            "id": batch.id, "object": "batch", "endpoint": "/v1/chat/completions",
            "input_file_id": batch.input_file_id, "completion_window": "24h", "status": status,
            "output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id,
            "created_at": batch.created_at, "expires_at": batch.created_at + 86400,
            "request_counts": counts, "metadata": batch.metadata, "errors": None,
        }  # fmt: skip


def _not_found(path: bytes) -> bytes:
    return http.json_response(404, http.error_body(
        f"No such object: {path.decode()}", "invalid_request_error", None, None))  # fmt: skip
