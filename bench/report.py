"""The benchmark's table: one row per metric, direct vs each gateway, target and verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

How = Literal["ratio", "added", ""]
Op = Literal[">=", "<="] | None


@dataclass
class Check:
    """One row. With `how` = "added" the target bounds gateway minus direct; otherwise the
    gateway's own value. `op` None marks a row that is information only."""

    metric: str
    direct: float | None
    gateways: dict[str, float | None]
    how: How
    op: Op
    target: float | None
    digits: int | None = None

    def places(self) -> int:
        if self.digits is not None:
            return self.digits
        if "req/s" in self.metric or "(%)" in self.metric:
            return 0
        if "CPU" in self.metric:
            return 3
        if "MiB" in self.metric:
            return 1
        return 2

    def compared(self, name: str) -> float | None:
        value = self.gateways.get(name)
        if value is None or self.direct is None or not self.how:
            return None
        if self.how == "ratio":
            return value / self.direct if self.direct else math.nan
        return value - self.direct

    def advantage(self, first: str, other: str) -> float | None:
        """How many times better `first` is than `other` (>1: `first` is better)."""
        if self.op is None:
            return None
        a = self.compared(first) if self.how == "added" else self.gateways.get(first)
        b = self.compared(other) if self.how == "added" else self.gateways.get(other)
        if a is None or b is None or a <= 0 or b <= 0:
            return None
        return a / b if self.op == ">=" else b / a

    def verdict(self, name: str) -> bool | None:
        if self.op is None or self.target is None:
            return None
        value = self.compared(name) if self.how == "added" else self.gateways.get(name)
        if value is None or math.isnan(value):
            return False
        return value >= self.target if self.op == ">=" else value <= self.target


def _num(value: float | None, places: int) -> str:
    if value is None:
        return "—"
    if math.isnan(value):
        return "n/a"
    return f"{value:,.{places}f}"


def _compared(check: Check, name: str) -> str:
    value = check.compared(name)
    if value is None:
        return ""
    if check.how == "ratio":
        return f"{value:.2f}x" if value >= 0.1 else f"{value:.3f}x"
    return f"{value:+.{check.places()}f}"


def _target(check: Check) -> str:
    if check.op is None or check.target is None:
        return ""
    prefix = "added " if check.how == "added" else ""
    op = "≥" if check.op == ">=" else "≤"
    return f"{prefix}{op} {check.target:,g}"


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "MISS")


def render(checks: list[Check], names: list[str]) -> tuple[str, bool]:
    """A markdown table, and whether the first gateway met every target."""
    head = ["metric", "direct"]
    for i, name in enumerate(names):
        head += [name, "added/ratio"]
        head += ["target", "pass"] if i == 0 else ["pass", f"{names[0]} advantage"]
    rows = [head]
    passed = True
    for check in checks:
        row = [check.metric, _num(check.direct, check.places())]
        for i, name in enumerate(names):
            ok = check.verdict(name)
            row += [_num(check.gateways.get(name), check.places()), _compared(check, name)]
            if i == 0:
                row += [_target(check), _verdict(ok)]
            else:
                better = check.advantage(names[0], name)
                row += [_verdict(ok), "" if better is None else f"{better:,.1f}x"]
            if i == 0 and ok is False:
                passed = False
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if n == 0:
            lines.append(
                "|"
                + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths))
                + "|"
            )
    return "\n".join(lines), passed
