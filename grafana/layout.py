"""Placing panels on Grafana's 24-column grid without overlap.

``grid`` packs panels skyline-style: each goes to the highest free spot that fits its width
(leftmost on ties), so small KPI tiles fill the space beside a tall chart. ``stack`` puts each
panel on its own line. Row panels (height 1, full width) start a new section below everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from grafanalib import core as g

GRID_WIDTH = 24
Layout = Literal["grid", "stack"]
LAYOUTS: tuple[Layout, ...] = ("grid", "stack")


def checked(name: str) -> Layout:
    """``name`` as a Layout (a spec holds the validated name as a plain string); ValueError if unknown."""
    for known in LAYOUTS:
        if name == known:
            return known
    raise ValueError(f"unknown layout {name!r}; valid: {', '.join(LAYOUTS)}")


def pack(sizes: Sequence[tuple[int, int]], layout: Layout = "grid") -> list[tuple[int, int]]:
    """(x, y) for each (width, height), in order; widths are clamped to 1..24, heights to >= 1."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; valid: {', '.join(LAYOUTS)}")
    skyline = [0] * GRID_WIDTH
    placed: list[tuple[int, int]] = []
    for w, h in sizes:
        w = min(max(int(w), 1), GRID_WIDTH)
        h = max(int(h), 1)
        if layout == "stack":
            x, y = 0, max(skyline)
        else:
            x, y = min((max(skyline[x : x + w]), x) for x in range(GRID_WIDTH - w + 1))[::-1]
        for col in range(x, x + w):
            skyline[col] = y + h
        placed.append((x, y))
    return placed


def place(items: Sequence[tuple[g.Panel, tuple[int, int]]], layout: Layout = "grid") -> list[g.Panel]:
    """Give each (grafanalib panel, (width, height)) a ``gridPos``; a RowPanel closes the section above."""
    out: list[g.Panel] = []
    top = 0
    section: list[tuple[g.Panel, tuple[int, int]]] = []

    def flush() -> int:
        positions = pack([s for _, s in section], layout)
        bottom = top
        for (panel, (w, h)), (x, y) in zip(section, positions, strict=True):
            panel.gridPos = g.GridPos(h=h, w=min(w, GRID_WIDTH), x=x, y=top + y)
            bottom = max(bottom, top + y + h)
            out.append(panel)
        section.clear()
        return bottom

    for panel, size in items:
        if isinstance(panel, g.RowPanel):
            top = flush()
            panel.gridPos = g.GridPos(h=1, w=GRID_WIDTH, x=0, y=top)
            out.append(panel)
            top += 1
        else:
            section.append((panel, size))
    flush()
    return out
