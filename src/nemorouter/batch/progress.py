"""Progress of a batch: a rich live bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column

from nemorouter.types.money import display_usd

PLAIN_EVERY_S = 5.0


class BatchProgress:
    def __init__(self, total: int, already_done: int, *, plain: bool | None = None) -> None:
        self.total = total
        self.done = already_done
        self.done_this_run = 0
        self.errors = self.cache_hits = self.fallbacks = 0
        self.cost: Decimal | None = None
        self.started = time.monotonic()
        self._last_line = 0.0
        self.plain = (not sys.stdout.isatty()) if plain is None else plain
        self._bar: Progress | None = None
        if not self.plain:
            self._bar = Progress(
                TextColumn("[bold]pages"), BarColumn(), MofNCompleteColumn(),
                # folds on a narrow terminal, never cut
                TextColumn("{task.fields[stats]}", table_column=Column(overflow="fold")),
                TimeRemainingColumn(),
                console=Console(),
            )  # fmt: skip
            self._task = self._bar.add_task("pages", total=total, completed=already_done, stats="")
            self._bar.start()

    def update(self, record: dict[str, Any]) -> None:
        pages = len(record.get("pages") or (record["page"],))  # a PDF chunk counts its pages
        self.done += pages
        self.done_this_run += pages
        self.errors += pages if record["status"] != "ok" else 0
        self.cache_hits += record.get("cache") == "HIT"
        self.fallbacks += record.get("fallbacks") or 0
        if record.get("cost_usd") is not None:
            self.cost = (self.cost or Decimal(0)) + Decimal(record["cost_usd"])
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, stats=self.stats())
        elif time.monotonic() - self._last_line >= PLAIN_EVERY_S or self.done == self.total:
            self._last_line = time.monotonic()
            print(f"{self.done}/{self.total} pages  {self.stats()}", flush=True)

    def pages_per_minute(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done_this_run / elapsed * 60 if elapsed > 0 else 0.0

    def stats(self) -> str:
        ppm = self.pages_per_minute()
        eta = (self.total - self.done) / ppm * 60 if ppm > 0 else None
        cost = display_usd(self.cost) if self.cost is not None else "n/a"
        parts = [
            f"{ppm:.0f} pages/min",
            f"cost {cost}",
            f"cache hits {self.cache_hits}",
            f"fallbacks {self.fallbacks}",
            f"errors {self.errors}",
        ]
        if self.plain:
            parts.append(f"ETA {eta:.0f}s" if eta is not None else "ETA n/a")
        return "  ".join(parts)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
