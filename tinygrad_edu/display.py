"""A Tensor as a small HTML table, for Jupyter: its name, shape, dtype, the op that made it, values and grad.

2-D arrays are drawn as a heat-map: red cells are positive, blue negative, white near 0, the colour's
strength relative to the largest magnitude in the array. Large arrays show their corners only.

>>> from tinygrad_edu import Tensor
>>> w = Tensor([[1.0, -2.0]], requires_grad=True, name="w")
>>> page = tensor_html(w)
>>> "<b>w</b>" in page, "leaf" in page, "(1, 2)" in page
(True, True, True)
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

__all__ = ["tensor_html", "array_html"]

EDGE = 4            # a long axis shows its first and last EDGE entries, with an ellipsis between
_STYLE = "border-collapse:collapse;font-family:monospace;font-size:11px"
_CELL = "border:1px solid #ddd;padding:1px 4px;text-align:right"


def tensor_html(t: Any) -> str:
    """The HTML for ``t`` (what ``Tensor._repr_html_`` shows): a header line, then its values and gradient."""
    name = "(no name)" if t.name is None else t.name
    made_by = "leaf" if t.op is None else f"op {t.op.name}"
    head = (f"<b>{html.escape(str(name))}</b> &nbsp; shape {html.escape(str(t.shape))} &nbsp; {t.dtype} &nbsp; "
            f"{html.escape(made_by)}" + (" &nbsp; requires_grad" if t.requires_grad else ""))
    if t.grad is not None:
        grad = array_html(t.grad)
    elif t.requires_grad:
        grad = "<i>None yet: call backward()</i>"
    else:
        grad = "<i>none (requires_grad=False)</i>"
    return (f'<div class="tinygrad-edu-tensor"><div>{head}</div>'
            f"<table style=\"{_STYLE}\"><tr><td style=\"vertical-align:top;padding-right:12px\">data<br>"
            f"{array_html(t.data)}</td><td style=\"vertical-align:top\">grad<br>{grad}</td></tr></table></div>")


def array_html(a: Any) -> str:
    """An array as HTML: a heat-map table if it is 2-D and real, else numpy's own (abbreviated) text."""
    a = np.asarray(a)
    if a.ndim != 2 or a.dtype.kind not in "fiu":
        text = np.array2string(a, threshold=2 * EDGE * EDGE, edgeitems=EDGE, precision=4)
        return f"<pre style=\"margin:0\">{html.escape(text)}</pre>{_summary(a)}"
    rows, cols = _shown(a.shape[0]), _shown(a.shape[1])
    finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
    scale = float(np.max(np.abs(finite))) if finite.size else 0.0
    lines = []
    for i in rows:
        cells = []
        for j in cols:
            if i is None or j is None:  # in the ellipsis row (⋮), column (⋯), or both (⋱)
                gap = "⋱" if i is None and j is None else "⋮" if i is None else "⋯"
                cells.append(f'<td style="{_CELL};color:#999">{gap}</td>')
            else:
                cells.append(_cell(a[i, j], scale))
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table style="{_STYLE}">{"".join(lines)}</table>{_summary(a)}'


def _shown(n: int) -> list[int | None]:
    """The indices drawn along an axis of length n; None marks the ellipsis."""
    if n <= 2 * EDGE + 1:
        return list(range(n))
    return [*range(EDGE), None, *range(n - EDGE, n)]


def _cell(value: Any, scale: float) -> str:
    value = float(value)
    if not np.isfinite(value):
        return f'<td style="{_CELL};background:#bbb">{value}</td>'
    # NOTE: diverging around 0, so the sign reads at a glance: white at 0, full colour at the largest |value|.
    strength = abs(value) / scale if scale > 0 else 0.0
    fade = round(255 - 165 * strength)
    colour = f"rgb(255,{fade},{fade})" if value > 0 else f"rgb({fade},{fade},255)"
    return f'<td style="{_CELL};background:{colour}" title="{value!r}">{value:.4g}</td>'


def _summary(a: np.ndarray) -> str:
    """min / mean / max under an abbreviated array (what the hidden values do)."""
    if a.size <= (2 * EDGE + 1) ** 2 or a.dtype.kind not in "fiu":
        return ""
    finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
    if not finite.size:
        return ""
    return (f'<div style="font-size:11px;color:#666">{a.size} values: min {finite.min():.4g}, mean '
            f"{finite.mean():.4g}, max {finite.max():.4g}</div>")
