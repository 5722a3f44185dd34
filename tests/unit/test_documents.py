"""`file` parts read at the edge (issue 19): selector parsing, page count, sub-documents,
refusals of unusable PDFs (encrypted, corrupt, empty, not a PDF), the `pdf` tag, unknown
page counts. Real PDFs from the shared corpus, read in place."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from typing import Any

import pypdfium2 as pdfium
import pytest

from nemorouter.core.documents import read_documents
from nemorouter.core.tags import implied_tags
from nemorouter.types.documents import (
    INLINE_PARSE_BYTES,
    parse_selector,
    pdfium_module,
    read_pdf,
    run_pdfium,
)
from nemorouter.types.errors import GatewayError
from nemorouter.types.request import ChatRequest, parse_chat_request

from ..corpus import CORPUS

MULTI_PAGE = CORPUS / "mixed" / "multi_page.pdf"  # 5 pages
pytestmark = pytest.mark.skipif(not MULTI_PAGE.is_file(), reason="shared corpus not present")
WHERE = "messages[0].content[1]"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def request(*parts: dict[str, Any]) -> ChatRequest:
    content = [{"type": "text", "text": "Read this."}, *parts]
    body = {"model": "auto", "messages": [{"role": "user", "content": content}]}
    return parse_chat_request(json.dumps(body).encode())


def pdf_part(data: bytes, **spec: Any) -> dict[str, Any]:
    return {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{b64(data)}",
                                     **spec}}  # fmt: skip


def pages_of(data: bytes) -> int:
    pdf = pdfium.PdfDocument(data)
    try:
        return len(pdf)
    finally:
        pdf.close()


@pytest.mark.parametrize(
    ("text", "pages"),
    [("1", (0,)), ("1-3,7", (0, 1, 2, 6)), (" 3 , 1-2 ,2", (0, 1, 2)), (4, (3,)), ("2-2", (1,))],
)
def test_selector_forms(text: Any, pages: tuple[int, ...]) -> None:
    assert parse_selector(text, WHERE) == pages


@pytest.mark.parametrize("text", ["", " ", "a", "1-", "-2", "0", "3-1", "1,,2", "1.5", True, []])
def test_bad_selectors_name_the_part(text: Any) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_selector(text, WHERE)
    assert caught.value.status == 400 and caught.value.code == "invalid_request"
    assert WHERE in caught.value.message and caught.value.param == WHERE


def test_read_pdf_counts_pages_and_keeps_the_bytes_without_a_selection() -> None:
    found = read_pdf(MULTI_PAGE.read_bytes(), None, WHERE)
    assert found.total == 5 and found.data is None


def test_selection_makes_a_sub_pdf_and_all_pages_keep_the_original() -> None:
    data = MULTI_PAGE.read_bytes()
    sub = read_pdf(data, (1, 3), WHERE)
    assert sub.total == 5 and sub.data is not None and pages_of(sub.data) == 2
    assert read_pdf(data, (0, 1, 2, 3, 4), WHERE).data is None


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("encrypted-aes256.pdf", "encrypted with a password"),
        ("password-protected-real.pdf", "encrypted with a password"),
        ("truncated.pdf", "cannot be read (data format error)"),
        ("zero-bytes.pdf", "empty"),
        ("not-a-pdf.pdf", "not a PDF"),
        ("png-named-as.pdf", "not a PDF"),
    ],
)
def test_unusable_pdfs_are_400s(name: str, says: str) -> None:
    with pytest.raises(GatewayError) as caught:
        read_pdf((CORPUS / "bad" / name).read_bytes(), None, WHERE)
    assert caught.value.status == 400 and says in caught.value.message


def test_selection_beyond_the_document() -> None:
    with pytest.raises(GatewayError, match="selects page 6, but the PDF has 5 pages"):
        read_pdf(MULTI_PAGE.read_bytes(), (0, 5), WHERE)


def test_parse_only_locates_file_parts() -> None:
    plain = request({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}})
    assert plain.file_parts == [] and not plain.documents and plain.pdf_pages == 0
    located = request(pdf_part(b"%PDF-not read yet"))
    assert located.file_parts == [(0, 1)] and not located.documents  # read later, async


async def test_read_documents_counts_size_pages_and_tags() -> None:
    data = MULTI_PAGE.read_bytes()
    req = request(pdf_part(data, filename="a.pdf"))
    await read_documents(req)
    (document,) = req.documents
    assert (document.mime, document.size, document.pages) == ("application/pdf", len(data), 5)
    assert req.pdf_pages == 5 and implied_tags(req) == {"pdf"}
    part = req.body["messages"][0]["content"][1]
    assert part["file"]["file_data"].endswith(b64(data))  # no selector: untouched


async def test_bare_base64_is_read_by_its_magic() -> None:
    data = MULTI_PAGE.read_bytes()
    req = request({"type": "file", "file": {"file_data": b64(data)}})
    await read_documents(req)
    assert req.documents[0].mime == "application/pdf" and req.pdf_pages == 5


async def test_selector_rewrites_the_part_for_every_adapter() -> None:
    req = request(pdf_part(MULTI_PAGE.read_bytes(), filename="a.pdf", pages="2-3"))
    await read_documents(req)
    spec = req.body["messages"][0]["content"][1]["file"]
    assert set(spec) == {"file_data", "filename"}
    header, data = spec["file_data"].split(",", 1)
    assert header == "data:application/pdf;base64" and pages_of(base64.b64decode(data)) == 2
    assert req.pdf_pages == 2 and req.documents[0].selection == (1, 2)


async def test_a_text_file_is_no_pdf() -> None:
    part = {"type": "file", "file": {"file_data": f"data:text/plain;base64,{b64(b'hello')}"}}
    req = request(part)
    await read_documents(req)
    assert req.documents[0].mime == "text/plain" and req.documents[0].pages is None
    assert implied_tags(req) == frozenset() and req.pdf_pages == 0
    with pytest.raises(GatewayError, match="selects pages of a PDF"):
        await read_documents(request({"type": "file", "file": {**part["file"], "pages": "1"}}))


async def test_gs_reference_is_not_read_and_refuses_a_selector() -> None:
    req = request({"type": "file", "file": {"file_url": "gs://b/x.pdf"}})
    await read_documents(req)
    assert req.documents[0].pages is None and req.unknown_pdfs == 1 and req.has_pdf
    assert req.body["messages"][0]["content"][1]["file"] == {"file_id": "gs://b/x.pdf"}
    with pytest.raises(GatewayError, match="cannot select pages of a gs:// file"):
        await read_documents(
            request({"type": "file", "file": {"file_url": "gs://b/x.pdf", "pages": "1"}})
        )


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({}, "file_data"),
        ({"file_data": "data:application/pdf,plain"}, "must be base64"),
        ({"file_data": "data:application/pdf;base64,@@@@"}, "not valid base64"),
    ],
)
async def test_malformed_file_parts(spec: dict[str, Any], says: str) -> None:
    with pytest.raises(GatewayError) as caught:
        await read_documents(request({"type": "file", "file": spec}))
    assert says in caught.value.message and WHERE in caught.value.message


async def test_unknown_pages_count_as_the_most_in_a_worst_case_only() -> None:
    req = request({"type": "file", "file": {"file_url": "gs://b/x.pdf"}})
    base = req.prompt_tokens_for("any", 258)
    await read_documents(req)
    assert req.prompt_tokens_for("any", 258) == base + 1000 * 258
    assert req.pdf_tokens(258, worst=False) == 0


PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def rc4(key: bytes, data: bytes) -> bytes:
    box = list(range(256))
    j = 0
    for i in range(256):
        j = (j + box[i] + key[i % len(key)]) % 256
        box[i], box[j] = box[j], box[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + box[i]) % 256
        box[i], box[j] = box[j], box[i]
        out.append(byte ^ box[(box[i] + box[j]) % 256])
    return bytes(out)


def owner_encrypted_pdf() -> bytes:
    file_id, permissions = b"0123456789abcdef", -3904
    owner = rc4(hashlib.md5(PAD).digest()[:5], PAD)  # owner password "" too: still encrypted
    key = hashlib.md5(PAD + owner + permissions.to_bytes(4, "little", signed=True) + file_id)
    key_bytes = key.digest()[:5]
    user = rc4(key_bytes, PAD)
    content = rc4(
        hashlib.md5(key_bytes + (4).to_bytes(3, "little") + b"\0\0").digest()[:10],
        b"0 0 1 rg 10 10 100 100 re f",
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>"
        % (owner.hex().encode(), user.hex().encode(), permissions),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 6\n0000000000 65535 f \n"
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size 6 /Root 1 0 R /Encrypt 5 0 R /ID [<%s> <%s>] >>\n" % (
        file_id.hex().encode(),
        file_id.hex().encode(),
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def test_permission_only_encryption_is_removed_for_the_providers() -> None:
    data = owner_encrypted_pdf()
    pdf = pdfium.PdfDocument(data)  # opens without a password, and is encrypted
    try:
        assert pdfium.raw.FPDF_GetSecurityHandlerRevision(pdf.raw) == 2
    finally:
        pdf.close()
    found = read_pdf(data, None, WHERE)
    assert found.total == 1 and found.data is not None
    copy = pdfium.PdfDocument(found.data)
    try:
        assert pdfium.raw.FPDF_GetSecurityHandlerRevision(copy.raw) == -1  # not encrypted
        image = copy[0].render(scale=1).to_pil().convert("RGB")
        assert image.getpixel((50, 150)) == (0, 0, 255)  # the blue square survived decryption
    finally:
        copy.close()


async def test_large_files_are_read_off_the_event_loop() -> None:
    pdfium_module()  # loaded: small files may be read inline
    loop_thread = threading.get_ident()
    assert await run_pdfium(1000, threading.get_ident) == loop_thread
    assert await run_pdfium(INLINE_PARSE_BYTES + 1, threading.get_ident) != loop_thread
