"""Tiny HTML building blocks for the self-contained report (no templates, no network)."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

__all__ = ["esc", "table", "heat_table", "img", "section", "details", "pm", "CSS"]

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #222;
       max-width: 1240px; margin: 0 auto; padding: 0 24px 60px; line-height: 1.45; }
h1 { border-bottom: 3px solid #4c72b0; padding-bottom: 6px; }
h2 { margin-top: 42px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
h3 { margin-top: 26px; }
nav { background: #f5f7fb; border: 1px solid #dde3ee; padding: 8px 14px; border-radius: 6px;
      display: flex; flex-wrap: wrap; gap: 4px 18px; }
nav a { white-space: nowrap; }
table { border-collapse: collapse; margin: 10px 0 16px; font-size: 13.5px; }
th, td { border: 1px solid #d4d4d4; padding: 4px 9px; text-align: right; }
th { background: #f0f2f6; }
td.l, th.l { text-align: left; }
tr.best td { font-weight: bold; background: #eef6ee; }
img { max-width: 100%; border: 1px solid #e3e3e3; margin: 8px 0; }
img.half { max-width: 620px; }
.note { color: #555; font-size: 13.5px; }
.flag { color: #b00020; font-weight: bold; }
.ok { color: #2a7a2a; }
code, pre { background: #f4f4f4; padding: 1px 4px; border-radius: 3px; font-size: 13px; }
pre { padding: 8px; white-space: pre-wrap; word-break: break-all; }
details { margin: 10px 0; }
summary { cursor: pointer; font-weight: 600; }
.grid { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
"""


def esc(value) -> str:
    return html.escape(str(value))


def pm(mean: float, std: float, digits: int = 3) -> str:
    """``mean ± std`` as text."""
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _cell(value, digits: int) -> tuple[str, bool]:
    """Cell text and whether it is left-aligned (text) or right-aligned (numbers)."""
    if isinstance(value, (float, np.floating)):
        return ("" if np.isnan(value) else f"{value:.{digits}f}"), False
    if isinstance(value, (int, np.integer)):
        return str(value), False
    return esc(value), True


def table(header: Sequence[str], rows: Iterable[Sequence], *, digits: int = 3, row_classes: Sequence[str] | None = None,
          raw: bool = False) -> str:
    """An HTML table; floats are rounded to ``digits``, text cells are escaped unless ``raw``."""
    rows = [list(r) for r in rows]
    # A column of text gets a left-aligned header, a column of numbers a right-aligned one.
    left_cols = {i for i, v in enumerate(rows[0]) if _cell(v, digits)[1]} if rows else set()
    out = ["<table><tr>" + "".join(f'<th class="l">{esc(h)}</th>' if i == 0 or i in left_cols else f"<th>{esc(h)}</th>"
                                   for i, h in enumerate(header)) + "</tr>"]
    for r, row in enumerate(rows):
        cls = f' class="{row_classes[r]}"' if row_classes and row_classes[r] else ""
        cells = []
        for value in row:
            text, left = _cell(value, digits)
            if raw and isinstance(value, str):
                text = value
            cells.append(f'<td class="l">{text}</td>' if left else f"<td>{text}</td>")
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    return "\n".join(out) + "</table>"


def heat_table(matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], *, shade: np.ndarray | None = None,
               fmt: str = "{:d}", corner: str = "true \\ predicted") -> str:
    """A table whose cell backgrounds are shaded by ``shade`` (0..1; default the matrix scaled by its max)."""
    matrix = np.asarray(matrix)
    if shade is None:
        top = float(np.max(matrix)) if matrix.size and np.max(matrix) > 0 else 1.0
        shade = matrix / top
    out = [f'<table><tr><th class="l">{esc(corner)}</th>' + "".join(f"<th>{esc(c)}</th>" for c in col_labels) + "</tr>"]
    for i, label in enumerate(row_labels):
        cells = []
        for j in range(matrix.shape[1]):
            s = float(np.clip(shade[i, j], 0, 1))
            color = "#fff" if s > 0.55 else "#222"
            cells.append(f'<td style="background: rgba(49, 94, 160, {s:.3f}); color: {color}">{fmt.format(matrix[i, j])}</td>')
        out.append(f'<tr><th class="l">{esc(label)}</th>' + "".join(cells) + "</tr>")
    return "\n".join(out) + "</table>"


def img(path: str | os.PathLike, alt: str, *, css_class: str = "") -> str:
    """The PNG embedded as a base64 data URI, so that the report is one self-contained file."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    cls = f' class="{css_class}"' if css_class else ""
    return f'<img{cls} alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'


def details(summary: str, body: str, *, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{esc(summary)}</summary>\n{body}\n</details>"
