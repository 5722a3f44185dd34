"""What one request of a batch carries: a page image, a page's text, or a PDF's pages.

`--send pages` (the default): one request per page, the page as an image; with `--text-layer
with-image` a born-digital PDF page's extracted text goes beside its image, with `instead` in
its place (scanned pages always go as images). `--send document`: one request per PDF (or per
chunk of `--pages-per-request` pages, cut into a PDF of its own) as an OpenAI `file` part;
images (non-PDF inputs) still go one page per request as image parts.

A unit is named by its document and first page (the journal's key); `pages` lists what it
covers. Units are planned the same way on every run, so a resumed job finds its own.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from nemorouter.batch.pdfpages import cut_pdf, text_layer
from nemorouter.batch.plan import SendPlan
from nemorouter.batch.sources import Document, PageError, render_page

# Larger requests are refused before they are sent: 20 MB is the smallest inline-request
# limit among the PDF-capable providers (Gemini API inline data: "PDF payloads under 20MB",
# ai.google.dev/gemini-api/docs/document-processing); Claude allows 32 MB per request.
MAX_DOCUMENT_BYTES = 20_000_000
TEXT_LABEL = "Text layer of this page, extracted from the PDF:\n"


@dataclass(frozen=True, slots=True)
class Unit:
    document: Document
    pages: tuple[int, ...]  # 1-based, in order
    as_document: bool  # a PDF file part (else one page: an image, its text, or both)

    @property
    def page(self) -> int:
        return self.pages[0]


@dataclass(frozen=True, slots=True)
class Payload:
    """A unit ready to send: the content parts after the instruction, and what they are."""

    doc: str
    page: int
    pages: tuple[int, ...]
    parts: list[dict[str, Any]]
    sent: str  # "image" | "text" | "image+text" | "document"


def plan_units(documents: list[Document], plan: SendPlan) -> list[Unit]:
    units: list[Unit] = []
    for document in documents:
        if plan.send == "document" and document.kind == "pdf":
            size = plan.pages_per_request or document.pages
            for first in range(1, document.pages + 1, size):
                pages = tuple(range(first, min(first + size, document.pages + 1)))
                units.append(Unit(document, pages, True))
        else:
            units.extend(Unit(document, (n,), False) for n in range(1, document.pages + 1))
    return units


def build_payload(unit: Unit, plan: SendPlan, *, dpi: int, max_image_bytes: int) -> Payload:
    """The unit's content parts (PDFium and image work: call from the render thread).
    Raises PageError when they cannot be produced."""
    document = unit.document
    if unit.as_document:
        return _document_payload(unit)
    layer = None
    if document.kind == "pdf" and plan.text_layer != "off":
        try:
            layer = text_layer(document, unit.page)
        except Exception:  # no readable text layer: the page goes as an image alone
            layer = None
    parts: list[dict[str, Any]] = []
    if layer is None or not layer.born_digital or plan.text_layer == "with-image":
        page = render_page(document, unit.page, dpi=dpi, max_bytes=max_image_bytes)
        parts.append(image_part(page.mime, page.data))
    if layer is not None and layer.born_digital:
        parts.append({"type": "text", "text": TEXT_LABEL + layer.text})
    kinds = [part["type"] for part in parts]
    sent = {("image_url",): "image", ("text",): "text"}.get(tuple(kinds), "image+text")
    return Payload(document.doc, unit.page, unit.pages, parts, sent)


def image_part(mime: str, data: bytes) -> dict[str, Any]:
    url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return {"type": "image_url", "image_url": {"url": url}}


def _document_payload(unit: Unit) -> Payload:
    document = unit.document
    whole = len(unit.pages) == document.pages
    try:
        data = document.path.read_bytes() if whole else cut_pdf(document, unit.pages)
    except OSError as exc:
        raise PageError(f"cannot read the PDF: {exc.strerror or exc}") from exc
    except Exception as exc:  # PdfiumError: the file changed or a page is broken
        raise PageError(f"cannot cut pages {_span(unit.pages)} from the PDF: {exc}") from exc
    if len(data) > MAX_DOCUMENT_BYTES:
        raise PageError(
            f"pages {_span(unit.pages)} make a {len(data) / 1e6:.1f} MB PDF, over the "
            f"{MAX_DOCUMENT_BYTES // 1_000_000} MB a request may carry: use a smaller "
            "--pages-per-request"
        )
    stem = document.path.stem
    filename = document.path.name if whole else f"{stem}.p{_span(unit.pages)}.pdf"
    url = f"data:application/pdf;base64,{base64.b64encode(data).decode('ascii')}"
    part = {"type": "file", "file": {"filename": filename, "file_data": url}}
    return Payload(document.doc, unit.page, unit.pages, [part], "document")


def _span(pages: tuple[int, ...]) -> str:
    return f"{pages[0]}-{pages[-1]}" if len(pages) > 1 else str(pages[0])
