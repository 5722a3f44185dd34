"""The OpenAI Batch API as the deferred runner uses it: upload a JSONL file, create a batch,
poll it, read its output and error files, cancel it.

The shapes are OpenAI's (openai-python `types/file_object.py`, `types/batch.py`,
`resources/files.py`, `resources/batches.py`): `POST /files` (multipart, `purpose=batch`),
`POST /batches` (`input_file_id`, `endpoint`, `completion_window: "24h"`, `metadata`),
`GET /batches/{id}`, `POST /batches/{id}/cancel`, `GET /files/{id}/content`. Any server
speaking them works (the gateway, or OpenAI itself).

Plain blocking HTTP (urllib): a deferred job makes a handful of calls a minute, and an input
file is streamed from disk rather than held in memory.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO

CHAT_ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"  # the only window OpenAI accepts (batch_create_params.py)
# Batch statuses with no more change to come (types/batch.py `status`).
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
TIMEOUT_S = 120.0


class DeferredApiError(Exception):
    """The server answered with an error (`status` is its HTTP status)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class DeferredUnreachable(Exception):
    """Nothing answers at the base URL."""


class BatchApi:
    def __init__(self, base_url: str, api_key: str | None, timeout_s: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout_s = timeout_s

    def upload(self, path: Path, filename: str) -> dict[str, Any]:
        """POST /files with purpose `batch`: the file object (`id`)."""
        boundary = "nemo-" + secrets.token_hex(12)
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: application/jsonl\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        size = len(head) + path.stat().st_size + len(tail)
        with path.open("rb") as file:
            body = _Chain(head, file, tail)
            return self._call(
                "POST", "/files", body,
                {"Content-Type": f"multipart/form-data; boundary={boundary}",
                 "Content-Length": str(size)},
            )  # fmt: skip

    def create(self, input_file_id: str, metadata: dict[str, str]) -> dict[str, Any]:
        body = {"input_file_id": input_file_id, "endpoint": CHAT_ENDPOINT,
                "completion_window": COMPLETION_WINDOW, "metadata": metadata}  # fmt: skip
        return self._json("POST", "/batches", body)

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        return self._json("GET", f"/batches/{batch_id}")

    def cancel(self, batch_id: str) -> dict[str, Any]:
        return self._json("POST", f"/batches/{batch_id}/cancel", {})

    def find(self, input_file_id: str) -> dict[str, Any] | None:
        """The batch created from `input_file_id`, if the server lists batches (GET
        /batches); None when it does not or none is found. Lets a run killed between
        creating a batch and recording it find it instead of creating a second one."""
        try:
            listed = self._json("GET", "/batches?limit=100")
        except DeferredApiError:
            return None
        for batch in listed.get("data") or ():
            if isinstance(batch, dict) and batch.get("input_file_id") == input_file_id:
                return batch
        return None

    def content(self, file_id: str) -> bytes:
        return self._request("GET", f"/files/{file_id}/content", None, {})

    def post_chat(self, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """An interactive /chat/completions call (a re-ask): status, headers, body."""
        request = urllib.request.Request(
            self.base_url + "/chat/completions", json.dumps(body).encode(), method="POST",
            headers={**self._headers, "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as answer:
                headers = {k.lower(): v for k, v in answer.headers.items()}
                return answer.status, headers, answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            raise DeferredUnreachable(self._unreachable(exc)) from None

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return self._call(method, path, data, headers)

    def _call(
        self, method: str, path: str, data: bytes | _Chain | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        raw = self._request(method, path, data, headers)
        try:
            found = json.loads(raw)
        except ValueError:
            raise DeferredApiError(200, f"not JSON: {raw[:200]!r}") from None
        if not isinstance(found, dict):
            raise DeferredApiError(200, f"not a JSON object: {raw[:200]!r}")
        return found

    def _request(
        self, method: str, path: str, data: bytes | _Chain | None, headers: dict[str, str]
    ) -> bytes:
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method,  # type: ignore[arg-type]
            headers={**self._headers, **headers},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as answer:
                return bytes(answer.read())
        except urllib.error.HTTPError as exc:
            raise DeferredApiError(exc.code, _error_text(exc.read())) from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            raise DeferredUnreachable(self._unreachable(exc)) from None

    def _unreachable(self, exc: Exception) -> str:
        reason = getattr(exc, "reason", exc)
        return f"cannot reach the gateway at {self.base_url}: {reason}"


class _Chain:
    """A multipart body read in blocks: the head, the file from disk, the tail."""

    def __init__(self, head: bytes, file: BinaryIO, tail: bytes) -> None:
        self._parts: list[bytes | BinaryIO] = [head, file, tail]

    def read(self, size: int = -1) -> bytes:
        while self._parts:
            part = self._parts[0]
            if isinstance(part, bytes):
                self._parts.pop(0)
                if part:
                    return part
                continue
            block = part.read(size if size > 0 else 1 << 20)
            if block:
                return block
            self._parts.pop(0)
        return b""


def _error_text(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"]["message"])[:500]
    except (ValueError, KeyError, TypeError):
        return body[:300].decode("utf-8", "replace")
