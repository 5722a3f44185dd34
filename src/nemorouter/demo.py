"""`nemorouter demo`: a simulated provider, the gateway, and a document page sent through it.

Runs on a fresh machine with no cloud account: the provider is nemorouter's own simulator
(said plainly in the output). The document batch runner replaces the single request later.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

from nemorouter.config import ConfigError, load_config
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider

INVOICE_SCHEMA: dict[str, Any] = {
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


def example_config_path() -> Path:
    return Path(str(resources.files("nemorouter.examples").joinpath("nemorouter.example.yaml")))


def sample_invoice_png() -> bytes:
    """A synthetic one-page invoice scan (A4 at 100 dpi, grayscale)."""
    from PIL import Image, ImageDraw

    page = Image.new("L", (827, 1169), 255)
    draw = ImageDraw.Draw(page)
    lines = [
        (60, "ACME Office Supplies Ltd."),
        (90, "12 Harbour Road, Bristol BS1 4QA"),
        (170, "INVOICE  INV-2026-0042"),
        (200, "Date: 2026-11-02        Due: 2026-12-02"),
        (260, "Bill to: Northwind Traders, 5 King St, Leeds"),
        (340, "Qty  Description                    Unit      Amount"),
        (370, "10   A4 paper, box of 5 reams      24.00     240.00"),
        (400, " 4   Toner cartridge TN-2420        61.50     246.00"),
        (430, " 1   Delivery                       15.00      15.00"),
        (500, "Subtotal                                     501.00"),
        (530, "VAT 20%                                      100.20"),
        (560, "TOTAL (GBP)                                  601.20"),
    ]
    for y, text in lines:
        draw.text((70, y), text, fill=0)
    draw.rectangle((60, 330, 767, 450), outline=0)
    buffer = io.BytesIO()
    page.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def run_demo(config_path: Path | None) -> int:
    path = config_path or example_config_path()
    with SimulatedProvider(latency_ms=40) as sim:
        os.environ["NEMOROUTER_SIM_URL"] = sim.base_url
        os.environ.setdefault("NEMOROUTER_MASTER_KEY", "sk-nemo-demo-" + secrets.token_hex(8))
        try:
            config = load_config(path)
        except ConfigError as exc:
            print(f"nemorouter: config error in {path}: {exc}")
            return 2
        with BackgroundGateway(config) as gateway:
            print("nemorouter demo — the model provider here is SIMULATED (no cloud calls).")
            print(f"  simulated provider: {sim.base_url}")
            print(f"  gateway:            {gateway.base_url}  (config: {path})")
            return _send_page(gateway.base_url, config.settings.master_key)


def _send_page(base_url: str, key: str) -> int:
    page = sample_invoice_png()
    data_url = "data:image/png;base64," + base64.b64encode(page).decode()
    body = {
        "model": "document-vision",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Extract the invoice fields from this page."},
                    {"type": "image_url", "image_url": {"url": data_url}},
                ],
            }
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "invoice", "schema": INVOICE_SCHEMA, "strict": True},
        },
        "metadata": {"job_id": "demo"},
    }
    request = urllib.request.Request(
        f"{base_url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            headers = response.headers
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        print(f"  request failed: HTTP {exc.code}: {exc.read().decode(errors='replace')}")
        return 1
    print(f"  sent one invoice page ({len(page) // 1024} KiB PNG) to model group 'document-vision'")
    print(
        f"  answered by model {headers['x-nemo-model']} via deployment {headers['x-nemo-deployment']}"
    )
    print(
        f"  gateway overhead: {headers['x-nemo-overhead-ms']} ms, attempts: {headers['x-nemo-attempts']}"
    )
    print(f"  usage: {answer['usage']}")
    print("  extracted fields (simulated answer, valid against the schema):")
    print("   ", answer["choices"][0]["message"]["content"])
    return 0
