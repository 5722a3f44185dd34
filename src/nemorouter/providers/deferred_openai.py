"""OpenAI's Batch API (and any OpenAI-compatible endpoint that has one) behind
`types.deferred.DeferredBackend`.

Wire format (openai/openai-python: src/openai/resources/files.py `create` (multipart,
`purpose=batch`), resources/batches.py `create` / `retrieve` / `cancel`, types/batch.py,
and the guide https://platform.openai.com/docs/guides/batch): a part is one JSONL file of
`{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}` uploaded to
`POST /files`, then `POST /batches {input_file_id, endpoint, completion_window: "24h"}`;
`GET /batches/{id}` reports `status` in the same vocabulary as `PartStatus` and, once done,
`output_file_id` / `error_file_id`, whose `GET /files/{id}/content` holds lines
`{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson

from nemorouter.config import ProviderConfig, Settings
from nemorouter.providers.classify import classify_exception, classify_status
from nemorouter.providers.http import HTTPPool
from nemorouter.providers.http_connection import Response
from nemorouter.providers.openai import OPENAI_BASE_URL
from nemorouter.providers.pooled import json_object
from nemorouter.providers.upstream_auth import openai_auth
from nemorouter.types.deferred import DeferredLine, LineOutcome, PartProgress, PartStatus
from nemorouter.types.multipart import build_form
from nemorouter.types.target import Target

COMPLETION_WINDOW = "24h"
ENDPOINT = "/v1/chat/completions"
JSON = b"Content-Type: application/json\r\n"


class OpenAIBatchBackend:
    """One OpenAI-format provider's batch API, over its own small connection pool."""

    def __init__(self, name: str, provider: ProviderConfig, settings: Settings) -> None:
        self.name = name
        self.base_url = (provider.base_url or OPENAI_BASE_URL).rstrip("/")
        self.auth = openai_auth(name, provider)
        self.timeout = settings.request_timeout_s
        self.connect_timeout = settings.connect_timeout_s
        self._pool: HTTPPool | None = None

    @property
    def pool(self) -> HTTPPool:
        if self._pool is None:  # built inside the running loop, on first use
            self._pool = HTTPPool(
                self.base_url, max_connections=4, connect_timeout=self.connect_timeout
            )
        return self._pool

    async def _call(self, method: str, path: str, body: bytes = b"", kind: bytes = b"") -> bytes:
        header, _ = await self.auth.header()
        try:
            response: Response = await self.pool.request(
                method, path, body, kind + header, self.timeout
            )
        except OSError as exc:
            raise classify_exception(exc) from None
        if response.status != 200:
            raise classify_status(response.status, response.headers, response.body)
        return response.body

    async def submit(self, target: Target, lines: Sequence[DeferredLine]) -> str:
        jsonl = b"".join(
            orjson.dumps(
                {
                    "custom_id": line.custom_id,
                    "method": "POST",
                    "url": "/v1" + line.path,
                    "body": line.wire,
                }
            )
            + b"\n"
            for line in lines
        )
        content_type, form = build_form(
            {"purpose": "batch"}, {"file": ("batch.jsonl", jsonl, "application/jsonl")}
        )
        uploaded = json_object(
            await self._call("POST", "/files", form, f"Content-Type: {content_type}\r\n".encode()),
            "files.create answered 200 with a body that is not a JSON object",
        )
        request = {
            "input_file_id": uploaded["id"],
            "endpoint": ENDPOINT,
            "completion_window": COMPLETION_WINDOW,
        }
        batch = json_object(
            await self._call("POST", "/batches", orjson.dumps(request), JSON),
            "batches.create answered 200 with a body that is not a JSON object",
        )
        return str(batch["id"])

    async def _batch(self, provider_id: str) -> dict[str, Any]:
        return json_object(
            await self._call("GET", f"/batches/{provider_id}"),
            "batches.retrieve answered 200 with a body that is not a JSON object",
        )

    async def poll(self, provider_id: str) -> PartProgress:
        batch = await self._batch(provider_id)
        counts = batch.get("request_counts") or {}
        errors = (batch.get("errors") or {}).get("data") or []
        message = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
        return PartProgress(
            PartStatus(batch["status"]),
            int(counts.get("total") or 0),
            int(counts.get("completed") or 0),
            int(counts.get("failed") or 0),
            message or None,
        )

    async def results(
        self, target: Target, provider_id: str, lines: Sequence[DeferredLine]
    ) -> AsyncIterator[LineOutcome]:
        batch = await self._batch(provider_id)
        for key in ("output_file_id", "error_file_id"):
            file_id = batch.get(key)
            if not file_id:
                continue
            content = await self._call("GET", f"/files/{file_id}/content")
            for raw in content.splitlines():
                if raw.strip():
                    yield _outcome(target, orjson.loads(raw))

    async def cancel(self, provider_id: str) -> None:
        await self._call("POST", f"/batches/{provider_id}/cancel", b"{}", JSON)

    async def close(self) -> None:
        await self.auth.close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def _outcome(target: Target, line: dict[str, Any]) -> LineOutcome:
    """One output or error file line, as the gateway's line outcome."""
    custom_id = str(line.get("custom_id"))
    response = line.get("response") or {}
    body = response.get("body") if isinstance(response, dict) else None
    status = response.get("status_code") if isinstance(response, dict) else None
    if status == 200 and isinstance(body, dict) and "choices" in body:
        body["model"] = target.model  # the label, as interactive answers carry it
        return LineOutcome(custom_id, response=body, usage=body.get("usage"))
    error = line.get("error")
    if not isinstance(error, dict) and isinstance(body, dict):
        error = body.get("error")
    if not isinstance(error, dict):
        error = {}
    code = error.get("code") or (f"http_{status}" if status else "provider_error")
    return LineOutcome(
        custom_id,
        error={"code": str(code), "message": str(error.get("message") or "the line failed")},
        usage=body.get("usage") if isinstance(body, dict) else None,
    )
