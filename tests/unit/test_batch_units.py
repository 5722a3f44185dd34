"""What each batch request carries: born-digital vs scanned pages (corpus), PDF chunks cut
with pypdfium2, the content parts of each send mode and text-layer option."""

from __future__ import annotations

import base64
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from nemorouter.batch.cli import build_plan
from nemorouter.batch.pdfpages import cut_pdf, text_layer
from nemorouter.batch.plan import SendPlan
from nemorouter.batch.prompts import UsageError
from nemorouter.batch.sources import Document, discover
from nemorouter.batch.units import TEXT_LABEL, build_payload, plan_units
from tests.corpus import CORPUS

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")

BORN_DIGITAL = ["invoices/AmazonWebServices.pdf", "invoices/Invoice_1.pdf", "forms/sec-10q-cover.pdf",
                "mixed/fake-memo.pdf", "mixed/normal_4pages.pdf", "mixed/multi_page.pdf"]  # fmt: skip
SCANNED = ["mixed/ocr_test.pdf", "mixed/ocr_test_rotated_90.pdf", "mixed/business-letter-scan.pdf"]


def doc(name: str) -> Document:
    documents, _ = discover([CORPUS / name])
    return documents[0]


def pdf_texts(data: bytes) -> list[str]:
    pdf = pdfium.PdfDocument(data)
    return [pdf[i].get_textpage().get_text_bounded() for i in range(len(pdf))]


@pytest.mark.parametrize("name", BORN_DIGITAL)
def test_born_digital_pages_have_a_text_layer(name: str) -> None:
    document = doc(name)
    for page in range(1, document.pages + 1):  # multi_page p5 is 359 chars over 5.8 % of it
        layer = text_layer(document, page)
        assert layer.born_digital, (name, page)
        assert len(layer.text) >= 100


@pytest.mark.parametrize("name", SCANNED)
def test_scanned_pages_have_none(name: str) -> None:
    layer = text_layer(doc(name), 1)
    assert not layer.born_digital
    assert layer.text == ""


def test_a_scan_cover_then_a_born_digital_invoice() -> None:
    document = doc("mixed/cover+AmazonWebServices.pdf")
    assert [text_layer(document, n).born_digital for n in (1, 2)] == [False, True]
    assert "Amazon Web Services" in text_layer(document, 2).text


def test_cut_pdf_keeps_exactly_the_pages_asked() -> None:
    document = doc("mixed/multi_page.pdf")
    whole = pdf_texts(document.path.read_bytes())
    assert pdf_texts(cut_pdf(document, (2, 3))) == whole[1:3]
    assert pdf_texts(cut_pdf(document, (5,))) == whole[4:]


def test_units_per_send_mode(tmp_path: Path) -> None:
    documents, _ = discover(
        [CORPUS / "mixed" / "multi_page.pdf", CORPUS / "mixed" / "2206.01062.tif"]
    )
    by_doc = lambda units: [(u.document.doc, u.pages, u.as_document) for u in units]  # noqa: E731
    assert by_doc(plan_units(documents, SendPlan("document", "off", 2))) == [
        ("2206.01062.tif", (1,), False), ("2206.01062.tif", (2,), False),  # images: one a page
        ("multi_page.pdf", (1, 2), True), ("multi_page.pdf", (3, 4), True),
        ("multi_page.pdf", (5,), True),
    ]  # fmt: skip
    assert by_doc(plan_units(documents, SendPlan("document")))[-1] == (
        "multi_page.pdf", (1, 2, 3, 4, 5), True)  # fmt: skip
    assert len(plan_units(documents, SendPlan())) == 7  # pages: one unit a page


def test_document_payload_is_one_file_part() -> None:
    document = doc("mixed/multi_page.pdf")
    whole = build_payload(plan_units([document], SendPlan("document"))[0], SendPlan("document"),
                          dpi=150, max_image_bytes=4_000_000)  # fmt: skip
    [part] = whole.parts
    assert whole.sent == "document" and whole.pages == (1, 2, 3, 4, 5)
    assert part["type"] == "file"
    assert part["file"]["filename"] == "multi_page.pdf"
    prefix, data = part["file"]["file_data"].split(",", 1)
    assert prefix == "data:application/pdf;base64"
    assert base64.b64decode(data) == document.path.read_bytes()  # a whole PDF goes as it is
    plan = SendPlan("document", "off", 3)
    chunk = build_payload(plan_units([document], plan)[1], plan, dpi=150, max_image_bytes=4_000_000)
    assert chunk.pages == (4, 5) and chunk.page == 4
    assert chunk.parts[0]["file"]["filename"] == "multi_page.p4-5.pdf"
    sent = base64.b64decode(chunk.parts[0]["file"]["file_data"].split(",", 1)[1])
    assert pdf_texts(sent) == pdf_texts(document.path.read_bytes())[3:]


@pytest.mark.parametrize(
    ("text_layer_mode", "scan_parts", "digital_parts", "digital_sent"),
    [
        ("off", ["image_url"], ["image_url"], "image"),
        ("with-image", ["image_url"], ["image_url", "text"], "image+text"),
        ("instead", ["image_url"], ["text"], "text"),
    ],
)
def test_text_layer_options(
    text_layer_mode: str, scan_parts: list[str], digital_parts: list[str], digital_sent: str
) -> None:
    document = doc("mixed/cover+AmazonWebServices.pdf")  # p1 a scan, p2 born-digital
    plan = SendPlan("pages", text_layer_mode)
    cover, invoice = (build_payload(u, plan, dpi=100, max_image_bytes=4_000_000)
                      for u in plan_units([document], plan))  # fmt: skip
    assert [p["type"] for p in cover.parts] == scan_parts and cover.sent == "image"
    assert [p["type"] for p in invoice.parts] == digital_parts and invoice.sent == digital_sent
    if "text" in digital_parts:
        text = invoice.parts[-1]["text"]
        assert text.startswith(TEXT_LABEL) and "Amazon Web Services" in text


def test_option_combinations_refused() -> None:
    with pytest.raises(UsageError, match="--pages-per-request goes with --send document"):
        build_plan("pages", "off", 3)
    with pytest.raises(UsageError, match="--text-layer goes with --send pages"):
        build_plan("document", "instead", None)
    with pytest.raises(UsageError, match="--send must be one of pages, document"):
        build_plan("pdf", "off", None)
    assert build_plan("document", "off", 4) == SendPlan("document", "off", 4)
