"""Parse a chat-completions body once, at the edge, into the canonical request.

The canonical request is the OpenAI chat format itself (a dict), the gateway's own fields
decoded into `GatewayOptions`, and the few facts the pipeline needs (output limit, usage
wish, images, prompt size), read here so no later stage parses the body again. `file`
parts are only located here; their documents are read by core/documents.py (decoding and
counting pages is I/O- and CPU-bound), and a request without them pays nothing for it.
"""

from __future__ import annotations

from typing import Any

import orjson

from nemorouter.types.body import max_output_of, wants_usage_of
from nemorouter.types.documents import Document
from nemorouter.types.errors import invalid_request
from nemorouter.types.image_size import data_url_image_size
from nemorouter.types.image_tokens import image_tokens
from nemorouter.types.options import GATEWAY_FIELDS, NO_OPTIONS, GatewayOptions, decode_options

__all__ = ["GATEWAY_FIELDS", "ChatRequest", "parse_chat_request"]

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# Text is estimated at 3 characters a token, not the ~4 of English prose: digits, OCR'd text,
# JSON, code and most non-English scripts split finer, and Claude's tokenizer counts more
# tokens than OpenAI's or Gemini's for the same text. What is still missed is learned per
# deployment (`prompt_correction`).
CHARS_PER_TOKEN = 3
# Per message (role and separators), and once for the reply's priming, as OpenAI counts.
MESSAGE_TOKENS = 4
REPLY_TOKENS = 3
# For the typical estimate (window checks): English prose and an A4 page scan.
TYPICAL_CHARS_PER_TOKEN = 4
TYPICAL_IMAGE_TOKENS = 1500
# Completion tokens reserved against a tpm quota when the request sets no max_tokens: a
# page's extracted fields or a classification label are tens to a few hundred tokens. The
# reservation only stands in for the real count while the call runs (it is settled with
# the reported usage), so a modest figure keeps a tpm-bound deployment busy without
# reserving the model's whole output window (65k tokens on Gemini 2.5) per request.
DEFAULT_COMPLETION_TOKENS = 512
# Nesting deeper than this is refused: orjson writes at most 254 levels (the cache key,
# every upstream body), and no OpenAI field or JSON schema of a page comes close.
MAX_JSON_DEPTH = 64
# Numbers beyond 64-bit integers are refused: orjson reads them as floats, and no OpenAI
# field takes them (an integral float beyond this cannot be written back as an integer).
MAX_NUMBER = 2**63
# Token bounds are 32-bit in the store and bound the budget's worst-case reservation.
MAX_TOKENS = 2**31 - 1
TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")
# The spend row's column for the requested model (store/schema.py: model_requested).
MAX_MODEL_CHARS = 200
# A gs:// PDF is not read by the gateway, so its pages are unknown: the budget's worst case
# counts the most a provider takes in one file (Gemini on Vertex: 1,000 pages per file,
# Vertex document-understanding page; ../shared/reference/vertex-catalog.yaml).
UNKNOWN_PDF_PAGES = 1000
# Per page when no deployment is known yet (a key's tpm), or the catalog has no figure for
# the model (OpenAI publishes none): the highest figure of the catalog, Claude's
# (catalog/models.yaml `pdf_tokens_per_page`: page text up to 3,000 plus a page image).
PDF_PAGE_TOKENS = 3100
NO_DOCUMENTS: tuple[Document, ...] = ()


ImageSize = tuple[int, int] | None  # (width, height), None when it cannot be read


class ChatRequest:
    """One parsed `/v1/chat/completions` request."""

    __slots__ = (
        "_estimates",
        "body",
        "documents",
        "file_parts",
        "image_sizes",
        "images",
        "max_output",
        "messages",
        "model",
        "options",
        "pdf_pages",
        "stored_files",
        "stream",
        "text_chars",
        "unknown_pdfs",
        "wants_usage",
    )

    def __init__(
        self,
        body: dict[str, Any],
        options: GatewayOptions,
        model: str,
        stream: bool,
        images: int,
        text_chars: int,
        image_sizes: list[tuple[ImageSize, bool]] | None = None,
        messages: int = 1,
        file_parts: list[tuple[int, int]] | None = None,
    ) -> None:
        self.body = body  # the OpenAI body, gateway fields removed
        self.options = options  # the gateway fields (tags, metadata, cache and fallback controls)
        # The client's output limit (max_completion_tokens, else max_tokens), None if unset.
        self.max_output = max_output_of(body)
        # A stream's final usage chunk was asked for (the gateway asks the provider for
        # usage on every stream to cost it, and drops that chunk when this is False).
        self.wants_usage = wants_usage_of(body)
        self.model = model
        self.stream = stream
        self.images = images  # image parts, over all messages
        self.text_chars = text_chars  # characters of text content, over all messages
        # Per image part: its size from the header, and whether it asks for low detail.
        self.image_sizes = image_sizes if image_sizes is not None else [(None, False)] * images
        self.messages = messages
        # (message, part) of each `file` part; read by core/documents.py into `documents`.
        self.file_parts = file_parts if file_parts is not None else []
        self.documents: tuple[Document, ...] | list[Document] = NO_DOCUMENTS
        self.pdf_pages = 0  # PDF pages sent upstream, over all parts (x-nemo-pages)
        self.unknown_pdfs = 0  # PDFs whose pages the gateway cannot count (gs://)
        self.stored_files = False  # a gs:// file: only deployments that read them qualify
        self._estimates: dict[str, int] = {}

    def set_documents(self, documents: list[Document]) -> None:
        self.documents = documents
        pdfs = [d for d in documents if d.is_pdf]
        self.pdf_pages = sum(d.pages for d in pdfs if d.pages is not None)
        self.unknown_pdfs = sum(1 for d in pdfs if d.pages is None)
        self.stored_files = any(d.stored for d in documents)

    @property
    def has_pdf(self) -> bool:
        return any(d.is_pdf for d in self.documents)

    def pdf_tokens(self, per_page: int, worst: bool = True) -> int:
        """The request's PDF pages in tokens at `per_page`; a PDF of unknown length counts
        UNKNOWN_PDF_PAGES in a worst case, nothing in a typical estimate."""
        unknown = self.unknown_pdfs * UNKNOWN_PDF_PAGES if worst else 0
        return (self.pdf_pages + unknown) * per_page

    def prompt_tokens_for(
        self, rule: str, pdf_page_tokens: int = PDF_PAGE_TOKENS, worst: bool = True
    ) -> int:
        """The prompt's tokens as estimated for a provider's image rule (`image_tokens`):
        text at CHARS_PER_TOKEN, message overheads, each image by its size, each PDF page
        at `pdf_page_tokens` (the deployment's). An upper bound in practice before the
        deployment's learned correction; the part without PDFs is computed once per rule.
        `worst=False` leaves out PDFs of unknown length (a gs:// file) rather than counting
        them at UNKNOWN_PDF_PAGES: for rate-limit reservations, which are settled with the
        real count, where a 1,000-page guess would refuse every such request."""
        found = self._estimates.get(rule)
        if found is None:
            found = -(-self.text_chars // CHARS_PER_TOKEN)
            found += self.messages * MESSAGE_TOKENS + REPLY_TOKENS
            for size, low_detail in self.image_sizes:
                found += image_tokens(rule, size, low_detail)
            self._estimates[rule] = found
        if self.documents:
            return found + self.pdf_tokens(pdf_page_tokens, worst)
        return found

    @property
    def prompt_tokens_estimate(self) -> int:
        """A typical prompt size, for context-window checks: ~4 characters a token and a
        scanned page's worth of tokens per image (Gemini ~1,300-1,550, Claude up to ~1,600,
        OpenAI high detail ~765-1,105 for an A4 page). Not an upper bound on purpose: a
        window refusal on a conservative guess would turn away prompts a model can hold.
        Reservations use `prompt_tokens_for`."""
        return -(-self.text_chars // TYPICAL_CHARS_PER_TOKEN) + self.images * TYPICAL_IMAGE_TOKENS

    @property
    def wants_json_schema(self) -> bool:
        response_format = self.body.get("response_format")
        return isinstance(response_format, dict) and response_format.get("type") == "json_schema"


def parse_chat_request(raw: bytes) -> ChatRequest:
    """Validate the parts of the body the gateway relies on; the rest is passed through."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_request(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid_request("'model' is required and must be a non-empty string.", "model")
    if len(model) > MAX_MODEL_CHARS or "\x00" in model:
        raise invalid_request(
            f"'model' must be at most {MAX_MODEL_CHARS} characters, without NUL.", "model"
        )
    check_values(body)
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise invalid_request("'stream' must be a boolean.", "stream")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_request("'messages' must be a non-empty list.", "messages")
    text_chars = 0
    image_sizes: list[tuple[ImageSize, bool]] = []
    file_parts: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        text_chars += _check_message(message, i, image_sizes, file_parts)
    options = NO_OPTIONS
    for name in GATEWAY_FIELDS:
        if name in body:  # rare: most requests carry none, and allocate nothing for them
            options = decode_options({f: body.pop(f) for f in GATEWAY_FIELDS if f in body})
            break
    return ChatRequest(
        body,
        options,
        model,
        stream,
        len(image_sizes),
        text_chars,
        image_sizes,
        len(messages),
        file_parts,
    )


def check_values(body: dict[str, Any]) -> None:
    """Every field: nesting within MAX_JSON_DEPTH, numbers within 64 bits, token bounds
    within MAX_TOKENS; else a 400 naming the field."""
    for name, value in body.items():
        kind = type(value)
        if kind is dict or kind is list:
            _check_nested(name, value)
        elif (kind is int or kind is float) and not -MAX_NUMBER < value < MAX_NUMBER:
            raise _out_of_range(name)
    for name in TOKEN_FIELDS:
        value = body.get(name)
        if type(value) in (int, float) and not 0 <= value <= MAX_TOKENS:
            raise invalid_request(f"'{name}' must be from 0 to {MAX_TOKENS}.", name)


def _check_nested(name: str, node: dict[str, Any] | list[Any], depth: int = 2) -> None:
    """Recursion stops at MAX_JSON_DEPTH, so the stack stays shallow (the body is level 1)."""
    if depth > MAX_JSON_DEPTH:
        raise invalid_request(f"'{name}' is nested deeper than {MAX_JSON_DEPTH} levels.", name)
    for child in node.values() if type(node) is dict else node:
        kind = type(child)
        if kind is str:  # most values: text, data URLs
            continue
        if kind is dict or kind is list:
            _check_nested(name, child, depth + 1)
        elif (kind is int or kind is float) and not -MAX_NUMBER < child < MAX_NUMBER:
            raise _out_of_range(name)


def _out_of_range(name: str) -> Exception:
    return invalid_request(f"'{name}' holds a number beyond 64-bit integers.", name)


def _check_message(
    message: Any,
    i: int,
    image_sizes: list[tuple[ImageSize, bool]],
    file_parts: list[tuple[int, int]],
) -> int:
    """Check one message; return its text characters, adding its images to `image_sizes`
    and the places of its `file` parts to `file_parts`."""
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        raise invalid_request(f"'{where}' must be an object.", where)
    role = message.get("role")
    if not isinstance(role, str) or role not in _ROLES:  # a list or object is unhashable
        raise invalid_request(f"'{where}.role' must be one of {sorted(_ROLES)}.", f"{where}.role")
    content = message.get("content")
    if content is None:
        return 0
    if isinstance(content, str):
        return len(content)
    if not isinstance(content, list):
        raise invalid_request(
            f"'{where}.content' must be a string or a list of parts.", f"{where}.content"
        )
    chars = 0
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise invalid_request(
                f"'{where}.content[{j}]' must be an object with a 'type'.", f"{where}.content"
            )
        kind = part["type"]
        if kind == "text":
            text = part.get("text")
            chars += len(text) if isinstance(text, str) else 0
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str) or not url:
                raise invalid_request(
                    f"'{where}.content[{j}].image_url.url' must be a non-empty string.",
                    f"{where}.content",
                )
            low_detail = isinstance(image, dict) and image.get("detail") == "low"
            image_sizes.append((data_url_image_size(url), low_detail))
        elif kind == "file":
            file_parts.append((i, j))
    return chars
