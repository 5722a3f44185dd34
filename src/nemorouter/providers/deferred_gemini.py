"""Gemini API batch mode: a deferred part as one batch of generateContent requests.

Wire facts (ai.google.dev/gemini-api/docs/batch-mode and ai.google.dev/api/batch-mode;
googleapis/python-genai `batches.py` (`_CreateBatchJobParameters_to_mldev`,
`_BatchJob_from_mldev`), `_transformers.py` (`t_job_state`), `files.py` and
`_api_client.py` (`upload_file`, `download_file`), `_extra_utils.py`
(`prepare_resumable_upload`)):
- create: POST /v1beta/models/{model}:batchGenerateContent `{"batch": {"displayName",
  "inputConfig": {"requests": {"requests": [{"request": GenerateContentRequest,
  "metadata": {"key"}}]}}}}` for inline requests (a total request size under 20 MB), else
  `"inputConfig": {"fileName": "files/…"}` naming a JSONL file of `{"key", "request"}` lines
  uploaded through the Files API; the answer is an Operation named `batches/{id}`;
- upload (resumable): POST /upload/v1beta/files with `X-Goog-Upload-Protocol: resumable`,
  `X-Goog-Upload-Command: start`, `X-Goog-Upload-Header-Content-Length` / `-Content-Type` and
  `{"file": {...}}`; the session URL comes back in `x-goog-upload-url`; the bytes go there
  with `X-Goog-Upload-Command: upload, finalize` and `X-Goog-Upload-Offset: 0`, answered by
  `{"file": {"name": "files/…"}}` and `x-goog-upload-status: final`;
- get: GET /v1beta/batches/{id}: `metadata.state` BATCH_STATE_* (the SDK maps them to the
  JOB_STATE_* names the guide uses; both are read), `metadata.batchStats` (int64 strings),
  the output in `metadata.output` (the SDK's reading) or `response` (the guide's REST
  sample): `inlinedResponses.inlinedResponses` in request order, each `response` or
  `error`, or `responsesFile`, a JSONL file of `{"key", "response" | "error"}` lines read
  at GET /v1beta/{file}:download?alt=media as the SDK's `files.download` reads it (the
  guide's curl sample puts /download in front; the SDK is the oracle);
- cancel: POST /v1beta/batches/{id}:cancel. An expired batch (pending or running 48 h) has
  no results.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from functools import partial
from typing import Any

import orjson

from nemorouter.config import ConfigError, ProviderConfig, Settings
from nemorouter.providers.answer_check import malformed, translated
from nemorouter.providers.deferred_http import DeferredHTTP, origin_path, require_lines
from nemorouter.providers.gemini import GEMINI_API_URL
from nemorouter.providers.gemini_response import to_completion, usage
from nemorouter.providers.request_fields import encoded
from nemorouter.providers.upstream_auth import KeyAuth
from nemorouter.types.deferred import DeferredLine, LineOutcome, PartProgress, PartStatus
from nemorouter.types.target import Target
from nemorouter.types.upstream import UpstreamFailure

WHO = "Gemini"
# "suitable for smaller batches that keep the total request size under 20MB" (batch-mode guide)
INLINE_LIMIT = 20_000_000
_STATES = {
    "PENDING": PartStatus.VALIDATING,
    "QUEUED": PartStatus.VALIDATING,
    "RUNNING": PartStatus.IN_PROGRESS,
    "PAUSED": PartStatus.IN_PROGRESS,
    "UPDATING": PartStatus.IN_PROGRESS,
    "SUCCEEDED": PartStatus.COMPLETED,
    "PARTIALLY_SUCCEEDED": PartStatus.COMPLETED,
    "FAILED": PartStatus.FAILED,
    "CANCELLING": PartStatus.CANCELLING,
    "CANCELLED": PartStatus.CANCELLED,
    "EXPIRED": PartStatus.EXPIRED,
}
# Where a stopped batch's unanswered lines went.
_STOPPED = {PartStatus.CANCELLED: "cancelled", PartStatus.EXPIRED: "expired"}


def job_status(state: Any) -> PartStatus:
    """A Gemini API (BATCH_STATE_*) or Vertex AI (JOB_STATE_*) state in the gateway's words;
    one not known yet counts as still running."""
    name = state if isinstance(state, str) else ""
    for prefix in ("BATCH_STATE_", "JOB_STATE_"):
        if name.startswith(prefix):
            return _STATES.get(name[len(prefix) :], PartStatus.IN_PROGRESS)
    return PartStatus.IN_PROGRESS


def count(value: Any) -> int:
    """An int64 count as Google's JSON sends it (a string), or absent."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 0
    return max(number, 0)


def error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("status") or error.get("code") or error)
    return str(error)


def line_outcome(line: DeferredLine, entry: dict[str, Any], model: str) -> LineOutcome:
    """One answered line (`response` a GenerateContentResponse, else `error` / `status`, a
    google.rpc.Status), translated as an interactive answer is."""
    response = entry.get("response")
    if isinstance(response, dict):
        try:
            completion = translated(WHO, partial(to_completion, response, model))
        except UpstreamFailure as failure:
            error = {"code": "malformed", "message": failure.message[:500]}
            return LineOutcome(line.custom_id, error=error, usage=_usage(response))
        return LineOutcome(line.custom_id, response=completion, usage=completion.get("usage"))
    status = entry.get("error") or entry.get("status") or {}
    code = status.get("status") or status.get("code") if isinstance(status, dict) else None
    error = {"code": str(code or "error"), "message": error_text(status)[:500]}
    return LineOutcome(line.custom_id, error=error)


def _usage(response: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return usage(response.get("usageMetadata"))
    except (UpstreamFailure, TypeError, ValueError, AttributeError):
        return None


def stopped_lines(
    status: PartStatus, lines: Iterable[DeferredLine], answered: set[str]
) -> list[LineOutcome]:
    """The lines a cancelled or expired batch never answered, as error lines."""
    reason = _STOPPED.get(status)
    if reason is None:
        return []
    message = f"the batch was {reason} before this line was processed"
    return [
        LineOutcome(line.custom_id, error={"code": reason, "message": message})
        for line in lines
        if line.custom_id not in answered
    ]


class GeminiBatches(DeferredHTTP):
    """Batch mode of one Gemini API key."""

    who = WHO
    inline_limit = INLINE_LIMIT

    def __init__(self, name: str, provider: ProviderConfig, settings: Settings) -> None:
        if provider.type != "gemini":
            raise ConfigError(f"providers.{name}.type", "Gemini API batch mode is for type gemini")
        if not provider.api_key:
            raise ConfigError(f"providers.{name}.api_key", "the Gemini API needs an api_key")
        self.auth = KeyAuth(f"x-goog-api-key: {provider.api_key}\r\n".encode())
        super().__init__(name, provider.base_url or GEMINI_API_URL, provider, settings)

    async def submit(self, target: Target, lines: Sequence[DeferredLine]) -> str:
        require_lines(lines)
        path = lines[0].path.replace(":generateContent", ":batchGenerateContent")
        version = path.split("/")[1]  # v1beta, as the adapter's paths have it
        display = f"nemorouter-{target.deployment_id}-{len(lines)}"
        requests = [{"request": ln.wire, "metadata": {"key": ln.custom_id}} for ln in lines]
        batch = {"displayName": display, "inputConfig": {"requests": {"requests": requests}}}
        body = encoded(WHO, {"batch": batch})
        if len(body) > self.inline_limit:
            del body, requests
            name = await self._upload(version, display, lines)
            body = encoded(
                WHO, {"batch": {"displayName": display, "inputConfig": {"fileName": name}}}
            )
        operation = await self._json(b"POST", path, body)
        name = operation.get("name")
        if not isinstance(name, str) or not name.startswith("batches/"):
            raise malformed(WHO, "a batch without a batches/ name")
        return name.removeprefix("batches/")

    async def _upload(self, version: str, display: str, lines: Sequence[DeferredLine]) -> str:
        """The lines as a JSONL file through the Files API's resumable upload; its name."""
        data = b"".join(
            encoded(WHO, {"key": line.custom_id, "request": line.wire}) + b"\n" for line in lines
        )
        start = (
            b"X-Goog-Upload-Protocol: resumable\r\nX-Goog-Upload-Command: start\r\n"
            b"X-Goog-Upload-Header-Content-Length: %d\r\n"
            b"X-Goog-Upload-Header-Content-Type: jsonl\r\n"
        ) % len(data)
        # the SDK's start body, field for field (proto-JSON takes its snake_case names)
        file = {"display_name": display, "mime_type": "jsonl", "size_bytes": len(data)}
        meta = encoded(WHO, {"file": file})
        session = await self._call(b"POST", f"/upload/{version}/files", meta, extra=start)
        url = session.headers.get("x-goog-upload-url")
        if not url:
            raise malformed(WHO, "no x-goog-upload-url for the batch input file")
        finish = b"X-Goog-Upload-Command: upload, finalize\r\nX-Goog-Upload-Offset: 0\r\n"
        path = origin_path(self.base_url, url)
        done = await self._call(b"POST", path, data, b"application/octet-stream", finish)
        if done.headers.get("x-goog-upload-status", "final") != "final":
            raise malformed(WHO, "an upload that did not finalize")
        try:
            name = orjson.loads(done.body)["file"]["name"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise malformed(WHO, "an uploaded file without a name") from None
        if not isinstance(name, str):
            raise malformed(WHO, "an uploaded file without a name")
        return name

    async def _batch(self, provider_id: str) -> dict[str, Any]:
        return await self._json(b"GET", f"/v1beta/batches/{provider_id}")

    async def poll(self, provider_id: str) -> PartProgress:
        operation = await self._batch(provider_id)
        metadata = operation.get("metadata") or {}
        status = job_status(metadata.get("state"))
        stats = metadata.get("batchStats") or {}
        message = None
        if status is PartStatus.FAILED:
            message = error_text(operation.get("error") or "the batch failed")[:500]
        return PartProgress(
            status,
            count(stats.get("requestCount")),
            count(stats.get("successfulRequestCount")),
            count(stats.get("failedRequestCount")),
            message,
        )

    async def results(
        self, target: Target, provider_id: str, lines: Sequence[DeferredLine]
    ) -> AsyncIterator[LineOutcome]:
        operation = await self._batch(provider_id)
        metadata = operation.get("metadata") or {}
        output = metadata.get("output") or operation.get("response") or {}
        by_key = {line.custom_id: line for line in lines}
        answered: set[str] = set()
        inlined = (output.get("inlinedResponses") or {}).get("inlinedResponses")
        if isinstance(inlined, list):
            for i, entry in enumerate(inlined):
                if not isinstance(entry, dict):
                    continue
                echoed = entry.get("metadata")
                key = echoed.get("key") if isinstance(echoed, dict) else None
                # in request order; the key, when echoed, says so outright
                if isinstance(key, str):
                    line = by_key.get(key)
                else:
                    line = lines[i] if i < len(lines) else None
                if line is not None and line.custom_id not in answered:
                    answered.add(line.custom_id)
                    yield line_outcome(line, entry, target.model)
        elif isinstance(output.get("responsesFile"), str):
            path = f"/v1beta/{output['responsesFile']}:download?alt=media"
            async for raw in self._lines(path):
                try:
                    entry = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise malformed(WHO, "a results line that is not JSON") from None
                key = entry.get("key") if isinstance(entry, dict) else None
                line = by_key.get(key) if isinstance(key, str) else None
                if line is not None and line.custom_id not in answered:
                    answered.add(line.custom_id)
                    yield line_outcome(line, entry, target.model)
        for outcome in stopped_lines(job_status(metadata.get("state")), lines, answered):
            yield outcome

    async def cancel(self, provider_id: str) -> None:
        await self._call(b"POST", f"/v1beta/batches/{provider_id}:cancel")
