"""``draw``: a picture of the graph, through Graphviz when it is installed, else through the built-in layout."""

from __future__ import annotations

import os
import shutil
from typing import Any

from .graph import to_dot
from .layout import layout_svg

__all__ = ["draw", "SvgPicture", "INSTALL_GRAPHVIZ"]

INSTALL_GRAPHVIZ = ("Graphviz's `dot` program was not found, so this picture uses the built-in layout; for the "
                    "nicer one install Graphviz (apt-get install graphviz, or brew install graphviz)")
_FORMATS = ("svg", "png", "pdf")


class SvgPicture:
    """An SVG picture from the built-in layout; Jupyter shows it inline, ``str()`` is the SVG text."""

    def __init__(self, source: str) -> None:
        self.source = source

    def _repr_svg_(self) -> str:
        return self.source

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"image/svg+xml": self.source}

    def save(self, path: str | os.PathLike[str]) -> str:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.source)
        return os.fspath(path)

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return f"SvgPicture({len(self.source)} characters of SVG)"


def dot_available() -> bool:
    """Whether Graphviz's ``dot`` program is on the PATH (the ``graphviz`` Python package needs it)."""
    return shutil.which("dot") is not None


def _target(path: str | os.PathLike[str], suffix: str) -> str:
    base, ext = os.path.splitext(os.fspath(path))
    return f"{base}.{suffix}" if ext.lower().lstrip(".") in _FORMATS or not ext else f"{os.fspath(path)}.{suffix}"


def draw(*roots: Any, path: str | os.PathLike[str] | None = None, format: str | None = None,  # noqa: A002
         layout: str = "auto", **options: Any) -> Any:
    """Draw the graph behind ``roots`` and return a picture that Jupyter displays inline.

    With Graphviz installed (``dot`` on the PATH) this renders ``to_dot(...)`` through the ``graphviz``
    package and returns its ``graphviz.Source``. Without it, the built-in layout (``layout_svg``) draws the
    same boxes and edges as SVG, returned as an ``SvgPicture``, and one line says how to install Graphviz.

    * ``path``: also write the picture there; its suffix (``.svg``, ``.png``, ``.pdf``) picks the format
      unless ``format`` is given. Without Graphviz only SVG can be written: ``graph.png`` becomes
      ``graph.svg``, and the printed line says so.
    * ``layout``: ``"auto"`` (Graphviz when present; else the built-in layout and a one-line install hint),
      ``"dot"`` (insist on Graphviz) or ``"builtin"`` (always the built-in layout, no hint).
    * every other option goes to ``to_dot``: ``params``, ``show_values``, ``rankdir``, ``collapse_modules``,
      ``max_depth``, ``highlight``, ``max_nodes``.

    >>> from tinygrad_edu import Tensor
    >>> w = Tensor([1.0, -1.0], requires_grad=True, name="w")
    >>> picture = draw((w * w).sum(), layout="builtin")  # the built-in layout, even where Graphviz exists
    >>> "<svg" in picture._repr_mimebundle_()["image/svg+xml"]
    True
    """
    if format is None:
        ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".") if path is not None else ""
        format = ext if ext in _FORMATS else "svg"  # noqa: A001
    if format not in _FORMATS:
        raise ValueError(f"draw: format must be one of {', '.join(_FORMATS)}, got {format!r}.")
    if layout not in ("auto", "dot", "builtin"):
        raise ValueError(f"draw: layout must be 'auto', 'dot' or 'builtin', got {layout!r}.")
    if layout == "dot" and not dot_available():
        raise RuntimeError("draw(layout='dot'): Graphviz's `dot` program is not on the PATH. Install it "
                           "(apt-get install graphviz, or brew install graphviz) or use layout='builtin'.")
    if layout == "dot" or (layout == "auto" and dot_available()):
        import graphviz  # a dependency of the package, imported here so the engine never pays for it

        source = graphviz.Source(to_dot(*roots, **options))
        if path is not None:
            data = source.pipe(format=format)
            with open(_target(path, format), "wb") as f:
                f.write(data)
        return source
    picture = SvgPicture(layout_svg(*roots, **options))
    written = picture.save(_target(path, "svg")) if path is not None else None
    wrong_format = f" (wrote {written}: SVG, not {format.upper()})" if written and format != "svg" else ""
    if layout == "auto":  # Graphviz was wanted but is missing: say how to get it, in one line
        print(INSTALL_GRAPHVIZ + (wrong_format or (f" (wrote {written})" if written else "")))
    elif wrong_format:
        print(f"draw(layout='builtin') writes SVG only{wrong_format}")
    return picture
