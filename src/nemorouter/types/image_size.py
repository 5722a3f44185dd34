"""An image's width and height from its header, read out of a base64 data URL.

Only the bytes the header needs are decoded: base64 turns every 4 characters into 3 bytes, so
bytes [a, b) are characters [a//3*4, ceil(b/3)*4), decoded on their own. PNG, GIF and WebP
keep their size in the first 30 bytes; JPEG keeps it in its SOFn segment, reached by
walking the segment lengths (EXIF, ICC profiles) without decoding what they hold. A few
microseconds per image, whatever its size. Anything else (remote URL, PDF, corrupt data)
is None: the caller then reserves a conservative per-provider figure.
"""

from __future__ import annotations

import binascii

# Characters of a wrapped (line-broken) payload decoded at most: headers sit near the start.
WRAPPED_PREFIX_CHARS = 256 * 1024
# JPEG segments walked at most before SOFn (real files have a handful: APPn, DQT, DHT).
MAX_JPEG_SEGMENTS = 64
# Start-of-frame markers carrying the size: C0-CF except DHT (C4), JPG (C8), DAC (CC).
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_WHITESPACE = (" ", "\n", "\r", "\t")


class _Base64Bytes:
    """Random access to the bytes of a base64 text without decoding all of it."""

    __slots__ = ("_start", "_text")

    def __init__(self, text: str, start: int) -> None:
        self._text = text
        self._start = start  # where the payload begins in `text`

    def read(self, offset: int, size: int) -> bytes | None:
        """Bytes [offset, offset + size), or None past the end or for invalid base64."""
        first = offset // 3 * 4
        last = -(-(offset + size) // 3) * 4
        chunk = self._text[self._start + first : self._start + last]
        try:
            data = binascii.a2b_base64(chunk, strict_mode=True)
        except (binascii.Error, ValueError):
            # The last group may be short of its padding; anything else is not base64.
            try:
                data = binascii.a2b_base64(chunk + "=" * (-len(chunk) % 4), strict_mode=True)
            except (binascii.Error, ValueError):
                return None
        skip = offset - first // 4 * 3
        found = data[skip : skip + size]
        return found if len(found) == size else None


def data_url_image_size(url: str) -> tuple[int, int] | None:
    """(width, height) of a `data:...;base64,` image, or None when it cannot be read."""
    if not url.startswith("data:"):
        return None
    comma = url.find(",", 5, 512)
    if comma < 0 or not url[5:comma].endswith(";base64"):
        return None
    start = comma + 1
    if any(space in url[start : start + 100] for space in _WHITESPACE):
        # Wrapped base64 (76-character lines): offsets no longer map; decode a prefix.
        prefix = "".join(url[start : start + WRAPPED_PREFIX_CHARS].split())
        prefix = prefix[: len(prefix) // 4 * 4]
        return image_size(_Base64Bytes(prefix, 0))
    return image_size(_Base64Bytes(url, start))


def image_size(data: _Base64Bytes) -> tuple[int, int] | None:
    head = data.read(0, 30)
    if head is None:
        return None
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        return _positive(int.from_bytes(head[16:20]), int.from_bytes(head[20:24]))
    if head.startswith((b"GIF87a", b"GIF89a")):
        return _positive(int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little"))
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return _webp_size(head)
    if head.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":  # lossy: 14-bit sizes
        width = int.from_bytes(head[26:28], "little") & 0x3FFF
        height = int.from_bytes(head[28:30], "little") & 0x3FFF
        return _positive(width, height)
    if chunk == b"VP8L" and head[20] == 0x2F:  # lossless: 14-bit (size - 1) fields
        bits = int.from_bytes(head[21:25], "little")
        return _positive((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":  # extended: 24-bit (size - 1) fields
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return _positive(width, height)
    return None


def _jpeg_size(data: _Base64Bytes) -> tuple[int, int] | None:
    offset = 2  # past SOI
    for _ in range(MAX_JPEG_SEGMENTS):
        marker = data.read(offset, 4)
        if marker is None or marker[0] != 0xFF:
            return None
        kind = marker[1]
        if kind == 0xFF:  # fill byte before a marker
            offset += 1
            continue
        if kind == 0x01 or 0xD0 <= kind <= 0xD7:  # markers without a length
            offset += 2
            continue
        if kind in _SOF:
            frame = data.read(offset + 5, 4)
            if frame is None:
                return None
            return _positive(int.from_bytes(frame[2:4]), int.from_bytes(frame[0:2]))
        if kind in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        offset += 2 + int.from_bytes(marker[2:4])
    return None


def _positive(width: int, height: int) -> tuple[int, int] | None:
    return (width, height) if width > 0 and height > 0 else None
