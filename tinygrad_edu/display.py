"""A Tensor as a small HTML table, for Jupyter: its name, shape, dtype, the op that made it, values and grad.

2-D arrays are drawn as a heat-map: red cells are positive, blue negative, white near 0, the colour's
strength relative to the largest magnitude in the array. Large arrays show their corners only. Images and
filters, 3-D (C, H, W) and 4-D (N, C, H, W) arrays, are drawn as one small picture per channel
(``channel_images`` picks which), on one colour scale.

>>> from tinygrad_edu import Tensor
>>> w = Tensor([[1.0, -2.0]], requires_grad=True, name="w")
>>> page = tensor_html(w)
>>> "<b>w</b>" in page, "leaf" in page, "(1, 2)" in page
(True, True, True)
"""

from __future__ import annotations

import base64
import html
import struct
import zlib
from typing import Any

import numpy as np

__all__ = ["tensor_html", "array_html", "channel_images"]

EDGE = 4            # a long axis shows its first and last EDGE entries, with an ellipsis between
CHANNELS = 32       # at most this many pictures for an array of images or filters
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
    """An array as HTML: a heat-map table if it is 2-D and real, pictures per channel for 3-D and 4-D real
    arrays (images, filters), else numpy's own (abbreviated) text."""
    a = np.asarray(a)
    if a.ndim in (3, 4) and a.dtype.kind in "fiu" and a.size and min(a.shape[-2:]) > 1:
        return _channels_html(a)
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


def channel_images(a: Any, limit: int = CHANNELS) -> tuple[list[tuple[str, np.ndarray]], str]:
    """The 2-D pictures a 3-D or 4-D array is shown as, with their index labels, and a note on the choice.

    (C, H, W): one per channel. (N, C, H, W): for C = 1 (grey images, or filters on one input channel) one per
    entry of axis 0; otherwise the C channels of entry 0 (the first example's feature maps, or the first
    filter's slices). At most ``limit`` pictures.

    >>> images, note = channel_images(np.zeros((10, 20, 24, 24)))
    >>> len(images), images[1][0], images[1][1].shape, note
    (20, '[0, 1]', (24, 24), 'entry 0 of 10 along axis 0, one picture per channel')
    """
    a = np.asarray(a)
    if a.ndim == 3:
        picked = [(f"[{c}]", a[c]) for c in range(a.shape[0])]
        note = "one picture per channel"
    elif a.ndim == 4 and a.shape[1] == 1:
        picked = [(f"[{i}, 0]", a[i, 0]) for i in range(a.shape[0])]
        note = "one picture per entry of axis 0 (one channel)"
    elif a.ndim == 4:
        picked = [(f"[0, {c}]", a[0, c]) for c in range(a.shape[1])]
        note = f"entry 0 of {a.shape[0]} along axis 0, one picture per channel"
    else:
        raise ValueError(f"channel_images: expected a 3-D (C, H, W) or 4-D (N, C, H, W) array, got shape {a.shape}.")
    if len(picked) > limit:
        note += f"; the first {limit} of {len(picked)}"
    return picked[:limit], note


def _channels_html(a: np.ndarray) -> str:
    """One small picture per channel, on one colour scale (blue < 0 < red), as inline PNG images."""
    images, note = channel_images(a)
    finite = [im[np.isfinite(im)] for _, im in images]
    scale = max((float(np.max(np.abs(f))) for f in finite if f.size), default=0.0)
    zoom = max(1, min(6, 72 // max(a.shape[-2:])))
    cells = []
    for label, image in images:
        uri = "data:image/png;base64," + base64.b64encode(_png(_colours(image, scale))).decode()
        cells.append(f'<figure style="display:inline-block;margin:2px;text-align:center">'
                     f'<img src="{uri}" width="{image.shape[1] * zoom}" height="{image.shape[0] * zoom}" '
                     f'style="image-rendering:pixelated;border:1px solid #ddd" title="{html.escape(label)}">'
                     f'<figcaption style="font-size:10px;color:#666">{html.escape(label)}</figcaption></figure>')
    return (f'<div style="max-width:720px">{"".join(cells)}</div><div style="font-size:11px;color:#666">'
            f"{html.escape(note)}; colour scale ±{scale:.4g}</div>{_summary(a)}")


def _colours(image: np.ndarray, scale: float) -> np.ndarray:
    """The heat-map colours of ``_cell`` for every pixel, (H, W, 3) bytes; NaN and infinities grey."""
    values = image.astype(np.float64)
    finite = np.isfinite(values)
    strength = np.where(finite, np.abs(values) / scale if scale > 0 else 0.0, 0.0)
    fade = np.round(255 - 165 * np.clip(strength, 0, 1)).astype(np.uint8)
    full = np.full(values.shape, 255, dtype=np.uint8)
    positive = values > 0
    rgb = np.stack([np.where(positive, full, fade), fade, np.where(positive, fade, full)], axis=-1)
    rgb[~finite] = 187
    return rgb


def _png(rgb: np.ndarray) -> bytes:
    """A minimal PNG file (8-bit RGB, no filtering) of an (H, W, 3) uint8 array."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    h, w = rgb.shape[:2]
    rows = b"".join(b"\x00" + rgb[r].tobytes() for r in range(h))  # each row starts with filter type 0
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
