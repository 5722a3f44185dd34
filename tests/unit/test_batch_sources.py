"""Batch sources: discovery, classification by content, page rendering under a byte cap."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageFile

from nemorouter.batch.sources import (
    MAX_PIXELS,
    Document,
    PageError,
    discover,
    render_page,
    sniff,
)
from tests.corpus import CORPUS

needs_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"development corpus not found at {CORPUS}"
)
DOC_FOLDERS = ("invoices", "receipts", "forms", "mixed")
DOC_SUFFIXES = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".heic"}


@pytest.fixture(scope="module")
def corpus() -> tuple[dict[str, Document], dict[str, str]]:
    if not CORPUS.is_dir():
        pytest.skip(f"development corpus not found at {CORPUS}")
    documents, errors = discover([CORPUS])
    return {d.doc: d for d in documents}, {e.doc: e.reason for e in errors}


def decoded(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR (1-bit gray) + a little IDAT: a bomb if ever decoded."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 65536, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# -- discovery over the corpus ---------------------------------------------------------------


@needs_corpus
def test_every_corpus_document_is_discovered(corpus: tuple[dict, dict]) -> None:
    documents, errors = corpus
    expected = {
        p.relative_to(CORPUS).as_posix()
        for folder in DOC_FOLDERS
        for p in (CORPUS / folder).iterdir()
        if p.suffix.lower() in DOC_SUFFIXES
    }
    assert len(expected) >= 50
    assert set(documents) | {"mixed/DA-1p.heic"} >= expected
    assert errors["mixed/DA-1p.heic"] == "unsupported format HEIC/HEIF"
    # ground truth JSON and the manifest are ignored silently, not reported
    assert not any(doc.endswith((".json", ".md")) for doc in [*documents, *errors])
    assert list(documents) == sorted(documents)  # deterministic order
    assert all(d.path.is_absolute() and d.pages >= 1 for d in documents.values())


@needs_corpus
def test_bad_inputs_have_specific_reasons(corpus: tuple[dict, dict]) -> None:
    documents, errors = corpus
    bad = {k.removeprefix("bad/"): v for k, v in errors.items() if k.startswith("bad/")}
    assert bad == {
        "password-protected-real.pdf": "encrypted PDF (password required)",
        "encrypted-aes256.pdf": "encrypted PDF (password required)",
        "truncated.pdf": "corrupt or truncated PDF (PDFium: Data format error)",
        "zero-bytes.pdf": "empty file",
        "not-a-pdf.pdf": "not a PDF or image: unrecognised content",
        "huge-dimensions.png": "image too large: 100000x100000 px (limit 100 Mpx)",
    }
    # a PNG under a .pdf name is a perfectly good image document
    assert documents["bad/png-named-as.pdf"].kind == "image"
    assert len(bad) + 1 == len(list((CORPUS / "bad").iterdir()))


@needs_corpus
@pytest.mark.parametrize(
    ("doc", "pages", "kind"),
    [
        ("invoices/QualityHosting.pdf", 2, "pdf"),
        ("invoices/free_fiber.pdf", 2, "pdf"),
        ("mixed/normal_4pages.pdf", 4, "pdf"),
        ("mixed/multi_page.pdf", 5, "pdf"),
        ("mixed/2206.01062.tif", 2, "tiff"),
        ("mixed/webp-test.webp", 1, "image"),
        ("receipts/contoso-receipt-2.png", 1, "image"),  # a JPEG named .png
    ],
)
def test_page_counts_match_manifest(
    corpus: tuple[dict, dict], doc: str, pages: int, kind: str
) -> None:
    document = corpus[0][doc]
    assert (document.pages, document.kind) == (pages, kind)


def test_discover_file_inputs_hidden_files_and_missing(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    Image.new("L", (40, 30), 255).save(tmp_path / "sub" / "a.png")
    Image.new("L", (40, 30), 255).save(tmp_path / ".hidden" / "b.png")
    Image.new("L", (40, 30), 255).save(tmp_path / ".c.png")
    (tmp_path / "a.gt.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("x")
    docs, errors = discover([tmp_path])
    assert [d.doc for d in docs] == ["sub/a.png"] and errors == []
    # a file input is named by its file name; the same file twice is one document
    docs, _ = discover([tmp_path / "sub" / "a.png", tmp_path / "sub"])
    assert [d.doc for d in docs] == ["a.png"]
    with pytest.raises(FileNotFoundError):
        discover([tmp_path / "nope"])


def test_duplicate_doc_ids_are_reported(tmp_path: Path) -> None:
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        Image.new("L", (40, 30), 255).save(tmp_path / sub / "same.png")
    docs, errors = discover([tmp_path / "x" / "same.png", tmp_path / "y" / "same.png"])
    assert [d.doc for d in docs] == ["same.png"]
    assert [e.doc for e in errors] == ["same.png"] and "duplicate" in errors[0].reason


def test_sniff_uses_content() -> None:
    assert sniff(b"%PDF-1.7\n") == "PDF"
    assert sniff(b"\x00\x00\x00\x18ftypheic") == "HEIC"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff(b"hello, world") is None


# -- rendering ---------------------------------------------------------------------------------


@needs_corpus
@pytest.mark.parametrize(
    ("doc", "page", "size"),
    [
        ("invoices/AmazonWebServices.pdf", 1, (1275, 1651)),
        ("invoices/QualityHosting.pdf", 2, (1241, 1754)),
        ("mixed/normal_4pages.pdf", 4, (1275, 1790)),
        ("mixed/ocr_test_rotated_90.pdf", 1, (1755, 1241)),
        ("forms/consent-form-filled.pdf", 2, (1275, 1651)),
        ("mixed/2206.01062.tif", 1, (612, 792)),
        ("mixed/2206.01062.tif", 2, (612, 792)),
        ("invoices/oyo.png", 1, (2892, 4093)),
        ("mixed/webp-test.webp", 1, (2000, 2829)),
        ("receipts/sroie_000.jpg", 1, (463, 1013)),
        ("bad/png-named-as.pdf", 1, (1195, 1162)),
    ],
)
def test_render_pages(
    corpus: tuple[dict, dict], doc: str, page: int, size: tuple[int, int]
) -> None:
    out = render_page(corpus[0][doc], page)
    assert (out.doc, out.page, (out.width, out.height)) == (doc, page, size)
    assert len(out.data) <= 4_000_000
    im = decoded(out.data)
    assert im.size == size
    assert out.mime == Image.MIME[im.format]


@needs_corpus
def test_images_pass_through_with_their_own_mime(corpus: tuple[dict, dict]) -> None:
    documents = corpus[0]
    for doc, mime in [
        ("receipts/contoso-receipt-2.png", "image/jpeg"),  # content decides, not the name
        ("mixed/webp-test.webp", "image/webp"),
        ("forms/w2.png", "image/png"),
    ]:
        out = render_page(documents[doc], 1)
        assert out.mime == mime
        assert out.data == documents[doc].path.read_bytes()


@needs_corpus
def test_grayscale_detection(corpus: tuple[dict, dict]) -> None:
    documents = corpus[0]
    memo = render_page(documents["mixed/fake-memo.pdf"], 1)  # black-and-white text
    assert decoded(memo.data).mode == "L"
    colour = render_page(documents["invoices/coolblue1.pdf"], 1)  # coloured logo and bands
    assert colour.mime == "image/jpeg" and decoded(colour.data).mode == "RGB"


@needs_corpus
def test_identical_pages_render_to_identical_bytes(corpus: tuple[dict, dict]) -> None:
    documents = corpus[0]
    covers = {
        render_page(documents[doc], 1).data
        for doc in ("mixed/cover+coolblue1.pdf", "mixed/cover+saeco.pdf", "mixed/ocr_test.pdf")
    }
    assert len(covers) == 1
    memo = documents["mixed/fake-memo-with-duplicate-page.pdf"]
    assert render_page(memo, 1).data == render_page(memo, 2).data


@needs_corpus
def test_size_cap_forces_reencoding(corpus: tuple[dict, dict]) -> None:
    documents = corpus[0]
    full = render_page(documents["invoices/AmazonWebServices.pdf"], 1)
    capped = render_page(documents["invoices/AmazonWebServices.pdf"], 1, max_bytes=40_000)
    assert len(capped.data) <= 40_000 < len(full.data)
    assert decoded(capped.data).size == (capped.width, capped.height)
    assert capped.width <= full.width
    # an image over the cap is re-encoded instead of passed through
    oyo = render_page(documents["invoices/oyo.png"], 1, max_bytes=150_000)
    assert len(oyo.data) <= 150_000 and decoded(oyo.data).size == (oyo.width, oyo.height)
    with pytest.raises(PageError, match="cannot encode"):
        render_page(documents["invoices/AmazonWebServices.pdf"], 1, max_bytes=500)


@needs_corpus
def test_dpi_scales_pdf_pages(corpus: tuple[dict, dict]) -> None:
    out = render_page(corpus[0]["invoices/AmazonWebServices.pdf"], 1, dpi=72)
    assert (out.width, out.height) == (612, 792)


def test_page_out_of_range(tmp_path: Path) -> None:
    Image.new("RGB", (50, 40), "red").save(tmp_path / "a.png")
    (doc,), _ = discover([tmp_path])
    with pytest.raises(PageError, match="out of range"):
        render_page(doc, 2)


# -- hostile inputs ------------------------------------------------------------------------------


def test_decompression_bomb_refused_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    (tmp_path / "bomb.png").write_bytes(png_header_only(50_000, 50_000))
    # above our 100 Mpx limit but below Pillow's own DecompressionBombError threshold
    (tmp_path / "big.png").write_bytes(png_header_only(12_000, 9_000))
    docs, errors = discover([tmp_path])
    assert docs == []
    assert {e.doc: e.reason for e in errors} == {
        "big.png": "image too large: 12000x9000 px (limit 100 Mpx)",
        "bomb.png": "image too large: 50000x50000 px (limit 100 Mpx)",
    }
    # render_page checks again (the file may have been swapped since discovery)
    forged = Document(tmp_path / "bomb.png", "bomb.png", 1, "image")
    with pytest.raises(PageError, match="image too large"):
        render_page(forged, 1)
    assert MAX_PIXELS < 12_000 * 9_000


def test_pdf_page_too_large_at_dpi(tmp_path: Path) -> None:
    pdf = pdfium.PdfDocument.new()
    pdf.new_page(14_400, 14_400).close()  # 200x200 in: 900 Mpx at 150 dpi
    pdf.save(tmp_path / "poster.pdf")
    pdf.close()
    (doc,), _ = discover([tmp_path])
    with pytest.raises(PageError, match=r"page too large at 150 dpi: 30000x30000 px"):
        render_page(doc, 1)


def test_truncated_image_fails_at_render(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.effect_noise((400, 400), 60).save(buf, format="PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (doc,), _ = discover([tmp_path])  # the header is fine: discovery is cheap
    with pytest.raises(PageError, match="cannot render page 1"):
        render_page(doc, 1)  # small enough to pass through, but decoded first


def test_gif_bmp_and_bilevel_tiff_become_png(tmp_path: Path) -> None:
    Image.new("P", (60, 40), 3).save(tmp_path / "a.gif")
    Image.new("RGB", (60, 40), (10, 200, 10)).save(tmp_path / "b.bmp")
    frames = [Image.new("1", (80, 100), 1), Image.new("1", (80, 100), 0)]
    frames[0].save(tmp_path / "c.tiff", save_all=True, append_images=frames[1:])
    docs, errors = discover([tmp_path])
    assert errors == []
    kinds = {d.doc: (d.kind, d.pages) for d in docs}
    assert kinds == {"a.gif": ("image", 1), "b.bmp": ("image", 1), "c.tiff": ("tiff", 2)}
    for d in docs:
        for p in range(1, d.pages + 1):
            out = render_page(d, p)
            assert out.mime == "image/png", d.doc
            assert decoded(out.data).size == (out.width, out.height)
