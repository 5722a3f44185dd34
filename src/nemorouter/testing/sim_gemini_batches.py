"""The simulated Gemini API batch mode and Files API, served by `SimulatedGemini`.

Shapes follow ai.google.dev/gemini-api/docs/batch-mode, ai.google.dev/api/batch-mode and
googleapis/python-genai (`batches.py` `_BatchJob_from_mldev`: an Operation whose `metadata`
holds the GenerateContentBatch; `_transformers.t_job_state`: the API says BATCH_STATE_*;
`_api_client.upload_file`: a resumable upload answered with `x-goog-upload-status`):
- POST /v1beta/models/{m}:batchGenerateContent (inline requests or an uploaded `fileName`),
- GET /v1beta/batches/{id}, POST /v1beta/batches/{id}:cancel,
- POST /upload/v1beta/files (start: `x-goog-upload-url`), POST to that URL (upload, finalize),
- GET /download/v1beta/files/{id}:download?alt=media (and without /download).
The output sits in both `metadata.output` (the SDK reads it) and `response` (the guide's
REST sample reads it). An expired batch has no output, as the guide says. Timing and line
answers: `sim_batch_clock`.
"""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING, Any

import msgspec

from nemorouter.testing import sim_http as http
from nemorouter.testing.sim_batch_clock import FAIL_WORD, BatchTiming, SimBatch, reply_json, rfc3339

if TYPE_CHECKING:
    from nemorouter.testing.sim_gemini import SimulatedGemini

_encode = msgspec.json.encode
_CREATE = re.compile(rb"^/(v1beta|v1)/models/([^/:]+):batchGenerateContent$")
_BATCH = re.compile(rb"^/(?:v1beta|v1)/batches/([A-Za-z0-9_-]+)(:cancel)?$")
_UPLOAD = re.compile(rb"^/upload/(?:v1beta|v1)/files$")
# The guide's REST sample downloads under /download/; python-genai (`files.download`) asks
# for `{version}/files/{id}:download?alt=media` on the API root: both are served.
_DOWNLOAD = re.compile(rb"^(?:/download)?/(?:v1beta|v1)/files/([A-Za-z0-9_-]+):download$")
_FILE = re.compile(rb"^/(?:v1beta|v1)/files/([A-Za-z0-9_-]+)$")
_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
_OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"


class GeminiBatchAPI:
    """Batch mode and the Files API over one `SimulatedGemini` (its key and its answers)."""

    def __init__(self, sim: SimulatedGemini) -> None:
        self.sim = sim
        self.timing = BatchTiming()
        self.batches: dict[str, SimBatch] = {}
        self.files: dict[str, bytes] = {}
        self._sessions: dict[str, dict[str, Any]] = {}

    def route(
        self,
        method: bytes,
        url: bytes,
        path: bytes,
        headers: http.Headers,
        body: bytes,
        auth: bytes | None,
    ) -> bytes | None:
        from nemorouter.testing.sim_gemini import google_error

        create = _CREATE.match(path)
        batch = _BATCH.match(path)
        download = _DOWNLOAD.match(path)
        file = _FILE.match(path)
        upload = _UPLOAD.match(path)
        if not (create or batch or download or file or upload):
            return None
        self.sim.note(method, url, headers, body)
        # An upload session's URL is its own credential: the SDK sends no key to it
        # (python-genai `_api_client.upload_file` sends only the upload headers).
        refused = self.sim.api_key_refused(headers)
        if refused is not None and not (upload and b"upload_id=" in url):
            return refused
        if create:
            if method != b"POST":
                return google_error(404, "Method not found.")
            return self._create(create[2].decode(), headers, body)
        if upload:
            return self._upload(method, url, headers, body)
        if download:
            data = self.files.get(download[1].decode())
            if data is None or method != b"GET":
                return google_error(404, "File not found.")
            head = b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
            return head + b"content-length: %d\r\n\r\n" % len(data) + data
        if file:
            name = file[1].decode()
            if name not in self.files:
                return google_error(404, "File not found.")
            return http.json_response(200, self._file(name))
        assert batch is not None
        job = self.batches.get(batch[1].decode())
        if job is None:
            return google_error(404, f"Batch batches/{batch[1].decode()} not found.")
        if batch[2]:
            if method != b"POST":
                return google_error(404, "Method not found.")
            if job.cancelled_at is None and not job.ended():
                job.cancelled_at = time.time()
            return http.json_response(200, {})
        return http.json_response(200, self.operation(job))

    def _create(self, model: str, headers: http.Headers, body: bytes) -> bytes:
        from nemorouter.testing.sim_gemini import google_error

        try:
            batch = msgspec.json.decode(body)["batch"]
            config = batch["inputConfig"]
        except (msgspec.DecodeError, KeyError, TypeError):
            return google_error(
                400, "Invalid JSON payload received. Unknown name or missing batch."
            )
        # The reference marks displayName required, yet python-genai's README creates batches
        # without one (its SDK sends none then): not refused here.
        if not isinstance(batch.get("displayName", ""), str):
            return google_error(400, "* batch.display_name: a string")
        if "fileName" in config:
            data = self.files.get(str(config["fileName"]).removeprefix("files/"))
            if data is None:
                return google_error(400, f"File {config['fileName']} not found.")
            items = [msgspec.json.decode(line) for line in data.splitlines() if line.strip()]
            keys = [str(item.get("key", i)) for i, item in enumerate(items)]
            requests = [item.get("request") for item in items]
            source = "file"
        else:
            inline = (config.get("requests") or {}).get("requests")
            if not isinstance(inline, list) or not inline:
                return google_error(400, "* batch.input_config: requests or file_name required")
            keys = [
                str((item.get("metadata") or {}).get("key", i)) for i, item in enumerate(inline)
            ]
            requests = [item.get("request") for item in inline]
            source = "inline"
        answers = [self._answer(model, headers, request) for request in requests]
        job_id = os.urandom(8).hex()
        job = SimBatch(job_id, keys, answers, BatchTiming(**vars(self.timing)))
        job.extra.update(model=model, source=source, name=batch.get("displayName", ""))
        self.batches[job_id] = job
        return http.json_response(200, self.operation(job))

    def _answer(self, model: str, headers: http.Headers, request: Any) -> tuple[int, Any]:
        raw = _encode(request)
        if not isinstance(request, dict):
            return 400, {
                "error": {"code": 400, "message": "request: required", "status": "INVALID_ARGUMENT"}
            }
        if FAIL_WORD in raw:
            return 500, {"error": {"code": 500, "message": "Internal error.", "status": "INTERNAL"}}
        path = f"/v1beta/models/{model}:generateContent".encode()
        return reply_json(self.sim.interactive_reply(path, headers, raw))

    def operation(self, job: SimBatch) -> dict[str, Any]:
        """The batch as an Operation, as create and get answer it."""
        now = time.time()
        counts = job.counts(now)
        ended = job.ended(now)
        if not ended:
            state = "BATCH_STATE_RUNNING" if counts["done"] else "BATCH_STATE_PENDING"
        elif job.cancelled_at is not None and job.cancelled_at <= job.done_at(len(job.keys) - 1):
            state = "BATCH_STATE_CANCELLED"
        elif job.expired():
            state = "BATCH_STATE_EXPIRED"
        else:
            state = "BATCH_STATE_SUCCEEDED"
        metadata: dict[str, Any] = {
            "@type": _TYPE,
            "model": f"models/{job.extra['model']}",
            "displayName": job.extra["name"],
            "createTime": rfc3339(job.created),
            "updateTime": rfc3339(min(now, job.ended_at())),
            "batchStats": {
                "requestCount": str(len(job.keys)),
                "successfulRequestCount": str(counts["ok"]),
                "failedRequestCount": str(counts["failed"]),
                "pendingRequestCount": str(counts["processing"]),
            },
            "state": state,
            "name": f"batches/{job.id}",
        }
        operation: dict[str, Any] = {"name": f"batches/{job.id}", "metadata": metadata}
        if ended:
            metadata["endTime"] = rfc3339(job.ended_at())
            operation["done"] = True
            if state != "BATCH_STATE_EXPIRED":  # an expired batch has no results
                output = self._output(job)
                metadata["output"] = output
                operation["response"] = {"@type": _OUTPUT_TYPE, **output}
        return operation

    def _output(self, job: SimBatch) -> dict[str, Any]:
        entries = []
        for i, key in enumerate(job.keys):
            if job.line_state(i) != "done":
                continue  # a cancelled batch answers what it finished
            status, answer = job.answers[i]
            entry: dict[str, Any] = {"response": answer} if status == 200 else dict(answer)
            entries.append((key, entry))
        if job.extra["source"] == "inline":
            return {"inlinedResponses": {"inlinedResponses": [
                {**entry, "metadata": {"key": key}} for key, entry in entries
            ]}}  # fmt: skip
        file_id = f"batch-{job.id}"
        if file_id not in self.files:
            lines = [_encode({"key": key, **entry}) for key, entry in entries]
            self.files[file_id] = b"\n".join(lines) + b"\n"
        return {"responsesFile": f"files/{file_id}"}

    def _upload(self, method: bytes, url: bytes, headers: http.Headers, body: bytes) -> bytes:
        from nemorouter.testing.sim_gemini import google_error

        named = {n.lower(): v for n, v in headers}
        command = named.get(b"x-goog-upload-command", b"").decode().replace(" ", "")
        query = url.partition(b"?")[2].decode()
        session_id = next(
            (p[len("upload_id=") :] for p in query.split("&") if p.startswith("upload_id=")), None
        )
        if method != b"POST":
            return google_error(404, "Method not found.")
        if session_id is None:
            if named.get(b"x-goog-upload-protocol") != b"resumable" or command != "start":
                return google_error(400, "Only the resumable upload protocol is simulated.")
            session_id = os.urandom(8).hex()
            size = int(named.get(b"x-goog-upload-header-content-length", b"0") or 0)
            meta = msgspec.json.decode(body).get("file", {}) if body else {}
            self._sessions[session_id] = {"size": size, "meta": meta, "data": b""}
            upload = f"{self.sim.origin}/upload/v1beta/files?upload_id={session_id}&upload_protocol=resumable"
            extra = f"x-goog-upload-url: {upload}\r\nx-goog-upload-status: active\r\n"
            return http.json_response(200, {}, extra.encode())
        session = self._sessions.get(session_id)
        if session is None or not command.startswith("upload"):
            return google_error(400, "Unknown upload session.")
        session["data"] += body
        if "finalize" not in command:
            return http.json_response(200, {}, b"x-goog-upload-status: active\r\n")
        del self._sessions[session_id]
        file_id = os.urandom(6).hex()
        self.files[file_id] = session["data"]
        file = self._file(file_id, session["meta"])
        return http.json_response(200, {"file": file}, b"x-goog-upload-status: final\r\n")

    def _file(self, file_id: str, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        now = rfc3339(time.time())
        meta = meta or {}  # proto-JSON: camelCase or the SDK's snake_case names
        return {
            "name": f"files/{file_id}",
            "displayName": meta.get("displayName") or meta.get("display_name") or file_id,
            "mimeType": meta.get("mimeType") or meta.get("mime_type") or "application/jsonl",
            "sizeBytes": str(len(self.files[file_id])),
            "createTime": now,
            "updateTime": now,
            "uri": f"{self.sim.origin}/v1beta/files/{file_id}",
            "state": "ACTIVE",
            "source": "UPLOADED",
        }
