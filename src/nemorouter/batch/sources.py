"""Input files -> page images for the batch runner.

`discover` finds documents and classifies them by content (magic bytes, never the extension)
without rendering anything; `render_page` produces one encoded page image under a byte cap.

Threading: PDFium is not thread-safe. Every PDFium call in this module holds `PDFIUM_LOCK`,
but callers should still call `discover`/`render_page` from one thread at a time (the runner
uses a single-worker executor) so pages of a big PDF don't queue on the lock.

Rendering is deterministic: pixel-identical pages encode to identical bytes, which the runner's
cache relies on.
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageChops,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

MAX_PIXELS = 100_000_000  # refuse anything bigger: a decompression bomb or a mistake
CANDIDATE_SUFFIXES = frozenset(
    {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".heic", ".heif", ".gif", ".bmp"}
)
JPEG_QUALITIES = (85, 70, 55, 40)
GRAY_TOLERANCE = 16  # max channel spread (0-255) still counted as "no colour"
MIN_SIDE = 200  # don't downscale below this: the page would be unreadable anyway

PDFIUM_LOCK = threading.Lock()
# Header parsers used directly: Image.open would raise DecompressionBombError before we can
# read the size, and warn for 89-178 Mpx; we apply our own limit instead. Parsing a header
# never decodes pixels.
_IMAGE_PLUGINS: dict[str, type[ImageFile.ImageFile]] = {
    "PNG": PngImagePlugin.PngImageFile,
    "JPEG": JpegImagePlugin.JpegImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
    "TIFF": TiffImagePlugin.TiffImageFile,
    "GIF": GifImagePlugin.GifImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
}
_PASSTHROUGH_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


@dataclass(frozen=True, slots=True)
class Document:
    path: Path  # absolute file path
    doc: str  # stable id: path relative to the input folder, or the file name; POSIX separators
    pages: int  # >= 1
    kind: str  # "pdf" | "image" | "tiff" (from content)


@dataclass(frozen=True, slots=True)
class SourceError:
    doc: str
    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Page:
    doc: str
    page: int  # 1-based
    mime: str  # "image/jpeg" | "image/png" | "image/webp"
    data: bytes
    width: int
    height: int


class PageError(Exception):
    """One page could not be produced; `reason` is for errors.jsonl."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sniff(head: bytes) -> str | None:
    """Format from the first bytes of a file: PDF, PNG, JPEG, WEBP, TIFF, GIF, BMP, HEIC, AVIF."""
    if b"%PDF-" in head[:1024]:  # the spec tolerates junk before the header
        return "PDF"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:2] == b"BM":
        return "BMP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC"
    return None


def _too_large(width: int, height: int) -> str | None:
    if width * height > MAX_PIXELS:
        return f"image too large: {width}x{height} px (limit {MAX_PIXELS // 1_000_000} Mpx)"
    if width <= 0 or height <= 0:
        return f"corrupt image: size {width}x{height}"
    return None


def _pdf_reason(exc: Exception) -> str:
    msg = str(exc)
    if "password" in msg.lower():
        return "encrypted PDF (password required)"
    m = re.search(r"\(PDFium: ([^)]*?)\.?\)", msg)
    return f"corrupt or truncated PDF (PDFium: {m.group(1) if m else msg})"


def _image_frames(path: Path, fmt: str) -> int | str:
    """Frame count, or the reason a frame is refused (headers only, nothing decoded)."""
    with _IMAGE_PLUGINS[fmt](str(path)) as im:
        # animated GIF/WebP: the first frame is the page; TIFF: every frame is one
        frames = getattr(im, "n_frames", 1) if fmt == "TIFF" else 1
        for i in range(frames):
            im.seek(i)
            if reason := _too_large(*im.size):
                return f"frame {i + 1}: {reason}" if frames > 1 else reason
        return frames


def _inspect(path: Path, doc: str) -> Document | SourceError:
    def error(reason: str) -> SourceError:
        return SourceError(doc=doc, path=str(path), reason=reason)

    try:
        with path.open("rb") as f:
            head = f.read(1024)
    except OSError as exc:
        return error(f"cannot read file: {exc.strerror or exc}")
    if not head:
        return error("empty file")
    fmt = sniff(head)
    if fmt is None:
        return error("not a PDF or image: unrecognised content")
    if fmt in ("HEIC", "AVIF"):
        return error(f"unsupported format {'HEIC/HEIF' if fmt == 'HEIC' else fmt}")
    if fmt == "PDF":
        try:
            with PDFIUM_LOCK:
                pdf = pdfium.PdfDocument(str(path))
                try:
                    pages = len(pdf)
                finally:
                    pdf.close()
        except Exception as exc:  # PdfiumError mostly; anything else is a bad file too
            return error(_pdf_reason(exc))
        return Document(path, doc, pages, "pdf") if pages else error("PDF has no pages")
    try:
        frames = _image_frames(path, fmt)
    except Exception as exc:  # Pillow raises SyntaxError, OSError, EOFError, ... on bad headers
        return error(f"corrupt {fmt} image: {exc}")
    if isinstance(frames, str):
        return error(frames)
    return Document(path, doc, frames, "tiff" if fmt == "TIFF" else "image")


def _is_candidate(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in CANDIDATE_SUFFIXES


def discover(inputs: Sequence[Path]) -> tuple[list[Document], list[SourceError]]:
    """Documents under `inputs` (files or folders, recursive), sorted by doc id.

    Hidden files/folders and non-document files (ground-truth JSON, ...) in folders are skipped
    silently; an explicitly named file is always a candidate. Raises FileNotFoundError for a
    missing input. Only headers are read: nothing is rendered or decoded.
    """
    found: list[tuple[str, Path]] = []
    for given in inputs:
        root = Path(given).expanduser()
        if not root.exists():
            raise FileNotFoundError(f"input not found: {given}")
        root = root.resolve()
        if root.is_file():
            found.append((root.name, root))
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                p = Path(dirpath, name)
                if _is_candidate(name) and p.is_file():
                    found.append((p.relative_to(root).as_posix(), p))

    documents: list[Document] = []
    errors: list[SourceError] = []
    seen_paths: set[Path] = set()
    seen_docs: dict[str, Path] = {}
    for doc, path in sorted(found, key=lambda item: (item[0], str(item[1]))):
        if (real := path.resolve()) in seen_paths:  # the same file reached through two inputs
            continue
        seen_paths.add(real)
        if doc in seen_docs:  # results are keyed by doc id: two files can't share one
            reason = f"duplicate document id (same as {seen_docs[doc]}); pass the parent folder"
            errors.append(SourceError(doc=doc, path=str(path), reason=reason))
            continue
        seen_docs[doc] = path
        result = _inspect(path, doc)
        if isinstance(result, Document):
            documents.append(result)
        else:
            errors.append(result)
    return documents, errors


def render_page(
    document: Document, page: int, *, dpi: int = 150, max_bytes: int = 4_000_000
) -> Page:
    """Page `page` (1-based) of `document` as an encoded image of at most `max_bytes`.

    Not for concurrent use: call from one thread at a time (PDFium is not thread-safe).
    Raises PageError(reason) when the page can't be produced.
    """
    if not 1 <= page <= document.pages:
        raise PageError(f"page {page} out of range (document has {document.pages})")
    try:
        if document.kind == "pdf":
            im = _render_pdf(document.path, page, dpi)
            return _page(document, page, *_encode(im, max_bytes, png_ok=im.mode == "L"))
        return _render_image(document, page, max_bytes)
    except PageError:
        raise
    except pdfium.PdfiumError as exc:
        raise PageError(_pdf_reason(exc)) from exc
    except Exception as exc:  # the batch continues: any failure becomes this page's reason
        raise PageError(f"cannot render page {page}: {type(exc).__name__}: {exc}") from exc


def _page(document: Document, page: int, mime: str, data: bytes, im: Image.Image) -> Page:
    return Page(document.doc, page, mime, data, im.width, im.height)


def _render_pdf(path: Path, page: int, dpi: int) -> Image.Image:
    scale = dpi / 72
    with PDFIUM_LOCK:
        pdf = pdfium.PdfDocument(str(path))
        try:
            # Size from the page tree, before loading or rendering the page.
            w_pt, h_pt = pdf.get_page_size(page - 1)
            if reason := _too_large(round(w_pt * scale), round(h_pt * scale)):
                raise PageError(f"page too large at {dpi} dpi: {reason.split(': ', 1)[1]}")
            pdf.init_forms()  # draw AcroForm field values that lack appearance streams
            pdf_page = pdf[page - 1]
            try:
                bitmap = pdf_page.render(scale=scale, may_draw_forms=True)
                try:
                    im = bitmap.to_pil().convert("RGB")  # a copy: the bitmap buffer is freed below
                finally:
                    bitmap.close()
            finally:
                pdf_page.close()
        finally:
            pdf.close()
    return im.convert("L") if _is_gray(im) else im


def _is_gray(im: Image.Image) -> bool:
    """No pixel has a channel spread above GRAY_TOLERANCE, judged on a 4x box-reduced copy."""
    small = im.reduce(4) if min(im.size) >= 64 else im
    r, g, b = small.split()
    spread = ImageChops.lighter(ImageChops.difference(r, g), ImageChops.difference(g, b))
    return spread.getextrema()[1] <= GRAY_TOLERANCE  # type: ignore[operator]


def _render_image(document: Document, page: int, max_bytes: int) -> Page:
    with document.path.open("rb") as f:
        fmt = sniff(f.read(1024))
    if fmt not in _IMAGE_PLUGINS:
        raise PageError(f"file changed since discovery: now {fmt or 'unrecognised content'}")
    with _IMAGE_PLUGINS[fmt](str(document.path)) as im:
        if fmt == "TIFF":
            im.seek(page - 1)
        if reason := _too_large(*im.size):
            raise PageError(reason)
        # Decode even what passes through: a truncated file fails here (OSError -> PageError)
        # rather than at the provider. Bounded by the pixel check above.
        im.load()
        size = document.path.stat().st_size
        # PNG/JPEG/WebP as they are: the model sees exactly the file (no EXIF rotation either).
        if fmt in _PASSTHROUGH_MIME and size <= max_bytes and im.mode != "CMYK":
            return Page(
                document.doc, page, _PASSTHROUGH_MIME[fmt], document.path.read_bytes(), *im.size
            )
        flat = _normalise(im)
    # Lossless for bilevel/gray TIFF frames and GIF/BMP; PDF rules for oversized photos.
    lossless = fmt in ("GIF", "BMP") or (fmt == "TIFF" and flat.mode in ("1", "L"))
    return _page(
        document,
        page,
        *_encode(flat, max_bytes, png_ok=flat.mode in ("1", "L"), png_first=lossless),
    )


def _normalise(im: Image.Image) -> Image.Image:
    """Mode '1', 'L' or 'RGB': transparency flattened onto white, colourless RGB made gray."""
    if im.mode == "1":
        return im.copy()
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return im.convert("I").point(lambda v: v / 256).convert("L")  # 16-bit -> 8-bit gray
    if im.mode in ("P", "PA") or "A" in im.mode or "a" in im.mode or "transparency" in im.info:
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
    else:
        flat = im.convert("L") if im.mode == "L" else im.convert("RGB")
    if flat.mode == "RGB" and _is_gray(flat):
        return flat.convert("L")
    return flat


def _save(im: Image.Image, fmt: str, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    if fmt == "PNG":
        im.save(buf, format="PNG")
    else:
        im = im.convert("L") if im.mode == "1" else im
        im.save(buf, format="JPEG", quality=quality, subsampling="4:2:0" if im.mode == "RGB" else 0)
    return buf.getvalue()


def _encode(
    im: Image.Image, max_bytes: int, *, png_ok: bool, png_first: bool = False
) -> tuple[str, bytes, Image.Image]:
    """(mime, bytes, encoded image) under max_bytes: JPEG, or PNG for gray pages when smaller.

    Over the cap: lower JPEG quality, then downscale by 3/4 steps. Raises PageError if even a
    MIN_SIDE-sized JPEG doesn't fit.
    """
    if png_first:
        data = _save(im, "PNG")
        if len(data) <= max_bytes:
            return "image/png", data, im
    jpeg = _save(im, "JPEG")
    if png_ok and not png_first:
        png = _save(im, "PNG")
        if len(png) <= len(jpeg) and len(png) <= max_bytes:  # text/line art: lossless and smaller
            return "image/png", png, im
    if len(jpeg) <= max_bytes:
        return "image/jpeg", jpeg, im
    for quality in JPEG_QUALITIES[1:]:
        data = _save(im, "JPEG", quality)
        if len(data) <= max_bytes:
            return "image/jpeg", data, im
    work = im.convert("L") if im.mode == "1" else im
    while min(work.size) * 3 // 4 >= MIN_SIDE:
        work = work.resize((work.width * 3 // 4, work.height * 3 // 4), Image.Resampling.LANCZOS)
        data = _save(work, "JPEG", JPEG_QUALITIES[1])
        if len(data) <= max_bytes:
            return "image/jpeg", data, work
    raise PageError(
        f"cannot encode page under {max_bytes} bytes (even at {work.width}x{work.height})"
    )
