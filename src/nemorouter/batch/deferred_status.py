"""The deferred batches of a job for `batch status`: as recorded in OUT/deferred.json, each
batch not yet collected asked for its current state at the gateway (read-only: nothing is
written, so it is safe while a run or `batch collect` holds OUT)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nemorouter.batch.deferred_api import BatchApi, DeferredApiError, DeferredUnreachable
from nemorouter.batch.deferred_ledger import part_view, read_parts

STATUS_TIMEOUT_S = 5.0


def deferred_status(out: Path, base_url: str, api_key: str | None) -> list[dict[str, Any]]:
    parts = read_parts(out)
    api = BatchApi(base_url, api_key, STATUS_TIMEOUT_S)
    views = []
    for part in parts:
        view = part_view(part)
        if part.batch_id and not part.collected:
            try:
                batch = api.retrieve(part.batch_id)
                view["status"] = batch.get("status", view["status"])
                if isinstance(batch.get("request_counts"), dict):
                    view["request_counts"] = batch["request_counts"]
                view["polled"] = True
            except (DeferredApiError, DeferredUnreachable) as exc:
                view["polled"] = False
                view["poll_error"] = str(exc)
        views.append(view)
    return views
