"""The OpenAI objects the endpoints answer with (openai-python types/file_object.py,
types/batch.py), built from the store's rows, and the output/error file lines."""

from __future__ import annotations

import os
from typing import Any

import orjson

ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
WINDOW_S = 24 * 3600
_TIMES = (
    "in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at",
    "cancelling_at", "cancelled_at", "expires_at",
)  # fmt: skip


def new_id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(12).hex()}"


def file_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "file",
        "bytes": int(row["bytes"]),
        "created_at": int(row["created_at"]),
        "filename": row["filename"],
        "purpose": row["purpose"],
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }


def batch_object(row: dict[str, Any]) -> dict[str, Any]:
    errors = orjson.loads(row["errors"]) if row.get("errors") else None
    batch: dict[str, Any] = {
        "id": row["id"],
        "object": "batch",
        "endpoint": ENDPOINT,
        "completion_window": COMPLETION_WINDOW,
        "input_file_id": row["input_file_id"],
        "output_file_id": row["output_file_id"],
        "error_file_id": row["error_file_id"],
        "status": row["status"],
        "created_at": int(row["created_at"]),
        "errors": {"object": "list", "data": errors} if errors else None,
        "metadata": orjson.loads(row["metadata"]) if row.get("metadata") else None,
        "request_counts": {
            "total": int(row["total"]),
            "completed": int(row["completed"]),
            "failed": int(row["failed"]),
        },
    }
    for name in _TIMES:
        value = row.get(name)
        batch[name] = None if value is None else int(value)
    return batch


def output_line(
    custom_id: str, status: int, request_id: str, body: dict[str, Any] | None,
    error: dict[str, Any] | None = None,
) -> str:  # fmt: skip
    """One line of the output (status 200) or error file: an answer or an error body with
    its HTTP status, or (`error`) a line that never got an HTTP answer (expired, cancelled)."""
    response = None if error is not None else {
        "status_code": status, "request_id": request_id, "body": body,
    }  # fmt: skip
    return orjson.dumps(
        {"id": new_id("batch_req"), "custom_id": custom_id, "response": response, "error": error}
    ).decode()
