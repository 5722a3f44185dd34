"""Vertex AI batch inference for Gemini: a deferred part as one batch prediction job whose
JSONL input and output are staged in the provider's `batch_bucket`.

Wire facts (cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-from-cloud-storage,
cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.batchPredictionJobs;
googleapis/python-genai `batches.py` `_CreateBatchJobParameters_to_vertex`,
`_BatchJob_from_vertex`):
- input: one JSONL object in Cloud Storage, a line `{"request": GenerateContentRequest}`;
- create: POST /v1/projects/{p}/locations/{l}/batchPredictionJobs `{displayName, model:
  "publishers/google/models/{m}", inputConfig: {instancesFormat: "jsonl", gcsSource: {uris}},
  outputConfig: {predictionsFormat: "jsonl", gcsDestination: {outputUriPrefix}}}`;
- get: GET …/batchPredictionJobs/{id}: `state` JOB_STATE_*, `completionStats`
  {successfulCount, failedCount, incompleteCount} (int64 strings), `outputInfo.
  gcsOutputDirectory`, `error` when FAILED; cancel: POST …/batchPredictionJobs/{id}:cancel;
- output: `predictions*.jsonl` objects under gcsOutputDirectory, a line per input line
  echoing its `request`, with `response` (a GenerateContentResponse) when it succeeded and
  `status` (the error) when not; completed rows are exported even when the job is stopped.

Which output line answers which input line: the output echoes each request, and a
GenerateContentRequest takes `labels` (cloud.google.com/vertex-ai/generative-ai/docs/
multimodal/add-labels-to-api-calls: keys and values of lowercase letters, digits, `_` and
`-`, at most 63 characters). Each line is labelled `nemorouter_line: <its index in the part>`
(LiteLLM and Bifrost carry a per-line id in labels the same way). The index rather than the
caller's id because a label key may have at most 1,000 distinct values over a billing
account's lifetime: indexes repeat from part to part, ids never would. So `results` must be
given the part's lines in the order `submit` was. A line whose echo has no label is matched
by its request's content (a digest of the echoed request without labels).

Claude on Vertex AI takes the same jobs with its own line format: `deferred_vertex_claude`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import orjson

from nemorouter.config import ConfigError, ProviderConfig, Settings
from nemorouter.providers.answer_check import malformed
from nemorouter.providers.deferred_gcs import STORAGE_URL, StorageStaging, split_gs
from nemorouter.providers.deferred_gemini import (
    count,
    error_text,
    job_status,
    line_outcome,
    stopped_lines,
)
from nemorouter.providers.deferred_http import require_lines
from nemorouter.providers.request_fields import encoded
from nemorouter.providers.upstream_auth import vertex_endpoint
from nemorouter.types.deferred import DeferredLine, LineOutcome, PartProgress, PartStatus
from nemorouter.types.target import Target

WHO = "Vertex AI"
LABEL = "nemorouter_line"


def digest(request: Any) -> str:
    """A request's content, whatever the key order of its echo, labels aside."""
    if isinstance(request, dict):
        request = {k: v for k, v in request.items() if k != "labels"}
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()


class VertexBatches(StorageStaging):
    """Batch inference of one Vertex AI project and location, staged in `batch_bucket`."""

    who = WHO
    provider_type = "vertex"
    publisher = "google"

    def __init__(self, name: str, provider: ProviderConfig, settings: Settings) -> None:
        if provider.type != self.provider_type:
            raise ConfigError(
                f"providers.{name}.type", f"this batch inference is for {self.provider_type}"
            )
        if not provider.batch_bucket:
            raise ConfigError(
                f"providers.{name}.batch_bucket",
                "Vertex AI batch inference stages its JSONL in Cloud Storage: set gs://bucket/prefix",
            )
        base_url, prefix, self.auth = vertex_endpoint(name, provider, self.publisher)
        if self.auth.tokens is None:
            raise ConfigError(
                f"providers.{name}.api_key",
                "Vertex AI batch inference and Cloud Storage take Google credentials, not an api_key",
            )
        models = f"publishers/{self.publisher}/models/"
        self._jobs = prefix.removesuffix(models) + "batchPredictionJobs"
        self.bucket, self.folder = split_gs(provider.batch_bucket)
        self.storage_url = provider.storage_url or STORAGE_URL
        super().__init__(name, base_url, provider, settings)

    async def submit(self, target: Target, lines: Sequence[DeferredLine]) -> str:
        require_lines(lines)
        run = "/".join(p for p in (self.folder, f"nemorouter-{os.urandom(8).hex()}") if p)
        data = b"".join(encoded(WHO, self.row(line, i)) + b"\n" for i, line in enumerate(lines))
        await self.put_object(self.bucket, f"{run}/input.jsonl", data, b"application/jsonl")
        del data
        job = {
            "displayName": f"nemorouter-{target.deployment_id}-{len(lines)}",
            "model": f"publishers/{self.publisher}/models/{target.provider_model}",
            "inputConfig": {
                "instancesFormat": "jsonl",
                "gcsSource": {"uris": [f"gs://{self.bucket}/{run}/input.jsonl"]},
            },
            "outputConfig": {
                "predictionsFormat": "jsonl",
                "gcsDestination": {"outputUriPrefix": f"gs://{self.bucket}/{run}/output"},
            },
        }
        created = await self._json(b"POST", self._jobs, encoded(WHO, job))
        name = created.get("name")
        if not isinstance(name, str) or "/batchPredictionJobs/" not in name:
            raise malformed(WHO, "a batch prediction job without a name")
        return name.rsplit("/", 1)[1]

    async def _job(self, provider_id: str) -> dict[str, Any]:
        return await self._json(b"GET", f"{self._jobs}/{provider_id}")

    async def poll(self, provider_id: str) -> PartProgress:
        job = await self._job(provider_id)
        status = job_status(job.get("state"))
        stats = job.get("completionStats") or {}
        succeeded, failed = count(stats.get("successfulCount")), count(stats.get("failedCount"))
        total = succeeded + failed + count(stats.get("incompleteCount"))
        message = None
        if status is PartStatus.FAILED:
            message = error_text(job.get("error") or "the batch prediction job failed")[:500]
        return PartProgress(status, total, succeeded, failed, message)

    async def results(
        self, target: Target, provider_id: str, lines: Sequence[DeferredLine]
    ) -> AsyncIterator[LineOutcome]:
        job = await self._job(provider_id)
        answered: set[str] = set()
        directory = (job.get("outputInfo") or {}).get("gcsOutputDirectory")
        if isinstance(directory, str) and directory.startswith("gs://"):
            match = self.matcher(lines)
            bucket, prefix = split_gs(directory)
            for name in await self.list_objects(bucket, prefix + "/"):
                if not name.rsplit("/", 1)[-1].startswith("predictions") or not name.endswith(
                    ".jsonl"
                ):
                    continue
                async for raw in self.object_lines(bucket, name):
                    try:
                        entry = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        raise malformed(WHO, "a predictions line that is not JSON") from None
                    line = match(entry) if isinstance(entry, dict) else None
                    if line is not None and line.custom_id not in answered:
                        answered.add(line.custom_id)
                        yield self.outcome(line, entry, target.model)
        for outcome in stopped_lines(job_status(job.get("state")), lines, answered):
            yield outcome

    async def cancel(self, provider_id: str) -> None:
        await self._json(b"POST", f"{self._jobs}/{provider_id}:cancel")

    # What differs between publishers: the input line, matching output to it, its answer.

    def row(self, line: DeferredLine, index: int) -> dict[str, Any]:
        return {"request": _labelled(line.wire, index)}

    def matcher(self, lines: Sequence[DeferredLine]) -> Callable[[dict[str, Any]], Any]:
        return LineMatcher(lines)

    def outcome(self, line: DeferredLine, entry: dict[str, Any], model: str) -> LineOutcome:
        return line_outcome(line, entry, model)


def _labelled(wire: dict[str, Any], index: int) -> dict[str, Any]:
    labels = {**(wire.get("labels") or {}), LABEL: str(index)}
    return {**wire, "labels": labels}


class LineMatcher:
    """The part's line an output line answers: by its index label, else by content."""

    def __init__(self, lines: Sequence[DeferredLine]) -> None:
        self.lines = lines
        self.by_content: dict[str, list[DeferredLine]] = {}
        for line in lines:
            self.by_content.setdefault(digest(line.wire), []).append(line)

    def __call__(self, entry: dict[str, Any]) -> DeferredLine | None:
        request = entry.get("request")
        labels = request.get("labels") if isinstance(request, dict) else None
        index = labels.get(LABEL) if isinstance(labels, dict) else None
        if isinstance(index, str) and index.isdigit() and int(index) < len(self.lines):
            return self.lines[int(index)]
        same = self.by_content.get(digest(request))
        return same.pop(0) if same else None  # identical requests: any copy will do
