"""Simulated answers honour what was asked (a label, a schema) with believable values, and
say they are placeholders: the batch runner's own checks accept them (issue 21, item 5)."""

from __future__ import annotations

import datetime
import http.client
import json
import re
from decimal import Decimal

from nemorouter.batch.prompts import check_answer, classification, extraction, request_body
from nemorouter.demo import INVOICE_SCHEMA
from nemorouter.testing import Fault, SimulatedAnthropic, SimulatedGemini, SimulatedProvider
from nemorouter.testing.sim_answers import build_answer
from nemorouter.testing.sim_plausible import PLACEHOLDER_MARK, requested_labels

LABELS = ["invoice", "receipt", "delivery note"]


def body(task, page: str) -> dict:  # type: ignore[no-untyped-def]
    parts = [{"type": "text", "text": page}]
    return request_body(task, model="m", metadata={}, tags=[], no_cache=False, parts=parts)


def test_a_classification_is_answered_with_one_of_its_labels() -> None:
    task = classification(LABELS)
    answers = [build_answer(body(task, f"page {n}")).content for n in range(30)]
    assert all(check_answer(task, a) == (a, None) for a in answers)
    assert set(answers) == set(LABELS)  # the choice varies with the page
    assert build_answer(body(task, "page 1")).content == answers[1]  # and is deterministic
    # The re-ask keeps the labels of the first question.
    reask = request_body(task, model="m", metadata={}, tags=[], no_cache=False,
                         parts=[{"type": "text", "text": "p"}], retry_of=("maybe", "no label"))  # fmt: skip
    assert build_answer(reask).content in LABELS


def test_labels_are_read_from_the_prompt_only_when_it_names_them() -> None:
    assert requested_labels(classification(LABELS).instruction) == LABELS
    assert requested_labels("Describe this page in one of these ways") == []
    plain = {"model": "m", "messages": [{"role": "user", "content": "Describe the page."}]}
    assert build_answer(plain).content.startswith("Simulated answer from m")


def test_an_invoice_extraction_looks_like_an_invoice_and_says_it_is_simulated() -> None:
    task = extraction(INVOICE_SCHEMA)
    for n in range(20):
        content = build_answer(body(task, f"page {n}")).content
        output, problem = check_answer(task, content)
        assert problem is None, content
        datetime.date.fromisoformat(output["invoice_date"])
        total = Decimal(str(output["total"]))
        assert total == total.quantize(Decimal("0.01")) and Decimal(10) <= total <= 5000
        assert re.fullmatch(r"INV-20\d\d-\d{4} \(simulated\)", output["invoice_number"])
        vendor = output["vendor"]
        assert vendor.endswith(PLACEHOLDER_MARK)
        assert re.fullmatch(
            r"[A-Z][a-z]+ [A-Z][A-Za-z& ]+ [A-Z][A-Za-z.]+", vendor[: -len(PLACEHOLDER_MARK)]
        )
        assert output["currency"] in ("USD", "EUR", "GBP")


def test_the_mark_never_breaks_a_length_bound() -> None:
    schema = {
        "type": "object",
        "properties": {
            "vendor": {"type": "string", "maxLength": 12},
            "notes": {"type": "string", "maxLength": 20},
            "quantity": {"type": "integer", "minimum": 1},
            "unit_price": {"type": "number", "maximum": 5},
        },
        "required": ["vendor", "notes", "quantity", "unit_price"],
        "additionalProperties": False,
    }
    task = extraction(schema)
    for n in range(10):
        content = build_answer(body(task, f"page {n}")).content
        assert check_answer(task, content)[1] is None, content
        assert json.loads(content)["unit_price"] <= 5


def _post(port: int, path: str, body: object, headers: dict[str, str]) -> dict:  # type: ignore[type-arg]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json", **headers})
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    assert response.status == 200, data
    return data  # type: ignore[no-any-return]


def test_every_simulator_answers_a_classification_with_a_label() -> None:
    instruction = classification(LABELS).instruction
    with SimulatedProvider() as sim, SimulatedGemini() as gemini, SimulatedAnthropic() as claude:
        chat = {"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": instruction}]}]}  # fmt: skip
        openai_answer = _post(sim.port, "/v1/chat/completions", chat, {})
        assert openai_answer["choices"][0]["message"]["content"] in LABELS
        contents = {"contents": [{"role": "user", "parts": [{"text": instruction}]}]}
        google = _post(gemini.port, "/v1beta/models/gemini-2.5-pro:generateContent", contents,
                       {"x-goog-api-key": "k"})  # fmt: skip
        assert google["candidates"][0]["content"]["parts"][0]["text"] in LABELS
        messages = {"model": "claude-haiku-4-5", "max_tokens": 100,
                    "messages": [{"role": "user", "content": instruction}]}  # fmt: skip
        anthropic = _post(claude.port, "/v1/messages", messages,
                          {"x-api-key": "k", "anthropic-version": "2023-06-01"})  # fmt: skip
        assert anthropic["content"][0]["text"] in LABELS
        # A wrong answer on demand (a client's re-ask is tested with it), usage as usual.
        sim.inject(Fault.answer("no label here"))
        wrong = _post(sim.port, "/v1/chat/completions", chat, {})
        assert wrong["choices"][0]["message"]["content"] == "no label here"
        assert wrong["usage"]["completion_tokens"] == 4
        again = _post(sim.port, "/v1/chat/completions", chat, {})
        assert again["choices"][0]["message"]["content"] in LABELS  # one request only
