"""Reading chat-completions bodies cheaply, however large their images are.

A ~300 KB image request is almost all one base64 data URL. Decoding it into a Python string,
re-encoding the messages and hashing them costs about a millisecond; this module instead treats
every JSON string literal of `LONG_STRING` bytes or more as an opaque *long string*:

- `read_chat` finds the string literals with `bytes.find` (memchr), so it hops over a data URL
  without a Python-level loop, and replaces each long one by a short token before the
  (then tiny) rest of the body is decoded by msgspec. Bodies shorter than `LONG_STRING` cannot
  hold a long string and are decoded as they are; so are bodies with very many string literals
  (the hops would cost more than decoding), whose long strings are then replaced after decoding.
- A token names the decoded string by its UTF-8 length and CRC-32, e.g.
  `"\\u0000sim-long:307200:1a2b3c4d"`: it depends only on the string's value, so the same messages
  give the same decoded structure whichever way they were read, whatever their whitespace, key
  order or escaping. Its character count (for usage) is returned beside it.
- `LongStrings` remembers recent long strings by their raw bytes: when the same image is sent
  again (as in a benchmark) it is recognised with one `memcmp` instead of being checksummed and
  UTF-8-checked again.

Long strings are taken as they are: a control character inside one is not rejected, as
a strict JSON parser would.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import msgspec

LONG_STRING = 16 * 1024  # bytes (UTF-8, after unescaping) from which a string is "long"
_TOKEN_PREFIX = "\x00sim-long:"
_SAMPLES = 256  # bytes of a long string sampled for the LongStrings key

_decode = msgspec.json.decode
_encode = msgspec.json.encode


@dataclass(frozen=True, slots=True)
class LongString:
    """What a long string is replaced by: its token, the token as JSON, its length in chars."""

    token: str
    token_json: bytes
    chars: int


def long_string(data: bytes, chars: int) -> LongString:
    """The token of a long string whose UTF-8 bytes are `data` and length `chars`."""
    token = f"{_TOKEN_PREFIX}{len(data)}:{zlib.crc32(data):08x}"
    return LongString(token, _encode(token), chars)


class LongStrings:
    """A small cache: raw string-literal bytes -> `LongString`, or None when not long.

    Keyed by the length and a strided sample of the raw bytes; a hit is confirmed by comparing
    all the bytes. Holds at most `max_entries` strings and `max_bytes` bytes, oldest out first;
    a string over a quarter of `max_bytes` is not kept.
    Not thread-safe: each simulated provider owns one and uses it on its event-loop thread.
    """

    def __init__(self, max_entries: int = 32, max_bytes: int = 32 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: dict[tuple[int, bytes], tuple[bytes, LongString | None]] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, body: bytes, start: int, end: int) -> LongString | None:
        """The long string in `body[start:end]` (a literal's raw bytes, between its quotes)."""
        n = end - start
        key = (n, body[start : end : n // _SAMPLES + 1])
        hit = self._entries.get(key)
        if hit is not None and body.startswith(hit[0], start):
            return hit[1]
        raw = body[start:end]
        found = _describe(raw)
        if hit is not None:  # same sample, other bytes: the new string takes the slot
            del self._entries[key]
            self._bytes -= n
        if n <= self.max_bytes // 4:  # huge one-offs are not worth keeping
            entries = self._entries
            while entries and (
                len(entries) >= self.max_entries or self._bytes + n > self.max_bytes
            ):
                oldest = next(iter(entries))
                self._bytes -= oldest[0]
                del entries[oldest]
            entries[key] = (raw, found)
            self._bytes += n
        return found

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0


def _describe(raw: bytes) -> LongString | None:
    """Decode a long literal's raw bytes just enough to name it; ValueError if invalid."""
    if b"\\" in raw:  # escapes: decode it for real (long prompts with newlines)
        text: str = _decode(b'"' + raw + b'"')
        data = text.encode("utf-8", "surrogatepass")
        return long_string(data, len(text)) if len(data) >= LONG_STRING else None
    if raw.isascii():  # data URLs, base64
        return long_string(raw, len(raw))
    return long_string(raw, len(raw.decode("utf-8")))  # UnicodeDecodeError is a ValueError


def _skeleton(body: bytes, cache: LongStrings) -> tuple[bytes, dict[str, int]] | None:
    """`body` with its long string literals replaced by their tokens, and each token's char
    count; None when the body has too many string literals for this to pay (or is malformed:
    the ordinary decoder then reports it)."""
    find = body.find
    budget = 32 + len(body) // 1024  # one hop costs about what decoding 1 KB does
    pieces: list[bytes] = []
    chars: dict[str, int] = {}
    prev = pos = 0
    while (start := find(b'"', pos)) >= 0:
        end = find(b'"', start + 1)
        while end > 0 and body[end - 1] == 0x5C:  # a backslash: escaped unless itself escaped
            k = end - 1
            while body[k - 1] == 0x5C:
                k -= 1
            if (end - k) % 2 == 0:
                break
            end = find(b'"', end + 1)
        if end < 0:
            return None
        budget -= 1
        if budget < 0:
            return None
        pos = end + 1
        if end - start - 1 >= LONG_STRING:
            found = cache.lookup(body, start + 1, end)
            if found is not None:
                pieces += (body[prev:start], found.token_json)
                chars[found.token] = found.chars
                prev = pos
    if not pieces:
        return body, chars
    pieces.append(body[prev:])
    return b"".join(pieces), chars


def _replace_long(value: Any, chars: dict[str, int]) -> Any:
    """Replace long strings in an already decoded JSON value (the fallback path)."""
    if isinstance(value, str):
        if len(value) * 4 < LONG_STRING:
            return value
        data = value.encode("utf-8", "surrogatepass")
        if len(data) < LONG_STRING:
            return value
        found = long_string(data, len(value))
        chars[found.token] = found.chars
        return found.token
    if isinstance(value, list):
        return [_replace_long(v, chars) for v in value]
    if isinstance(value, dict):
        return {_replace_long(k, chars): _replace_long(v, chars) for k, v in value.items()}
    return value


def read_chat(body: bytes, cache: LongStrings) -> tuple[Any, dict[str, int]]:
    """Decode a request body with its long strings replaced by tokens.

    Returns (the decoded JSON value, {token: length in chars}); raises `msgspec.DecodeError` or
    `ValueError` when the body is not valid JSON.
    """
    if len(body) < LONG_STRING:
        return _decode(body), {}
    found = _skeleton(body, cache)
    if found is not None:
        return _decode(found[0]), found[1]
    chars: dict[str, int] = {}
    return _replace_long(_decode(body), chars), chars
