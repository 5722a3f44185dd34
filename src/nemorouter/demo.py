"""`nemorouter demo`: simulated providers, the gateway, and a batch of documents through it.

Runs on a fresh machine with no cloud account and no keys: the providers are nemorouter's
own simulators (said plainly in the output), the gateway runs on the embedded default, and
the batch runner is an ordinary client of it.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from nemorouter.batch.runner import BatchOptions, run_batch
from nemorouter.config import ConfigError, load_config
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider
from nemorouter.types.money import display_usd

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
    config_path: Path | None, out: Path = Path("nemorouter-demo"), keep_running: bool = False
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
        with BackgroundGateway(config) as gateway:
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
            job = AdminClient(gateway.base_url, config.settings.master_key).get(
                f"/admin/jobs/{options.job_id}"
            )
            print(
                f"  the gateway's spend records for job {job['job_id']}: {job['requests']} requests, "
                f"{display_usd(job['cost_usd'])} (GET /admin/jobs/{options.job_id}; "
                f"store: {config.settings.database_url})"
            )
            print("  costs are computed from the simulated usage at the catalog's real prices.")
            # A key the demo made up may be shown; one from the environment never is.
            shown = config.settings.master_key if generated_key else "$NEMOROUTER_MASTER_KEY"
            print(f"  dashboard: {gateway.url}/ui (sign in with the master key: {shown})")
            if not keep_running:
                print(
                    "  the demo gateway stops now; `nemorouter demo --keep-running` keeps it up to browse"
                )
            else:
                print("  the gateway keeps running; Ctrl-C stops it")
                with contextlib.suppress(KeyboardInterrupt):
                    threading.Event().wait()
            return outcome.exit_code
