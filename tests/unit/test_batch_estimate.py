"""`batch estimate`: numbers checked against a hand computation for two models, the modes a
model cannot use, the catalog's PDF facts, and the CLI's table and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image

from nemorouter.batch.estimate import estimate_models, scan
from nemorouter.batch.prompts import classification
from nemorouter.catalog import CatalogError, load_catalog, parse_catalog
from nemorouter.types.money import display_usd
from tests.corpus import CORPUS

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")
AWS = CORPUS / "invoices" / "AmazonWebServices.pdf"  # 1 page, 612 x 792 pt, born-digital
TASK = classification(["invoice", "receipt"])
M = Decimal(1_000_000)


def aws_text_chars() -> int:
    """The AWS page's text part as the batch sends it: a 49-character label, then the page's
    text (PDFium's, CRLF as LF, stripped)."""
    pdf = pdfium.PdfDocument(str(AWS))
    textpage = pdf[0].get_textpage()
    text = textpage.get_text_bounded().replace("\r\n", "\n").strip()
    return 49 + len(text)


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    Image.new("RGB", (1000, 800), "white").save(tmp_path / "photo.png")
    return [AWS, tmp_path / "photo.png"]


@needs_corpus
def test_two_models_by_hand(inputs: list[Path]) -> None:
    scanned = scan(inputs, dpi=150)
    assert [(p.doc, p.size) for p in scanned.pages] == [
        ("AmazonWebServices.pdf", (1275, 1651)),  # ceil(612 x 150/72), ceil(792 x 150/72)
        ("photo.png", (1000, 800)),
    ]
    found = estimate_models(["gemini-2.5-flash", "claude-sonnet-4-6"], scanned.pages, TASK,
                            max_tokens=100, pages_per_request=None)  # fmt: skip
    # The instruction is 104 characters: 26 tokens at 4 characters a token, on every request.
    i = 26
    text = -(-aws_text_chars() // 4)
    # Gemini 2.5 Flash, $0.30 in / $2.50 out per 1M. Image tiles of 768 px, 258 tokens each:
    # 1275x1651 is 2 x 3 = 6 tiles (1548), 1000x800 is 2 x 2 = 4 tiles (1032). A PDF page
    # is 258 tokens. Output: --max-tokens 100 on each request.
    gemini = found["gemini-2.5-flash"]
    assert not isinstance(gemini, str)
    expect = {
        "pages": (i + 1548) + (i + 1032),
        "pages+text": (i + 1548 + text) + (i + 1032),
        "text": (i + text) + (i + 1032),
        "document": (i + 258) + (i + 1032),
    }
    for mode, prompt in expect.items():
        assert (gemini[mode].requests, gemini[mode].prompt_tokens) == (2, prompt), mode
        assert gemini[mode].output_tokens == 200
        assert gemini[mode].cost_usd == (prompt * Decimal("0.30") + 200 * Decimal("2.50")) / M
    assert gemini["pages"].cost_usd == Decimal("0.0012896")  # (2632 x 0.30 + 200 x 2.50) / 1M
    # Claude Sonnet 4.6, $3 in / $15 out per 1M. Images: w x h / 750 after fitting the long
    # edge to 1568 px, at most 1600: 1275x1651 -> 1211x1568 -> 2531, so 1600; 1000x800 ->
    # 1066.7, so 1067. A PDF page: 3100 (catalog: text 1500 + page image 1600).
    claude = found["claude-sonnet-4-6"]
    assert not isinstance(claude, str)
    expect = {
        "pages": (i + 1600) + (i + 1067),
        "pages+text": (i + 1600 + text) + (i + 1067),
        "text": (i + text) + (i + 1067),
        "document": (i + 3100) + (i + 1067),
    }
    for mode, prompt in expect.items():
        assert claude[mode].prompt_tokens == prompt, mode
        assert claude[mode].cost_usd == (prompt * Decimal(3) + 200 * Decimal(15)) / M
    assert claude["document"].cost_usd == Decimal("0.015657")  # (4219 x 3 + 200 x 15) / 1M


@needs_corpus
def test_typical_output_without_max_tokens_and_chunks(tmp_path: Path) -> None:
    multi = CORPUS / "mixed" / "multi_page.pdf"  # 5 pages
    scanned = scan([multi], dpi=150)
    from nemorouter.batch.prompts import free_prompt

    task = free_prompt("Transcribe this page.")  # 21 characters: 6 tokens
    found = estimate_models(["gemini-2.5-pro"], scanned.pages, task, None, pages_per_request=2)
    document = found["gemini-2.5-pro"]["document"]  # type: ignore[index]
    # Chunks of 2, 2, 1 pages: 3 requests, 258 a page; typical output 800 a page.
    assert document.requests == 3
    assert document.prompt_tokens == 3 * 6 + 5 * 258
    assert document.output_tokens == 5 * 800


@needs_corpus
def test_modes_a_model_cannot_use_and_unknown_models(inputs: list[Path]) -> None:
    scanned = scan(inputs, dpi=150)
    found = estimate_models(
        ["llama-4-scout-17b-16e-instruct-maas", "gpt-4.1", "no-such-model"],
        scanned.pages, TASK, None, None,
    )  # fmt: skip
    assert found["no-such-model"] == "not in the catalog: no token rule or price"
    assert found["llama-4-scout-17b-16e-instruct-maas"]["document"].unavailable == "no PDF input"  # type: ignore[index]
    assert found["gpt-4.1"]["document"].unavailable == "no PDF token rule"  # type: ignore[index]
    assert found["gpt-4.1"]["pages"].cost_usd is not None  # type: ignore[index]


@needs_corpus
def test_a_text_only_model_reads_born_digital_pages_as_text_only() -> None:
    text_only = "llama-3.1-405b-instruct-maas"  # capabilities: streaming only
    found = estimate_models([text_only], scan([AWS], dpi=150).pages, TASK, 100, None)[text_only]
    assert found["text"].prompt_tokens == 26 + -(-aws_text_chars() // 4)  # type: ignore[index]
    assert found["pages"].unavailable == "no image input"  # type: ignore[index]
    with_scan = scan([AWS, CORPUS / "mixed" / "ocr_test.pdf"], dpi=150).pages
    found = estimate_models([text_only], with_scan, TASK, 100, None)[text_only]
    assert found["text"].unavailable == "no image input"  # type: ignore[index]  # the scan


def test_catalog_pdf_tokens_per_page_facts() -> None:
    catalog = load_catalog()
    assert catalog["gemini-2.5-flash"].pdf_tokens_per_page == 258
    assert catalog["gemini-3-pro-preview"].pdf_tokens_per_page == 560
    assert catalog["claude-haiku-4-5"].pdf_tokens_per_page == 3100
    assert catalog["gpt-4o"].pdf_tokens_per_page is None
    with_rule = {n for n, m in catalog.items() if m.pdf_tokens_per_page is not None}
    assert all("pdf" in catalog[n].capabilities for n in with_rule)


def test_catalog_pdf_tokens_per_page_must_be_a_positive_integer() -> None:
    entry = """
as_of: 2026-01-01
sources:
  doc: "https://example.com/document-processing"
models:
  m:
    provider_family: gemini
    capabilities: [vision, pdf]
    context_window: 1000
    max_output_tokens: 100
    pdf_tokens_per_page: {value}
    pricing: {{input_per_mtok: "1", output_per_mtok: "2"}}
    sources: [doc]
"""
    assert parse_catalog(entry.format(value=258))["m"].pdf_tokens_per_page == 258
    for bad in ("0", "2.5", '"258"'):
        with pytest.raises(CatalogError, match="pdf_tokens_per_page"):
            parse_catalog(entry.format(value=bad))


@needs_corpus
def test_cli_json_and_a_piped_table_never_cut(tmp_path: Path, inputs: list[Path]) -> None:
    args = [sys.executable, "-m", "nemorouter.cli", "batch", "estimate", *map(str, inputs),
            str(CORPUS / "bad" / "zero-bytes.pdf"), "--classify", "invoice,receipt",
            "--model", "gemini-2.5-flash", "--model", "claude-sonnet-4-6", "--max-tokens", "100"]  # fmt: skip
    done = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["pages"], report["pdf_pages_born_digital"], report["image_pages"]) == (2, 1, 1)
    assert report["unreadable_inputs"] == [{"doc": "zero-bytes.pdf", "reason": "empty file"}]
    assert report["models"]["gemini-2.5-flash"]["pages"]["cost_usd"] == "0.0012896"
    assert report["models"]["claude-sonnet-4-6"]["document"]["cost_usd"] == "0.015657"
    table = subprocess.run(args, capture_output=True, text=True, timeout=60)  # piped
    assert table.returncode == 0, table.stderr
    assert "$0.0157" in table.stdout and "claude-sonnet-4-6" in table.stdout  # display_usd
    assert "…" not in table.stdout  # no cell cut
    assert max(len(line) for line in table.stdout.splitlines()) > 80  # wider than a pipe's 80


def test_deferred_price_is_half_for_families_with_a_batch_api_and_none_otherwise(
    tmp_path: Path,
) -> None:
    Image.new("RGB", (1000, 800), "white").save(tmp_path / "photo.png")
    models = ["gemini-2.5-flash", "claude-sonnet-4-6", "gpt-4.1-mini", "mistral-small-2503"]
    found = estimate_models(models, scan([tmp_path], dpi=150).pages, TASK, max_tokens=100,
                            pages_per_request=None)  # fmt: skip
    for name in models[:3]:
        modes = found[name]
        assert not isinstance(modes, str)
        pages = modes["pages"]
        assert pages.cost_usd is not None and pages.cost_usd > 0
        assert pages.deferred_cost_usd == pages.cost_usd / 2, name  # exact: Decimal
        assert pages.as_json()["deferred_cost_usd"] is not None
    mistral = found["mistral-small-2503"]
    assert not isinstance(mistral, str)
    assert mistral["pages"].cost_usd is not None
    assert mistral["pages"].deferred_cost_usd is None  # no batch price known: n/a, no guess
    assert mistral["pages"].as_json()["deferred_cost_usd"] is None
    args = [sys.executable, "-m", "nemorouter.cli", "batch", "estimate", str(tmp_path),
            "--classify", "invoice,receipt", "--model", "gemini-2.5-flash", "--max-tokens", "100"]  # fmt: skip
    table = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    gemini = found["gemini-2.5-flash"]
    assert not isinstance(gemini, str)
    assert "deferred" in table.stdout
    assert display_usd(gemini["pages"].deferred_cost_usd) in table.stdout  # type: ignore[arg-type]
