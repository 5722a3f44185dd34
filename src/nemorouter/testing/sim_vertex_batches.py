"""Simulated Vertex AI batch inference, for Gemini (served by `SimulatedGemini`) and Claude
(served by `SimulatedAnthropic`), over the simulator's Cloud Storage (`sim_gcs`).

Shapes follow cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.batchPredictionJobs
and cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-from-cloud-storage
(python-genai `_BatchJob_from_vertex` reads them), and for Claude
cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/batch (lines
`{"custom_id", "request"}`, the id matching output to input): POST …/batchPredictionJobs reads
the JSONL input from storage and answers each line through the simulator's interactive path
(generateContent, or rawPredict for publishers/anthropic models), GET …/batchPredictionJobs/{id} answers the job
(`state` JOB_STATE_*, `completionStats`, `outputInfo.gcsOutputDirectory`), POST …:cancel
stops it. Once it ends, the completed rows are written to
`{outputUriPrefix}/prediction-model-{time}/predictions.jsonl`, each echoing its `request`
(and `custom_id`) with `response` or a `status` error, in an order of their own (the reverse of the input:
nothing may rely on the order). Timing and line answers: `sim_batch_clock`.
"""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING, Any

import msgspec

from nemorouter.testing import sim_http as http
from nemorouter.testing.sim_batch_clock import FAIL_WORD, BatchTiming, SimBatch, reply_json, rfc3339
from nemorouter.testing.sim_gcs import StorageAPI

if TYPE_CHECKING:
    from nemorouter.testing.sim_native import NativeSimulator

_encode = msgspec.json.encode
_JOBS = re.compile(
    rb"^/(v1|v1beta1)/projects/([^/]+)/locations/([^/]+)/batchPredictionJobs(?:/(\d+)(:cancel)?)?$"
)
_MODEL = re.compile(
    r"^(?:projects/[^/]+/locations/[^/]+/)?publishers/(google|anthropic)/models/([^/:]+)$"
)
_VERB = {"google": "generateContent", "anthropic": "rawPredict"}


class VertexBatchAPI:
    """Batch prediction jobs of one simulator, staged in its `StorageAPI`."""

    def __init__(self, sim: NativeSimulator, storage: StorageAPI) -> None:
        self.sim = sim
        self.storage = storage
        self.timing = BatchTiming()
        self.jobs: dict[str, SimBatch] = {}
        storage.before_read = self.export

    def route(
        self,
        method: bytes,
        url: bytes,
        path: bytes,
        headers: http.Headers,
        body: bytes,
        auth: bytes | None,
    ) -> bytes | None:
        found = _JOBS.match(path)
        if found is None:
            return None
        from nemorouter.testing.sim_gemini import google_error, unauthenticated

        self.sim.note(method, url, headers, body)
        if self.sim.bearer_refused(auth):
            return unauthenticated()
        version, project, location = (g.decode() for g in found.groups()[:3])
        parent = f"projects/{project}/locations/{location}"
        if found[4] is None:
            if method != b"POST":
                return google_error(404, "Method not found.")
            return self._create(parent, version, headers, body, auth)
        job = self.jobs.get(found[4].decode())
        if job is None or job.extra["parent"] != parent:
            return google_error(404, f"BatchPredictionJob {found[4].decode()} not found.")
        if found[5]:
            if method != b"POST":
                return google_error(404, "Method not found.")
            if job.cancelled_at is None and not job.ended():
                job.cancelled_at = time.time()
            return http.json_response(200, {})
        if method != b"GET":
            return google_error(404, "Method not found.")
        self.export()
        return http.json_response(200, self.resource(job))

    def _create(
        self, parent: str, version: str, headers: http.Headers, body: bytes, auth: bytes | None
    ) -> bytes:
        from nemorouter.testing.sim_gemini import google_error

        try:
            req = msgspec.json.decode(body)
            model = _MODEL.match(req["model"])
            uris = req["inputConfig"]["gcsSource"]["uris"]
            out = req["outputConfig"]["gcsDestination"]["outputUriPrefix"]
        except (msgspec.DecodeError, KeyError, TypeError):
            return google_error(
                400, "Invalid batch prediction job: model, gcsSource, gcsDestination."
            )
        if model is None:
            return google_error(400, f"Invalid model {req['model']!r}.")
        if req["inputConfig"].get("instancesFormat") != "jsonl":
            return google_error(
                400, "inputConfig.instancesFormat: jsonl required for Cloud Storage."
            )
        rows: list[Any] = []
        for uri in uris:
            bucket, _, name = str(uri).removeprefix("gs://").partition("/")
            data = self.storage.get(bucket, name)
            if data is None:
                return google_error(400, f"Input file {uri} does not exist.")
            rows += [msgspec.json.decode(line) for line in data.splitlines() if line.strip()]
        publisher, name = model[1], model[2]
        interactive = f"/{version}/{parent}/publishers/{publisher}/models/{name}:{_VERB[publisher]}"
        answers = [self._answer(interactive.encode(), headers, row, auth) for row in rows]
        job_id = str(int.from_bytes(os.urandom(6), "big"))
        job = SimBatch(
            job_id, [str(i) for i in range(len(rows))], answers, BatchTiming(**vars(self.timing))
        )
        job.extra.update(parent=parent, request=req, rows=rows, out=str(out).rstrip("/"))
        self.jobs[job_id] = job
        return http.json_response(200, self.resource(job))

    def _answer(
        self, path: bytes, headers: http.Headers, row: Any, auth: bytes | None
    ) -> tuple[int, Any]:
        request = row.get("request") if isinstance(row, dict) else None
        if not isinstance(request, dict):
            return 400, {"error": {"code": 400, "message": "request: required"}}
        raw = _encode(request)
        if FAIL_WORD in raw:
            return 500, {"error": {"code": 500, "message": "Internal error encountered."}}
        return reply_json(self.sim.interactive_reply(path, headers, raw, auth))

    def state(self, job: SimBatch) -> str:
        if not job.ended():
            if job.cancelled_at is not None:
                return "JOB_STATE_CANCELLING"
            return "JOB_STATE_RUNNING" if job.counts()["done"] else "JOB_STATE_PENDING"
        if job.cancelled_at is not None and job.cancelled_at <= job.done_at(len(job.keys) - 1):
            return "JOB_STATE_CANCELLED"
        return "JOB_STATE_EXPIRED" if job.expired() else "JOB_STATE_SUCCEEDED"

    def resource(self, job: SimBatch) -> dict[str, Any]:
        req, counts = job.extra["request"], job.counts()
        resource: dict[str, Any] = {
            "name": f"{job.extra['parent']}/batchPredictionJobs/{job.id}",
            "displayName": req.get("displayName", ""),
            "model": req["model"],
            "inputConfig": req["inputConfig"],
            "outputConfig": req["outputConfig"],
            "state": self.state(job),
            "createTime": rfc3339(job.created),
            "updateTime": rfc3339(min(time.time(), job.ended_at())),
            "completionStats": {
                "successfulCount": str(counts["ok"]),
                "failedCount": str(counts["failed"]),
                "incompleteCount": str(
                    counts["processing"] + counts["cancelled"] + counts["expired"]
                ),
            },
        }
        if counts["done"]:
            resource["startTime"] = rfc3339(job.created)
        if "directory" in job.extra:
            resource["endTime"] = rfc3339(job.ended_at())
            resource["outputInfo"] = {"gcsOutputDirectory": job.extra["directory"]}
        return resource

    def export(self) -> None:
        """Write the predictions of every job that ended and has not written them yet."""
        for job in self.jobs.values():
            if "directory" in job.extra or not job.ended():
                continue
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(job.ended_at()))
            directory = f"{job.extra['out']}/prediction-model-{stamp}.{job.id}"
            bucket, _, folder = directory.removeprefix("gs://").partition("/")
            out = []
            for i in reversed(range(len(job.keys))):
                if job.line_state(i) != "done":
                    continue
                status, answer = job.answers[i]
                row: dict[str, Any] = {"status": "", "processed_time": rfc3339(job.done_at(i))}
                given = job.extra["rows"][i]
                if "custom_id" in given:  # Claude's documented id to match output to input
                    row["custom_id"] = given["custom_id"]
                row["request"] = given["request"]
                if status == 200:
                    row["response"] = answer
                else:
                    row["status"] = str((answer.get("error") or {}).get("message") or status)
                out.append(_encode(row))
            data = b"\n".join(out) + b"\n" if out else b""
            self.storage.put(bucket, f"{folder}/predictions.jsonl", data, "application/jsonl")
            job.extra["directory"] = directory
