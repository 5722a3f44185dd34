"""PDF `file` parts through the gateway (issue 19, DESIGN §2.1-2.2): each wire format gets
the document in its own shape (checked at the simulators, which record what they received),
a request with no PDF-reading candidate is refused, an image-only deployment that opted in
(`pdf: pages`) gets page images, the page selector is applied before anything goes
upstream, the cache keys on the bytes and the selection, and the pages are counted
(x-nemo-pages, the budget's worst case, the spend row). Real PDFs from the shared corpus."""

from __future__ import annotations

import base64
import http.server
import io
import ipaddress
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pypdfium2 as pdfium
import pytest
from PIL import Image

from nemorouter.config import parse_config
from nemorouter.providers import image_fetch
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import (
    FakeOAuthServer,
    SimulatedAnthropic,
    SimulatedGemini,
    SimulatedProvider,
)
from nemorouter.types.money import pico_usd, to_pico

from ..corpus import CORPUS
from . import helpers
from .conftest import MASTER_KEY
from .helpers import native_settings, vertex_provider

oauth_fixture = helpers.oauth_fixture
key_file_fixture = helpers.key_file_fixture

GEMINI_KEY = "g-api-key-pdf"
ANTHROPIC_KEY = "sk-ant-pdf"
ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
MULTI_PAGE = CORPUS / "mixed" / "multi_page.pdf"  # 5 pages, born-digital text
INVOICE = CORPUS / "invoices" / "QualityHosting.pdf"  # 2 pages

pytestmark = pytest.mark.skipif(not MULTI_PAGE.is_file(), reason="shared corpus not present")


def pdf_part(path: Path, pages: str | None = None, **extra: Any) -> dict[str, Any]:
    data = base64.b64encode(path.read_bytes()).decode()
    spec: dict[str, Any] = {"file_data": f"data:application/pdf;base64,{data}"}
    spec["filename"] = path.name
    if pages is not None:
        spec["pages"] = pages
    return {"type": "file", "file": {**spec, **extra}}


def ask(part: dict[str, Any], text: str | None = None) -> list[dict[str, Any]]:
    """A user message with a unique text (so the response cache never joins two tests)."""
    prompt = text or f"Extract the fields. {uuid.uuid4()}"
    return [{"role": "user", "content": [{"type": "text", "text": prompt}, part]}]


def page_count(data: bytes) -> int:
    pdf = pdfium.PdfDocument(data)
    try:
        return len(pdf)
    finally:
        pdf.close()


@pytest.fixture(scope="module")
def gemini_server(oauth: FakeOAuthServer) -> Iterator[SimulatedGemini]:
    with SimulatedGemini(oauth=oauth, api_key=GEMINI_KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def claude_server(oauth: FakeOAuthServer) -> Iterator[SimulatedAnthropic]:
    with SimulatedAnthropic(oauth=oauth, api_key=ANTHROPIC_KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def openai_server() -> Iterator[SimulatedProvider]:
    with SimulatedProvider() as sim:
        yield sim


@pytest.fixture(scope="module")
def database() -> str:
    return native_settings()["database_url"]


@pytest.fixture(scope="module")
def gateway(
    gemini_server: SimulatedGemini,
    claude_server: SimulatedAnthropic,
    openai_server: SimulatedProvider,
    key_file: Path,
    database: str,
) -> Iterator[BackgroundGateway]:
    own = {"pricing": {"input_per_mtok": "0.10", "output_per_mtok": "0.40"}}
    raw = {
        "settings": native_settings(
            database_url=database, cache={"enabled": True, "scope": "global"}
        ),
        "providers": {
            "vertex-sim": vertex_provider("vertex", "us-central1", gemini_server, key_file),
            "gemini-sim": {
                "type": "gemini",
                "base_url": gemini_server.base_url,
                "api_key": GEMINI_KEY,
            },
            "claude-api": {
                "type": "anthropic",
                "base_url": claude_server.base_url,
                "api_key": ANTHROPIC_KEY,
            },
            "oai": {
                "type": "openai-compatible",
                "base_url": openai_server.base_url,
                "api_key": "none",
            },
        },
        "deployments": [
            {"id": "flash-vertex", "model": "gemini-2.5-flash", "provider": "vertex-sim"},
            {"id": "pro-api", "model": "gemini-2.5-pro", "provider": "gemini-sim"},
            {
                "id": "haiku-api",
                "model": "claude-haiku-4-5",
                "provider": "claude-api",
                "provider_model": "claude-haiku-4-5-20251001",
            },
            {"id": "gpt", "model": "gpt-4o", "provider": "oai"},
            # reads images, not PDFs, and did not opt in: never gets a PDF
            {
                "id": "vl",
                "model": "local-vl",
                "provider": "oai",
                "tags": ["vision"],
                "context_window": 32768,
                **own,
            },
            # reads images, not PDFs, and opted in: gets page images
            {
                "id": "vl-pages",
                "model": "local-vl-pages",
                "provider": "oai",
                "tags": ["vision"],
                "context_window": 32768,
                "pdf": "pages",
                "pdf_dpi": 50,
                **own,
            },
            {
                "id": "text",
                "model": "local-text",
                "provider": "oai",
                "context_window": 32768,
                **own,
            },
        ],
        "groups": {
            "images-then-pdf": ["local-vl", "gemini-2.5-flash"],
            "claude-then-vertex": ["claude-haiku-4-5", "gemini-2.5-flash"],
        },
    }
    with BackgroundGateway(parse_config(raw, env={})) as gw:
        yield gw


@pytest.fixture
def client(
    gateway: BackgroundGateway,
    gemini_server: SimulatedGemini,
    claude_server: SimulatedAnthropic,
    openai_server: SimulatedProvider,
) -> openai.OpenAI:
    for sim in (gemini_server, claude_server, openai_server):
        sim.clear()
    return openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0, timeout=30)


@pytest.mark.parametrize(
    ("model", "path_end"),
    [("gemini-2.5-flash", "gemini-2.5-flash:generateContent"),
     ("gemini-2.5-pro", "/v1beta/models/gemini-2.5-pro:generateContent")],
)  # fmt: skip
def test_gemini_and_vertex_get_inline_pdf(
    client: openai.OpenAI, gemini_server: SimulatedGemini, model: str, path_end: str
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=ask(pdf_part(MULTI_PAGE))
    )
    assert raw.headers["x-nemo-pages"] == "5"
    sent = gemini_server.requests[-1]
    assert sent.path.endswith(path_end)
    blob = sent.json()["contents"][0]["parts"][1]["inlineData"]
    assert blob["mimeType"] == "application/pdf"
    assert base64.b64decode(blob["data"]) == MULTI_PAGE.read_bytes()  # untouched bytes


def test_claude_gets_a_document_block(
    client: openai.OpenAI, claude_server: SimulatedAnthropic
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="claude-haiku-4-5", messages=ask(pdf_part(INVOICE))
    )
    assert raw.headers["x-nemo-pages"] == "2"
    block = claude_server.requests[-1].json()["messages"][0]["content"][1]
    assert block["type"] == "document"
    assert block["source"]["type"] == "base64"
    assert block["source"]["media_type"] == "application/pdf"
    assert base64.b64decode(block["source"]["data"]) == INVOICE.read_bytes()


def test_openai_format_gets_the_file_part_without_gateway_fields(
    client: openai.OpenAI, openai_server: SimulatedProvider
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=ask(pdf_part(MULTI_PAGE, pages="2-3"))
    )
    assert raw.headers["x-nemo-pages"] == "2"
    part = openai_server.requests[-1].json()["messages"][0]["content"][1]
    assert part["type"] == "file"
    assert set(part["file"]) == {"file_data", "filename"}  # `pages` stays at the gateway
    header, data = part["file"]["file_data"].split(",", 1)
    assert header == "data:application/pdf;base64"
    assert page_count(base64.b64decode(data)) == 2


def test_page_selector_makes_a_sub_pdf_upstream(
    client: openai.OpenAI, gemini_server: SimulatedGemini
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gemini-2.5-flash", messages=ask(pdf_part(MULTI_PAGE, pages="1,4-5"))
    )
    assert raw.headers["x-nemo-pages"] == "3"
    blob = gemini_server.requests[-1].json()["contents"][0]["parts"][1]["inlineData"]
    assert page_count(base64.b64decode(blob["data"])) == 3


def test_no_pdf_reader_is_a_tag_mismatch(
    client: openai.OpenAI, openai_server: SimulatedProvider
) -> None:
    for model in ("local-text", "local-vl"):
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=model, messages=ask(pdf_part(INVOICE)))
        assert caught.value.code == "tag_mismatch"
        assert "pdf" in caught.value.message
    assert openai_server.requests == []


def test_image_only_link_is_skipped_for_a_pdf(
    client: openai.OpenAI, gemini_server: SimulatedGemini, openai_server: SimulatedProvider
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="images-then-pdf", messages=ask(pdf_part(INVOICE))
    )
    assert raw.headers["x-nemo-model"] == "gemini-2.5-flash"
    assert openai_server.requests == [] and len(gemini_server.requests) == 1


def test_opted_in_image_deployment_gets_page_images(
    client: openai.OpenAI, openai_server: SimulatedProvider
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="local-vl-pages", messages=ask(pdf_part(MULTI_PAGE, pages="1-3"))
    )
    assert raw.headers["x-nemo-pages"] == "3"
    content = openai_server.requests[-1].json()["messages"][0]["content"]
    assert [p["type"] for p in content] == ["text", "image_url", "image_url", "image_url"]
    url = content[1]["image_url"]["url"]
    mime, data = url.removeprefix("data:").split(";base64,")
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    assert mime == "image/png" and image.mode == "L"  # a black-and-white text page: gray
    # 50 dpi (the deployment's setting) of an A4 page: 413 x 585 px
    assert abs(image.width - 595 * 50 / 72) <= 2 and abs(image.height - 842 * 50 / 72) <= 2


def test_cache_keys_on_the_bytes_and_the_selection(
    client: openai.OpenAI, gemini_server: SimulatedGemini
) -> None:
    text = f"Cache me. {uuid.uuid4()}"

    def call(pages: str | None) -> str:
        raw = client.chat.completions.with_raw_response.create(
            model="gemini-2.5-flash", messages=ask(pdf_part(MULTI_PAGE, pages=pages), text)
        )
        assert raw.headers["x-nemo-pages"] == ("5" if pages is None else str(int(pages[-1])))
        return raw.headers["x-nemo-cache"]

    assert call("1-2") == "MISS"
    assert call("1-2") == "HIT"
    assert call("1-3") == "MISS"  # another selection of the same bytes
    assert call(None) == "MISS"
    assert len(gemini_server.requests) == 3


@pytest.mark.parametrize(
    ("path", "pages", "says"),
    [
        (CORPUS / "bad" / "encrypted-aes256.pdf", None, "encrypted"),
        (CORPUS / "bad" / "password-protected-real.pdf", None, "encrypted"),
        (CORPUS / "bad" / "truncated.pdf", None, "cannot be read"),
        (CORPUS / "bad" / "zero-bytes.pdf", None, "empty"),
        (CORPUS / "bad" / "png-named-as.pdf", None, "not a PDF"),
        (MULTI_PAGE, "4-9", "has 5 pages"),
        (MULTI_PAGE, "two", "not a page"),
        (MULTI_PAGE, "0-2", "from 1 upward"),
    ],
)
def test_unusable_pdf_is_a_400_naming_the_part(
    client: openai.OpenAI,
    gemini_server: SimulatedGemini,
    path: Path,
    pages: str | None,
    says: str,
) -> None:
    messages = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "Read."}, pdf_part(path, pages)]},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gemini-2.5-flash", messages=messages)
    assert caught.value.code == "invalid_request"
    assert "messages[1].content[1]" in caught.value.message
    assert says in caught.value.message
    assert gemini_server.requests == []


def test_budget_worst_case_counts_pages_at_the_models_rate(client: openai.OpenAI) -> None:
    key = httpx.post(
        f"{client.base_url}".removesuffix("/v1/") + "/admin/keys",
        json={"name": "tiny", "budget_usd": "0.000001"},
        headers=ADMIN,
    ).json()["key"]
    tiny = openai.OpenAI(base_url=str(client.base_url), api_key=key, max_retries=0)
    # the first call is admitted (the budget is not spent yet) and spends it
    tiny.chat.completions.create(model="gemini-2.5-flash", messages=ask(pdf_part(INVOICE)))
    text = "Total?"
    with pytest.raises(openai.APIStatusError) as caught:
        tiny.chat.completions.create(
            model="gemini-2.5-flash", messages=ask(pdf_part(MULTI_PAGE), text), max_tokens=100
        )
    assert caught.value.status_code == 402
    # text at 3 characters a token, one message (4) and the reply (3), 5 pages x 258 (the
    # catalog's Gemini 2.5 figure) at $0.30/M in, 100 tokens at $2.50/M out
    prompt = -(-len(text) // 3) + 4 + 3 + 5 * 258
    worst = (prompt * Decimal("0.30") + 100 * Decimal("2.50")) / 1_000_000
    assert caught.value.response.headers["x-nemo-budget-worst-case"] == pico_usd(to_pico(worst))


def test_spend_row_records_the_pages(
    client: openai.OpenAI, gateway: BackgroundGateway, database: str
) -> None:
    job = f"pdf-{uuid.uuid4()}"
    client.chat.completions.create(
        model="gemini-2.5-pro",
        messages=ask(pdf_part(MULTI_PAGE, pages="2-4")),
        extra_body={"metadata": {"job_id": job}},
    )
    httpx.get(f"{gateway.url}/admin/jobs/{job}", headers=ADMIN)  # flushes the spend writer
    with sqlite3.connect(database.removeprefix("sqlite:///")) as db:
        rows = db.execute("SELECT pages FROM spend WHERE job_id = ?", (job,)).fetchall()
    assert rows == [(3,)]


@pytest.fixture
def pdf_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    body = INVOICE.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(image_fetch, "ALLOWED_NETWORKS", (ipaddress.ip_network("127.0.0.0/8"),))
    yield f"http://127.0.0.1:{server.server_address[1]}/invoice.pdf"
    server.shutdown()
    server.server_close()


def test_pdf_by_url_is_fetched_counted_and_inlined(
    client: openai.OpenAI, claude_server: SimulatedAnthropic, pdf_host: str
) -> None:
    part = {"type": "file", "file": {"file_url": pdf_host, "pages": "2"}}
    raw = client.chat.completions.with_raw_response.create(
        model="claude-haiku-4-5", messages=ask(part)
    )
    assert raw.headers["x-nemo-pages"] == "1"
    source = claude_server.requests[-1].json()["messages"][0]["content"][1]["source"]
    assert source["type"] == "base64"
    assert page_count(base64.b64decode(source["data"])) == 1


def test_gs_pdf_goes_to_gemini_as_file_data(
    client: openai.OpenAI, gemini_server: SimulatedGemini
) -> None:
    part = {"type": "file", "file": {"file_url": "gs://bucket/scans/a.pdf"}}
    raw = client.chat.completions.with_raw_response.create(
        model="gemini-2.5-flash", messages=ask(part)
    )
    assert raw.headers["x-nemo-pages"] == "0"  # not read by the gateway: not counted
    file_data = gemini_server.requests[-1].json()["contents"][0]["parts"][1]["fileData"]
    assert file_data == {"mimeType": "application/pdf", "fileUri": "gs://bucket/scans/a.pdf"}


def test_gs_pdf_skips_deployments_that_cannot_read_cloud_storage(
    client: openai.OpenAI, gemini_server: SimulatedGemini, claude_server: SimulatedAnthropic
) -> None:
    part = {"type": "file", "file": {"file_url": "gs://bucket/scans/b.pdf"}}
    raw = client.chat.completions.with_raw_response.create(
        model="claude-then-vertex", messages=ask(part)
    )
    assert raw.headers["x-nemo-deployment"] == "flash-vertex"
    assert claude_server.requests == []
    for model in ("claude-haiku-4-5", "gemini-2.5-pro"):  # the Gemini API has no gs:// either
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=model, messages=ask(part))
        assert caught.value.code == "tag_mismatch"
        assert "cannot read gs:// files" in caught.value.message
    assert len(gemini_server.requests) == 1


def test_streamed_answer_carries_the_pages(
    client: openai.OpenAI, openai_server: SimulatedProvider
) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="local-vl-pages", messages=ask(pdf_part(INVOICE)), stream=True
    ) as response:
        assert response.headers["x-nemo-pages"] == "2"
        assert "".join(response.iter_lines())
    content = openai_server.requests[-1].json()["messages"][0]["content"]
    assert [p["type"] for p in content] == ["text", "image_url", "image_url"]
