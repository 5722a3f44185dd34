"""Image and file parts of the canonical (OpenAI) request, read for non-OpenAI wire formats.

Data URLs are split, never decoded: the base64 text goes upstream as the client sent it, so a
300 KB page costs no decode/re-encode. http(s) URLs are listed so the adapter can fetch them
(behind the SSRF guard in `image_fetch`) before translating; gs:// URLs stay references.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from nemorouter.types.errors import GatewayError, invalid_request


@dataclass(frozen=True, slots=True)
class InlineMedia:
    """Bytes to send inline: MIME type and standard base64 text."""

    mime: str
    data: str


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file the provider reads itself (Cloud Storage)."""

    mime: str
    uri: str


Media = InlineMedia | StoredFile

_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)?((?:;[\w.+-]+=[^;,]*)*);base64,", re.ASCII)
_BY_EXTENSION = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".pdf": "application/pdf",
    ".txt": "text/plain",
}


def bad_part(message: str) -> GatewayError:
    return invalid_request(message, param="messages")


def parse_data_url(url: str, default_mime: str = "application/octet-stream") -> InlineMedia:
    """`data:<mime>;base64,<data>` → its MIME type and base64 text (not decoded)."""
    match = _DATA_URL.match(url)
    if match is None:
        raise bad_part("image data URLs must have the form data:<mime type>;base64,<data>")
    data = url[match.end() :]
    if not data:
        raise bad_part("image data URL holds no data")
    return InlineMedia(match[1] or default_mime, data)


def mime_from_path(path: str, default: str = "application/octet-stream") -> str:
    return _BY_EXTENSION.get(posixpath.splitext(path.lower())[1], default)


def image_url(part: dict[str, Any]) -> str:
    """The URL of an `image_url` part (the object form or a bare string)."""
    ref = part.get("image_url")
    url = ref.get("url") if isinstance(ref, dict) else ref
    if not isinstance(url, str) or not url:
        raise bad_part("an image_url part needs image_url.url")
    return url


def is_remote(url: str) -> bool:
    return url[:8].lower().startswith(("http://", "https://"))


def content_parts(messages: Any) -> Iterator[dict[str, Any]]:
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict):
                    yield part


def remote_image_urls(body: dict[str, Any]) -> list[str]:
    """Distinct http(s) image URLs of the request, in order of appearance."""
    urls: dict[str, None] = {}
    for part in content_parts(body.get("messages")):
        if part.get("type") == "image_url":
            url = image_url(part)
            if is_remote(url):
                urls[url] = None
    return list(urls)


def resolve_image(url: str, fetched: Mapping[str, InlineMedia]) -> Media:
    """An image URL as inline bytes or a stored-file reference."""
    if url.startswith("data:"):
        return parse_data_url(url)
    if url.startswith("gs://"):
        return StoredFile(mime_from_path(urlsplit(url).path, "image/jpeg"), url)
    found = fetched.get(url)
    if found is None:
        raise bad_part(f"unsupported image URL scheme in {url[:40]!r}: use data:, http(s): or gs:")
    return found


def file_part(part: dict[str, Any]) -> Media:
    """An OpenAI `file` part as the gateway's edge left it (core/documents.py): inline
    `file_data` (a data URL or bare base64; the page selector already applied, https files
    already fetched), or a gs:// reference in `file_id` (LiteLLM's form), which Gemini and
    Vertex read as `fileData` (python-genai types.FileData: file_uri, mime_type)."""
    spec = part.get("file")
    if not isinstance(spec, dict):
        raise bad_part("a file part needs a file object")
    filename = spec.get("filename")
    default = mime_from_path(filename, "application/pdf") if isinstance(filename, str) else None
    data = spec.get("file_data")
    if not isinstance(data, str) or not data:
        uri = spec.get("file_id")
        if isinstance(uri, str) and uri.startswith("gs://"):
            return StoredFile(default or mime_from_path(urlsplit(uri).path, "application/pdf"), uri)
        raise bad_part("file parts must carry file_data inline or a gs:// file_id")
    if data.startswith("data:"):
        return parse_data_url(data, default or "application/pdf")
    return InlineMedia(default or "application/pdf", data)
