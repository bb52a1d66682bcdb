"""Tables that fit the terminal without cutting what must stay whole.

rich shrinks a table to the console's width by wrapping and, where a column cannot wrap, by
cutting cells with an ellipsis, so at 80 columns (or in a log, where rich assumes 80) a spec or a
number could lose characters. Here every column says whether its cells must stay whole (specs,
numbers: never wrapped, never cut) and, if it may go, its priority; :func:`show_table` then

- gives each whole column at least its longest cell, and each text column (``whole=False``) at
  least TEXT_MIN_WIDTH characters to wrap in (or its longest cell, if shorter);
- drops droppable columns, lowest ``drop`` first, until that fits, and names them in a note
  (``split=False``: listings, where a column is a kind of detail); when even the columns that
  are never dropped do not fit (a spec longer than the line), prints one record per row instead:
  its first cell on a line of its own (never wrapped: a terminal folds it, a log keeps it
  whole), then ``name: value`` lines, wrapped at spaces; or
- splits the columns into consecutive tables that each fit, repeating the ``key`` columns in
  each (``split=True``: tables of numbers, where every column matters).

The width is rich's console width: the terminal's, or COLUMNS, or 80 when output is piped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console, JustifyMethod
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

TEXT_MIN_WIDTH = 16
CELL_OVERHEAD = 3  # a cell's padding (1 + 1) and its border
TABLE_OVERHEAD = 1  # the closing border


@dataclass(frozen=True)
class Col:
    """A column: ``whole`` cells are never wrapped or cut; ``key`` columns repeat in every part of a
    split table; ``drop`` is the priority to leave the column out when narrow (lowest first; None:
    never)."""

    name: str
    whole: bool = True
    key: bool = False
    drop: int | None = None
    justify: JustifyMethod = "left"


def needed(column: Col, cells: Sequence[str]) -> int:
    """The least width the column may have: its longest cell if whole, else up to TEXT_MIN_WIDTH."""
    longest = max([len(cell) for cell in cells] + [max(map(len, column.name.split()), default=0)])
    return longest if column.whole else min(longest, TEXT_MIN_WIDTH)


def fits(widths: Sequence[int], width: int) -> bool:
    return sum(widths) + CELL_OVERHEAD * len(widths) + TABLE_OVERHEAD <= width


def make_table(
    title: str, columns: Sequence[Col], rows: Sequence[Sequence[str]], index: Sequence[int]
) -> Table:
    table = Table(title=title, header_style="bold")
    for i in index:
        column = columns[i]
        longest = max([len(row[i]) for row in rows] + [0])
        if column.whole:  # at least the longest cell: never folded or cut
            table.add_column(column.name, justify=column.justify, min_width=longest, no_wrap=True)
        else:
            table.add_column(column.name, justify=column.justify, overflow="fold")
    for row in rows:
        table.add_row(*(Text(row[i]) for i in index))  # literal text, as show_records prints it
    return table


def show_table(
    console: Console,
    title: str,
    columns: Sequence[Col],
    rows: Sequence[Sequence[str]],
    split: bool = False,
) -> None:
    """Print rows (strings) under ``columns`` within the console's width (module docstring)."""
    width = console.width
    widths = [needed(column, [row[i] for row in rows]) for i, column in enumerate(columns)]
    shown = list(range(len(columns)))
    if not split:
        kept = [i for i, c in enumerate(columns) if c.drop is None]
        if not fits([widths[i] for i in kept], width):
            show_records(console, title, columns, rows)
            return
        dropped = []
        droppable = sorted((c.drop, i) for i, c in enumerate(columns) if c.drop is not None)
        while not fits([widths[i] for i in shown], width) and droppable:
            _, i = droppable.pop(0)
            shown.remove(i)
            dropped.append(columns[i].name)
        console.print(make_table(title, columns, rows, shown))
        if dropped:
            names = ", ".join(dropped)
            note = f"(left out at this width, {width} columns: {names}; set COLUMNS wider to see them)"
            console.print(note, soft_wrap=True)
        return
    keys = [i for i in shown if columns[i].key]
    rest = [i for i in shown if not columns[i].key]
    parts: list[list[int]] = []
    for i in rest:
        if parts and fits([widths[j] for j in (*keys, *parts[-1], i)], width):
            parts[-1].append(i)
        else:
            parts.append([i])
    for number, part in enumerate(parts or [[]], start=1):
        suffix = f" ({number} of {len(parts)})" if len(parts) > 1 else ""
        console.print(make_table(title + suffix, columns, rows, [*keys, *part]))


def show_records(console: Console, title: str, columns: Sequence[Col], rows: Sequence[Sequence[str]]) -> None:
    """One block per row: the first cell alone on its line, then the other cells as name: value."""
    console.print(f"[bold]{title}[/bold]")
    for row in rows:
        console.print(row[0], soft_wrap=True, markup=False, highlight=False)
        for column, cell in zip(columns[1:], row[1:], strict=True):
            if cell:  # wrapped lines indented under the first
                console.print(Padding(Text(f"{column.name}: {cell}"), (0, 0, 0, 2), expand=False))
