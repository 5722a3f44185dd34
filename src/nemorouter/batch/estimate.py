"""`nemorouter batch estimate`: a job's prompt tokens and cost per model and send mode, with
no call made, from the catalog's token rules and prices.

Per request: the instruction (and the schema, which providers count as prompt) as text, plus
- `pages`: each page as an image at the render size (types/image_tokens.py, by provider);
- `pages+text` (`--text-layer with-image`): the same, plus a born-digital page's text;
- `text` (`--text-layer instead`): a born-digital page's text in place of its image; scans and
  images still go as images;
- `document`: each PDF (or chunk of `--pages-per-request` pages) at the model's
  `pdf_tokens_per_page` (catalog); images as in `pages`.
Text is CHARS_PER_TOKEN characters a token. Output: `--max-tokens` on every request when it
is given (the ceiling), else TYPICAL_OUTPUT_TOKENS. Each request is priced alone, as the
gateway prices a call (core/cost.call_cost: the tier by the request's prompt size).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from nemorouter.batch.pdfpages import PageFacts, page_facts
from nemorouter.batch.prompts import Task
from nemorouter.batch.sources import Document, SourceError, discover
from nemorouter.batch.units import TEXT_LABEL
from nemorouter.catalog import CatalogModel, load_catalog
from nemorouter.core.cost import call_cost
from nemorouter.types.image_tokens import image_tokens, rule_for
from nemorouter.types.money import usd

MODES = ("pages", "pages+text", "text", "document")
# "A token is equivalent to about 4 characters" (ai.google.dev/gemini-api/docs/tokens); the
# usual rule for English prose. Figures, OCR'd text and other scripts split finer.
CHARS_PER_TOKEN = 4
# Output tokens assumed without --max-tokens: a page's extracted fields as JSON (a typical
# invoice page: a few hundred tokens), a label, a page's transcription (~ its words).
TYPICAL_OUTPUT_TOKENS = {"extract": 600, "classify": 10, "prompt": 800}
PER_PAGE_OUTPUT = frozenset({"extract", "prompt"})  # a chunk of N pages answers N pages' worth


@dataclass(frozen=True, slots=True)
class Scan:
    documents: list[Document]
    unreadable: list[SourceError]
    pages: list[PageFacts]


@dataclass(frozen=True, slots=True)
class ModeEstimate:
    requests: int
    prompt_tokens: int
    output_tokens: int
    cost_usd: Decimal | None  # None: the model has no price
    unavailable: str | None = None  # why this mode cannot be used with the model
    deferred_cost_usd: Decimal | None = None  # at the batch price (None: none known)

    def as_json(self) -> dict[str, Any]:
        if self.unavailable is not None:
            return {"unavailable": self.unavailable}
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": usd(self.cost_usd) if self.cost_usd is not None else None,
            "deferred_cost_usd": usd(self.deferred_cost_usd)
            if self.deferred_cost_usd is not None
            else None,
        }


def scan(inputs: Sequence[Path], dpi: int, *, with_text: bool = True) -> Scan:
    """Pages found under `inputs` (their sizes and text layers); nothing is rendered."""
    documents, errors = discover(inputs)
    return scan_documents(documents, errors, dpi, with_text=with_text)


def scan_documents(
    documents: list[Document], errors: list[SourceError], dpi: int, *, with_text: bool
) -> Scan:
    pages: list[PageFacts] = []
    unreadable = list(errors)
    readable = []
    for document in documents:
        try:
            pages.extend(page_facts(document, dpi, with_text=with_text))
            readable.append(document)
        except Exception as exc:  # discovery read the header only: the body may still fail
            unreadable.append(SourceError(document.doc, str(document.path), str(exc)))
    return Scan(readable, unreadable, pages)


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def instruction_tokens(task: Task) -> int:
    schema = json.dumps(task.schema) if task.schema is not None else ""
    return text_tokens(task.instruction) + text_tokens(schema)


def output_tokens(task: Task, pages: int, max_tokens: int | None) -> int:
    if max_tokens is not None:
        return max_tokens
    typical = TYPICAL_OUTPUT_TOKENS[task.mode]
    return typical * pages if task.mode in PER_PAGE_OUTPUT else typical


def _page_text(page: PageFacts) -> str | None:
    """The text part a born-digital PDF page sends with a text layer; None for a scan."""
    if page.text is None or not page.text.born_digital:
        return None
    return TEXT_LABEL + page.text.text


def requests_for(
    mode: str, pages: list[PageFacts], model: CatalogModel, pages_per_request: int | None
) -> list[tuple[int, int]] | str:
    """(content prompt tokens, pages covered) for each request in `mode`, or why it can't be."""
    rule = rule_for(model.provider_family, model.name, "")
    vision = "vision" in model.capabilities

    def as_image(page: PageFacts) -> int:
        return image_tokens(rule, page.size)

    out: list[tuple[int, int]] = []
    if mode == "document":
        if "pdf" not in model.capabilities or model.pdf_tokens_per_page is None:
            return "no PDF input" if "pdf" not in model.capabilities else "no PDF token rule"
        by_doc: dict[str, int] = Counter(p.doc for p in pages if p.kind == "pdf")
        for count in by_doc.values():
            size = pages_per_request or count
            for first in range(0, count, size):
                chunk = min(size, count - first)
                out.append((model.pdf_tokens_per_page * chunk, chunk))
        others = [p for p in pages if p.kind != "pdf"]
        if others and not vision:
            return "no image input (images among the inputs)"
        return out + [(as_image(p), 1) for p in others]
    for page in pages:
        text = _page_text(page) if mode != "pages" else None
        if text is not None and mode == "text":
            out.append((text_tokens(text), 1))
            continue
        if not vision:
            return "no image input"
        out.append((as_image(page) + (text_tokens(text) if text else 0), 1))
    return out


def estimate_mode(
    mode: str, pages: list[PageFacts], model: CatalogModel, task: Task,
    max_tokens: int | None, pages_per_request: int | None,
) -> ModeEstimate:  # fmt: skip
    found = requests_for(mode, pages, model, pages_per_request)
    if isinstance(found, str):
        return ModeEstimate(0, 0, 0, None, found)
    base = instruction_tokens(task)
    prompt = output = 0
    cost = Decimal(0)
    for content, covered in found:
        p, o = base + content, output_tokens(task, covered, max_tokens)
        prompt, output = prompt + p, output + o
        cost += call_cost(model.pricing, {"prompt_tokens": p, "completion_tokens": o}) or 0
    # The catalog's batch price share per provider type (deferred jobs); where they differ,
    # the dearest, so the estimate is never below what a deferred run can cost.
    shares = model.batch_discount.values()
    deferred = cost * max(shares) if shares and model.pricing else None
    return ModeEstimate(len(found), prompt, output, cost, deferred_cost_usd=deferred)


def estimate_models(
    models: Iterable[str], pages: list[PageFacts], task: Task, max_tokens: int | None,
    pages_per_request: int | None,
) -> dict[str, dict[str, ModeEstimate] | str]:  # fmt: skip
    """Per model: an estimate per mode, or why there is none (not in the catalog)."""
    catalog = load_catalog()
    found: dict[str, dict[str, ModeEstimate] | str] = {}
    for name in models:
        model = catalog.get(name)
        if model is None:
            found[name] = "not in the catalog: no token rule or price"
            continue
        found[name] = {
            mode: estimate_mode(mode, pages, model, task, max_tokens, pages_per_request)
            for mode in MODES
        }
    return found


def default_models() -> list[str]:
    """Without --model: every catalog model that reads page images or PDFs."""
    catalog = load_catalog()
    return [n for n, m in catalog.items() if m.capabilities & {"vision", "pdf"}]


def output_assumption(task: Task, max_tokens: int | None) -> str:
    if max_tokens is not None:
        return f"--max-tokens {max_tokens} on every request (the ceiling)"
    typical = TYPICAL_OUTPUT_TOKENS[task.mode]
    per = "a page" if task.mode in PER_PAGE_OUTPUT else "a request"
    return f"typical {typical} output tokens {per} ({task.mode}; --max-tokens sets a ceiling)"


def run_mode(send: str, text_layer: str) -> str:
    """The estimate column of a run's options."""
    if send == "document":
        return "document"
    return {"off": "pages", "with-image": "pages+text", "instead": "text"}[text_layer]


def job_estimate(
    scanned: Scan, model: str, mode: str, task: Task, max_tokens: int | None,
    pages_per_request: int | None,
) -> dict[str, Any]:  # fmt: skip
    """The estimate of a run for summary.json: its model, its mode, tokens and cost."""
    found = estimate_models([model], scanned.pages, task, max_tokens, pages_per_request)[model]
    if isinstance(found, str):
        return {"model": model, "send": mode, "unavailable": found}
    return {
        "model": model,
        "send": mode,
        **found[mode].as_json(),
        "output_assumption": output_assumption(task, max_tokens),
    }
