"""Render a PDF into page images, for a deployment whose model reads images but not PDFs
(`pdf: pages`, DESIGN §2.2).

Pages are rendered at the deployment's dpi, scaled down so the longer side stays within its
pixel cap, and sent grayscale (PNG) when the page has no colour, else as JPEG: a text page
in gray PNG stays sharp and small, a colour photo page stays small as JPEG. CPU-bound: the
caller runs it on a worker thread; PDFium calls hold the process-wide PDFIUM_LOCK.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

from nemorouter.types.documents import PDFIUM_LOCK, pdfium_module

DEFAULT_DPI = 150
DEFAULT_MAX_SIDE = 2000  # px; an A4 page at 150 dpi is 1240 x 1754
POINTS_PER_INCH = 72  # the PDF canvas unit
# Channel spread at or below which a page counts as colourless (anti-aliasing and JPEG
# noise in scans leave a few levels between R, G and B on gray content).
GRAY_TOLERANCE = 12
JPEG_QUALITY = 85
PNG_COMPRESS_LEVEL = 3  # level 6 (the default) costs ~2x the time for ~5% fewer bytes
if TYPE_CHECKING:  # Pillow is imported on first render, like PDFium
    from PIL import Image


def page_size(width_pt: float, height_pt: float, dpi: int, max_side: int) -> tuple[int, int]:
    """Pixel size of a page of `width_pt` x `height_pt` points rendered under the caps."""
    scale = _scale(width_pt, height_pt, dpi, max_side)
    return max(1, round(width_pt * scale)), max(1, round(height_pt * scale))


def _scale(width_pt: float, height_pt: float, dpi: int, max_side: int) -> float:
    scale = dpi / POINTS_PER_INCH
    longest = max(width_pt, height_pt) * scale
    if longest > max_side:
        scale *= max_side / longest
    return scale


def render_pages(data: bytes, dpi: int, max_side: int) -> list[tuple[str, str]]:
    """Every page of the PDF `data` as (MIME type, base64 image)."""
    images: list[Image.Image] = []
    pdfium = pdfium_module()
    with PDFIUM_LOCK:
        pdf = pdfium.PdfDocument(data)
        try:
            for page in pdf:
                try:
                    width, height = page.get_size()
                    bitmap = page.render(scale=_scale(width, height, dpi, max_side))
                    images.append(bitmap.to_pil())
                finally:
                    page.close()
        finally:
            pdf.close()
    return [_encode(image) for image in images]  # PIL releases the GIL; PDFium is free again


def _encode(image: Image.Image) -> tuple[str, str]:
    image = image.convert("RGB")
    buffer = io.BytesIO()
    if _colourless(image):
        image.convert("L").save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL)
        mime = "image/png"
    else:
        image.save(buffer, "JPEG", quality=JPEG_QUALITY)
        mime = "image/jpeg"
    return mime, base64.b64encode(buffer.getvalue()).decode("ascii")


def _colourless(image: Image.Image) -> bool:
    from PIL import ImageChops

    red, green, blue = image.split()
    return all(
        ImageChops.difference(a, b).getextrema()[1] <= GRAY_TOLERANCE  # type: ignore[index]
        for a, b in ((red, green), (green, blue))
    )
