"""A fake OpenAI Batch API server for the deferred runner's tests (files + batches).

Shapes as in openai-python (`types/file_object.py`, `types/batch.py`, `resources/batches.py`)
and OpenAI's per-line output objects (`{"id", "custom_id", "response": {"status_code",
"request_id", "body"}, "error"}`). A batch goes validating -> in_progress -> finalizing ->
completed over `duration_s`; its output file holds a canned chat.completion per line with
`usage.cost`, its error file the lines `fail` names. It counts the batches created and
files uploaded, and answers `/chat/completions` (an interactive re-ask) with a cost header.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeBatchApi:
    def __init__(self, duration_s: float = 0.6) -> None:
        self.duration_s = duration_s
        self.hold = False  # True: batches stay in progress until it is False again
        self.cancelled: list[str] = []
        self.max_upload_bytes = 100_000_000
        self.lose_create_answers = 0  # batches created whose answer is a 502 (lost)
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.batches_created = 0
        self.uploads = 0
        self.costs: dict[str, Decimal] = {}  # custom_id -> the cost its output line carries
        self.fail: dict[str, str] = {}  # custom_id -> error message (an error-file line)
        self.answer: Callable[[str, dict[str, Any]], str] = lambda cid, body: f"page {cid}"
        self.chat_requests: list[dict[str, Any]] = []
        self.chat_answer = '{"total": 1}'
        self.chat_cost = "0.0005"
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def cost_of(self, index: int) -> Decimal:
        # Many digits, different per line: a sum through floats would show.
        return Decimal("0.000123456789") * (index + 1) + Decimal("0.0000000001")

    # -- the API -------------------------------------------------------------------------
    def upload(self, body: bytes, content_type: str) -> dict[str, Any]:
        boundary = content_type.split("boundary=", 1)[1].encode()
        purpose, data, name = None, b"", "input.jsonl"
        for chunk in body.split(b"--" + boundary):
            if b"\r\n\r\n" not in chunk:
                continue
            head, value = chunk.split(b"\r\n\r\n", 1)
            value = value[:-2] if value.endswith(b"\r\n") else value
            if b'name="purpose"' in head:
                purpose = value.decode()
            elif b'name="file"' in head:
                data = value
                name = head.split(b'filename="', 1)[1].split(b'"', 1)[0].decode()
        assert purpose == "batch", purpose
        with self.lock:
            self.uploads += 1
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(data),
                                   "created_at": int(time.time()), "filename": name,
                                   "purpose": "batch", "status": "processed"}  # fmt: skip
            self.contents[file_id] = data
        return self.files[file_id]

    def create(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if request.get("input_file_id") not in self.files:
            return 400, {"error": {"message": "no such file", "code": "invalid_file"}}
        if (
            request.get("endpoint") != "/v1/chat/completions"
            or request.get("completion_window") != "24h"
        ):
            return 400, {"error": {"message": "bad endpoint or window", "code": "invalid"}}
        lines = self.contents[request["input_file_id"]].splitlines()
        with self.lock:
            self.batches_created += 1
            batch_id = f"batch_{self.batches_created}"
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": request["endpoint"],
                "input_file_id": request["input_file_id"], "completion_window": "24h",
                "status": "validating", "created_at": int(time.time()),
                "metadata": request.get("metadata"), "output_file_id": None,
                "error_file_id": None,
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "_started": time.monotonic(),
            }  # fmt: skip
        return 200, self.view(batch_id)

    def view(self, batch_id: str) -> dict[str, Any]:
        with self.lock:
            batch = self.batches[batch_id]
            age = time.monotonic() - batch["_started"]
            if batch["status"] == "cancelling":
                self._finish(batch, done=1)  # one request had finished before the cancel
                batch["status"] = "cancelled"
            elif batch["status"] in ("validating", "in_progress", "finalizing"):
                if self.hold:
                    batch["status"] = "in_progress"
                elif age >= self.duration_s:
                    self._finish(batch)
                elif age >= self.duration_s * 0.8:
                    batch["status"] = "finalizing"
                elif age >= self.duration_s * 0.1:
                    batch["status"] = "in_progress"
                    total = batch["request_counts"]["total"]
                    batch["request_counts"]["completed"] = int(total * age / self.duration_s)
            return {k: v for k, v in batch.items() if not k.startswith("_")}

    def cancel(self, batch_id: str) -> dict[str, Any]:
        with self.lock:
            self.cancelled.append(batch_id)
            self.batches[batch_id]["status"] = "cancelling"
        return self.view(batch_id)

    def _finish(self, batch: dict[str, Any], done: int | None = None) -> None:
        out, errors = [], []
        for raw in self.contents[batch["input_file_id"]].splitlines()[:done]:
            line = json.loads(raw)
            cid = line["custom_id"]
            if cid in self.fail:
                errors.append({"id": f"batch_req_{cid}", "custom_id": cid, "response": {
                    "status_code": 400, "request_id": f"req_{cid}",
                    "body": {"error": {"message": self.fail[cid], "type": "invalid_request_error",
                                       "code": "invalid_image"}}}, "error": None})  # fmt: skip
                continue
            cost = self.cost_of(len(self.costs))
            self.costs[cid] = cost
            body = {"id": f"chatcmpl-{cid}", "object": "chat.completion", "created": 0,
                    "model": "gemini-2.5-flash",
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": self.answer(cid, line["body"])}}],
                    "usage": {"prompt_tokens": 300, "completion_tokens": 20,
                              "total_tokens": 320, "cost": str(cost)}}  # fmt: skip
            out.append({"id": f"batch_req_{cid}", "custom_id": cid, "error": None,
                        "response": {"status_code": 200, "request_id": f"req_{cid}",
                                     "body": body}})  # fmt: skip
        for kind, lines in (("output_file_id", out), ("error_file_id", errors)):
            if lines:
                file_id = f"file-{len(self.files) + 1}"
                self.files[file_id] = {"id": file_id, "object": "file", "purpose": "batch_output"}
                self.contents[file_id] = "".join(json.dumps(x) + "\n" for x in lines).encode()
                batch[kind] = file_id
        batch["status"] = "completed"
        batch["request_counts"].update(completed=len(out), failed=len(errors))
        batch["completed_at"] = int(time.time())


def _handler(api: FakeBatchApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(raw)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_POST(self) -> None:
            path = self.path
            if path == "/v1/files":
                if int(self.headers["Content-Length"]) > api.max_upload_bytes:
                    self._body()
                    self._send(413, {"error": {"message": "The file is too large."}})
                    return
                self._send(200, api.upload(self._body(), self.headers["Content-Type"]))
            elif path == "/v1/batches":
                status, answer = api.create(json.loads(self._body()))
                if api.lose_create_answers and status == 200:
                    api.lose_create_answers -= 1
                    status, answer = 502, {"error": {"message": "bad gateway"}}
                self._send(status, answer)
            elif path.startswith("/v1/batches/") and path.endswith("/cancel"):
                batch_id = path[len("/v1/batches/") : -len("/cancel")]
                self._send(200, api.cancel(batch_id))
            elif path == "/v1/chat/completions":
                api.chat_requests.append(json.loads(self._body()))
                body = {"model": "gemini-2.5-flash", "choices": [{"index": 0,
                        "finish_reason": "stop", "message": {"role": "assistant",
                        "content": api.chat_answer}}], "usage": {"prompt_tokens": 400,
                        "completion_tokens": 10, "cost": api.chat_cost}}  # fmt: skip
                self._send(200, body, {"x-nemo-response-cost": api.chat_cost})
            else:
                self._send(404, {"error": {"message": f"no route {path}"}})

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/v1/batches":
                self._send(
                    200, {"object": "list", "data": [api.view(b) for b in list(api.batches)]}
                )
            elif path.startswith("/v1/batches/") and path[12:] in api.batches:
                self._send(200, api.view(path[12:]))
            elif path.startswith("/v1/files/") and path.endswith("/content"):
                file_id = path[len("/v1/files/") : -len("/content")]
                if file_id in api.contents:
                    self._send(200, api.contents[file_id])
                else:
                    self._send(404, {"error": {"message": "no such file"}})
            else:
                self._send(404, {"error": {"message": f"no route {path}"}})

    return Handler
