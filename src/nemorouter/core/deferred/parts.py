"""One part of a batch: its lines on one deployment's provider batch API (submit, poll with
backoff, read the results), or through the interactive pipeline with bounded concurrency
(the router paces them at the deployment's rpm/tpm quota, as any request)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson

from nemorouter.config import DeferredSettings
from nemorouter.core.deferred.admit import parse_line
from nemorouter.core.deferred.lines import BatchContext, Recorded, answered, settle, unanswered
from nemorouter.core.deferred.objects import output_line
from nemorouter.core.deployments import Deployment
from nemorouter.core.pipeline import Inbound, Pipeline
from nemorouter.store.deferred_repo import PENDING, DeferredRepo
from nemorouter.store.writer import SpendWriter
from nemorouter.types.deferred import DeferredBackend, DeferredLine, PartStatus
from nemorouter.types.errors import GatewayError
from nemorouter.types.money import to_pico
from nemorouter.types.upstream import UpstreamFailure

log = logging.getLogger("nemorouter.deferred")
NO_MEDIA: Mapping[str, Any] = MappingProxyType({})
KEY_LIMIT_RETRIES = 20  # a line held back by the key's own rpm/tpm waits its turn


class PartRunner:
    def __init__(
        self,
        settings: DeferredSettings,
        repo: DeferredRepo,
        pipeline: Pipeline,
        backends: Mapping[str, DeferredBackend],
        reservations: dict[tuple[str, int], Any],
        writer: SpendWriter,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.repo = repo
        self.pipeline = pipeline
        self.backends = backends
        self.reservations = reservations
        self.deployments: dict[str, Deployment] = {
            d.id: d for ds in pipeline.pool.by_model.values() for d in ds
        }

    async def _record(self, context: BatchContext, done: list[Recorded]) -> None:
        recorded = set(await self.repo.record(context.batch_id, done))
        await settle(
            self.pipeline.budgets,
            self.reservations,
            context,
            [r for r in done if r[0] in recorded],
        )

    def _lines(
        self, context: BatchContext, deployment: Deployment, rows: list[dict[str, Any]]
    ) -> tuple[list[DeferredLine], list[Recorded]]:
        """The part's lines in the deployment's wire format (as its adapter prepares an
        interactive call); a line the adapter refuses is an error line."""
        lines, refused = [], []
        for row in rows:
            number = row["line"]
            try:
                request = parse_line(context.bodies[number][1])
                up = deployment.adapter.prepare(deployment.target, request.body, NO_MEDIA, False)
            except GatewayError as error:
                custom_id = context.bodies[number][0]
                outcome = output_line(
                    custom_id, error.status, context.request_id(number), error.body()
                )
                refused.append((number, "error", outcome, None, None))
                continue
            lines.append(DeferredLine(f"l{number}", up.wire, up.path, up.structured))
        return lines, refused

    async def run_batch_part(
        self, context: BatchContext, part: dict[str, Any], stopping: str | None, fallback: bool
    ) -> None:
        """One step of a provider-batch part: submit, cancel, poll or collect."""
        deployment = self.deployments[part["deployment"]]
        backend = self.backends[deployment.config.provider]
        now = time.time()
        if part["provider_id"] is None:
            if stopping:
                await self.close_unanswered(context, part, stopping)
                return
            rows = await self.repo.lines(context.batch_id, part["id"], PENDING)
            lines, refused = self._lines(context, deployment, rows)
            await self._record(context, refused)
            if not lines:
                await self.repo.set_part(part["id"], status="completed")
                return
            if part["next_poll_at"] > now:  # a failed submission waits its backoff
                return
            try:
                provider_id = await backend.submit(deployment.target, lines)
            except UpstreamFailure as failure:
                await self._submit_failed(context, part, deployment, backend, failure, fallback)
                return
            # Stored before anything else: a restart polls this batch, never submits again.
            await self.repo.set_part(
                part["id"], provider_id=provider_id, status="validating",
                next_poll_at=now + self.settings.poll_s,
            )  # fmt: skip
            log.info("batch %s: part %s submitted to %s as %s (%d lines)",
                     context.batch_id, part["id"], deployment.id, provider_id, len(lines))  # fmt: skip
            return
        provider_id = part["provider_id"]
        if stopping and part["status"] not in ("cancelling",):
            await backend.cancel(provider_id)
            await self.repo.set_part(part["id"], status="cancelling", next_poll_at=now)
            return
        if part["next_poll_at"] > now:
            return
        polls = part["polls"] + 1
        wait = min(self.settings.poll_s * 2 ** min(polls, 20), self.settings.poll_max_s)
        try:
            progress = await backend.poll(provider_id)
        except UpstreamFailure as failure:
            log.warning("batch %s: polling %s failed: %s", context.batch_id, provider_id,
                        failure.describe())  # fmt: skip
            await self.repo.set_part(part["id"], polls=polls, next_poll_at=now + wait)
            return
        if not progress.status.ended:
            status = "cancelling" if part["status"] == "cancelling" else progress.status.value
            await self.repo.set_part(
                part["id"], status=status, polls=polls, next_poll_at=now + wait
            )
            return
        await self._collect(context, part, deployment, backend, progress.status, progress.message,
                            fallback and not stopping)  # fmt: skip

    async def _collect(
        self, context: BatchContext, part: dict[str, Any], deployment: Deployment,
        backend: DeferredBackend, status: PartStatus, message: str | None, fallback: bool,
    ) -> None:  # fmt: skip
        rows = await self.repo.lines(context.batch_id, part["id"], PENDING)
        lines, _ = self._lines(context, deployment, rows)
        pending = {row["line"] for row in rows}
        done: list[Recorded] = []
        retry: list[int] = []
        if status is not PartStatus.FAILED:
            async for outcome in backend.results(deployment.target, part["provider_id"], lines):
                number = int(outcome.custom_id[1:])
                if number not in pending:
                    continue
                if outcome.response is None and fallback:
                    retry.append(number)  # the failed line goes live instead (usage, if any, below)
                    if outcome.usage:
                        done_row = answered(context, number, deployment, outcome)
                        await self._record_spend_only(done_row)
                else:
                    done.append(answered(context, number, deployment, outcome))
                pending.discard(number)
        for number in sorted(pending):
            if fallback:
                retry.append(number)
            else:
                code = "batch_failed" if status is PartStatus.FAILED else "no_result"
                why = message or f"the provider batch ended {status.value} without this line"
                done.append(unanswered(context, number, code, why))
        await self._record(context, done)
        if retry:
            await settle(self.pipeline.budgets, self.reservations, context,
                         [(n, "", "", 0, None) for n in retry])  # fmt: skip
            await self.repo.add_part(
                {"id": f"{part['id']}-live", "batch_id": context.batch_id, "deployment": None,
                 "mode": "interactive", "provider_id": None, "status": "validating",
                 "polls": 0, "next_poll_at": 0.0},
                retry,
            )  # fmt: skip
        await self.repo.set_part(part["id"], status=status.value, message=message)

    async def _submit_failed(
        self, context: BatchContext, part: dict[str, Any], deployment: Deployment,
        backend: DeferredBackend, failure: UpstreamFailure, fallback: bool,
    ) -> None:  # fmt: skip
        """A provider refusing the batch for good fails its lines (or runs them live with
        `fallback`); a passing failure (rate limit, outage) is tried again with backoff."""
        log.warning("batch %s: submitting part %s to %s failed: %s", context.batch_id,
                    part["id"], deployment.id, failure.describe())  # fmt: skip
        if failure.retryable:
            polls = part["polls"] + 1
            wait = min(self.settings.poll_s * 2 ** min(polls, 20), self.settings.poll_max_s)
            await self.repo.set_part(part["id"], polls=polls, next_poll_at=time.time() + wait)
            return
        await self._collect(context, part, deployment, backend, PartStatus.FAILED,
                            failure.describe(), fallback)  # fmt: skip

    async def _record_spend_only(self, done: Recorded) -> None:
        """A failed line the provider still charged: its spend is kept though it is retried."""
        row = done[4]
        if row is not None:
            await self.writer.add(row)

    async def close_unanswered(self, context: BatchContext, part: dict[str, Any], why: str) -> None:
        rows = await self.repo.lines(context.batch_id, part["id"], PENDING)
        message = f"the batch was {why} before this line ran"
        done = [unanswered(context, r["line"], f"batch_{why}", message) for r in rows]
        await self._record(context, done)
        await self.repo.set_part(part["id"], status=why)

    async def run_interactive_part(
        self, context: BatchContext, part: dict[str, Any], stopped: asyncio.Event
    ) -> None:
        """Every pending line of the part through the interactive pipeline."""
        rows = await self.repo.lines(context.batch_id, part["id"], PENDING)
        gate = asyncio.Semaphore(self.settings.interactive_concurrency)
        header = context.job_id.encode() if context.job_id else None

        async def one(number: int) -> None:
            async with gate:
                if stopped.is_set():
                    return
                await self._record(context, [await self._live(context, number, header)])

        await asyncio.gather(*(one(r["line"]) for r in rows))
        if not stopped.is_set():
            await self.repo.set_part(part["id"], status="completed")

    async def _live(self, context: BatchContext, number: int, header: bytes | None) -> Recorded:
        custom_id, body = context.bodies[number]
        request_id = f"{context.request_id(number)}-live"
        raw = orjson.dumps(body)
        for _ in range(KEY_LIMIT_RETRIES):
            try:
                routed = await self.pipeline.chat_as(
                    context.caller, raw, Inbound(request_id, None, None, header)
                )
            except GatewayError as error:
                after = error.headers.get("retry-after") if error.headers else None
                if error.status == 429 and after:  # the key's own rate limit: wait, go on
                    await asyncio.sleep(float(after))
                    continue
                outcome = output_line(custom_id, error.status, request_id, error.body())
                return number, "error", outcome, None, None
            response = routed.response
            cost = None if routed.cost is None else to_pico(routed.cost)
            return number, "done", output_line(custom_id, 200, request_id, response), cost, None
        held = {"code": "rate_limit_exceeded", "message": "the key's rate limit held it too long"}
        return number, "error", output_line(custom_id, 429, request_id, {"error": held}), None, None
