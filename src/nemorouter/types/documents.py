"""PDF facts read at the edge (DESIGN §2.1): page count, the optional page selector, the
sub-document a selector makes, and the refusals of a PDF no provider could read.

PDFium (pypdfium2) is not thread-safe, so every call into it holds `PDFIUM_LOCK`; the
gateway runs it on a worker thread for large files (`run_pdfium`), so the event loop
never waits on a render or on a large document's parse. pypdfium2 is imported on first use
(~270 ms: it loads PDFium), on a worker thread, so processes that never read a PDF (the
command line, the batch runner, text-only gateways) do not pay for it.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar

from nemorouter.types.errors import GatewayError, invalid_request

PDF_MIME = "application/pdf"
# A file larger than this is parsed on a worker thread (a few ms of PDFium per MB).
INLINE_PARSE_BYTES = 1 << 20
MAX_SELECTOR_CHARS = 1000
PDFIUM_LOCK = threading.Lock()
_T = TypeVar("_T")
if TYPE_CHECKING:
    import pypdfium2 as pdfium
_loaded: ModuleType | None = None


def pdfium_module() -> ModuleType:
    """pypdfium2, imported once (the first call pays for loading PDFium)."""
    global _loaded
    if _loaded is None:
        import pypdfium2
        import pypdfium2.raw  # the FPDF_* functions

        _loaded = pypdfium2
    return _loaded


@dataclass(slots=True)
class Document:
    """One `file` part of the request, as read at the edge."""

    message: int  # index in `messages`
    part: int  # index in that message's content
    mime: str
    size: int  # decoded bytes (0 for a reference the gateway does not read)
    pages: int | None  # pages sent upstream (after the selector); None: not known (gs://)
    selection: tuple[int, ...] | None = None  # 0-based pages kept, None: all
    stored: bool = False  # a gs:// reference: only Vertex AI reads it

    @property
    def where(self) -> str:
        return f"messages[{self.message}].content[{self.part}]"

    @property
    def is_pdf(self) -> bool:
        return self.mime == PDF_MIME


def part_error(where: str, message: str) -> GatewayError:
    """A 400 `invalid_request` naming the part (DESIGN §2.1)."""
    return invalid_request(f"'{where}': {message}", where)


def parse_selector(text: object, where: str) -> tuple[int, ...]:
    """`"1-3,7"` (1-based, ranges inclusive) → sorted 0-based page indices, each once."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_SELECTOR_CHARS:
        raise part_error(where, 'file.pages must be a page selector such as "1-3,7" (1-based).')
    pages: set[int] = set()
    for item in text.split(","):
        first, dash, last = item.strip().partition("-")
        try:
            start = int(first)
            end = int(last) if dash else start
        except ValueError:
            raise part_error(
                where, f"file.pages {text!r}: {item.strip()!r} is not a page or a range a-b."
            ) from None
        if start < 1 or end < start:
            raise part_error(
                where, f"file.pages {text!r}: {item.strip()!r} must be pages from 1 upward, a <= b."
            )
        if end - start > 100_000:
            raise part_error(where, f"file.pages {text!r}: range {item.strip()!r} is too long.")
        pages.update(range(start - 1, end))
    return tuple(sorted(pages))


@dataclass(slots=True)
class ReadPdf:
    """What reading a PDF found: its page count, and new bytes when the document sent
    upstream differs from the client's (a selection, or an encryption removed)."""

    total: int
    data: bytes | None  # None: send the client's bytes unchanged


def read_pdf(data: bytes, selection: tuple[int, ...] | None, where: str) -> ReadPdf:
    """Open the PDF, check it, apply the selection. Holds PDFIUM_LOCK; refusals are 400s."""
    if not data:
        raise part_error(where, "the PDF is empty (0 bytes).")
    if not data.lstrip()[:5] == b"%PDF-":
        raise part_error(where, "the file is not a PDF (it does not start with %PDF-).")
    pdfium = pdfium_module()
    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise part_error(
                    where, "the PDF is encrypted with a password; send it decrypted."
                ) from None
            raise part_error(where, f"the PDF cannot be read ({_reason(exc)}).") from None
        try:
            total = len(pdf)
            if total == 0:
                raise part_error(where, "the PDF has no pages.")
            if selection is not None and selection[-1] >= total:
                raise part_error(
                    where,
                    f"file.pages selects page {selection[-1] + 1}, but the PDF has {total} "
                    f"page{'s' if total != 1 else ''}.",
                )
            # Encrypted without a user password (permissions only): PDFium reads it, but
            # Claude refuses any encryption, so every provider gets a decrypted copy.
            encrypted = pdfium.raw.FPDF_GetSecurityHandlerRevision(pdf.raw) != -1
            if selection is not None and len(selection) == total:
                selection = None  # all pages: the client's bytes as they are
            if selection is None and not encrypted:
                return ReadPdf(total, None)
            try:
                return ReadPdf(total, _copy(pdf, selection))
            except pdfium.PdfiumError as exc:  # pages PDFium reads but cannot copy
                raise part_error(where, f"the PDF's pages cannot be copied ({exc}).") from None
        finally:
            pdf.close()


def _copy(pdf: pdfium.PdfDocument, selection: tuple[int, ...] | None) -> bytes:
    """A new document holding the selected pages (all when None)."""
    out = pdfium_module().PdfDocument.new()
    try:
        out.import_pages(pdf, list(selection) if selection is not None else None)
        buffer = io.BytesIO()
        out.save(buffer)
        return buffer.getvalue()
    finally:
        out.close()


def _reason(exc: Exception) -> str:
    text = str(exc)  # "Failed to load document (PDFium: Data format error)."
    start = text.find("PDFium: ")
    end = text.find(")", start)
    return text[start + 8 : end].lower() if start >= 0 and end > start else text


async def run_pdfium(size: int, work: Callable[[], _T]) -> _T:
    """`work` inline when the file is small and PDFium is free, else on a worker thread
    (PDFium work of another request holds the lock: the loop must not wait on it)."""
    if size <= INLINE_PARSE_BYTES and _loaded is not None and not PDFIUM_LOCK.locked():
        return work()
    return await asyncio.to_thread(work)


__all__ = [
    "PDFIUM_LOCK",
    "PDF_MIME",
    "Document",
    "ReadPdf",
    "parse_selector",
    "part_error",
    "pdfium_module",
    "read_pdf",
    "run_pdfium",
]
