"""PDF parts in routing (issue 19): per-deployment page tokens in window checks and learned
ratios, `pdf: pages` (config, rendering, once per request, within its deadline). Real PDFs
from the shared corpus, read in place."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import re
import time
from typing import Any

import pytest
from PIL import Image

from nemorouter.config import ConfigError, parse_config
from nemorouter.core import route_run
from nemorouter.core.candidates import plan
from nemorouter.core.deployments import DeploymentPool
from nemorouter.core.documents import read_documents, rendered_body
from nemorouter.core.request import reserve_tokens
from nemorouter.core.reservation_check import learn_prompt_ratio
from nemorouter.core.router import Router
from nemorouter.providers.pdf_pages import page_size, render_pages
from nemorouter.state.breaker_memory import Breakers
from nemorouter.types.documents import read_pdf
from nemorouter.types.errors import GatewayError
from nemorouter.types.image_tokens import CLAUDE, image_tokens
from nemorouter.types.request import (
    DEFAULT_COMPLETION_TOKENS,
    PDF_PAGE_TOKENS,
    UNKNOWN_PDF_PAGES,
)
from nemorouter.types.upstream import FailureKind, UpstreamFailure

from .test_documents import MULTI_PAGE, WHERE, pdf_part, request

pytestmark = pytest.mark.skipif(not MULTI_PAGE.is_file(), reason="shared corpus not present")


def pool(**vl: Any) -> DeploymentPool:
    own = {"pricing": {"input_per_mtok": "0", "output_per_mtok": "0"}, "context_window": 4000}
    config = parse_config(
        {
            "settings": {"master_key": "sk-test-master-key"},
            "providers": {"p": {"type": "openai-compatible", "base_url": "http://127.0.0.1:9/v1"}},
            "deployments": [
                {"id": "flash", "model": "gemini-2.5-flash", "provider": "p"},
                {"id": "haiku", "model": "claude-haiku-4-5", "provider": "p"},
                {"id": "gpt", "model": "gpt-4o", "provider": "p"},
                {"id": "vl", "model": "tiny-vl", "provider": "p", "tags": ["vision"], **own, **vl},
                {"id": "txt", "model": "tiny-text", "provider": "p", **own},
            ],
        },
        env={},
    )
    return DeploymentPool(config, {"p": object()})  # type: ignore[dict-item]


def test_page_tokens_per_deployment() -> None:
    plain = pool()
    assert plain.by_model["gemini-2.5-flash"][0].pdf_page_tokens == 258  # catalog
    assert plain.by_model["claude-haiku-4-5"][0].pdf_page_tokens == 3100
    # a model the catalog gives no figure (OpenAI publishes none): the catalog's highest
    assert plain.by_model["gpt-4o"][0].pdf_page_tokens == PDF_PAGE_TOKENS
    assert "pdf" not in plain.by_model["tiny-vl"][0].tags
    pages = pool(pdf="pages", pdf_dpi=100).by_model["tiny-vl"][0]
    assert "pdf" in pages.tags and pages.renders_pdf
    size = page_size(595, 842, 100, 2000)
    assert pages.pdf_page_tokens == image_tokens(pages.image_rule, size)


def test_pdf_pages_needs_vision() -> None:
    with pytest.raises(ConfigError, match="lacks `vision`"):
        parse_config(
            {
                "settings": {"master_key": "sk-test-master-key"},
                "providers": {"p": {"type": "openai-compatible", "base_url": "http://h/v1"}},
                "deployments": [{"id": "t", "model": "gemini-embedding-001", "provider": "p",
                                 "pdf": "pages"}],
            },
            env={},
        )  # fmt: skip


def test_window_counts_pages_at_each_deployments_rate() -> None:
    deployments = pool(pdf="pages", pdf_dpi=72)
    vl = deployments.by_model["tiny-vl"][0]
    fits = 4000 // vl.pdf_page_tokens  # pages the 4,000-token window holds, text aside
    links = plan(deployments, "auto", frozenset({"pdf"}), 10, "r", pdf_pages=fits - 1)
    assert "tiny-vl" in [link.model for link in links]
    links = plan(deployments, "auto", frozenset({"pdf"}), 10, "r", pdf_pages=fits + 1)
    assert [link.model for link in links] == ["gemini-2.5-flash", "claude-haiku-4-5", "gpt-4o"]


def test_render_caps_size_and_grays_colourless_pages() -> None:
    data = MULTI_PAGE.read_bytes()
    images = render_pages(data, 150, 800)
    assert len(images) == 5
    mime, encoded = images[0]
    image = Image.open(io.BytesIO(base64.b64decode(encoded)))
    assert mime == "image/png" and image.mode == "L" and max(image.size) == 800


def test_render_keeps_colour_as_jpeg() -> None:
    colour = io.BytesIO()
    Image.new("RGB", (200, 300), (200, 30, 30)).save(colour, "PDF")
    ((mime, encoded),) = render_pages(colour.getvalue(), 72, 2000)
    image = Image.open(io.BytesIO(base64.b64decode(encoded)))
    assert mime == "image/jpeg" and image.mode == "RGB"


async def test_rendered_body_replaces_each_pdf_with_its_pages(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="nemorouter.documents")
    two = read_pdf(MULTI_PAGE.read_bytes(), (0, 1), WHERE).data
    assert two is not None
    req = request(pdf_part(two), {"type": "text", "text": "between"}, pdf_part(two))
    await read_documents(req)
    body = await rendered_body(req, 36, 2000, "req-7")
    assert re.search(r"request req-7: rendered 4 PDF pages at 36 dpi in \d+\.\d ms", caplog.text)
    kinds = [p["type"] for p in body["messages"][0]["content"]]
    assert kinds == ["text", "image_url", "image_url", "text", "image_url", "image_url"]
    assert req.body["messages"][0]["content"][1]["type"] == "file"  # the canonical body stays


def test_claude_rule_of_a_rendered_page() -> None:
    # an A4 page at 150 dpi is 1240 x 1754: Claude scales it to 1568 on the long side
    assert image_tokens(CLAUDE, page_size(595, 842, 150, 2000)) <= 1600


# A PDF encrypted with an owner password only (permissions; any reader opens it), built by
# the standard security handler revision 2 (PDF 1.7 §7.6.3, algorithms 2-4: RC4, 40 bits).
async def test_learned_ratio_compares_with_the_deployments_page_figure() -> None:
    flash = pool().by_model["gemini-2.5-flash"][0]
    req = request(pdf_part(MULTI_PAGE.read_bytes()))
    await read_documents(req)
    estimated = req.prompt_tokens_for(flash.image_rule, 258)
    assert estimated == req.prompt_tokens_for(flash.image_rule, 0) + 5 * 258
    assert learn_prompt_ratio(flash, req, 2 * estimated) == 2.0  # not against 3,000 a page
    unknown = request({"type": "file", "file": {"file_url": "gs://b/x.pdf"}})
    await read_documents(unknown)
    assert learn_prompt_ratio(flash, unknown, 10**6) == 0.0  # nothing learned
    assert flash.prompt_correction.factor == 2.0


class PagesAdapter:
    """Records the body each attempt was translated from; the first attempt fails."""

    name = "fake"
    inlines_images = False

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def prepare(self, target: Any, body: dict[str, Any], fetched: Any, stream: bool) -> Any:
        self.bodies.append(body)
        return target

    async def complete(self, target: Any) -> dict[str, Any]:
        if len(self.bodies) == 1:
            raise UpstreamFailure(FailureKind.SERVER_ERROR, "simulated", status=500)
        return {"choices": [{"message": {"content": "ok"}}]}


def pages_router(deadline_s: float) -> tuple[Router, list[Any], PagesAdapter]:
    adapter = PagesAdapter()
    own = {"pricing": {"input_per_mtok": "0", "output_per_mtok": "0"}, "context_window": 99999}
    config = parse_config(
        {
            "settings": {"master_key": "sk-test-master-key", "retries": 2},
            "providers": {"p": {"type": "openai-compatible", "base_url": "http://127.0.0.1:9/v1"}},
            "deployments": [
                {"id": f"vl-{n}", "model": "tiny-vl", "provider": "p", "tags": ["vision"],
                 "pdf": "pages", "pdf_dpi": 36, **own}
                for n in "ab"
            ],
        },
        env={},
    )  # fmt: skip
    pool = DeploymentPool(config, {"p": adapter})  # type: ignore[dict-item]
    links = plan(pool, "tiny-vl", frozenset({"pdf"}), 10, "r", pdf_pages=2)
    return Router(2, Breakers(100, 30.0), deadline_s=deadline_s), links, adapter


async def test_pages_are_rendered_once_for_every_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    renders: list[int] = []

    async def counted(*args: Any) -> dict[str, Any]:
        renders.append(args[1])
        return await rendered_body(*args)

    monkeypatch.setattr(route_run, "rendered_body", counted)
    router, links, adapter = pages_router(30.0)
    two = read_pdf(MULTI_PAGE.read_bytes(), (0, 1), WHERE).data
    assert two is not None
    req = request(pdf_part(two))
    await read_documents(req)
    routed = await router.complete(req, links, "r")
    assert routed.attempts == 2 and renders == [36]
    assert [[p["type"] for p in b["messages"][0]["content"]] for b in adapter.bodies] == [
        ["text", "image_url", "image_url"]
    ] * 2


async def test_rendering_ends_at_the_request_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    async def slow(*args: Any) -> dict[str, Any]:
        await asyncio.sleep(5)
        return {}

    monkeypatch.setattr(route_run, "rendered_body", slow)
    router, links, adapter = pages_router(0.2)
    req = request(pdf_part(MULTI_PAGE.read_bytes()))
    await read_documents(req)
    started = time.monotonic()
    with pytest.raises(GatewayError) as caught:
        await router.complete(req, links, "r")
    assert caught.value.status == 504 and time.monotonic() - started < 2
    assert adapter.bodies == []


async def test_rate_limits_reserve_known_pages_and_budgets_assume_the_most() -> None:
    flash = pool().by_model["gemini-2.5-flash"][0]
    req = request({"type": "file", "file": {"file_url": "gs://b/x.pdf"}})
    await read_documents(req)
    base = req.prompt_tokens_for(flash.image_rule, 0)
    out = DEFAULT_COMPLETION_TOKENS
    assert reserve_tokens(req, flash.image_rule, None, 258) == base + out  # tpm: settled later
    assert req.prompt_tokens_for(flash.image_rule, 258) == base + UNKNOWN_PDF_PAGES * 258
