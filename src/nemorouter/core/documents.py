"""The request's `file` parts, read once at the edge (DESIGN §2.1, §2.2).

Each part is decoded, its MIME type settled, a PDF's pages counted and its page selector
(`file.pages`, an extension field) applied: the body then carries the document exactly as
it goes upstream (the selected pages, no extension fields), every adapter translates that,
and the page count feeds tags (`pdf`), window checks, budgets and the spend record. An
https PDF is fetched here, once, behind the SSRF guard (its pages are counted and costed
like an inline one's); a gs:// PDF stays a reference (only Gemini/Vertex read it) whose
pages the gateway cannot count.

For a deployment that reads PDFs as page images (`pdf: pages`), `rendered_body` renders
each PDF on a worker thread and replaces its part with one image part per page.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from typing import Any

from nemorouter.providers.image_fetch import fetch_image
from nemorouter.providers.media import mime_from_path
from nemorouter.providers.pdf_pages import render_pages
from nemorouter.types.documents import (
    PDF_MIME,
    Document,
    parse_selector,
    part_error,
    read_pdf,
    run_pdfium,
)
from nemorouter.types.request import ChatRequest

log = logging.getLogger("nemorouter.documents")

# Fields of `file` the gateway reads and does not send upstream: `pages` (the selector) and
# `file_url` (DESIGN §2.1); a URL in `file_id` is LiteLLM's way of naming a remote file.
GATEWAY_FILE_FIELDS = ("pages", "file_url")


async def read_documents(request: ChatRequest) -> None:
    """Read every `file` part of the request (a 400 naming the part when one is unusable)."""
    messages = request.body["messages"]
    documents = []
    for i, j in request.file_parts:
        part = messages[i]["content"][j]
        documents.append(await _read(part, i, j))
    request.set_documents(documents)


async def _read(part: dict[str, Any], i: int, j: int) -> Document:
    where = f"messages[{i}].content[{j}]"
    spec = part.get("file")
    if not isinstance(spec, dict):
        raise part_error(where, "a file part needs a `file` object.")
    filename = spec.get("filename")
    named = mime_from_path(filename, "") if isinstance(filename, str) else ""
    selection = parse_selector(spec["pages"], where) if spec.get("pages") is not None else None
    data = spec.get("file_data")
    url = spec.get("file_url")
    if url is None and isinstance(spec.get("file_id"), str) and "://" in spec["file_id"]:
        url = spec["file_id"]
    if isinstance(data, str) and data:
        pass
    elif isinstance(url, str) and url[:8].lower().startswith(("https://", "http://")):
        fetched = await fetch_image(url)
        data = f"data:{fetched.mime};base64,{fetched.data}"
    elif isinstance(url, str) and url.startswith("gs://"):
        mime = named or mime_from_path(url, PDF_MIME)
        if selection is not None:
            raise part_error(
                where, "file.pages cannot select pages of a gs:// file (the gateway does not "
                "read Cloud Storage); send the selected pages inline."
            )  # fmt: skip
        if "file_url" in spec:  # the adapters read gs:// from file_id, as LiteLLM's clients send
            part["file"] = {**_kept(spec), "file_id": url}
        return Document(i, j, mime, 0, None, stored=True)
    elif "file_id" in spec:  # an uploaded file's id: only its own provider knows it
        return Document(i, j, named or "application/octet-stream", 0, None)
    else:
        raise part_error(where, "a file part needs file.file_data (base64) or file.file_url.")
    text = data
    # Decoding, parsing and re-encoding a large file runs off the event loop.
    return await run_pdfium(
        len(text) * 3 // 4,
        lambda: _load(part, spec, text, named, selection, url is not None, (i, j)),
    )


def _load(
    part: dict[str, Any],
    spec: dict[str, Any],
    data: str,
    named: str,
    selection: tuple[int, ...] | None,
    fetched: bool,
    place: tuple[int, int],
) -> Document:
    """Decode an inline (or fetched) file, read it if it is a PDF, and leave in `part` the
    document as it goes upstream (rewritten only when it differs from the client's)."""
    where = "messages[{}].content[{}]".format(*place)
    mime, raw = _decode(data, named, where)
    if raw[:5] == b"%PDF-" or mime == PDF_MIME:
        found = read_pdf(raw, selection, where)
        pages = len(selection) if selection is not None else found.total
        if found.data is not None or fetched or selection is not None:
            sent = found.data if found.data is not None else raw
            encoded = base64.b64encode(sent).decode("ascii")
            part["file"] = {**_kept(spec), "file_data": f"data:{PDF_MIME};base64,{encoded}"}
        return Document(*place, PDF_MIME, len(raw), pages, selection)
    if selection is not None:
        raise part_error(where, f"file.pages selects pages of a PDF, and this file is {mime}.")
    if fetched:
        part["file"] = {**_kept(spec), "file_data": data}
    return Document(*place, mime, len(raw), None)


def _kept(spec: dict[str, Any]) -> dict[str, Any]:
    """The `file` object without the gateway's own fields and the source it replaces."""
    return {k: v for k, v in spec.items() if k not in GATEWAY_FILE_FIELDS and k != "file_id"}


def _decode(data: str, named: str, where: str) -> tuple[str, bytes]:
    """A data URL or bare base64 → (MIME type, bytes)."""
    mime = named
    text = data
    if data[:5].lower() == "data:":
        comma = data.find(",")
        header = data[5:comma].split(";") if comma > 0 else []
        if comma < 0 or header[-1].strip().lower() != "base64":
            raise part_error(where, "file.file_data must be base64: data:<mime>;base64,<data>.")
        mime = header[0].strip().lower() or named
        text = data[comma + 1 :]
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        try:  # line breaks, URL-safe alphabet, missing padding
            clean = "".join(text.split()).translate(_URLSAFE)
            raw = base64.b64decode(clean + "=" * (-len(clean) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise part_error(where, "file.file_data is not valid base64.") from None
    return mime or "application/octet-stream", raw


_URLSAFE = str.maketrans("-_", "+/")


async def rendered_body(
    request: ChatRequest, dpi: int, max_side: int, request_id: str
) -> dict[str, Any]:
    """The body with each inline PDF replaced by its pages as image parts (in page order)."""
    started = time.perf_counter()
    messages = list(request.body["messages"])
    pages = 0
    for document in reversed(request.documents):  # later parts first: indices stay valid
        if not document.is_pdf:
            continue
        message = messages[document.message]
        content = list(message["content"])
        spec = content[document.part]["file"]
        data = spec.get("file_data")
        if not isinstance(data, str):
            raise part_error(
                document.where, "this deployment reads PDFs as page images, and the gateway "
                "cannot render a gs:// file; send the PDF inline."
            )  # fmt: skip
        raw = base64.b64decode(data[data.index(",") + 1 :] if data.startswith("data:") else data)
        images = await asyncio.to_thread(render_pages, raw, dpi, max_side)
        pages += len(images)
        content[document.part : document.part + 1] = [
            {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{image}"}}
            for mime, image in images
        ]
        messages[document.message] = {**message, "content": content}
    log.info(
        "request %s: rendered %d PDF pages at %d dpi in %.1f ms",
        request_id, pages, dpi, (time.perf_counter() - started) * 1000.0,
    )  # fmt: skip
    return {**request.body, "messages": messages}
