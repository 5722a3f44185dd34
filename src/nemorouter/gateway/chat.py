"""`POST /v1/chat/completions` as a raw ASGI endpoint: the gateway's hot path."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

from nemorouter.core.pipeline import Inbound, Pipeline
from nemorouter.core.routed import Routed
from nemorouter.gateway.asgi import (
    ClientGone,
    Message,
    Receive,
    Scope,
    Send,
    client_request_id,
    new_request_id,
    read_body,
    send_bytes,
    send_error,
)
from nemorouter.types.errors import GatewayError
from nemorouter.types.money import usd
from nemorouter.types.upstream import UpstreamFailure

log = logging.getLogger("nemorouter.gateway")
_encode = orjson.dumps
_DONE = b"data: [DONE]\n\n"
# Capability tags by header; LiteLLM's name too, so its users can switch.
TAG_HEADERS = (b"x-nemo-tags", b"x-litellm-tags")


class ChatCompletionsEndpoint:
    def __init__(self, pipeline: Pipeline, max_body_bytes: int) -> None:
        self.pipeline = pipeline
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        authorization = content_length = given_id = tags = job_id = traceparent = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"content-length":
                content_length = value
            elif name == b"x-request-id":
                given_id = value
            elif name in TAG_HEADERS:
                tags = value if tags is None else tags + b"," + value
            elif name == b"x-nemo-job-id":
                job_id = value
            elif name == b"traceparent":
                traceparent = value
        request_id = client_request_id(given_id) or new_request_id()
        inbound = Inbound(request_id, authorization, tags, job_id, traceparent)
        try:
            # No local keeps the raw body: the pipeline drops it once parsed.
            routed = await self.pipeline.chat(
                await read_body(receive, self.limit, content_length), inbound
            )
        except GatewayError as error:
            await send_error(send, error, request_id)
            return
        except ClientGone:
            return
        except Exception:
            log.exception("request %s: unexpected error", request_id)
            await send_error(send, _internal_error(request_id), request_id)
            return
        if routed.stream is not None:
            await _send_stream(send, receive, routed, request_id, started)
            return
        response = routed.response
        assert response is not None  # labelled with its model by the adapter (or the cache)
        body = _encode(response)
        await send_bytes(send, 200, body, _headers(routed, request_id, started))


def _headers(routed: Routed, request_id: str, started: float) -> list[tuple[bytes, bytes]]:
    overhead_ms = (time.perf_counter() - started - routed.upstream_s) * 1000.0
    headers = [
        (b"x-request-id", request_id.encode()),
        (b"x-nemo-model", routed.model.encode()),
        (b"x-nemo-deployment", routed.deployment_id.encode()),
        (b"x-nemo-cache", routed.cache.encode()),
        (b"x-nemo-attempts", str(routed.attempts).encode()),
        (b"x-nemo-fallbacks", str(routed.fallbacks).encode()),
        (b"x-nemo-overhead-ms", f"{max(overhead_ms, 0.0):.3f}".encode()),
    ]
    if routed.queue_s:  # waited for room in a deployment's rpm/tpm quota
        headers.append((b"x-nemo-queue-ms", f"{routed.queue_s * 1000.0:.3f}".encode()))
    if routed.cost is not None:
        cost = usd(routed.cost).encode()
        # LiteLLM's header name too, for tools that already read it.
        headers += [(b"x-nemo-response-cost", cost), (b"x-litellm-response-cost", cost)]
    if routed.headers:  # the calling key's x-ratelimit-* headers
        headers += [(k.encode(), v.encode()) for k, v in routed.headers.items()]
    return headers


async def _send_stream(
    send: Send, receive: Receive, routed: Routed, request_id: str, started: float
) -> None:
    """Relay the upstream chunks as server-sent events.

    The status line is already committed, so a failure from here on can only be
    reported in-band, as an `error` event (the OpenAI SDK raises it as an APIError).
    If the client goes away, the upstream stream is dropped at once: nobody would read
    the tokens it is still generating (and billing).
    """
    stream = routed.stream
    assert stream is not None
    headers = _headers(routed, request_id, started)
    headers += [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
    ]
    watch = _DisconnectWatch(receive)
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            async for chunk in stream:
                await _event(send, chunk)
        except UpstreamFailure as failure:
            log.warning("request %s: stream broke: %s", request_id, failure.describe())
            await _event(send, _stream_error(failure, request_id))
            watch.stop()
            await send({"type": "http.response.body", "body": b""})
            return
        watch.stop()
        await send({"type": "http.response.body", "body": _DONE})
    except asyncio.CancelledError:
        if not watch.client_gone:
            raise
        watch.uncancel()
        log.info("request %s: client went away mid-stream; upstream stream dropped", request_id)
    except OSError:
        log.info("request %s: client went away mid-stream", request_id)
    finally:
        watch.stop()
        await stream.aclose()


class _DisconnectWatch:
    """Cancel the current task when the client disconnects (until `stop`)."""

    def __init__(self, receive: Receive) -> None:
        self.client_gone = False
        self._task = asyncio.current_task()
        self._stopped = False
        self._waiter = asyncio.ensure_future(receive())
        self._waiter.add_done_callback(self._on_message)

    def _on_message(self, waiter: asyncio.Future[Message]) -> None:
        if self._stopped or waiter.cancelled() or waiter.exception() is not None:
            return
        if waiter.result()["type"] == "http.disconnect" and self._task is not None:
            self.client_gone = True
            self._task.cancel()

    def stop(self) -> None:
        """Stop watching; from now on the end of the response is not a disconnect."""
        self._stopped = True
        self._waiter.cancel()

    def uncancel(self) -> None:
        if self._task is not None:
            self._task.uncancel()


async def _event(send: Send, data: dict[str, Any]) -> None:
    await send(
        {
            "type": "http.response.body",
            "body": b"data: " + _encode(data) + b"\n\n",
            "more_body": True,
        }
    )


def _stream_error(failure: UpstreamFailure, request_id: str) -> dict[str, Any]:
    return {
        "error": {
            "message": f"The provider stream broke off: {failure.describe()} (request {request_id})",
            "type": "api_error",
            "param": None,
            "code": "stream_interrupted",
        }
    }


def _internal_error(request_id: str) -> GatewayError:
    return GatewayError(500, "internal_error", f"Internal gateway error (request {request_id}).")
