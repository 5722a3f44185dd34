"""`/v1/files` and `/v1/batches`: OpenAI's file and batch endpoints (deferred jobs), decoded
and encoded here, done by core/deferred/service.py. Every route takes the caller's key, as
/v1/chat/completions does; a file or batch belongs to its key (another key gets 404)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nemorouter.core.auth import Caller
from nemorouter.gateway.responses import JSONResponse
from nemorouter.types.errors import invalid_request, request_too_large
from nemorouter.types.multipart import parse_form
from nemorouter.wiring import Services

FORM_OVERHEAD = 1 << 20  # room for the form's other fields and boundaries
MAX_LIST = 100


def deferred_routes(services: Services) -> list[Route]:
    deferred = services.deferred
    limit = int(services.config.settings.deferred.max_file_mb * (1 << 20)) + FORM_OVERHEAD

    async def caller(request: Request) -> Caller:
        return await services.auth.resolve(
            request.headers.get("authorization", "").encode() or None
        )

    async def body(request: Request, most: int) -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > most:
                raise request_too_large(most, "settings.deferred.max_file_mb")
            chunks.append(chunk)
        return b"".join(chunks)

    async def json_body(request: Request) -> object:
        try:
            return orjson.loads(await body(request, services.config.max_body_bytes))
        except orjson.JSONDecodeError:
            raise invalid_request("The body is not valid JSON.") from None

    async def create_file(request: Request) -> Response:
        who = await caller(request)
        form = parse_form(request.headers.get("content-type", ""), await body(request, limit))
        if form is None:
            raise invalid_request(
                "Send the file as multipart/form-data (fields 'file', 'purpose')."
            )
        upload, purpose = form.get("file"), form.get("purpose")
        if upload is None:
            raise invalid_request("The form has no 'file' field.", "file")
        if purpose is None:
            raise invalid_request("The form has no 'purpose' field.", "purpose")
        return JSONResponse(
            await deferred.create_file(
                who, purpose.data.decode("utf-8", "replace"), upload.filename or "", upload.data
            )
        )

    async def get_file(request: Request) -> Response:
        return JSONResponse(
            await deferred.get_file(await caller(request), request.path_params["id"])
        )

    async def file_content(request: Request) -> Response:
        content = await deferred.file_content(await caller(request), request.path_params["id"])
        return Response(content, media_type="application/jsonl")

    async def create_batch(request: Request) -> Response:
        who = await caller(request)
        header = request.headers.get("x-nemo-job-id")  # as on /v1/chat/completions
        return JSONResponse(await deferred.create_batch(who, await json_body(request), header))

    async def get_batch(request: Request) -> Response:
        return JSONResponse(
            await deferred.get_batch(await caller(request), request.path_params["id"])
        )

    async def cancel_batch(request: Request) -> Response:
        who = await caller(request)
        return JSONResponse(await deferred.cancel_batch(who, request.path_params["id"]))

    async def list_batches(request: Request) -> Response:
        who = await caller(request)
        raw = request.query_params.get("limit", "20")
        try:
            count = int(raw)
        except ValueError:
            count = 0
        if not 1 <= count <= MAX_LIST:
            raise invalid_request(f"'limit' must be 1 to {MAX_LIST}.", "limit")
        after = request.query_params.get("after")
        return JSONResponse(await deferred.list_batches(who, count, after))

    return [
        Route("/v1/files", create_file, methods=["POST"]),
        Route("/v1/files/{id}", get_file, methods=["GET"]),
        Route("/v1/files/{id}/content", file_content, methods=["GET"]),
        Route("/v1/batches", create_batch, methods=["POST"]),
        Route("/v1/batches", list_batches, methods=["GET"]),
        Route("/v1/batches/{id}", get_batch, methods=["GET"]),
        Route("/v1/batches/{id}/cancel", cancel_batch, methods=["POST"]),
    ]
