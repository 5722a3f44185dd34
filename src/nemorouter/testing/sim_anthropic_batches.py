"""The simulated Anthropic Message Batches API, served by `SimulatedAnthropic`.

Shapes follow anthropics/anthropic-sdk-python (`resources/messages/batches.py`,
`types/messages/message_batch*.py`) and platform.claude.com/docs/en/api/messages/batches:
POST /v1/messages/batches `{requests: [{custom_id, params}]}` (1-100,000 requests, custom_id
`^[a-zA-Z0-9_-]{1,64}$` and unique), GET /v1/messages/batches/{id} (a MessageBatch),
GET .../{id}/results (JSONL once ended, `results_url` absolute on this server),
POST .../{id}/cancel. Request counts other than `processing` stay zero until the batch ends,
as the SDK's MessageBatchRequestCounts documents. Timing: `sim_batch_clock`.
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
    from nemorouter.testing.sim_anthropic import SimulatedAnthropic

_encode = msgspec.json.encode
_BATCH = re.compile(rb"^/v1/messages/batches(?:/([A-Za-z0-9_]+)(/results|/cancel)?)?$")
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_REQUESTS = 100_000


class AnthropicBatchAPI:
    """Message Batches over one `SimulatedAnthropic` (its key check and its answers)."""

    def __init__(self, sim: SimulatedAnthropic) -> None:
        self.sim = sim
        self.timing = BatchTiming()
        self.batches: dict[str, SimBatch] = {}

    def route(
        self,
        method: bytes,
        url: bytes,
        path: bytes,
        headers: http.Headers,
        body: bytes,
        auth: bytes | None,
    ) -> bytes | None:
        found = _BATCH.match(path)
        if found is None:
            return None
        from nemorouter.testing.sim_anthropic import anthropic_error

        sim = self.sim
        sim.note(method, path, headers, body)
        named = {n.lower(): v for n, v in headers}
        # the key as `x-api-key` (the API reference) or a bearer token (anthropic 2.17.0)
        key = named.get(b"x-api-key") or (auth or b"").removeprefix(b"Bearer ")
        if sim.api_key is not None and key != sim.api_key.encode():
            return anthropic_error(401, "invalid x-api-key")
        if b"anthropic-version" not in named:
            return anthropic_error(400, "anthropic-version: header is required")
        batch_id, action = found[1], found[2]
        if batch_id is None:
            if method != b"POST":
                return anthropic_error(405, "Method not allowed")
            return self._create(headers, body, auth)
        batch = self.batches.get(batch_id.decode())
        if batch is None:
            return anthropic_error(404, f"batch {batch_id.decode()} not found")
        if action == b"/cancel":
            if method != b"POST":
                return anthropic_error(405, "Method not allowed")
            if batch.cancelled_at is None and not batch.ended():
                batch.cancelled_at = time.time()
            return http.json_response(200, self.view(batch))
        if method != b"GET":
            return anthropic_error(405, "Method not allowed")
        if action == b"/results":
            if not batch.ended():
                return anthropic_error(400, f"Message Batch {batch.id} has not finished processing")
            return self._results(batch)
        return http.json_response(200, self.view(batch))

    def _create(self, headers: http.Headers, body: bytes, auth: bytes | None) -> bytes:
        from nemorouter.testing.sim_anthropic import anthropic_error

        try:
            req = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return anthropic_error(400, "There was an error parsing the body of your request.")
        requests = req.get("requests") if isinstance(req, dict) else None
        if not isinstance(requests, list) or not 1 <= len(requests) <= MAX_REQUESTS:
            return anthropic_error(400, "requests: List should have 1 to 100000 items")
        extra = set(req) - {"requests"}
        if extra:
            return anthropic_error(400, f"{sorted(extra)[0]}: Extra inputs are not permitted")
        keys: list[str] = []
        answers: list[tuple[int, Any]] = []
        for i, item in enumerate(requests):
            custom_id = item.get("custom_id") if isinstance(item, dict) else None
            if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
                return anthropic_error(400, f"requests.{i}.custom_id: String should match pattern")
            if custom_id in keys:
                return anthropic_error(400, f"requests.{i}.custom_id: duplicate {custom_id!r}")
            params = item.get("params")
            if not isinstance(params, dict):
                return anthropic_error(400, f"requests.{i}.params: Field required")
            if params.get("stream") is True:
                return anthropic_error(400, f"requests.{i}.params.stream: batches do not stream")
            keys.append(custom_id)
            answers.append(self._answer(headers, params, auth))
        batch_id = f"msgbatch_sim{os.urandom(8).hex()}"
        batch = SimBatch(batch_id, keys, answers, BatchTiming(**vars(self.timing)))
        self.batches[batch_id] = batch
        return http.json_response(200, self.view(batch))

    def _answer(
        self, headers: http.Headers, params: dict[str, Any], auth: bytes | None
    ) -> tuple[int, Any]:
        raw = _encode(params)
        if FAIL_WORD in raw:
            return 500, {"type": "error", "error": {"type": "api_error", "message": "Internal"}}
        return reply_json(self.sim.interactive_reply(b"/v1/messages", headers, raw, auth))

    def view(self, batch: SimBatch) -> dict[str, Any]:
        """The MessageBatch object as GET returns it now."""
        now = time.time()
        counts = batch.counts(now)
        ended = batch.ended(now)
        if ended:
            request_counts = {
                "processing": 0,
                "succeeded": counts["ok"],
                "errored": counts["failed"],
                "canceled": counts["cancelled"],
                "expired": counts["expired"],
            }
        else:  # the tallies other than processing are zero until the batch ends
            request_counts = dict.fromkeys(("succeeded", "errored", "canceled", "expired"), 0)
            request_counts["processing"] = len(batch.keys)
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": "ended"
            if ended
            else "canceling"
            if batch.cancelling(now)
            else "in_progress",
            "request_counts": request_counts,
            "created_at": rfc3339(batch.created),
            "expires_at": rfc3339(batch.expires_at),
            "ended_at": rfc3339(batch.ended_at()) if ended else None,
            "archived_at": None,
            "cancel_initiated_at": rfc3339(batch.cancelled_at) if batch.cancelled_at else None,
            "results_url": (
                f"{self.sim.origin}/v1/messages/batches/{batch.id}/results" if ended else None
            ),
        }

    def _results(self, batch: SimBatch) -> bytes:
        out = []
        order = list(range(len(batch.keys)))
        order.reverse()  # "not guaranteed to be in the same order as requests"
        for i in order:
            state = batch.line_state(i)
            status, answer = batch.answers[i]
            if state == "done" and status == 200:
                result: dict[str, Any] = {"type": "succeeded", "message": answer}
            elif state == "done":
                error = answer if isinstance(answer, dict) else {}
                result = {"type": "errored", "error": error}
            else:
                result = {"type": "canceled" if state == "cancelled" else "expired"}
            out.append(_encode({"custom_id": batch.keys[i], "result": result}))
        data = b"\n".join(out) + b"\n"
        head = b"HTTP/1.1 200 OK\r\ncontent-type: application/binary\r\ncontent-length: %d\r\n\r\n"
        return head % len(data) + data
