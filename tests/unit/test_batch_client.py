"""One page through a fake gateway: an answer received is never dropped (a refusal of the
re-ask carries it), a budget held by calls in flight is waited out, a cut-short answer is
not re-asked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nemorouter.batch.client import FatalBatchError, GatewayClient, process_page
from nemorouter.batch.pacing import Pacer
from nemorouter.batch.prompts import classification, extraction
from nemorouter.batch.sources import Page
from nemorouter.providers.http_connection import Response

PAGE = Page("a.png", 1, "image/png", b"\x89PNG", 10, 10)


def answer(content: str, cost: str, finish: str = "stop") -> Response:
    body = {"choices": [{"message": {"content": content}, "finish_reason": finish}]}
    headers = {"x-nemo-response-cost": cost, "x-nemo-model": "m"}
    return Response(200, headers, json.dumps(body).encode())


def budget_refusal(retry_after: str | None) -> Response:
    headers = {"x-nemo-budget-limit": "0.001", "x-nemo-budget-spent": "0.00105"}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    body = {"error": {"message": "The budget of key 'k' is spent", "type": "insufficient_quota",
                      "param": None, "code": "budget_exceeded"}}  # fmt: skip
    return Response(402, headers, json.dumps(body).encode())


class FakeGateway:
    def __init__(self, *responses: Response) -> None:
        self.responses = list(responses)
        self.bodies: list[dict[str, Any]] = []

    async def post(self, body: dict[str, Any]) -> Response:
        self.bodies.append(body)
        return self.responses.pop(0)


async def ask(gateway: FakeGateway, task: Any, pacer: Pacer | None = None) -> dict[str, Any]:
    client: GatewayClient = gateway  # type: ignore[assignment]
    return await process_page(client, pacer or Pacer(4), task, PAGE, job_id="j", model="auto",
                              tags=[], no_cache=False)  # fmt: skip


async def test_a_spent_budget_on_the_reask_keeps_the_paid_first_answer() -> None:
    gateway = FakeGateway(answer("maybe an invoice", "0.0002"), budget_refusal(None))
    with pytest.raises(FatalBatchError) as stopped:
        await ask(gateway, classification(["invoice", "receipt"]))
    refusal = stopped.value
    assert refusal.budget_spent and (refusal.limit, refusal.spent) == ("0.001", "0.00105")
    record = refusal.record
    assert record is not None and record["status"] == "failed"
    assert record["answer"] == "maybe an invoice" and record["cost_usd"] == "0.0002"


async def test_nothing_received_means_no_record() -> None:
    with pytest.raises(FatalBatchError) as stopped:
        await ask(FakeGateway(budget_refusal(None)), classification(["invoice", "receipt"]))
    assert stopped.value.record is None  # the page was not paid for: a rerun sends it


async def test_a_budget_held_by_calls_in_flight_is_waited_out() -> None:
    gateway = FakeGateway(budget_refusal("0.05"), budget_refusal("0.05"), answer("invoice", "1"))
    pacer = Pacer(4)
    record = await ask(gateway, classification(["invoice", "receipt"]), pacer)
    assert record["status"] == "ok" and record["output"] == "invoice"
    assert pacer.budget_waits == 2 and pacer.limit == 2  # 4, halved twice, +1 on the success
    assert [b["max_tokens"] for b in gateway.bodies] == [1024] * 3  # the classify default


async def test_an_answer_cut_short_is_not_reasked() -> None:
    gateway = FakeGateway(answer('{"vendor": "Acme", "tot', "0.01", finish="length"))
    record = await ask(gateway, extraction({"type": "object"}))
    assert record["status"] == "failed" and len(gateway.bodies) == 1
    assert "cut short at max_tokens 8192" in record["error"] and "--max-tokens" in record["error"]
    assert record["answer"] == '{"vendor": "Acme", "tot' and record["cost_usd"] == "0.01"


async def test_the_reask_says_it_is_one_in_its_metadata() -> None:
    gateway = FakeGateway(answer("maybe an invoice", "0.0002"), answer("invoice", "0.0001"))
    record = await ask(gateway, classification(["invoice", "receipt"]))
    assert record["status"] == "ok"
    first, again = (b["metadata"] for b in gateway.bodies)
    assert first == {"job_id": "j", "doc": "a.png", "page": 1}
    assert again == {**first, "reask": True}  # the job view counts it apart from pages
