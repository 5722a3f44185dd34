"""A deferred batch's output and error files, turned into result records (results.jsonl).

Output and error lines are OpenAI's per-line objects (`{"id", "custom_id", "response":
{"status_code", "request_id", "body"}, "error": {"code", "message"}}`; openai-python
`resources/batches.py`, OpenAI's BatchRequestOutput). A 200 line's body is a
`chat.completion` whose `usage.cost` (decimal USD, as the gateway puts it on interactive
answers) is the line's cost. The answer is checked as the interactive runner checks it
(schema, labels); one that fails is re-asked once through the interactive path only with
`--reask interactive` (at the interactive price), else the page fails with the reason and
keeps the answer. A request with no line in either file fails its page, as does every
request of a batch that failed as a whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from nemorouter.batch.deferred_api import BatchApi, DeferredApiError, DeferredUnreachable
from nemorouter.batch.deferred_ledger import Part
from nemorouter.batch.prompts import Task, check_answer, request_body


def part_records(
    api: BatchApi, out: Path, part: Part, task: Task, *, reask: bool
) -> list[dict[str, Any]]:
    """One record per unit of an ended part (raises DeferredApiError/DeferredUnreachable when a
    file cannot be read: the part stays uncollected and is read again later)."""
    lines: dict[str, dict[str, Any]] = {}
    for file_id in (part.error_file_id, part.output_file_id):  # output last: it wins
        if file_id:
            for line in _jsonl(api.content(file_id)):
                if isinstance(line.get("custom_id"), str):
                    lines[line["custom_id"]] = line
    records: dict[str, dict[str, Any]] = {}
    to_reask: dict[str, tuple[str, str]] = {}
    for cid, unit in part.units.items():
        record = _blank(unit[0], unit[1], unit[2] if len(unit) > 2 else None, part.batch_id)
        line = lines.get(cid)
        if line is None:
            record["error"] = _missing(part)
        else:
            problem = _fill(record, line, task)
            if problem is not None and reask:
                to_reask[cid] = problem
        records[cid] = record
    if to_reask:
        bodies = _bodies(out / part.file, set(to_reask))
        for cid, retry_of in to_reask.items():
            if cid in bodies:
                _reask(api, records[cid], bodies[cid], task, retry_of)
    return list(records.values())


def _blank(doc: str, pages: list[int], sent: str | None, batch_id: str | None) -> dict[str, Any]:
    return {"doc": doc, "page": pages[0], "pages": list(pages), "sent": sent,
            "status": "failed", "output": None, "model": None, "cost_usd": None,
            "cache": None, "fallbacks": None, "latency_ms": None, "error": None,
            "deferred": True, "batch_id": batch_id}  # fmt: skip


def _missing(part: Part) -> str:
    if part.status == "failed":
        why = "; ".join(part.errors) or "no reason given"
        return f"deferred batch {part.batch_id} failed: {why}"
    return f"no result for this request in deferred batch {part.batch_id} ({part.status})"


def _fill(record: dict[str, Any], line: dict[str, Any], task: Task) -> tuple[str, str] | None:
    """The record from a line; (answer, problem) when the answer is not acceptable."""
    response = line.get("response") if isinstance(line.get("response"), dict) else None
    body = response.get("body") if response and isinstance(response.get("body"), dict) else {}
    cost = _cost(body)
    record["cost_usd"] = str(cost) if cost is not None else None
    record["model"] = body.get("model") if isinstance(body.get("model"), str) else None
    _usage(record, body)
    status = response.get("status_code") if response else None
    if status != 200:
        error = line.get("error") if isinstance(line.get("error"), dict) else None
        error = error or (body.get("error") if isinstance(body.get("error"), dict) else {})
        code, message = error.get("code"), error.get("message")
        where = f"HTTP {status}: " if status else ""
        record["error"] = f"deferred: {where}{code or 'error'}: {message or 'no message'}"[:600]
        return None
    content, finish = _choice(body)
    if finish == "length":
        record["error"] = (
            "the answer was cut short at max_tokens; run again with a larger --max-tokens"
        )
        record["answer"] = content
        return None
    output, problem = check_answer(task, content)
    if problem is None:
        record.update(status="ok", output=output, error=None)
        return None
    record["error"] = problem
    record["answer"] = content  # not acceptable, but paid for: kept for the reader
    return (content or "", problem)


def _reask(
    api: BatchApi, record: dict[str, Any], body: dict[str, Any], task: Task,
    retry_of: tuple[str, str],
) -> None:  # fmt: skip
    """Once more through the interactive path (the caller allowed it): the same body as the
    interactive runner's re-ask, cost added to the deferred answer's."""
    again = request_body(
        task, model=body["model"], parts=body["messages"][0]["content"][1:],
        metadata=body.get("metadata") or {}, tags=body.get("tags") or [],
        no_cache=body.get("nemo_cache") is False, max_tokens=body.get("max_tokens"),
        retry_of=retry_of,
    )  # fmt: skip
    try:
        status, headers, raw = api.post_chat(again)
    except DeferredUnreachable as exc:
        record["error"] += f"; the interactive re-ask failed: {exc}"
        return
    answer = _json(raw)
    if status != 200:
        record["error"] += f"; the interactive re-ask failed: HTTP {status}"
        return
    cost = _decimal(headers.get("x-nemo-response-cost"))
    if cost is None:
        cost = _cost(answer)
    first = _decimal(record["cost_usd"])
    record["cost_usd"] = str(first + cost) if first is not None and cost is not None else None
    record["reasked"] = "interactive"
    _usage(record, answer)
    content, _finish = _choice(answer)
    output, problem = check_answer(task, content)
    if problem is None:
        record.update(status="ok", output=output, error=None)
        record.pop("answer", None)
    else:
        record.update(error=problem, answer=content)


def _bodies(path: Path, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """The request bodies of `wanted` from the part's input file (read a line at a time)."""
    found: dict[str, dict[str, Any]] = {}
    try:
        with path.open("rb") as file:
            for raw in file:
                line = json.loads(raw)
                if line.get("custom_id") in wanted:
                    found[line["custom_id"]] = line["body"]
    except (OSError, ValueError):
        pass  # the input file is gone: the page fails with its first answer's reason
    return found


def _jsonl(data: bytes) -> Iterator[dict[str, Any]]:
    for raw in data.splitlines():
        if raw.strip():
            line = _json(raw)
            if line:
                yield line


def _json(raw: bytes) -> dict[str, Any]:
    try:
        found = json.loads(raw, parse_float=Decimal)  # a cost stays exact
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _choice(body: dict[str, Any]) -> tuple[str | None, str | None]:
    try:
        choice = body["choices"][0]
        content, finish = choice["message"].get("content"), choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None, None
    return (content if isinstance(content, str) else None,
            finish if isinstance(finish, str) else None)  # fmt: skip


def _cost(body: dict[str, Any]) -> Decimal | None:
    usage = body.get("usage")
    return _decimal(usage.get("cost")) if isinstance(usage, dict) else None


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(value) if isinstance(value, (str, Decimal, int)) else None
    except InvalidOperation:
        return None


def _usage(record: dict[str, Any], body: dict[str, Any]) -> None:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return
    for key in ("prompt_tokens", "completion_tokens"):
        if isinstance(usage.get(key), int):
            record[key] = record.get(key, 0) + usage[key]


def file_error(exc: DeferredApiError | DeferredUnreachable) -> str:
    return f"cannot read the batch's results yet: {exc}"
