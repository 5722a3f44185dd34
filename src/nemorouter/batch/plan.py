"""How a batch sends its pages (`--send`, `--text-layer`, `--pages-per-request`).

Kept apart from `units` (which renders and cuts PDFs): the CLI reads these options without
loading pdfium or Pillow (`nemorouter serve` never loads them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEND_MODES = ("pages", "document")
TEXT_LAYER_MODES = ("off", "with-image", "instead")


@dataclass(frozen=True, slots=True)
class SendPlan:
    send: str = "pages"  # SEND_MODES
    text_layer: str = "off"  # TEXT_LAYER_MODES
    pages_per_request: int | None = None  # document mode: None sends each PDF whole

    def fingerprint(self) -> dict[str, Any] | None:
        """What a resume must not change (None for the default: older jobs resume as before)."""
        if self.send == "pages":
            return None
        return {"send": self.send, "pages_per_request": self.pages_per_request}
