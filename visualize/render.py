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


def through_dot(dot_text: str, format: str, caller: str, insist: bool) -> bytes | None:  # noqa: A002
    """``dot_text`` drawn by Graphviz's ``dot`` in ``format``; None, after a printed note, when ``dot`` fails.

    A ``dot`` that is on the PATH may still fail (a broken installation, a missing plugin): then the caller
    draws with the built-in layout instead, unless ``insist`` (``layout="dot"``) makes the failure an error.
    """
    import graphviz  # a dependency of the package, imported here so the engine never pays for it

    try:
        return graphviz.Source(dot_text).pipe(format=format, quiet=True)  # its stderr goes in the note
    except (graphviz.CalledProcessError, graphviz.ExecutableNotFound, OSError) as error:
        said = getattr(error, "stderr", None)
        lines = (said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said or error)).strip()
        reason = lines.splitlines()[-1] if lines else type(error).__name__
        if insist:
            raise RuntimeError(f"{caller}(layout='dot'): Graphviz's `dot` failed ({reason}). Repair the Graphviz "
                               f"installation (`dot -c` registers its plugins) or use layout='builtin'.") from error
        print(f"{caller}: Graphviz's `dot` failed ({reason}), so this picture uses the built-in layout; repair the "
              f"Graphviz installation (`dot -c` registers its plugins) for the nicer one.")
        return None


def _target(path: str | os.PathLike[str], format: str | None) -> tuple[str, str]:  # noqa: A002
    """``(file to write, format)`` for ``draw(path=..., format=...)``; an unknown suffix or format is refused.

    The suffix picks the format (``graph.png``); a path without one gets the format's (``graph`` -> ``graph.svg``).
    """
    text = os.fspath(path)
    base, ext = os.path.splitext(text)
    suffix = ext.lower().lstrip(".")
    supported = ", ".join(f".{f}" for f in _FORMATS)
    if ext and suffix not in _FORMATS:
        raise ValueError(f"draw: cannot write {text!r}: pictures are written as {supported}; give the path one "
                         f"of these suffixes, e.g. path={base + '.svg'!r}.")
    if format is None:
        format = suffix or "svg"  # noqa: A001
    if format not in _FORMATS:
        raise ValueError(f"draw: format must be one of {', '.join(_FORMATS)}, got {format!r}.")
    return f"{base}.{format}", format


_hint_shown = False  # the install hint is printed once per process, not on every picture


def draw(*roots: Any, path: str | os.PathLike[str] | None = None, format: str | None = None,  # noqa: A002
         layout: str = "auto", **options: Any) -> Any:
    """Draw the graph behind ``roots`` and return a picture that Jupyter displays inline.

    With Graphviz installed (``dot`` on the PATH) this renders ``to_dot(...)`` through the ``graphviz``
    package and returns its ``graphviz.Source``. Without it, the built-in layout (``layout_svg``) draws the
    same boxes and edges as SVG, returned as an ``SvgPicture``, and one line says how to install Graphviz.

    * ``path``: also write the picture there; its suffix (``.svg``, ``.png``, ``.pdf``) picks the format
      unless ``format`` is given; any other suffix is refused. Without Graphviz only SVG can be written:
      ``graph.png`` becomes ``graph.svg``, and a printed line says so every time (and when it replaced a
      ``graph.svg`` that was there).
    * ``layout``: ``"auto"`` (Graphviz when present; else the built-in layout and a one-line install hint,
      printed once per process; a ``dot`` that fails also falls back, with a line that says so),
      ``"dot"`` (insist on Graphviz) or ``"builtin"`` (always the built-in layout, no hint).
    * every other option goes to ``to_dot``: ``params``, ``show_values``, ``rankdir``, ``collapse_modules``,
      ``max_depth``, ``highlight``, ``max_nodes``.

    >>> from tinygrad_edu import Tensor
    >>> w = Tensor([1.0, -1.0], requires_grad=True, name="w")
    >>> picture = draw((w * w).sum(), layout="builtin")  # the built-in layout, even where Graphviz exists
    >>> "<svg" in picture._repr_mimebundle_()["image/svg+xml"]
    True
    """
    if path is not None:
        target, format = _target(path, format)  # noqa: A001
    elif format is not None and format not in _FORMATS:
        raise ValueError(f"draw: format must be one of {', '.join(_FORMATS)}, got {format!r}.")
    if layout not in ("auto", "dot", "builtin"):
        raise ValueError(f"draw: layout must be 'auto', 'dot' or 'builtin', got {layout!r}.")
    if layout == "dot" and not dot_available():
        raise RuntimeError("draw(layout='dot'): Graphviz's `dot` program is not on the PATH. Install it "
                           "(apt-get install graphviz, or brew install graphviz) or use layout='builtin'.")
    with_dot = layout == "dot" or (layout == "auto" and dot_available())
    if with_dot:
        import graphviz

        source = graphviz.Source(to_dot(*roots, **options))
        # drawn now, also without a path: a dot that fails falls back here, not when Jupyter shows the picture
        data = through_dot(source.source, format or "svg", "draw", insist=layout == "dot")
        if data is not None:
            if path is not None:
                with open(target, "wb") as f:
                    f.write(data)
            return source
    picture = SvgPicture(layout_svg(*roots, **options))
    said = ""
    if path is not None:
        assert format is not None  # _target chose it above
        svg_path = os.path.splitext(target)[0] + ".svg"
        replacing = format != "svg" and os.path.exists(svg_path)
        written = picture.save(svg_path)
        if format != "svg":  # said every time: the file asked for is not the file written
            said = (f"wrote {written}: SVG, not {format.upper()}, which needs Graphviz"
                    + (f"; it replaced the {written} that was there" if replacing else ""))
    global _hint_shown
    if layout == "auto" and not with_dot and not _hint_shown:  # Graphviz is missing: say how to get it, once
        _hint_shown = True
        print(INSTALL_GRAPHVIZ + (f" ({said})" if said else ""))
    elif said:
        print(f"draw: {said}")
    return picture
