"""One request's route: what it has done so far (`Run`), and its inputs prepared once per
request however many attempts it makes: remote images fetched, PDFs rendered into page
images, and the body translated for each attempt's deployment."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from nemorouter.core.deployments import Deployment
from nemorouter.core.documents import rendered_body
from nemorouter.providers.base import UpstreamRequest
from nemorouter.providers.image_fetch import fetch_remote_images
from nemorouter.providers.media import InlineMedia
from nemorouter.telemetry.spans import Span
from nemorouter.types.request import ChatRequest
from nemorouter.types.upstream import UpstreamFailure

NO_MEDIA: Mapping[str, InlineMedia] = MappingProxyType({})


class DeadlineReached(Exception):
    """The request's deadline ended its attempts."""

    trace_label = "deadline"  # its attempt span's error.type


class Run:
    """What one request's route has done so far."""

    __slots__ = (
        "calls",
        "deadline",
        "failures",
        "link",
        "link_calls",
        "media",
        "queue_s",
        "rendered",
        "request_id",
        "span",
        "tokens",
        "too_small",
        "upstream_s",
    )

    def __init__(self, request_id: str, deadline: float, span: Span | None = None) -> None:
        self.request_id = request_id
        self.deadline = deadline
        self.span = span  # the request's trace span: each attempt is a child of it
        self.link = 0  # the chain link being tried, and the calls made before it
        self.link_calls = 0
        self.failures: list[tuple[Deployment, UpstreamFailure]] = []
        self.upstream_s = 0.0  # provider time, retry backoffs and quota queue waits
        self.queue_s = 0.0
        self.calls = 0  # upstream calls made (a skipped open circuit is not one)
        self.tokens = -1  # the quota reservation's estimate, computed once if a quota needs it
        self.too_small = -1  # context window that refused the prompt (-1: none did)
        self.media: Mapping[str, InlineMedia] | None = None  # remote images, once fetched
        self.rendered: dict[tuple[int, int], dict[str, Any]] = {}  # PDFs as page images

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


async def fetch_media(request: ChatRequest, run: Run) -> None:
    """The request's remote images, fetched once (a refusal is the client's 400)."""
    started = time.perf_counter()
    remaining = run.remaining()
    try:
        async with asyncio.timeout(remaining if remaining < math.inf else None):
            run.media = await fetch_remote_images(request.body)
    except TimeoutError:
        raise DeadlineReached from None
    finally:
        run.upstream_s += time.perf_counter() - started  # like any wait on the network


async def render_pdfs(request: ChatRequest, deployment: Deployment, run: Run) -> None:
    """The body with its PDFs as page images at the deployment's dpi and cap, once."""
    config = deployment.config
    size = (config.pdf_dpi, config.pdf_max_side)
    if size in run.rendered:
        return
    remaining = run.remaining()
    try:  # the request's deadline bounds the wait (a page being rendered finishes anyway)
        async with asyncio.timeout(remaining if remaining < math.inf else None):
            run.rendered[size] = await rendered_body(request, *size, run.request_id)
    except TimeoutError:
        raise DeadlineReached from None


def translate(
    request: ChatRequest, deployment: Deployment, run: Run, stream: bool
) -> UpstreamRequest:
    """The request in the deployment's wire format, for one attempt (no I/O)."""
    media = run.media or NO_MEDIA
    body = request.body
    if deployment.renders_pdf and run.rendered:
        config = deployment.config
        body = run.rendered.get((config.pdf_dpi, config.pdf_max_side), body)
    return deployment.adapter.prepare(deployment.target, body, media, stream)
