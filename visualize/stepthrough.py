"""A self-contained web page that walks the backward pass one node at a time, in the engine's own order.

``backprop_steps`` records the steps of the engine's own backward walk (``autograd.backward_steps``, the
generator that ``Tensor.backward()`` consumes), without touching any ``.grad``. ``stepthrough`` embeds those
steps as JSON next to an SVG of the graph in one HTML file: no network, no CDN, open it from disk in any
browser.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_edu import ops
from tinygrad_edu.autograd import backward_steps
from tinygrad_edu.display import channel_images
from tinygrad_edu.tensor import Tensor

from .graph import build_picture, changed_tensors, named_tensors, picture_to_dot, summary, walk
from .layout import picture_to_svg
from .render import dot_available, through_dot

__all__ = ["backprop_steps", "stepthrough", "StepthroughPage", "fit_note", "heat_map", "channel_maps"]

_FULL = 100  # arrays up to this many elements are embedded value by value; larger ones as a summary
_VECTOR_LINE = 40  # characters per line of a vector's numbers: what the side panel shows at its narrowest
HEAT_ABOVE = 16  # a 2-D array of more elements (larger than about 4x4) is shown as a heat-map
HEAT_CELLS = 48  # a heat-map has at most this many cells along each side; larger arrays are averaged in blocks
LEAF_RULE = ("Leaf: no rule to apply here. The gradient arriving at a leaf is added into its .grad "
             "(leaves accumulate across backward() calls; call zero_grad() between steps).")


def _plain(values: Any) -> Any:
    """JSON-safe copy of nested lists: NaN and infinities become strings (JSON has no such numbers)."""
    if isinstance(values, list):
        return [_plain(v) for v in values]
    if isinstance(values, float) and not np.isfinite(values):
        return "NaN" if np.isnan(values) else ("Infinity" if values > 0 else "-Infinity")
    if isinstance(values, complex):
        return str(values)
    return values


def heat_map(a: Any) -> dict[str, Any] | None:
    """A 2-D array of more than ``HEAT_ABOVE`` elements as the cells of a small heat-map; None otherwise.

    At most ``HEAT_CELLS`` cells along each side: a larger array is cut into blocks (``block`` = rows and
    columns per cell) and each cell holds its block's mean. ``scale`` is the largest absolute value, so the
    page colours each cell by ``cell / scale`` from blue (negative) through white (0) to red (positive).
    NaN and infinities become ``None`` cells (drawn grey) and are left out of min, mean and max.

    >>> record = heat_map(np.arange(-12.0, 12.0).reshape(4, 6))
    >>> record["min"], record["mean"], record["max"], record["scale"], record["block"]
    (-12.0, -0.5, 11.0, 12.0, [1, 1])
    >>> heat_map(np.ones((4, 4))) is None, heat_map(np.ones((300, 30)))["block"]
    (True, [7, 1])
    """
    a = np.asarray(a)
    if a.ndim != 2 or a.size <= HEAT_ABOVE or a.dtype.kind not in "iufb":
        return None
    values = a.astype(np.float64)
    cells, block = _cells(values)
    seen = values[np.isfinite(values)]
    if seen.size == 0:
        return {"cells": cells, "block": block, "min": None, "mean": None, "max": None, "scale": 0.0}
    return {"cells": cells, "block": block, "min": float(seen.min()), "mean": float(seen.mean()),
            "max": float(seen.max()), "scale": float(np.abs(seen).max())}


def _cells(values: np.ndarray) -> tuple[list[list[float | None]], list[int]]:
    """A 2-D float array as at most ``HEAT_CELLS`` cells a side (the mean of each block), and the block size."""
    rows, cols = values.shape
    block = [-(-rows // HEAT_CELLS), -(-cols // HEAT_CELLS)]  # ceiling division
    cells: list[list[float | None]] = []
    for r in range(0, rows, block[0]):
        line: list[float | None] = []
        for c in range(0, cols, block[1]):
            part = values[r:r + block[0], c:c + block[1]]
            good = part[np.isfinite(part)]
            line.append(float(f"{good.mean():.4g}") if good.size else None)
        cells.append(line)
    return cells, block


def channel_maps(a: Any) -> dict[str, Any] | None:
    """A 3-D or 4-D array (images, feature maps, filters) as one small heat-map per channel; None otherwise.

    Which channels: ``display.channel_images`` (the first example's maps, or every grey image or
    single-channel filter). One colour ``scale`` (the largest absolute value shown) for all of them, so maps
    compare at a glance; min, mean and max are over the maps shown.

    >>> record = channel_maps(np.arange(2 * 3 * 4 * 4.0).reshape(2, 3, 4, 4))
    >>> [m["label"] for m in record["maps"]], len(record["maps"][0]["cells"]), record["scale"], record["note"]
    (['[0, 0]', '[0, 1]', '[0, 2]'], 4, 47.0, 'entry 0 of 2 along axis 0, one picture per channel')
    """
    a = np.asarray(a)
    if a.ndim not in (3, 4) or a.dtype.kind not in "iuf" or a.size == 0 or min(a.shape[-2:]) < 2:
        return None
    images, note = channel_images(a)
    maps = [{"label": label, "cells": _cells(image.astype(np.float64))[0]} for label, image in images]
    seen = [image[np.isfinite(image)] for _, image in images]
    finite = np.concatenate([s.ravel() for s in seen]).astype(np.float64)
    stats = ({"min": float(finite.min()), "mean": float(finite.mean()), "max": float(finite.max()),
              "scale": float(np.abs(finite).max())} if finite.size else
             {"min": None, "mean": None, "max": None, "scale": 0.0})
    return {"maps": maps, "note": note, **stats}


def _array(a: Any) -> dict[str, Any]:
    a = np.asarray(a)
    # NOTE: a matrix keeps one row per line (wide rows scroll in the page), so a (10, 10) array is 10 lines, not
    # 20; a vector wraps to the panel's narrowest width instead, so a (30,) bias reads without scrolling.
    width = _VECTOR_LINE if a.ndim <= 1 else 200
    record: dict[str, Any] = {
        "shape": list(a.shape),
        "text": np.array2string(a, precision=4, threshold=_FULL, edgeitems=3, max_line_width=width),
        "summary": summary(a),
    }
    if a.size <= _FULL:
        record["values"] = _plain(a.tolist())
    heat = heat_map(a)
    if heat is not None:
        record["heat"] = heat
    maps = channel_maps(a)
    if maps is not None:
        record["channels"] = maps
    return record


def _check_loss(loss: Any, caller: str) -> None:
    if not isinstance(loss, Tensor):
        raise TypeError(f"{caller}: expected the loss Tensor, got a {type(loss).__name__}.")
    if not loss.requires_grad:
        raise ValueError(
            f"{caller}: the loss does not require grad, so backward() has nothing to walk. Create the "
            f"parameters with Tensor(..., requires_grad=True) before computing the loss.")
    if loss.size != 1:
        raise ValueError(
            f"{caller}: the loss has shape {loss.shape}; the backward pass starts from a scalar (its gradient "
            f"is 1). Reduce it first, e.g. stepthrough(loss.mean()) or stepthrough(loss.sum()).")


def backprop_steps(loss: Tensor, params: Any = None) -> list[dict[str, Any]]:
    """One record per tensor that needs a gradient, in the order ``loss.backward()`` visits them.

    Each record has the node (``id`` as in the drawing, ``name``, ``role``, ``op`` and its ``rule``, the op's
    docstring), its ``value``, the ``upstream`` gradient arriving there (the sum of what its consumers sent,
    listed in ``contributions``) and, for each parent, the gradient it receives (``parents[k]["grad"]``,
    already reduced to the parent's shape where broadcasting stretched it; ``fitted`` says so). Arrays are
    dicts with ``shape``, ``text``, ``summary`` and, for at most 100 elements, ``values``.

    Works whether or not ``backward()`` was called: nothing here reads or writes ``.grad``.
    """
    _check_loss(loss, "backprop_steps")
    order = walk([loss])
    number = {id(t): i for i, t in enumerate(order)}
    names = {id(t): name for name, t in named_tensors(params, "backprop_steps")}

    def name(t: Tensor) -> str:  # as in the drawing, where the unnamed root is labelled "loss"
        if t is loss:
            return t.name or "loss"
        return names.get(id(t)) or t.name or f"t{number[id(t)]}"

    def role(t: Tensor) -> str:
        if t is loss:
            return "loss"
        return "intermediate" if t.parents else ("parameter" if t.requires_grad else "input")

    sources: dict[int, list[str]] = {id(loss): ["where backward() starts: d loss / d loss = 1"]}
    steps: list[dict[str, Any]] = []
    for node, grad_out, parent_grads in backward_steps([loss], [np.ones_like(loss.data)], caller="backprop_steps"):
        op = node.op if node.parents else None
        rule = (op.__doc__ or op.name).strip() if op is not None else LEAF_RULE
        step: dict[str, Any] = {
            "step": len(steps) + 1, "id": f"t{number[id(node)]}",
            "op_id": f"op{number[id(node)]}" if op is not None else None,
            "name": name(node), "role": role(node), "op": op.name if op is not None else None, "rule": rule,
            "shape": list(node.shape), "dtype": str(node.dtype), "value": _array(node.data),
            "upstream": _array(grad_out), "contributions": sources.pop(id(node), []), "parents": [], "note": None,
        }
        if op is None and node.grad is not None and (
                np.shape(node.grad) != np.shape(grad_out) or not np.allclose(node.grad, grad_out)):
            step["note"] = (f"{step['name']}.grad differs from this pass's gradient: it holds what was there "
                            f"before (earlier backward() calls, or a value set by hand); gradients "
                            f"accumulate in leaves.")
        for k, (parent, pg) in enumerate(zip(node.parents, parent_grads)):
            entry: dict[str, Any] = {"index": k, "id": f"t{number[id(parent)]}", "name": name(parent),
                                     "role": role(parent), "value": _array(parent.data), "grad": None,
                                     "fitted": False}
            if pg is not None:
                entry.update(_fitting(node, parent, entry["name"]))
                entry["grad"] = _array(pg)
                sources.setdefault(id(parent), []).append(f"{step['name']} (argument {k} of {step['op']})")
            step["parents"].append(entry)
        steps.append(step)
    return steps


def fit_note(name: str, raw_shape: Sequence[int], shape: Sequence[int], how: str) -> str:
    """What happened between the rule's gradient and the parent's shape, in words (the page shows it).

    A rule such as ``sum``'s gives one number for a whole input: it is *expanded* to every element. Where
    broadcasting stretched an input in the forward pass, the gradients of its copies are *summed* back.

    >>> fit_note("a", (1,), (2,), "expanded")
    'the rule gave shape (1,), one gradient for all of a; it is expanded (copied) to every element of (2,)'
    >>> print(fit_note("b", (4, 1), (1,), "summed"))
    broadcasting stretched b from (1,) to (4, 1) in the forward pass; its copies' gradients are summed back to (1,)
    """
    raw, target = tuple(raw_shape), tuple(shape)
    if how == "expanded":
        return (f"the rule gave shape {raw}, one gradient for all of {name}; it is expanded (copied) to every "
                f"element of {target}")
    return (f"broadcasting stretched {name} from {target} to {raw} in the forward pass; its copies' gradients "
            f"are summed back to {target}")


_REDUCTIONS = (ops.Sum, ops.Mean, ops.Max, ops.Min, ops.Var, ops.LogSumExp)
_NOT_BROADCASTING = (ops.MatMul, ops.Concatenate, ops.Stack)


def _fitting(node: Tensor, parent: Tensor, name: str) -> dict[str, Any]:
    """How the engine's ``unbroadcast`` brought the rule's gradient for ``parent`` to its shape, for the page:
    a reduction's keepdims-shaped gradient is expanded; where broadcasting stretched an input, it is summed."""
    op, raw, how = node.op, list(parent.shape), "summed"
    if op in _REDUCTIONS and parent.shape != node.shape:
        axis = node.op_args.get("axis")
        axes = range(parent.ndim) if axis is None else {a % parent.ndim for a in np.atleast_1d(axis).tolist()}
        raw, how = [1 if i in axes else n for i, n in enumerate(parent.shape)], "expanded"
    elif op is ops.MatMul and parent.ndim >= 2 and node.ndim > parent.ndim:  # a batch of matrices times one
        raw = list(node.shape[:-2] + parent.shape[-2:])
    elif (op is ops.BroadcastTo or (len(node.parents) > 1 and op not in _NOT_BROADCASTING)) \
            and parent.shape != node.shape:
        raw = list(node.shape)
    if raw == list(parent.shape):
        return {"fitted": False}
    return {"fitted": True, "raw_shape": raw, "how": how, "fit_note": fit_note(name, raw, parent.shape, how)}


def _refuse_changed(loss: Tensor, params: Any, caller: str) -> None:
    """Refuse, in the learner's terms, a loss whose forward-pass values changed since (``optimizer.step()``)."""
    changed = changed_tensors(walk([loss]))
    if not changed:
        return
    names = {id(t): name for name, t in named_tensors(params, caller)}
    shown = [names.get(id(t)) or t.name or f"a {t.shape} tensor" for t in changed]
    listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    verb = "was" if len(shown) == 1 else "were"
    raise RuntimeError(
        f"{caller}: {listed} {verb} changed after the forward pass that computed this loss (by "
        f"optimizer.step(), or a write such as w.data -= ...). The step-through needs the values the forward "
        f"pass used: call {caller}() before optimizer.step(), or run the forward pass again (loss = "
        f"loss_fn(model(x), y)) and step through that loss.")


def _inline_svg(svg: str) -> str:
    """An SVG document as an element inside HTML: no XML prolog, doctype, comments or namespace URLs."""
    svg = re.sub(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->", "", svg, flags=re.S)
    return re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg).strip()


class StepthroughPage(str):
    """The path of a written step-through page: a ``str`` (the path, as before) that Jupyter shows inline.

    ``page`` holds the HTML; ``_repr_html_`` puts it in an ``<iframe srcdoc=...>`` (escaped, and sandboxed
    so that its script can run but cannot reach the notebook around it).
    """

    page: str

    def __new__(cls, path: str, page: str) -> StepthroughPage:
        made = super().__new__(cls, path)
        made.page = page
        return made

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{html.escape(self.page, quote=True)}" sandbox="allow-scripts" '
                f'title="{html.escape(os.path.basename(self), quote=True)}" '
                f'style="width: 100%; height: 640px; border: 1px solid #ddd;"></iframe>')


def stepthrough(loss: Tensor, path: str | os.PathLike[str] = "backprop.html", params: Any = None,
                layout: str = "auto", title: str | None = None) -> StepthroughPage:
    """Write one self-contained HTML page that steps through ``loss``'s backward pass; return its path.

    The page shows the graph (drawn by Graphviz when ``dot`` is installed, else by the built-in layout;
    ``layout`` = ``"auto"``, ``"dot"`` or ``"builtin"``) and, one step per tensor in the engine's order: the
    node (outlined in red in the drawing), its op's local derivative rule, the upstream gradient, the gradient
    sent to each parent, and the values. Next/Previous buttons or the arrow keys move between steps.
    ``params`` names the parameters as in ``to_dot``. ``loss.backward()`` may or may not have been called.
    The path is returned as a ``StepthroughPage``: a ``str`` that Jupyter shows as the page itself, inline.
    """
    _check_loss(loss, "stepthrough")
    if layout not in ("auto", "dot", "builtin"):
        raise ValueError(f"stepthrough: layout must be 'auto', 'dot' or 'builtin', got {layout!r}.")
    _refuse_changed(loss, params, "stepthrough")
    steps = backprop_steps(loss, params)
    # The drawing shows values but no gradients: those are the subject of the steps.
    picture = build_picture(({loss.name or "loss": loss},), params=params, show_grad=False, caller="stepthrough")
    drawn_by_dot = None
    if layout == "dot" or (layout == "auto" and dot_available()):
        drawn_by_dot = through_dot(picture_to_dot(picture), "svg", "stepthrough", insist=layout == "dot")
    svg = picture_to_svg(picture) if drawn_by_dot is None else drawn_by_dot.decode("utf-8")
    heading = title or f"Backpropagation through {len(steps)} nodes"
    # Every drawn tensor's value, for the tooltip shown when the pointer rests on its box.
    drawn = {node.id: node.title for node in picture.nodes if node.kind == "tensor"}
    values = {picture.tensor_ids[id(t)]: t for t in walk([loss])}
    nodes = {node_id: {"name": name, "value": _array(values[node_id].data)} for node_id, name in drawn.items()}
    payload = json.dumps({"title": heading, "loss": _plain(float(loss.data.reshape(-1)[0])),
                          "steps": steps, "nodes": nodes}, allow_nan=False, separators=(",", ":"))
    payload = payload.replace("</", "<\\/")  # a docstring may not end the <script> element early
    page = (_PAGE.replace("%TITLE%", _escape(heading)).replace("%SVG%", _inline_svg(svg))
            .replace("%STEPS%", payload))
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return StepthroughPage(os.fspath(path), page)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>%TITLE%</title>
<style>
  html, body { height: 100%; }
  /* the header, then the graph and the panel filling the rest of the window (or of the notebook's frame), each
     scrolling on its own, so that the graph's scroll bars stay inside the window */
  body { font-family: system-ui, sans-serif; margin: 0; color: #222; display: flex; flex-direction: column; }
  header { padding: 10px 16px; border-bottom: 1px solid #ddd; display: flex; gap: 16px; align-items: center;
           flex: none; }
  header h1 { font-size: 18px; margin: 0; flex: 1; }
  #counter { font-weight: bold; font-variant-numeric: tabular-nums; }
  button { font-size: 15px; padding: 4px 14px; }
  main { display: grid; grid-template-columns: minmax(0, 1fr) minmax(340px, 38%); grid-template-rows: minmax(0, 1fr);
         flex: 1; min-height: 0; }
  @media (min-width: 1240px) { main { grid-template-columns: minmax(0, 1fr) 460px; } }
  #graph { overflow: auto; padding: 8px; border-right: 1px solid #ddd; min-height: 0; }
  #panel { overflow: auto; padding: 12px 16px; font-size: 14px; min-height: 0; }
  #panel h2 { font-size: 17px; margin: 4px 0 8px; }
  .label { color: #666; font-size: 12px; text-transform: uppercase; letter-spacing: 0.04em; margin-top: 12px; }
  pre { background: #f6f6f6; padding: 6px 8px; margin: 4px 0; white-space: pre-wrap; font-size: 12.5px; }
  pre.array { white-space: pre; overflow-x: auto; }
  .heat { margin: 4px 0; }
  .heat canvas { border: 1px solid #bbb; image-rendering: pixelated; display: block; }
  .heat .stats { font-size: 12px; color: #444; font-variant-numeric: tabular-nums; margin: 2px 0; }
  .heat details summary { cursor: pointer; font-size: 12px; color: #1f5f9f; }
  .heat .maps { display: flex; flex-wrap: wrap; gap: 4px; }
  .heat figure { margin: 0; text-align: center; font-size: 10px; color: #666; }
  #tip { position: fixed; display: none; background: #fff; border: 1px solid #999; padding: 6px 8px;
         box-shadow: 0 2px 8px rgba(0,0,0,0.25); font-size: 12px; max-width: 420px; pointer-events: none;
         z-index: 10; }
  #tip b { display: block; margin-bottom: 2px; }
  #tip pre.array { white-space: pre-wrap; }
  #rule { background: #fff8e1; border-left: 4px solid #f0b400; }
  .parent { border-top: 1px solid #eee; padding-top: 6px; margin-top: 6px; }
  .hint { color: #666; font-size: 12px; }
  #note:empty { display: none; }
  #note { color: #8a4b00; background: #fff1e0; padding: 6px 8px; }
  g.node.done > rect, g.node.done > polygon, g.node.done > path, g.node.done > ellipse {
    stroke: #2ca02c; stroke-width: 2px; }
  g.node.receiving > rect, g.node.receiving > polygon, g.node.receiving > path, g.node.receiving > ellipse {
    stroke: #ff7f0e; stroke-width: 3px; stroke-dasharray: 6 3; }
  g.node.current > rect, g.node.current > polygon, g.node.current > path, g.node.current > ellipse {
    stroke: #d62728; stroke-width: 4px; }
  g.edge.flow > path { stroke: #d62728; stroke-width: 3px; }
  g.edge.flow > polygon { stroke: #d62728; fill: #d62728; }
</style>
</head>
<body>
<header>
  <h1>%TITLE%</h1>
  <button id="prev" type="button">&#9664; Previous</button>
  <span id="counter">step 1 / 1</span>
  <button id="next" type="button">Next &#9654;</button>
</header>
<main>
  <div id="graph">%SVG%</div>
  <div id="panel">
    <p class="hint">The backward pass visits the nodes in reverse topological order, as loss.backward() does.
      Use the buttons or the &larr; &rarr; keys. Red: this node; orange: the parents it sends gradient to;
      green: done.</p>
    <h2 id="node-name"></h2>
    <div id="node-info"></div>
    <div class="label">local derivative rule</div>
    <pre id="rule"></pre>
    <div class="label">upstream gradient arriving here</div>
    <div id="upstream"></div>
    <div id="contributions" class="hint"></div>
    <div class="label">value (forward pass)</div>
    <div id="value"></div>
    <div class="label">gradient sent to each parent</div>
    <div id="parents"></div>
    <p id="note"></p>
  </div>
</main>
<div id="tip"></div>
<script type="application/json" id="steps">%STEPS%</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("steps").textContent);
const steps = DATA.steps;
const nodes = {};
document.querySelectorAll("#graph g.node").forEach(function (g) {
  const t = g.querySelector("title");
  if (t) { nodes[t.textContent.trim()] = g; }
});
const edges = [];
document.querySelectorAll("#graph g.edge").forEach(function (g) {
  const t = g.querySelector("title");
  if (!t) { return; }
  const ends = t.textContent.split("->");
  edges.push({ tail: ends[0].trim(), head: (ends[1] || "").trim(), el: g });
});
let current = 0;

function text(id, value) { document.getElementById(id).textContent = value; }

// A diverging colour for v / scale in [-1, 1]: blue below 0, white at 0, red above (null: grey).
function colour(t) {
  if (t === null) { return "rgb(187,187,187)"; }
  const end = t < 0 ? [33, 102, 172] : [178, 24, 43];
  const k = Math.min(1, Math.abs(t));
  const mix = end.map(function (c) { return Math.round(255 + (c - 255) * k); });
  return "rgb(" + mix.join(",") + ")";
}

function number(x) { return x === null ? "-" : Number(x.toPrecision(4)).toString(); }

// An array as the learner should first see it: a <pre> of its numbers, or for a 2-D array larger than
// about 4x4 a small heat-map with min/mean/max, the numbers one click away in a <details>.
function paintCells(cells, scale, size) {
  const canvas = document.createElement("canvas");
  canvas.width = cells[0].length * size;
  canvas.height = cells.length * size;
  const paint = canvas.getContext("2d");
  cells.forEach(function (line, r) {
    line.forEach(function (v, c) {
      paint.fillStyle = colour(v === null ? null : (scale > 0 ? v / scale : 0));
      paint.fillRect(c * size, r * size, size, size);
    });
  });
  return canvas;
}

// Under a heat-map: its min, mean and max, then the numbers themselves, folded.
function withNumbers(box, stats, record, pre) {
  box.appendChild(stats);
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = "the numbers " + shape(record.shape);
  details.appendChild(summary);
  details.appendChild(pre);
  box.appendChild(details);
  return box;
}

// Images, feature maps and filters (3-D and 4-D arrays): one small heat-map per channel, on one colour scale.
function channelView(record, pre) {
  const g = record.channels;
  const box = document.createElement("div");
  box.className = "heat";
  const maps = document.createElement("div");
  maps.className = "maps";
  const side = Math.max(g.maps[0].cells.length, g.maps[0].cells[0].length);
  const size = Math.max(2, Math.min(8, Math.floor(64 / side)));
  g.maps.forEach(function (m) {
    const figure = document.createElement("figure");
    figure.appendChild(paintCells(m.cells, g.scale, size));
    const caption = document.createElement("figcaption");
    caption.textContent = m.label;
    figure.appendChild(caption);
    maps.appendChild(figure);
  });
  box.appendChild(maps);
  const stats = document.createElement("div");
  stats.className = "stats";
  stats.textContent = g.note + "; min " + number(g.min) + "  mean " + number(g.mean) + "  max " + number(g.max) +
    "  (blue < 0 < red, one scale)";
  return withNumbers(box, stats, record, pre);
}

function arrayView(record) {
  const pre = document.createElement("pre");
  pre.className = "array";
  pre.textContent = record.text;
  if (record.channels) { return channelView(record, pre); }
  if (!record.heat) { return pre; }
  const h = record.heat;
  const box = document.createElement("div");
  box.className = "heat";
  const rows = h.cells.length, cols = h.cells[0].length;
  const size = Math.max(3, Math.min(20, Math.floor(240 / Math.max(rows, cols))));
  const canvas = document.createElement("canvas");
  canvas.width = cols * size;
  canvas.height = rows * size;
  const paint = canvas.getContext("2d");
  h.cells.forEach(function (line, r) {
    line.forEach(function (v, c) {
      paint.fillStyle = colour(v === null ? null : (h.scale > 0 ? v / h.scale : 0));
      paint.fillRect(c * size, r * size, size, size);
    });
  });
  box.appendChild(canvas);
  const stats = document.createElement("div");
  stats.className = "stats";
  stats.textContent = "min " + number(h.min) + "  mean " + number(h.mean) + "  max " + number(h.max) +
    "  (blue < 0 < red" + (h.block[0] * h.block[1] > 1 ? "; each cell is the mean of " + h.block[0] + "x" +
    h.block[1] + " values" : "") + ")";
  return withNumbers(box, stats, record, pre);
}

function showArray(id, record) {
  const place = document.getElementById(id);
  place.textContent = "";
  place.appendChild(arrayView(record));
}
function mark(id, cls) { if (id && nodes[id]) { nodes[id].classList.add(cls); } }
function shape(s) { return "(" + s.join(", ") + (s.length === 1 ? ",)" : ")"); }

function show(k) {
  current = Math.max(0, Math.min(steps.length - 1, k));
  const s = steps[current];
  Object.values(nodes).forEach(function (g) { g.classList.remove("current", "receiving", "done"); });
  edges.forEach(function (e) { e.el.classList.remove("flow"); });
  for (let j = 0; j < current; j++) { mark(steps[j].id, "done"); mark(steps[j].op_id, "done"); }
  s.parents.forEach(function (p) { if (p.grad) { mark(p.id, "receiving"); } });
  mark(s.id, "current");
  mark(s.op_id, "current");
  edges.forEach(function (e) {
    if ((s.op_id && e.head === s.op_id) || (s.op_id && e.tail === s.op_id && e.head === s.id)) {
      e.el.classList.add("flow");
    }
  });
  text("counter", "step " + (current + 1) + " / " + steps.length);
  const args = s.parents.map(function (p) { return p.name; }).join(", ");
  text("node-name", s.name + (s.op ? " = " + s.op + "(" + args + ")" : ""));
  text("node-info", s.role + ", shape " + shape(s.shape) + ", " + s.dtype + (nodes[s.id] ? "" : " (not drawn)"));
  text("rule", s.rule);
  showArray("upstream", s.upstream);
  text("contributions", s.contributions.length ? "= the sum of: " + s.contributions.join("; ") : "");
  showArray("value", s.value);
  const box = document.getElementById("parents");
  box.textContent = "";
  if (!s.parents.length) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = "A leaf: nothing further up. The gradient above is what backward() adds into .grad.";
    box.appendChild(p);
  }
  s.parents.forEach(function (p) {
    const div = document.createElement("div");
    div.className = "parent";
    const head = document.createElement("div");
    head.textContent = "argument " + p.index + ": " + p.name + " (" + p.role + ", shape " + shape(p.value.shape) + ")";
    div.appendChild(head);
    if (p.grad) {
      div.appendChild(arrayView(p.grad));
    } else {
      const g = document.createElement("pre");
      g.textContent = "no gradient: " + p.name + " does not require grad";
      div.appendChild(g);
    }
    if (p.fitted) {
      const f = document.createElement("div");
      f.className = "hint";
      f.textContent = p.fit_note;
      div.appendChild(f);
    }
    box.appendChild(div);
  });
  text("note", s.note || "");
  document.getElementById("prev").disabled = current === 0;
  document.getElementById("next").disabled = current === steps.length - 1;
  reveal(nodes[s.id]);
}

// Scroll the drawing, and nothing else (not the notebook around the page), so that the current node is in view:
// centred when it was out of sight, left alone when it is already visible.
const graphBox = document.getElementById("graph");
function reveal(g) {
  if (!g || !graphBox.clientWidth) { return; }  // not laid out yet (a notebook output that is still hidden)
  const box = g.getBoundingClientRect(), view = graphBox.getBoundingClientRect();
  const inside = box.left >= view.left && box.right <= view.left + graphBox.clientWidth &&
                 box.top >= view.top && box.bottom <= view.top + graphBox.clientHeight;
  if (inside) { return; }
  graphBox.scrollLeft += box.left + box.width / 2 - (view.left + graphBox.clientWidth / 2);
  graphBox.scrollTop += box.top + box.height / 2 - (view.top + graphBox.clientHeight / 2);
}
// A page inside a notebook may be laid out after its script ran: show the current node once it has a size.
window.addEventListener("load", function () { reveal(nodes[steps[current].id]); });
window.addEventListener("resize", function () { reveal(nodes[steps[current].id]); });

// Tooltips: resting the pointer on a tensor's box shows its value (and gradient) as in the panel.
const grads = {};
steps.forEach(function (s) { grads[s.id] = s.upstream; });
const tip = document.getElementById("tip");
Object.keys(nodes).forEach(function (id) {
  const info = (DATA.nodes || {})[id];
  if (!info) { return; }
  nodes[id].addEventListener("mouseenter", function () {
    tip.textContent = "";
    const head = document.createElement("b");
    head.textContent = info.name + " " + shape(info.value.shape);
    tip.appendChild(head);
    tip.appendChild(document.createTextNode("value"));
    tip.appendChild(arrayView(info.value));
    if (grads[id]) {
      tip.appendChild(document.createTextNode("gradient"));
      tip.appendChild(arrayView(grads[id]));
    }
    tip.querySelectorAll("details").forEach(function (d) { d.remove(); });  // a tooltip cannot be clicked
    tip.style.display = "block";
  });
  nodes[id].addEventListener("mousemove", function (event) {
    tip.style.left = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8) + "px";
    tip.style.top = Math.min(event.clientY + 14, window.innerHeight - tip.offsetHeight - 8) + "px";
  });
  nodes[id].addEventListener("mouseleave", function () { tip.style.display = "none"; });
});

document.getElementById("next").addEventListener("click", function () { show(current + 1); });
document.getElementById("prev").addEventListener("click", function () { show(current - 1); });
document.addEventListener("keydown", function (event) {
  if (event.key === "ArrowRight") { show(current + 1); event.preventDefault(); }
  else if (event.key === "ArrowLeft") { show(current - 1); event.preventDefault(); }
  else if (event.key === "Home") { show(0); event.preventDefault(); }
  else if (event.key === "End") { show(steps.length - 1); event.preventDefault(); }
});
show(0);
</script>
</body>
</html>
"""
