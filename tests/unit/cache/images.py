"""Real PNG pages made with Pillow, and data URLs wrapping them in different ways."""

from __future__ import annotations

import base64
import io
import random

from PIL import Image


def page_png(size: tuple[int, int] = (400, 300), flip: tuple[int, int] | None = None) -> bytes:
    """A noisy grey page (so it does not compress to nothing); `flip` changes one pixel."""
    rng = random.Random(7)
    image = Image.new("L", size)
    image.putdata([rng.randrange(256) for _ in range(size[0] * size[1])])
    if flip is not None:
        image.putpixel(flip, (image.getpixel(flip) + 1) % 256)  # type: ignore[operator]
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def data_url(raw: bytes, header: str = "data:image/png;base64,", wrap: bool = False) -> str:
    text = base64.encodebytes(raw).decode() if wrap else base64.b64encode(raw).decode()
    return header + text


def image_body(url: str, prompt: str = "Extract the invoice fields.", **params: object) -> dict:
    return {
        "model": "gemini-2.5-pro",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": prompt},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ],
        **params,
    }
