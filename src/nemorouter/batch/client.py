"""One page through the gateway: the request, its retries, the re-ask, the result record.

The batch is an ordinary client of the gateway (any OpenAI-compatible endpoint works):
limits, cache and spend tracking apply to it as to any other program.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from nemorouter.batch.pacing import Pacer
from nemorouter.batch.prompts import Task, check_answer, request_body
from nemorouter.batch.reach import Reachability, is_connection_failure
from nemorouter.batch.sources import Page
from nemorouter.batch.units import Payload, image_part
from nemorouter.providers.http import HTTPPool
from nemorouter.providers.http_connection import Response, UpstreamDisconnected, UpstreamTimeout

# Transient answers worth another try after the pacer's pause (or a short backoff).
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_TRIES = 6
# Answers that would fail every page alike: stop the batch rather than burn through it.
FATAL_STATUSES = frozenset({400, 401, 402, 403, 404})
# How long one page waits for a budget held by reservations in flight before it fails: the
# gateway's reservations expire after 15 min even if the instance holding one died.
BUDGET_WAIT_MAX_S = 900.0


class PageAbandoned(Exception):
    """This page's requests cannot go on. `record` holds the page's result if an answer was
    already received for it (paid for: the caller writes it whatever happens next)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.record: dict[str, Any] | None = None


class JobStopped(PageAbandoned):
    """The job is stopping (interrupted, or another page hit a refusal): nothing more is sent."""


class FatalBatchError(PageAbandoned):
    """The gateway refuses the job itself (bad key, unknown model, tag mismatch, budget spent)."""

    def __init__(
        self, message: str, *, budget_spent: bool = False, limit: str | None = None,
        spent: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.budget_spent = budget_spent
        self.limit = limit  # decimal USD, from the gateway's x-nemo-budget-* headers
        self.spent = spent


class GatewayUnreachable(PageAbandoned):
    """Connections to the gateway fail again and again: nothing (working) listens there."""


class GatewayClient:
    def __init__(
        self, base_url: str, api_key: str | None, timeout_s: float, connections: int
    ) -> None:
        self.base_url = base_url
        self._pool = HTTPPool(base_url, max_connections=connections, connect_timeout=10.0)
        self._auth = f"Authorization: Bearer {api_key}\r\n".encode() if api_key else b""
        self._timeout_s = timeout_s
        self.reach = Reachability()  # shared by every page: the job stops as one

    async def post(self, body: dict[str, Any]) -> Response:
        """The gateway's answer; raises GatewayUnreachable once connections keep failing."""
        payload = json.dumps(body).encode()
        try:
            response = await self._pool.post(
                "/chat/completions", payload, self._auth, self._timeout_s
            )
        except (UpstreamTimeout, UpstreamDisconnected) as exc:
            if not is_connection_failure(exc):
                self.reach.reached()  # connected, then the answer was late: it is there
                raise
            if self.reach.failed(exc):
                raise GatewayUnreachable(self.unreachable_reason()) from exc
            raise
        self.reach.reached()
        return response

    def unreachable_reason(self) -> str:
        reach = self.reach
        return (
            f"cannot reach the gateway at {self.base_url}: {reach.failures} connection "
            f"attempts in a row failed over {reach.span_s():.1f} s (last: {reach.last_error})"
        )

    async def close(self) -> None:
        await self._pool.close()


async def process_page(
    client: GatewayClient,
    pacer: Pacer,
    task: Task,
    page: Page | Payload,
    *,
    job_id: str,
    model: str,
    tags: list[str],
    no_cache: bool,
    max_tokens: int | None = None,
    on_send: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Ask for one page, or the pages of a payload (re-asking once if the answer is
    unacceptable); a result record naming the pages it covers and what was sent.

    Raises PageAbandoned (with `record` set if an answer was already received) when the job
    stops or the gateway refuses it. `on_send` is called before each request goes out (the
    runner journals it: a request sent and never answered is known after a crash)."""
    started = time.monotonic()
    if isinstance(page, Page):
        page = Payload(page.doc, page.page, (page.page,), [image_part(page.mime, page.data)],
                       "image")  # fmt: skip
    metadata: dict[str, Any] = {"job_id": job_id, "doc": page.doc, "page": page.page}
    if len(page.pages) > 1:  # a PDF chunk: `page` is its first
        metadata["pages"] = list(page.pages)
    record: dict[str, Any] = {"doc": page.doc, "page": page.page, "pages": list(page.pages),
                              "sent": page.sent, "status": "failed", "output": None,
                              "model": None, "cost_usd": None, "cache": None,
                              "fallbacks": None, "latency_ms": None, "error": None}  # fmt: skip
    costs: list[Decimal | None] = []
    retry_of: tuple[str, str] | None = None
    for ask in range(2):  # the question, and at most one re-ask
        if ask:  # the gateway's job view counts re-asks as such, not as more pages
            metadata = {**metadata, "reask": True}
        body = request_body(task, model=model, parts=page.parts,
                            metadata=metadata, tags=tags, no_cache=no_cache,
                            max_tokens=max_tokens, retry_of=retry_of)  # fmt: skip
        try:
            response = await _send(client, pacer, body, on_send)
        except PageAbandoned as exc:
            if costs:  # the first answer arrived (and was paid for): it must be written
                exc.record = _finish(record, costs, started)
            raise
        if response.status != 200:
            record["error"] = f"HTTP {response.status}: {_error_text(response)}"
            break
        headers = response.headers
        costs.append(_cost(headers.get("x-nemo-response-cost")))
        _add_usage(record, response)
        record["model"] = headers.get("x-nemo-model")
        record["cache"] = headers.get("x-nemo-cache")
        fallbacks = headers.get("x-nemo-fallbacks")
        record["fallbacks"] = int(fallbacks) if fallbacks and fallbacks.isdigit() else None
        content = _content(response)
        if _finish_reason(response) == "length":  # asked again, it would be cut short again
            record["error"] = (
                f"the answer was cut short at max_tokens {body['max_tokens']}; "
                "run again with a larger --max-tokens"
            )
            record["answer"] = content
            break
        output, problem = check_answer(task, content)
        if problem is None:
            record.update(status="ok", output=output, error=None)
            record.pop("answer", None)
            break
        record["error"] = problem
        record["answer"] = content  # not acceptable, but paid for: kept for the reader
        retry_of = (content or "", problem)
    return _finish(record, costs, started)


def _finish(record: dict[str, Any], costs: list[Decimal | None], started: float) -> dict[str, Any]:
    record["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    # Cost is known only if every call reported one; never a made-up number.
    if costs and all(c is not None for c in costs):
        record["cost_usd"] = str(sum(costs, Decimal(0)))  # type: ignore[arg-type]
    return record


async def _send(
    client: GatewayClient,
    pacer: Pacer,
    body: dict[str, Any],
    on_send: Callable[[], None] | None = None,
) -> Response:
    """POST with pacing; transient failures are retried, the last answer is returned."""
    attempt = 0
    budget_deadline: float | None = None
    while True:
        if not await pacer.acquire():
            raise JobStopped("the job stopped before this request was sent")
        if on_send is not None:
            on_send()
        try:
            response = await client.post(body)
        except GatewayUnreachable:
            await pacer.release(0, {})
            raise
        except (UpstreamTimeout, UpstreamDisconnected) as exc:
            await pacer.release(0, {})
            attempt += 1
            if attempt == MAX_TRIES:
                return Response(599, {}, f"gateway unreachable: {exc}".encode())
            await pacer.backoff(min(2.0 ** (attempt - 1), 30.0))
            continue
        await pacer.release(response.status, response.headers)
        if _budget_held(response):
            # Not spent: reservations of calls in flight hold the rest. The pacer has paused
            # and slowed down, as for a 429; ask again once they have settled.
            budget_deadline = budget_deadline or time.monotonic() + BUDGET_WAIT_MAX_S
            if time.monotonic() < budget_deadline:
                continue
            return response
        if response.status in FATAL_STATUSES and not _is_page_specific(response):
            raise _refusal(response)
        attempt += 1
        if response.status not in RETRY_STATUSES or attempt == MAX_TRIES:
            return response


def _budget_held(response: Response) -> bool:
    """A 402 with retry-after: the budget is held by reservations in flight, not spent."""
    return response.status == 402 and "retry-after" in response.headers


def _refusal(response: Response) -> FatalBatchError:
    message = f"HTTP {response.status}: {_error_text(response)}"
    if response.status != 402:
        return FatalBatchError(message)
    headers = response.headers
    return FatalBatchError(
        message, budget_spent=True, limit=headers.get("x-nemo-budget-limit"),
        spent=headers.get("x-nemo-budget-spent"),
    )  # fmt: skip


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


def _add_usage(record: dict[str, Any], response: Response) -> None:
    """Tokens as the provider reported them, summed over the asks (the estimate's check)."""
    try:
        usage = json.loads(response.body)["usage"]
        counts = {k: int(usage[k]) for k in ("prompt_tokens", "completion_tokens")}
    except (ValueError, KeyError, TypeError):
        return
    for key, value in counts.items():
        record[key] = record.get(key, 0) + value


def _content(response: Response) -> str | None:
    try:
        content = json.loads(response.body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def _finish_reason(response: Response) -> str | None:
    try:
        reason = json.loads(response.body)["choices"][0]["finish_reason"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return reason if isinstance(reason, str) else None


def _cost(header: str | None) -> Decimal | None:
    if header is None:
        return None
    try:
        return Decimal(header)
    except InvalidOperation:
        return None
