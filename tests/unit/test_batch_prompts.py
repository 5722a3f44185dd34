"""Batch prompts: the request body per mode, and which answers are accepted."""

from __future__ import annotations

import base64
import json

import pytest

from nemorouter.batch.prompts import (
    UsageError,
    check_answer,
    classification,
    extraction,
    free_prompt,
    request_body,
)

SCHEMA = {
    "title": "Invoice fields",
    "type": "object",
    "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}},
    "required": ["invoice_number", "total"],
}


def test_extraction_body_carries_schema_image_and_metadata() -> None:
    task = extraction(SCHEMA)
    body = request_body(task, model="auto", image=b"\x89PNG", mime="image/png",
                        metadata={"job_id": "j", "doc": "a.pdf", "page": 2}, tags=["eu"], no_cache=True)  # fmt: skip
    assert body["response_format"]["json_schema"]["name"] == "Invoice_fields"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    image = body["messages"][0]["content"][1]["image_url"]["url"]
    assert image == "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode()
    assert body["metadata"] == {"job_id": "j", "doc": "a.pdf", "page": 2}
    assert body["tags"] == ["eu"]
    assert body["nemo_cache"] is False


def test_reask_appends_the_bad_answer_and_the_reason() -> None:
    task = classification(["invoice", "receipt"])
    body = request_body(task, model="m", image=b"x", mime="image/jpeg", metadata={}, tags=[],
                        no_cache=False, retry_of=("banana", "not a label"))  # fmt: skip
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == "banana"
    assert "not a label" in body["messages"][2]["content"]
    assert "response_format" not in body


def test_schema_answers_are_validated() -> None:
    task = extraction(SCHEMA)
    assert check_answer(task, json.dumps({"invoice_number": "A1", "total": 5})) == (
        {"invoice_number": "A1", "total": 5},
        None,
    )
    output, problem = check_answer(task, json.dumps({"invoice_number": "A1", "total": "five"}))
    assert output is None
    assert problem is not None
    assert "total" in problem
    assert "not valid JSON" in (check_answer(task, "{nope")[1] or "")
    assert check_answer(task, "")[1] == "the answer is empty"


def test_classification_answers_must_be_one_label() -> None:
    task = classification(["invoice", "Receipt", "form"])
    assert check_answer(task, " receipt.\n") == ("Receipt", None)
    assert check_answer(task, '"invoice"') == ("invoice", None)
    assert "not one of the labels" in (check_answer(task, "an invoice, I think")[1] or "")


def test_usage_errors() -> None:
    with pytest.raises(UsageError):
        classification(["only-one"])
    with pytest.raises(UsageError):
        free_prompt("   ")
    with pytest.raises(UsageError, match="not a valid JSON Schema"):
        extraction({"type": "nonsense"})
    with pytest.raises(UsageError):
        extraction(["not", "an", "object"])
    assert check_answer(free_prompt("describe"), "a page") == ("a page", None)
