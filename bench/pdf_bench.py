"""PDF batch benchmark over the corpus: render pages/s per core, and tokens and cost per page
by model and send mode, estimated and as the simulated providers report them. One table.

Run as `bench/pdf` (see `--help`). Three parts:

1. Rendering, on this one thread: every PDF page of the corpus rendered and encoded as the
   batch sends it (`sources.render_page`), its text layer read (`pdfpages.text_layer`), and
   each PDF cut into one-page PDFs (`pdfpages.cut_pdf`); pages per CPU-second = pages/s per
   core (CPU time, `time.process_time`, so other load on the machine does not count).
2. Estimates: `nemorouter batch estimate`'s rules (`batch/estimate.py`) over the corpus for an
   extraction task (the demo's invoice schema), typical output (600 tokens a page).
3. Simulated providers: the batch runner (`run_batch`) through a gateway in front of the
   simulated Gemini API (gemini-2.5-flash) and Anthropic API (claude-sonnet-4-6), once per
   send mode; tokens from each answer's usage, cost from the gateway's cost headers. The
   simulators count every image or PDF part as 258 prompt tokens and text at 4 characters a
   token (`testing/sim_answers.py`): their numbers check what is sent and how it is costed,
   not a provider's tokenizer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from nemorouter.batch.estimate import MODES, estimate_models, scan
from nemorouter.batch.pdfpages import cut_pdf, text_layer
from nemorouter.batch.plan import SendPlan
from nemorouter.batch.prompts import extraction
from nemorouter.batch.runner import BatchOptions, run_batch
from nemorouter.batch.sources import render_page
from nemorouter.config import parse_config
from nemorouter.demo import INVOICE_SCHEMA
from nemorouter.serving import BackgroundGateway
from nemorouter.testing.sim_anthropic import SimulatedAnthropic
from nemorouter.testing.sim_gemini import SimulatedGemini

MASTER_KEY = "sk-bench-master-key"
SIM_KEY = "sim-key"
SIMULATED = ("gemini-2.5-flash", "claude-sonnet-4-6")
ESTIMATED = ("gemini-2.5-flash", "gemini-3-flash-preview", "claude-sonnet-4-6",
             "claude-haiku-4-5", "gpt-4.1-mini")  # fmt: skip
PLANS = {
    "pages": SendPlan("pages", "off"),
    "pages+text": SendPlan("pages", "with-image"),
    "text": SendPlan("pages", "instead"),
    "document": SendPlan("document", "off"),
}


def corpus_dir() -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.corpus import CORPUS

    return CORPUS


def measure_rendering(corpus: Path, dpi: int) -> dict[str, float]:
    scanned = scan([corpus], dpi, with_text=False)
    pdfs = [d for d in scanned.documents if d.kind == "pdf"]
    pages = [(d, n) for d in pdfs for n in range(1, d.pages + 1)]

    def cpu(work: Any) -> float:
        start = time.process_time()
        for document, number in pages:
            work(document, number)
        return time.process_time() - start

    render_s = cpu(lambda d, n: render_page(d, n, dpi=dpi))
    text_s = cpu(lambda d, n: text_layer(d, n))
    cut_s = cpu(lambda d, n: cut_pdf(d, (n,)))
    return {
        "pdf_pages": len(pages),
        "render_pages_per_s": len(pages) / render_s,
        "render_ms_per_page": render_s * 1000 / len(pages),
        "text_layer_ms_per_page": text_s * 1000 / len(pages),
        "cut_ms_per_page": cut_s * 1000 / len(pages),
    }


def gateway_config(gemini: SimulatedGemini, claude: SimulatedAnthropic, db: Path) -> Any:
    raw = {
        "settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{db}",
                     "cache": {"enabled": False}, "breaker": {"consecutive_failures": 1000}},
        "providers": {
            "gemini-sim": {"type": "gemini", "base_url": gemini.base_url, "api_key": SIM_KEY},
            "claude-sim": {"type": "anthropic", "base_url": claude.base_url, "api_key": SIM_KEY},
        },
        "deployments": [
            {"id": "flash", "model": "gemini-2.5-flash", "provider": "gemini-sim"},
            {"id": "sonnet", "model": "claude-sonnet-4-6", "provider": "claude-sim"},
        ],
    }  # fmt: skip
    return parse_config(raw, env={})


async def simulated_runs(corpus: Path, base_url: str, dpi: int, tmp: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for model in SIMULATED:
        for mode, plan in PLANS.items():
            out = tmp / f"{model}-{mode}"
            options = BatchOptions(
                inputs=[corpus], job_id=f"bench-{model}-{mode}", task=extraction(INVOICE_SCHEMA),
                out=out, base_url=base_url, api_key=MASTER_KEY, model=model, concurrency=8,
                dpi=dpi, plain_progress=True, plan=plan,
            )  # fmt: skip
            outcome = await run_batch(options)
            records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
            pages = outcome.summary["pages"]
            found[f"{model}/{mode}"] = {
                "pages": pages,
                "ok": outcome.summary["ok"],
                "requests": outcome.summary["requests"],
                "prompt_tokens": sum(r.get("prompt_tokens") or 0 for r in records),
                "cost_usd": outcome.summary["cost_total_usd"],
                "estimate_cost_usd": outcome.summary["estimate"].get("cost_usd"),
            }
    return found


def table(render: dict[str, float], estimates: dict[str, Any], sims: dict[str, Any],
          pages: int) -> str:  # fmt: skip
    lines = [
        f"Rendering ({render['pdf_pages']:.0f} corpus PDF pages, one core): "
        f"{render['render_pages_per_s']:.1f} pages/s per core "
        f"({render['render_ms_per_page']:.1f} ms a page to render and encode); text layer "
        f"{render['text_layer_ms_per_page']:.1f} ms a page; cutting a page into a PDF "
        f"{render['cut_ms_per_page']:.1f} ms.",
        "",
        f"Per page over the corpus ({pages} readable pages; extraction with the demo's invoice "
        "schema; estimate output: typical 600 tokens a page):",
        "",
        "| model | send | est. prompt tokens/page | est. cost/page (USD) | "
        "sim prompt tokens/page | sim cost/page (USD) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for model in ESTIMATED:
        for mode in MODES:
            est = estimates[model][mode]
            sim = sims.get(f"{model}/{mode}")
            if est.unavailable:
                est_tokens, est_cost = "n/a", f"n/a ({est.unavailable})"
            else:
                est_tokens = f"{est.prompt_tokens / pages:,.0f}"
                est_cost = f"{est.cost_usd / pages:.6f}"
            if sim is None:
                sim_tokens = sim_cost = "-"
            else:
                sim_tokens = f"{sim['prompt_tokens'] / sim['pages']:,.0f}"
                sim_cost = f"{Decimal(sim['cost_usd']) / sim['pages']:.6f}"
            lines.append(f"| {model} | {mode} | {est_tokens} | {est_cost} | {sim_tokens} | "
                         f"{sim_cost} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/pdf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--json", type=Path, help="also write every number as JSON")
    args = parser.parse_args(argv)
    corpus = corpus_dir()
    if not corpus.is_dir():
        print(f"bench/pdf: the corpus is not at {corpus} (set NEMOROUTER_CORPUS)", file=sys.stderr)
        return 2
    render = measure_rendering(corpus, args.dpi)
    scanned = scan([corpus], args.dpi)
    pages = len(scanned.pages)
    task = extraction(INVOICE_SCHEMA)
    estimates = estimate_models(ESTIMATED, scanned.pages, task, None, None)
    with tempfile.TemporaryDirectory(prefix="nemorouter-bench-pdf-") as tmp_name:
        tmp = Path(tmp_name)
        with (
            SimulatedGemini(api_key=SIM_KEY, record=False) as gemini,
            SimulatedAnthropic(api_key=SIM_KEY, record=False) as claude,
            BackgroundGateway(gateway_config(gemini, claude, tmp / "store.db")) as gateway,
        ):
            sims = asyncio.run(simulated_runs(corpus, gateway.base_url, args.dpi, tmp))
    print(table(render, estimates, sims, pages))  # type: ignore[arg-type]
    if args.json:
        payload = {
            "render": render,
            "estimates": {m: {k: v.as_json() for k, v in e.items()}  # type: ignore[union-attr]
                          for m, e in estimates.items()},
            "simulated": sims,
        }  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0
