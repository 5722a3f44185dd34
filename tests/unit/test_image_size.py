"""Image sizes read from the header inside a base64 data URL, checked against Pillow."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from nemorouter.types.image_size import data_url_image_size

CORPUS = Path("/work/shared/corpus")  # real page scans and photos, read in place


def url_of(raw: bytes, mime: str = "image/png", wrap: bool = False) -> str:
    text = base64.encodebytes(raw).decode() if wrap else base64.b64encode(raw).decode()
    return f"data:{mime};base64,{text}"


def encoded(size: tuple[int, int], fmt: str, mode: str = "RGB", **options: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "white").save(out, format=fmt, **options)
    return out.getvalue()


def corpus_images() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    found = [*CORPUS.glob("*/*.png"), *CORPUS.glob("*/*.jpg")]
    return sorted(p for p in found if p.parent.name != "bad")


@pytest.mark.parametrize("path", corpus_images(), ids=lambda p: p.name)
def test_real_scans_and_photos_match_pillow(path: Path) -> None:
    raw = path.read_bytes()
    assert data_url_image_size(url_of(raw)) == Image.open(path).size


def test_a_decompression_bomb_header_is_read_without_decoding_pixels() -> None:
    bomb = CORPUS / "bad" / "huge-dimensions.png"
    if not bomb.exists():
        pytest.skip("corpus not present")
    width, height = data_url_image_size(url_of(bomb.read_bytes()))  # type: ignore[misc]
    assert width * height == 10_000_000_000


@pytest.mark.parametrize(
    ("fmt", "mode", "options"),
    [
        ("PNG", "L", {}),
        ("GIF", "P", {}),
        ("JPEG", "RGB", {}),
        ("JPEG", "RGB", {"progressive": True}),  # SOF2, not SOF0
        ("JPEG", "L", {"exif": b"Exif\x00\x00" + b"\x00" * 30_000}),  # a long APP1 first
        ("WEBP", "RGB", {"quality": 50}),  # VP8 (lossy)
        ("WEBP", "RGB", {"lossless": True}),  # VP8L
        ("WEBP", "RGBA", {"exif": b"Exif\x00\x00" + b"\x00" * 100}),  # VP8X (extended)
    ],
)
def test_each_format(fmt: str, mode: str, options: dict[str, object]) -> None:
    for size in [(1, 1), (1240, 1754), (3001, 17)]:
        raw = encoded(size, fmt, mode, **options)
        assert data_url_image_size(url_of(raw, f"image/{fmt.lower()}")) == size, (fmt, size)


def test_an_icc_profile_segment_before_the_frame_header_is_walked_over() -> None:
    image = Image.new("RGB", (640, 480))
    out = io.BytesIO()
    image.save(out, format="JPEG", icc_profile=b"\x00" * 70_000)  # split over two APP2s
    assert data_url_image_size(url_of(out.getvalue(), "image/jpeg")) == (640, 480)


def test_wrapped_base64_is_read_too() -> None:
    raw = encoded((800, 600), "JPEG", exif=b"Exif\x00\x00" + b"\x00" * 5000)
    assert data_url_image_size(url_of(raw, "image/jpeg", wrap=True)) == (800, 600)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/page.png",
        "gs://bucket/page.png",
        "data:image/png;base64,AAAA",
        "data:image/png;base64,",
        "data:image/png,rawbytes",
        "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.7\n" + b"0" * 40).decode(),
        "data:image/png;base64,!!!!not base64 at all!!!!",
    ],
)
def test_unreadable_sizes_are_none(url: str) -> None:
    assert data_url_image_size(url) is None


def test_a_truncated_jpeg_is_none() -> None:
    raw = encoded((640, 480), "JPEG", exif=b"Exif\x00\x00" + b"\x00" * 3000)
    assert data_url_image_size(url_of(raw[:1000], "image/jpeg")) is None
