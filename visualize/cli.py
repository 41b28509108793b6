"""The ``tinygrad-edu graph`` command's work: draw a loss's graph to a file (the argument parsing is the CLI's)."""

from __future__ import annotations

import os
from typing import Any

from tinygrad_edu.tensor import Tensor

from .render import draw
from .stepthrough import stepthrough

__all__ = ["graph_command"]


def graph_command(loss: Tensor, out: str, html: bool, params: Any = None) -> list[str]:
    """Write the graph of ``loss`` and return the paths written.

    ``out`` ending in ``.svg``/``.png``/``.pdf`` (or with no suffix: SVG) gets the picture (Graphviz when
    installed, else the built-in SVG layout). With ``html=True`` the step-through page is written too, next
    to it with the suffix ``.html`` (``-o graph.svg --html`` gives ``graph.svg`` and ``graph.html``); an ``out``
    that already ends in ``.html`` gets only the page.
    """
    if not isinstance(loss, Tensor):
        raise TypeError(f"graph: expected the loss Tensor to draw, got a {type(loss).__name__}.")
    base, ext = os.path.splitext(out)
    if ext.lower() not in ("", ".svg", ".png", ".pdf", ".html"):
        raise ValueError(f"graph: cannot write {out!r}: the picture is .svg, .png or .pdf (or .html for the "
                         f"step-through page); e.g. -o graph.svg")
    written: list[str] = []
    directory = os.path.dirname(os.path.abspath(out))
    os.makedirs(directory, exist_ok=True)
    if ext.lower() != ".html":
        picture = draw(loss, path=out, params=params)
        written.append(out if ext else f"{out}.svg")
        if not hasattr(picture, "pipe") and ext.lower() in (".png", ".pdf"):
            written[-1] = f"{base}.svg"  # no Graphviz: the built-in layout writes SVG only
    if html:
        written.append(stepthrough(loss, f"{base}.html", params=params))
    return written
