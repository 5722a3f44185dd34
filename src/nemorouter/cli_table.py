"""Tables for the CLI that never cut a cell (DESIGN §2.5).

Piped or redirected, a table is printed at its natural width: every cell whole, whatever
width a pipe (or COLUMNS) suggests. On a terminal, ids, names, numbers and money are never
folded (a key id stays one copyable word); free text folds to fit; a terminal too narrow for
that gets one block of `header: value` lines per row instead of a cropped table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

PIPE_WIDTH = 100_000  # wider than any row: the table takes its natural width
FOLDED_MIN = 6  # the narrowest a folding column is allowed to get before records are used
BORDERS = 3  # a column's padding and rule in rich's default box

Cell = str | Text


@dataclass(frozen=True)
class Column:
    header: str
    right: bool = False  # numbers and money
    whole: bool = True  # never folded: ids, names, numbers, money; False: free text


@dataclass
class CliTable:
    title: str | None
    columns: list[Column]
    rows: list[list[Cell] | None] = field(default_factory=list)  # None: a section rule
    caption: str | None = None  # printed under the table, wrapped, never cut

    def add_row(self, *cells: Cell) -> None:
        assert len(cells) == len(self.columns)
        self.rows.append(list(cells))

    def add_section(self) -> None:
        self.rows.append(None)


def cli_console() -> Console:
    return Console(width=None if sys.stdout.isatty() else PIPE_WIDTH, highlight=False)


def print_table(table: CliTable, console: Console | None = None) -> None:
    console = console or cli_console()
    if _fits(table, console.width):
        console.print(_rich(table))
    else:
        _records(table, console)
    if table.caption:
        console.print(Text(table.caption))


def _width(cell: Cell) -> int:
    text = cell.plain if isinstance(cell, Text) else cell
    return max((cell_len(line) for line in text.splitlines()), default=0)


def _natural(table: CliTable, index: int) -> int:
    column = table.columns[index]
    header = max((cell_len(word) for word in column.header.split()), default=0)
    cells = (_width(row[index]) for row in table.rows if row is not None)
    return max(header, *cells) if table.rows else header


def _fits(table: CliTable, width: int) -> bool:
    needed = 1 + sum(
        BORDERS + (_natural(table, i) if c.whole else min(_natural(table, i), FOLDED_MIN))
        for i, c in enumerate(table.columns)
    )
    return needed <= width


def _rich(table: CliTable) -> Table:
    out = Table(title=None if table.title is None else Text(table.title))
    for i, column in enumerate(table.columns):
        justify = "right" if column.right else "left"
        if column.whole:  # a fixed width, the widest cell's: rich never shrinks it
            out.add_column(Text(column.header), justify=justify, width=_natural(table, i))
        else:
            out.add_column(Text(column.header), justify=justify, overflow="fold")
    for row in table.rows:
        if row is None:
            out.add_section()
        else:
            out.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in row))
    return out


def _records(table: CliTable, console: Console) -> None:
    """One block per row: `header  value` (empty cells left out), continuation lines
    indented."""
    if table.title:
        console.print(Text(table.title, style="bold"))
    pad = max(cell_len(c.header) for c in table.columns)
    for row in table.rows:
        if row is None:
            continue
        console.print()
        for column, cell in zip(table.columns, row, strict=True):
            text = cell.plain if isinstance(cell, Text) else cell
            lines = text.splitlines()
            if not lines:
                continue
            console.print(Text(f"{column.header.ljust(pad)}  {lines[0]}"))
            for line in lines[1:]:
                console.print(Text(f"{' ' * pad}  {line}"))
