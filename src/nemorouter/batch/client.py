"""One page through the gateway: the request, its retries, the re-ask, the result record.

The batch is an ordinary client of the gateway (any OpenAI-compatible endpoint works):
limits, cache and spend tracking apply to it as to any other program.
"""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from nemorouter.batch.pacing import Pacer
from nemorouter.batch.prompts import Task, check_answer, request_body
from nemorouter.batch.sources import Page
from nemorouter.providers.http import HTTPPool, Response, UpstreamDisconnected, UpstreamTimeout

# Transient answers worth another try after the pacer's pause (or a short backoff).
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_TRIES = 6
# Answers that would fail every page alike: stop the batch rather than burn through it.
FATAL_STATUSES = frozenset({400, 401, 402, 403, 404})


class FatalBatchError(RuntimeError):
    """The gateway refuses the job itself (bad key, unknown model, tag mismatch, budget)."""


class GatewayClient:
    def __init__(
        self, base_url: str, api_key: str | None, timeout_s: float, connections: int
    ) -> None:
        self._pool = HTTPPool(base_url, max_connections=connections, connect_timeout=10.0)
        self._auth = f"Authorization: Bearer {api_key}\r\n".encode() if api_key else b""
        self._timeout_s = timeout_s

    async def post(self, body: dict[str, Any]) -> Response:
        payload = json.dumps(body).encode()
        return await self._pool.post("/chat/completions", payload, self._auth, self._timeout_s)

    async def close(self) -> None:
        await self._pool.close()


async def process_page(
    client: GatewayClient,
    pacer: Pacer,
    task: Task,
    page: Page,
    *,
    job_id: str,
    model: str,
    tags: list[str],
    no_cache: bool,
) -> dict[str, Any]:
    """Ask for one page (re-asking once if the answer is unacceptable); a result record."""
    started = time.monotonic()
    metadata = {"job_id": job_id, "doc": page.doc, "page": page.page}
    record: dict[str, Any] = {"doc": page.doc, "page": page.page, "status": "failed",
                              "output": None, "model": None, "cost_usd": None, "cache": None,
                              "fallbacks": None, "latency_ms": None, "error": None}  # fmt: skip
    costs: list[Decimal | None] = []
    retry_of: tuple[str, str] | None = None
    for _ask in range(2):  # the question, and at most one re-ask
        body = request_body(task, model=model, image=page.data, mime=page.mime,
                            metadata=metadata, tags=tags, no_cache=no_cache, retry_of=retry_of)  # fmt: skip
        response = await _send(client, pacer, body)
        if response.status != 200:
            record["error"] = f"HTTP {response.status}: {_error_text(response)}"
            break
        headers = response.headers
        costs.append(_cost(headers.get("x-nemo-response-cost")))
        record["model"] = headers.get("x-nemo-model")
        record["cache"] = headers.get("x-nemo-cache")
        fallbacks = headers.get("x-nemo-fallbacks")
        record["fallbacks"] = int(fallbacks) if fallbacks and fallbacks.isdigit() else None
        content = _content(response)
        output, problem = check_answer(task, content)
        if problem is None:
            record.update(status="ok", output=output, error=None)
            break
        record["error"] = problem
        retry_of = (content or "", problem)
    record["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    # Cost is known only if every call reported one; never a made-up number.
    if costs and all(c is not None for c in costs):
        record["cost_usd"] = str(sum(costs, Decimal(0)))  # type: ignore[arg-type]
    return record


async def _send(client: GatewayClient, pacer: Pacer, body: dict[str, Any]) -> Response:
    """POST with pacing; transient failures are retried, the last answer is returned."""
    for attempt in range(MAX_TRIES):
        await pacer.acquire()
        try:
            response = await client.post(body)
        except (UpstreamTimeout, UpstreamDisconnected) as exc:
            await pacer.release(0, {})
            if attempt + 1 == MAX_TRIES:
                return Response(599, {}, f"gateway unreachable: {exc}".encode())
            await asyncio.sleep(min(2.0**attempt, 30.0))
            continue
        await pacer.release(response.status, response.headers)
        if response.status in FATAL_STATUSES and not _is_page_specific(response):
            raise FatalBatchError(f"HTTP {response.status}: {_error_text(response)}")
        if response.status not in RETRY_STATUSES or attempt + 1 == MAX_TRIES:
            return response
    raise AssertionError("unreachable")


def _is_page_specific(response: Response) -> bool:
    """A 400 about this page's content (the provider rejected the image) is not fatal."""
    if response.status != 400:
        return False
    try:
        code = json.loads(response.body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return True
    return code not in ("tag_mismatch", "model_not_found")


def _error_text(response: Response) -> str:
    try:
        return str(json.loads(response.body)["error"]["message"])[:500]
    except (ValueError, KeyError, TypeError):
        return response.body[:300].decode("utf-8", "replace")


def _content(response: Response) -> str | None:
    try:
        content = json.loads(response.body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def _cost(header: str | None) -> Decimal | None:
    if header is None:
        return None
    try:
        return Decimal(header)
    except InvalidOperation:
        return None
