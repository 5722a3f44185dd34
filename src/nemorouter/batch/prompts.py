"""What the batch asks of each page, and whether an answer is acceptable.

Three modes: extraction against a JSON schema (validated; `response_format: json_schema`),
classification into fixed labels (the answer must be exactly one label), or a free prompt.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import jsonschema

# Default output bound per mode (`--max-tokens`). The gateway reserves a call's worst case
# against a budget before sending it, and without a bound that is the model's whole output
# window (65k tokens on Gemini 2.5): one call could hold a small budget alone. Thinking
# models (Gemini 2.5) count their reasoning against this bound, hence the headroom.
DEFAULT_MAX_TOKENS = {
    # A label is a few tokens; 1k leaves room for a short reasoning pass before it.
    "classify": 1024,
    # A dense invoice page (50+ line items) is 2-4k tokens of JSON, plus reasoning; 8192 is
    # also the most every vision model in the catalog accepts (gemini-2.0-flash, llama-4).
    "extract": 8192,
    # A free prompt may ask for a whole page transcribed: as much as an extraction.
    "prompt": 8192,
}


class UsageError(ValueError):
    """The batch was asked for something impossible (exit code 2)."""


@dataclass(frozen=True, slots=True)
class Task:
    mode: str  # "extract" | "classify" | "prompt"
    instruction: str
    schema: dict[str, Any] | None = None
    labels: tuple[str, ...] = ()

    def fingerprint(self) -> str:
        """Identifies the task in the journal, so a resume cannot mix two different jobs."""
        return json.dumps(
            {"mode": self.mode, "instruction": self.instruction, "schema": self.schema,
             "labels": self.labels},
            sort_keys=True,
        )  # fmt: skip


def extraction(schema: Any) -> Task:
    if not isinstance(schema, dict):
        raise UsageError("the schema file must hold a JSON object (a JSON Schema)")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise UsageError(f"the schema is not a valid JSON Schema: {exc.message}") from None
    return Task(
        "extract",
        "Extract the fields described by the JSON schema from this document page. "
        "Answer with one JSON object that matches the schema; use null where a field is absent.",
        schema=schema,
    )


def classification(labels: list[str]) -> Task:
    cleaned = tuple(dict.fromkeys(label.strip() for label in labels if label.strip()))
    if len(cleaned) < 2:
        raise UsageError("--classify needs at least two labels, e.g. --classify invoice,receipt")
    return Task(
        "classify",
        "Classify this document page. Answer with exactly one of these labels and nothing "
        f"else: {', '.join(cleaned)}.",
        labels=cleaned,
    )


def free_prompt(text: str) -> Task:
    if not text.strip():
        raise UsageError("--prompt must not be empty")
    return Task("prompt", text.strip())


def request_body(
    task: Task,
    *,
    model: str,
    metadata: dict[str, Any],
    tags: list[str],
    no_cache: bool,
    max_tokens: int | None = None,
    retry_of: tuple[str, str] | None = None,
    image: bytes | None = None,
    mime: str | None = None,
    parts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One chat-completions body for a page (`image` of type `mime`) or for what `parts`
    hold (a page's text, a PDF file part); `retry_of` = (bad answer, why) re-asks once."""
    if parts is None:
        if image is None or mime is None:
            raise TypeError("request_body needs image and mime, or parts")
        url = f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"
        parts = [{"type": "image_url", "image_url": {"url": url}}]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": task.instruction}, *parts]}
    ]
    if retry_of is not None:
        answer, problem = retry_of
        messages.append({"role": "assistant", "content": answer})
        messages.append(
            {"role": "user", "content": f"That answer is not acceptable: {problem}. Answer again."}
        )
    body: dict[str, Any] = {"model": model, "messages": messages, "metadata": metadata}
    # `max_tokens`, not `max_completion_tokens`: every OpenAI-compatible server reads it, and
    # the gateway reads either (for its budget reservation and for each provider).
    body["max_tokens"] = max_tokens or DEFAULT_MAX_TOKENS[task.mode]
    if task.schema is not None:
        name = str(task.schema.get("title") or "extraction")
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": _schema_name(name), "schema": task.schema},
        }
    if tags:
        body["tags"] = tags
    if no_cache:
        body["nemo_cache"] = False
    return body


def check_answer(task: Task, content: str | None) -> tuple[Any, str | None]:
    """The accepted output, or (None, the reason the answer is not acceptable)."""
    if content is None or not content.strip():
        return None, "the answer is empty"
    if task.mode == "prompt":
        return content, None
    if task.mode == "classify":
        answer = content.strip().strip(".\"'` ").lower()
        for label in task.labels:
            if answer == label.lower():
                return label, None
        return None, f"{content.strip()[:80]!r} is not one of the labels {list(task.labels)}"
    try:
        value = json.loads(content)
    except json.JSONDecodeError as exc:
        return None, f"the answer is not valid JSON ({exc.msg})"
    assert task.schema is not None
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(task.schema).iter_errors(value)
    )
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return None, f"the answer does not match the schema at {where}: {error.message[:200]}"
    return value, None


def _schema_name(name: str) -> str:
    """OpenAI allows a-z, A-Z, 0-9, _ and - in the schema name, at most 64 characters."""
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)
    return safe[:64] or "extraction"
