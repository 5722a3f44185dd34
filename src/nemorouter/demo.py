"""`nemorouter demo`: simulated providers, the gateway, and a batch of documents through it.

Runs on a fresh machine with no cloud account and no keys: the providers are nemorouter's
own simulators (said plainly in the output), the gateway runs on the embedded default, and
the batch runner is an ordinary client of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

from nemorouter.admin_client import AdminClient
from nemorouter.batch.cli import print_summary
from nemorouter.batch.prompts import extraction
from nemorouter.batch.runner import BatchOptions, BatchOutcome, run_batch
from nemorouter.config import Config, ConfigError, load_config
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider
from nemorouter.types.money import display_usd

LISTEN_FAILED = 3  # the address is in use (or not ours): the exit code of `serve` alike
INVOICE_SCHEMA: dict[str, Any] = {
    "title": "invoice",
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "invoice_date": {"type": "string", "format": "date"},
        "vendor": {"type": "string"},
        "total": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "enum": ["USD", "EUR", "GBP"]},
    },
    "required": ["invoice_number", "invoice_date", "vendor", "total", "currency"],
    "additionalProperties": False,
}
VENDORS = [
    ("ACME Office Supplies Ltd.", "GBP"),
    ("Northwind Traders GmbH", "EUR"),
    ("Contoso Logistics Inc.", "USD"),
    ("Fabrikam Print & Copy", "USD"),
]


def example_config_path() -> Path:
    return Path(str(resources.files("nemorouter.examples").joinpath("nemorouter.example.yaml")))


def invoice_page(number: int) -> Any:
    """A synthetic scanned invoice page (A4 at 100 dpi, grayscale) as a PIL image."""
    from PIL import Image, ImageDraw

    vendor, currency = VENDORS[number % len(VENDORS)]
    amounts = [(3 + number) * 12.5, 61.5 * (1 + number % 3), 15.0]
    page = Image.new("L", (827, 1169), 255)
    draw = ImageDraw.Draw(page)
    lines = [
        (60, vendor),
        (170, f"INVOICE  INV-2026-{1000 + number}"),
        (200, f"Date: 2026-11-{1 + number % 28:02d}"),
        (340, "Description                         Amount"),
        *(
            (370 + 30 * i, f"Item {i + 1}                              {a:9.2f}")
            for i, a in enumerate(amounts)
        ),
        (500, f"TOTAL ({currency})                        {sum(amounts):9.2f}"),
    ]
    for y, text in lines:
        draw.text((70, y), text, fill=0)
    draw.rectangle((60, 330, 767, 470), outline=0)
    return page


def sample_documents(folder: Path) -> None:
    """Four single-page scans (PNG, JPEG) and a two-page PDF."""
    folder.mkdir(parents=True, exist_ok=True)
    invoice_page(0).save(folder / "acme-invoice.png", optimize=True)
    invoice_page(1).save(folder / "northwind-invoice.jpg", quality=85)
    invoice_page(2).save(folder / "contoso-invoice.png", optimize=True)
    first, second = invoice_page(3), invoice_page(4)
    first.save(
        folder / "fabrikam-two-pages.pdf", save_all=True, append_images=[second], resolution=100
    )


def run_demo(
    config_path: Path | None,
    out: Path = Path("nemorouter-demo"),
    keep_running: bool = False,
    port: int = 0,
) -> int:
    path = config_path or example_config_path()
    with SimulatedProvider(latency_ms=40) as sim:
        os.environ["NEMOROUTER_SIM_URL"] = sim.base_url
        generated_key = "NEMOROUTER_MASTER_KEY" not in os.environ
        os.environ.setdefault("NEMOROUTER_MASTER_KEY", "sk-nemo-demo-" + secrets.token_hex(8))
        try:
            config = load_config(path)
        except ConfigError as exc:
            print(f"nemorouter: config error in {path}: {exc}")
            return 2
        try:
            gateway = BackgroundGateway(config, port=port)
        except OSError as exc:
            print(f"nemorouter: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}")
            return LISTEN_FAILED
        with gateway:
            outcome = _run(sim, gateway, config, path, out)
            # A key the demo made up may be shown; one from the environment never is.
            shown = config.settings.master_key if generated_key else "$NEMOROUTER_MASTER_KEY"
            if not keep_running:
                # The address would be dead by the time anyone opens it: not printed as one.
                print(
                    "  the demo's gateway and its dashboard stopped with it; to browse the job, "
                    "run `nemorouter demo --keep-running` (--port N for a fixed address)"
                )
                return outcome.exit_code
            print(f"  dashboard: {gateway.url}/ui (sign in with the master key: {shown})")
            print(f"  the gateway keeps running at {gateway.base_url}; Ctrl-C stops it", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
            return outcome.exit_code


def _run(
    sim: SimulatedProvider, gateway: BackgroundGateway, config: Config, path: Path, out: Path
) -> BatchOutcome:
    """The sample batch through the gateway, and what the gateway recorded of it."""
    print("nemorouter demo — the model providers here are SIMULATED (no cloud calls).")
    print(f"  simulated provider: {sim.base_url}")
    print(f"  gateway:            {gateway.base_url}  (config: {path})")
    shutil.rmtree(out, ignore_errors=True)
    sample_documents(out / "documents")
    print(f"  sample documents:   {out / 'documents'} (4 documents, 5 pages)")
    options = BatchOptions(
        inputs=[out / "documents"],
        job_id=f"demo-{time.strftime('%Y%m%d-%H%M%S')}",
        task=extraction(INVOICE_SCHEMA),
        out=out / "results",
        base_url=gateway.base_url,
        api_key=config.settings.master_key,
        model="document-vision",
        concurrency=4,
        plain_progress=True,
    )
    outcome = asyncio.run(run_batch(options))
    print_summary(outcome.summary, options.out)
    print(f"  a result: {_first_output(options.out)}")
    print(
        "  the answers are placeholders from the simulated provider: values of the schema's "
        "shape (dates, amounts, names) marked (simulated), not read from the pages."
    )
    job = AdminClient(gateway.base_url, config.settings.master_key).get(
        f"/admin/jobs/{options.job_id}"
    )
    print(
        f"  the gateway's spend records for job {job['job_id']}: {job['requests']} requests "
        f"for {job['pages']} pages of {job['documents']} documents, "
        f"{display_usd(job['cost_usd'])} "
        f"(GET /admin/jobs/{options.job_id}; store: {config.settings.database_url})"
    )
    print("  costs are computed from the simulated usage at the catalog's real prices.")
    return outcome


def _first_output(results: Path) -> str:
    for line in (results / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("status") == "ok":
            return f"{record['doc']} page {record['page']}: {json.dumps(record['output'])}"
    return "(no page answered)"
