"""What a picture of a recorded graph contains: the nodes, the edges and the notes, and their DOT and text forms.

Every renderer (Graphviz through ``to_dot``, the built-in SVG layout, the step-through page) draws the same
``Picture``, so the three always agree on names, colours and what was left out.

A picture has three kinds of boxes:

* **tensor** nodes, coloured by role: *input* (a leaf that needs no gradient: data, targets, constants),
  *parameter* (a leaf with ``requires_grad=True``), *intermediate* (computed by an op) and *loss* (a root you
  asked to draw);
* **op** nodes, small ellipses named as the op is written in ``ops.py`` (``matmul``, ``sigmoid``, ``add``);
* helper nodes: a *module* box when modules are collapsed, and a ``…`` node where parents were left out.

Edges run parent tensor → op → output tensor, one edge per argument, so ``a + a`` has two edges into ``add``.

>>> from tinygrad_edu import Tensor
>>> a = Tensor([1.0, 2.0], requires_grad=True, name="a")
>>> print(to_text((a + a).sum()))
loss: sum -> () float64, data 6
└── t1: add -> (2,) float64, data [2, 4]
    ├── a: parameter (2,) float64, data [1, 2]
    └── a (shown above)
grad: not computed yet — call loss.backward() first
"""

from __future__ import annotations

import html
import sys
import warnings
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import numpy as np

from tinygrad_edu.autograd import toposort
from tinygrad_edu.display import channel_images
from tinygrad_edu.inplace import stale_inputs
from tinygrad_edu.parameters import named_items
from tinygrad_edu.tensor import Tensor

__all__ = ["to_dot", "to_text", "GRAD_PENDING_NOTE", "ROLE_COLOURS", "FONT_FAMILY", "changed_tensors"]

GRAD_PENDING_NOTE = "grad: not computed yet — call loss.backward() first"
"""The note a picture carries when it is drawn before ``backward()``: no gradient is shown as zero."""

ROLE_COLOURS: dict[str, str] = {
    "input": "#dbe9f6",         # light blue: data that only flows forward
    "parameter": "#d5f0cf",     # light green: what training changes
    "intermediate": "#ffffff",  # white: computed values
    "loss": "#fddbb8",          # light orange: the roots being differentiated
    "op": "#eeeeee",
    "module": "#fff3cf",
    "more": "#ffffff",
}
"""Fill colour of each role (tensor roles first, then the helper nodes)."""

FONT_FAMILY = "DejaVu Sans Mono,Menlo,Consolas,Courier New,monospace"
"""The font of every picture: monospace, so Graphviz, the built-in layout and the browser agree on widths.

NOTE: a proportional font is measured by Graphviz with one font and drawn by the browser with whichever one
it has for that name (Helvetica becomes a wider sans-serif on Linux), so long labels ran out of their boxes.
Every monospace font advances about 0.6 em per character, so the width Graphviz (or ``layout.py``) reserves
is the width the browser draws, whichever of these fonts it finds.
"""

HIGHLIGHT_COLOUR = "#d62728"
CHANGED_COLOUR = "#7b3294"  # the dashed purple border of a tensor changed after the forward pass
CHANGED_LINE = "changed after the forward pass"
CHANGED_NOTE = ("dashed purple: changed after the forward pass (optimizer.step()?); draw before the step, or run "
                "the forward pass again")
CLUSTER_COLOUR = "#9a7b1c"  # the dashed frame around a module's boxes
_TENSOR_ROLES = ("input", "parameter", "intermediate", "loss")
_SMALL = 6  # tensors with at most this many elements show every value, like micrograd's data|grad records
THUMBNAILS = 8     # a box shows at most this many channels of an image, feature map or filter
THUMB_CELLS = 8    # each at most this many cells a side (larger maps are averaged in blocks)
THUMB_POINTS = 3.0  # the size of one cell of an 8-cell thumbnail (smaller maps get larger cells)


@dataclass
class Node:
    """One box of the picture; ``id`` is also its name in DOT and the ``<title>`` of its SVG group."""

    id: str
    kind: str  # "tensor", "op", "module" or "more"
    role: str  # a key of ROLE_COLOURS
    title: str
    lines: list[str] = field(default_factory=list)
    highlight: bool = False
    changed: bool = False  # its values changed after the forward pass used them (e.g. optimizer.step())
    maps: list[list[list[str]]] = field(default_factory=list)  # images, maps, filters: per channel, cell colours


@dataclass
class Edge:
    tail: str
    head: str
    highlight: bool = False


@dataclass
class Cluster:
    """A labelled frame around the boxes of one module (``layers.0: Linear(784 -> 30)``)."""

    id: str
    title: str      # the module's dotted name, ``layers.0``
    label: str      # what the frame says: the name and, for a model, what the module is
    members: list[str]


@dataclass
class Picture:
    """Everything a renderer needs, already decided: which nodes, which edges, which notes."""

    nodes: list[Node]
    edges: list[Edge]
    notes: list[str]
    rankdir: str
    tensor_ids: dict[int, str]  # id(tensor) -> node id, for every tensor in the graph (drawn or not)
    clusters: list[Cluster] = field(default_factory=list)


# -- reading the arguments ------------------------------------------------------------------------------------

def flatten_roots(roots: tuple[Any, ...], caller: str) -> list[tuple[str | None, Tensor]]:
    """``(label, tensor)`` for every root: Tensors, lists/tuples of them, dicts {label: Tensor}; each once."""
    found: list[tuple[str | None, Tensor]] = []
    seen: set[int] = set()
    pending: list[tuple[str | None, Any]] = [(None, r) for r in reversed(roots)]
    while pending:
        label, item = pending.pop()
        if isinstance(item, Tensor):
            if id(item) not in seen:
                seen.add(id(item))
                found.append((label, item))
        elif isinstance(item, Mapping):
            pending.extend((str(k), v) for k, v in reversed(list(item.items())))
        elif isinstance(item, (list, tuple)):
            pending.extend((None, v) for v in reversed(item))
        else:
            raise TypeError(
                f"{caller}: cannot draw a {type(item).__name__}; pass Tensors (the loss, or several outputs "
                f"as a list, a tuple or a dict {{label: Tensor}}).")
    if not found:
        raise ValueError(f"{caller}: nothing to draw; pass the tensor whose graph you want, e.g. {caller}(loss).")
    return found


def named_tensors(params: Any, caller: str) -> list[tuple[str, Tensor]]:
    """``(name, tensor)`` pairs from a model (``named_parameters()``), a dict, pairs or tensors (as
    ``parameters.named_items`` reads them)."""
    pairs = named_items(params, caller)
    for _, item in pairs:
        if not isinstance(item, Tensor):
            raise TypeError(
                f"{caller}: params must give (name, Tensor) pairs, got {item!r:.80}. Pass model (with "
                f"named_parameters()) or a dict such as {{'w1': w1, 'b1': b1}}.")
    return pairs


def describe_module(module: Any) -> str:
    """What a module is, in a few words: ``Linear(784 -> 30)``, ``Sigmoid``.

    >>> from tinygrad_edu import nn
    >>> describe_module(nn.Linear(784, 30, rng=0)), describe_module(nn.Sigmoid())
    ('Linear(784 -> 30)', 'Sigmoid')
    """
    kind = type(module).__name__
    sizes = getattr(module, "in_features", None), getattr(module, "out_features", None)
    if all(isinstance(n, (int, np.integer)) for n in sizes):
        return f"{kind}({sizes[0]} -> {sizes[1]})"
    return kind


def module_labels(params: Any) -> dict[str, str]:
    """``{dotted module name: "name: what it is"}`` for a model (``named_modules()``); {} for dicts and lists."""
    if not hasattr(params, "named_modules"):
        return {}
    return {name: f"{name}: {describe_module(module)}" for name, module in params.named_modules() if name}


def changed_tensors(order: list[Tensor]) -> list[Tensor]:
    """The tensors whose values changed after a node that reads them was computed, in drawing order.

    After ``optimizer.step()`` these are the weights: the graph still holds the activations and gradients
    that the old weights gave. ``tinygrad_edu.inplace.stale_inputs`` is the engine's own answer, per node.
    """
    found: dict[int, Tensor] = {}
    for t in order:
        if t.parents:
            for s in stale_inputs(t, every=True):
                found.setdefault(id(s), s)
    position = {id(t): i for i, t in enumerate(order)}
    return sorted(found.values(), key=lambda t: position.get(id(t), -1))


def _learner_stacklevel() -> int:
    """The ``stacklevel`` of a warning that points at the learner's line: the first frame outside this package."""
    level = 1
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(("tinygrad_edu.visualize",
                                                                                "visualize.")):
        frame = frame.f_back
        level += 1
    return level


def walk(roots: list[Tensor]) -> list[Tensor]:
    """Every tensor the roots were computed from, parents before children, following *all* parents.

    ``backward`` never visits parents that need no gradient (inputs, constants), but a drawing must show them.
    The engine's own walk: iterative and deterministic, so the same graph gives the same order.
    """
    return toposort(roots, all_parents=True)


# -- small summaries of arrays --------------------------------------------------------------------------------

def _number(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, complex):
        return f"{x:.3g}"
    return f"{float(x):.4g}"


def _nested(values: Any) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested(v) for v in values) + "]"
    return _number(values)


def summary(array: Any) -> str:
    """Every value of a tiny array (at most 6 elements); min/mean/max of a larger one."""
    a = np.asarray(array)
    if a.size == 0:
        return "empty"
    if a.size <= _SMALL:
        return _nested(a.tolist())
    if a.dtype.kind == "b":
        return f"{int(a.sum())} of {a.size} True"
    if a.dtype.kind not in "iuf":
        return f"{a.size} values"
    finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
    if finite.size == 0:
        return f"{a.size} values, none finite"
    text = f"min {_number(finite.min())} mean {_number(finite.mean())} max {_number(finite.max())}"
    bad = a.size - finite.size
    return text + (f" ({bad} NaN/Inf)" if bad else "")


def thumbnails(array: Any) -> list[list[list[str]]]:
    """A 3-D or 4-D array (images, feature maps, filters) as tiny heat-maps for a box: one per channel (at most
    ``THUMBNAILS``, chosen by ``display.channel_images``), each at most ``THUMB_CELLS`` cells a side (a larger
    map averaged in blocks), as hex colours on one scale: red positive, blue negative, white 0, grey NaN."""
    a = np.asarray(array)
    if a.ndim not in (3, 4) or a.dtype.kind not in "iuf" or a.size == 0 or min(a.shape[-2:]) < 2:
        return []
    images, _ = channel_images(a, THUMBNAILS)
    small = []
    for _, image in images:
        h, w = image.shape
        step = (-(-h // THUMB_CELLS), -(-w // THUMB_CELLS))
        values = image.astype(np.float64)
        padded = np.full((-(-h // step[0]) * step[0], -(-w // step[1]) * step[1]), np.nan)
        padded[:h, :w] = np.where(np.isfinite(values), values, np.nan)
        blocks = padded.reshape(padded.shape[0] // step[0], step[0], padded.shape[1] // step[1], step[1])
        with warnings.catch_warnings():  # a block of only NaN (or padding) has no mean: it stays NaN, drawn grey
            warnings.simplefilter("ignore", RuntimeWarning)
            small.append(np.nanmean(blocks, axis=(1, 3)))
    finite = [m[np.isfinite(m)] for m in small]
    scale = max((float(np.abs(f).max()) for f in finite if f.size), default=0.0)
    return [[[_hex(v, scale) for v in row] for row in m] for m in small]


def _hex(value: float, scale: float) -> str:
    if not np.isfinite(value):
        return "#bbbbbb"
    fade = round(255 - 165 * min(abs(value) / scale, 1.0)) if scale > 0 else 255
    return f"#ff{fade:02x}{fade:02x}" if value > 0 else f"#{fade:02x}{fade:02x}ff"


def shape_text(t: Tensor) -> str:
    return f"{t.shape} {t.dtype}"


def op_arguments(kwargs: Mapping[str, Any] | None) -> str:
    """The op's settings worth reading (``axis=1``, ``exponent=2``): numbers and tuples, nothing empty."""
    if not kwargs:
        return ""
    parts = []
    for key, value in kwargs.items():
        if value is None or value is False:
            continue
        if isinstance(value, (bool, int, float, np.integer, np.floating)):
            parts.append(f"{key}={_number(value)}")
        elif isinstance(value, tuple) and all(isinstance(v, (int, np.integer)) for v in value):
            parts.append(f"{key}={tuple(int(v) for v in value)}")
    return ", ".join(parts)


def grad_pending(order: list[Tensor]) -> bool:
    """True when the graph was drawn before ``backward()``: no tensor that needs a gradient has one.

    Intermediates are asked first: parameters may still hold an old step's gradient (they accumulate), but a
    freshly built graph's intermediates have none until ``backward()`` runs on it.
    """
    needing = [t for t in order if t.requires_grad]
    computed = [t for t in needing if t.parents] or needing
    return bool(computed) and all(t.grad is None for t in computed)


# -- building the picture -------------------------------------------------------------------------------------

def _depths(order: list[Tensor], index: dict[int, int], root_ids: list[int]) -> list[int]:
    """Fewest op steps from any root down to each tensor (roots are at depth 0)."""
    depth = [-1] * len(order)
    queue: deque[int] = deque()
    for i in root_ids:
        depth[i] = 0
        queue.append(i)
    while queue:
        i = queue.popleft()
        for p in order[i].parents:
            j = index[id(p)]
            if depth[j] < 0:
                depth[j] = depth[i] + 1
                queue.append(j)
    return depth


def build_picture(roots: tuple[Any, ...], *, params: Any = None, show_values: bool = True,
                  show_grad: bool = True, rankdir: str = "TB", collapse_modules: bool = False,
                  max_depth: int | None = None, highlight: Any = None, max_nodes: int | None = 500,
                  caller: str = "to_dot") -> Picture:
    """Decide what to draw; ``max_nodes`` first collapses modules, then cuts depth, and says so in a note."""
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"{caller}: rankdir must be 'TB' (top to bottom) or 'LR' (left to right), got {rankdir!r}.")
    if max_depth is not None and (not isinstance(max_depth, int) or max_depth < 0):
        raise ValueError(f"{caller}: max_depth must be a whole number >= 0 (0 draws only the roots), "
                         f"got {max_depth!r}.")
    if max_nodes is not None and (not isinstance(max_nodes, int) or max_nodes < 1):
        raise ValueError(f"{caller}: max_nodes must be a positive whole number or None, got {max_nodes!r}.")
    graph = _Graph(flatten_roots(roots, caller), named_tensors(params, caller), caller)
    graph.module_labels = module_labels(params)
    if graph.changed:
        names = ", ".join(graph.names[i] for i in sorted(graph.changed))
        warnings.warn(f"{names} changed after the forward pass that computed this graph (an "
                      f"optimizer.step()?), so the picture shows new values beside activations and gradients "
                      f"computed from the old ones; they are marked with a dashed purple border. Draw before "
                      f"optimizer.step(), or run the forward pass again and draw the new loss.",
                      UserWarning, stacklevel=_learner_stacklevel())
    target = graph.find(highlight) if highlight is not None else None
    options: dict[str, Any] = dict(show_values=show_values, show_grad=show_grad, rankdir=rankdir, target=target)
    picture = graph.picture(collapse=collapse_modules, max_depth=max_depth, **options)
    if max_nodes is None or len(picture.nodes) <= max_nodes:
        return picture
    total = len(picture.nodes)
    collapse = collapse_modules or graph.has_modules()
    if collapse and not collapse_modules:
        picture = graph.picture(collapse=True, max_depth=max_depth, **options)
        if len(picture.nodes) <= max_nodes:
            picture.notes.append(f"{total} nodes is more than max_nodes={max_nodes}: each module is drawn as one box")
            return picture
    # Still too many: keep the part nearest the roots (the largest depth that fits; found by bisection).
    low, high = 0, max(graph.depth) if max_depth is None else max_depth
    best = graph.picture(collapse=collapse, max_depth=0, **options)
    while low < high:
        middle = (low + high + 1) // 2
        attempt = graph.picture(collapse=collapse, max_depth=middle, **options)
        if len(attempt.nodes) <= max_nodes:
            low, best = middle, attempt
        else:
            high = middle - 1
    how = "modules collapsed and " if collapse else ""
    best.notes.append(f"{total} nodes is more than max_nodes={max_nodes}: {how}only {low} op(s) deep from the "
                      f"loss are drawn (raise max_nodes, or draw a smaller part with max_depth)")
    return best


class _Graph:
    """The recorded graph read once: order, names, roles, depths; ``picture()`` turns it into boxes."""

    def __init__(self, roots: list[tuple[str | None, Tensor]], params: list[tuple[str, Tensor]],
                 caller: str) -> None:
        self.caller = caller
        self.order = walk([t for _, t in roots])
        self.index = {id(t): i for i, t in enumerate(self.order)}
        self.roots = [self.index[id(t)] for _, t in roots]
        self.root_set = set(self.roots)
        param_names: dict[int, str] = {}
        for name, t in params:
            param_names.setdefault(id(t), name)
        self.param_name = {self.index[k]: v for k, v in param_names.items() if k in self.index}
        labels = {self.index[id(t)]: label for label, t in roots if label is not None}
        self.names = [labels.get(i) or self.param_name.get(i) or t.name or f"t{i}"
                      for i, t in enumerate(self.order)]
        if len(self.roots) == 1 and self.names[self.roots[0]] == f"t{self.roots[0]}":
            self.names[self.roots[0]] = "loss"  # one unnamed root: the loss, as the step-through page calls it
        self.consumers: list[list[int]] = [[] for _ in self.order]
        for c, t in enumerate(self.order):
            for p in t.parents:
                self.consumers[self.index[id(p)]].append(c)
        self.depth = _depths(self.order, self.index, self.roots)
        self.pending = grad_pending(self.order)
        self.module_labels: dict[str, str] = {}
        self.changed = {self.index[id(t)] for t in changed_tensors(self.order) if id(t) in self.index}
        self._line_cache: dict[tuple[int, bool, bool], list[str]] = {}

    def role(self, i: int) -> str:
        t = self.order[i]
        if i in self.root_set:
            return "loss"
        if t.parents:
            return "intermediate"
        return "parameter" if t.requires_grad else "input"

    def has_modules(self) -> bool:
        return any("." in name for name in self.param_name.values())

    def find(self, wanted: Any) -> int:
        if isinstance(wanted, Tensor):
            if id(wanted) in self.index:
                return self.index[id(wanted)]
            raise ValueError(
                f"{self.caller}: highlight={wanted.name or 'that tensor'!r} is not in this graph: the roots were "
                f"not computed from it (or it was used under no_grad()). Pass a parameter of this loss.")
        if isinstance(wanted, str):
            for i, name in enumerate(self.names):
                if name == wanted:
                    return i
            known = ", ".join(sorted(set(self.names))[:12])
            raise ValueError(f"{self.caller}: highlight={wanted!r} names no tensor in this graph; names here: {known}.")
        raise TypeError(f"{self.caller}: highlight must be a Tensor or a name, not a {type(wanted).__name__}.")

    def _modules(self) -> tuple[dict[int, str], dict[int, str]]:
        """Which tensors and ops each module absorbs (keys: tensor index; an op is keyed by its output).

        A module is a dotted-name prefix of the parameters (``layers.0`` for ``layers.0.weight``). It takes
        its parameters, every op that consumes one of them (the first such parameter decides), and every
        intermediate tensor made by one of its ops and used only by its ops (``x @ W`` inside ``x @ W + b``).
        """
        prefix = {i: name.rsplit(".", 1)[0] for i, name in self.param_name.items() if "." in name}
        op_module: dict[int, str] = {}
        for c, t in enumerate(self.order):
            for p in t.parents:
                m = prefix.get(self.index[id(p)])
                if m is not None:
                    op_module[c] = m
                    break
        tensor_module = dict(prefix)
        for i in range(len(self.order)):
            m = op_module.get(i)
            if (m is not None and i not in self.root_set and self.consumers[i]
                    and all(op_module.get(c) == m for c in self.consumers[i])):
                tensor_module[i] = m
        return tensor_module, op_module

    def _on_path(self, target: int) -> set[int]:
        """The target and every tensor computed from it: the path(s) its gradient takes from the loss."""
        found = {target}
        queue = deque([target])
        while queue:
            for c in self.consumers[queue.popleft()]:
                if c not in found:
                    found.add(c)
                    queue.append(c)
        return found

    def picture(self, *, show_values: bool, show_grad: bool, rankdir: str, collapse: bool,
                max_depth: int | None, target: int | None) -> Picture:
        order, index = self.order, self.index
        visible = [max_depth is None or d <= max_depth for d in self.depth]
        tensor_module, op_module = self._modules() if collapse else ({}, {})
        clusters = [] if collapse else self._clusters(visible)
        path = self._on_path(target) if target is not None else set()
        show_grads = show_values and show_grad and not self.pending

        nodes: list[Node] = []
        by_id: dict[str, Node] = {}
        edges: list[Edge] = []
        seen_edges: set[tuple[str, str]] = set()
        modules: dict[str, Node] = {}
        module_ops: dict[str, list[str]] = {}

        def add_node(node: Node) -> Node:
            nodes.append(node)
            by_id[node.id] = node
            return node

        def module_node(name: str) -> Node:
            if name not in modules:
                modules[name] = add_node(Node(f"m{len(modules)}", "module", "module", name))
                module_ops[name] = []
            return modules[name]

        def add_edge(tail: str, head: str, lit: bool) -> None:
            if tail == head:
                return  # both ends inside one module box
            if by_id[tail].kind in ("module", "more") or by_id[head].kind == "module":
                if (tail, head) in seen_edges:
                    return  # a box stands for many tensors: one edge is enough
                seen_edges.add((tail, head))
            edges.append(Edge(tail, head, lit))  # tensor -> op edges keep their multiplicity: a + a has two

        for i, t in enumerate(order):
            if not visible[i]:
                continue
            if i in tensor_module:  # drawn inside its module's box
                box = module_node(tensor_module[i])
                box.highlight = box.highlight or i in path
                if i in self.param_name:
                    box.lines.append(f"{self.param_name[i][len(box.title) + 1:]} {t.shape}")
            head = ""
            if t.parents:
                assert t.op is not None  # a recorded node knows its op
                lit = i in path and i != target
                if i in op_module:
                    box = module_node(op_module[i])
                    box.highlight = box.highlight or lit
                    module_ops[box.title].append(t.op.name)
                    head = box.id
                else:
                    head = f"op{i}"
                    extra = op_arguments(t.op_args)
                    add_node(Node(head, "op", "op", t.op.name, [extra] if extra else [], lit))
                missing = False
                for p in t.parents:
                    j = index[id(p)]
                    if not visible[j]:
                        missing = True
                        continue
                    tail = modules[tensor_module[j]].id if j in tensor_module else f"t{j}"
                    add_edge(tail, head, j in path and i in path)
                if missing:
                    more = f"more_{head}"
                    if more not in by_id:
                        add_node(Node(more, "more", "more", "…", ["parents not drawn"]))
                    add_edge(more, head, False)
            if i in tensor_module:
                continue
            lines = self._lines(i, show_values, show_grads) + ([CHANGED_LINE] if i in self.changed else [])
            maps = thumbnails(self.order[i].data) if show_values else []
            add_node(Node(f"t{i}", "tensor", self.role(i), self.names[i], lines, i in path, i in self.changed, maps))
            if head:
                add_edge(head, f"t{i}", i in path and i != target)

        for name, box in modules.items():
            if module_ops[name]:
                box.lines.append(f"ops: {', '.join(dict.fromkeys(module_ops[name]))}")

        notes = []
        if self.pending and show_values and show_grad:
            notes.append(GRAD_PENDING_NOTE)
        if max_depth is not None and not all(visible):
            notes.append(f"max_depth={max_depth}: tensors more than {max_depth} op(s) from the loss are shown as …")
        if target is not None:
            notes.append(f"highlighted: the path from the loss to {self.names[target]}")
        if any(node.changed for node in nodes):
            notes.append(CHANGED_NOTE)
        if modules:
            notes.append("each dashed box is one module: its parameters and the ops that use them")
        if clusters and any(visible):
            notes.append("each dashed frame is one module (layer): its parameters and the ops that use them")
        tensor_ids = {id(t): f"t{i}" for i, t in enumerate(order)}
        drawn = set(by_id)
        for cluster in clusters:
            cluster.members = [m for m in cluster.members if m in drawn]
        clusters = [c for c in clusters if c.members]
        return Picture(nodes, edges, notes, rankdir, tensor_ids, clusters)

    def _clusters(self, visible: list[bool]) -> list[Cluster]:
        """One frame per module around its parameters, the ops using them, and what those ops make inside."""
        if not self.has_modules():
            return []
        tensor_module, op_module = self._modules()
        members: dict[str, list[str]] = {}
        for i in range(len(self.order)):
            if not visible[i]:
                continue
            if i in tensor_module:
                members.setdefault(tensor_module[i], []).append(f"t{i}")
            if i in op_module:
                members.setdefault(op_module[i], []).append(f"op{i}")
        return [Cluster(f"cluster_{k}", name, self.module_labels.get(name, name), ids)
                for k, (name, ids) in enumerate(members.items())]

    def _lines(self, i: int, show_values: bool, show_grads: bool) -> list[str]:
        key = (i, show_values, show_grads)
        if key not in self._line_cache:  # max_nodes may build several pictures of one graph
            self._line_cache[key] = self._describe(self.order[i], show_values, show_grads)
        return list(self._line_cache[key])

    @staticmethod
    def _describe(t: Tensor, show_values: bool, show_grads: bool) -> list[str]:
        lines = [shape_text(t)]
        if show_values:
            lines.append(f"data {summary(t.data)}")
            if show_grads and t.requires_grad:
                lines.append("grad None" if t.grad is None else f"grad {summary(t.grad)}")
        if not t.parents and t.op is not None:
            lines.append(f"made by {t.op.name} (not recorded)")
        return lines


# -- DOT ------------------------------------------------------------------------------------------------------

def _html(text: str) -> str:
    return html.escape(text, quote=True)


def _dot_node(node: Node) -> str:
    border = f', color="{HIGHLIGHT_COLOUR}", penwidth=3' if node.highlight else ', color="#444444"'
    if node.changed and not node.highlight:
        border = f', color="{CHANGED_COLOUR}", penwidth=2.5'
    fill = ROLE_COLOURS[node.role]
    if node.kind == "op":
        extra = "".join(f'<BR/><FONT POINT-SIZE="8">{_html(line)}</FONT>' for line in node.lines)
        return (f'{node.id} [shape=ellipse, style=filled, fillcolor="{fill}", fontsize=9, margin="0.04,0.02", '
                f'height=0.3{border}, label=<<B>{_html(node.title)}</B>{extra}>];')
    if node.kind == "more":
        return f'{node.id} [shape=box, style="dotted", color="#777777", fontsize=12, label="…"];'
    style = '"dashed,rounded,filled"' if node.kind == "module" or node.changed else '"rounded,filled"'
    # NOTE: one table row per line: Graphviz sizes table cells from the real font, so the bold title is not
    # clipped by the rounded border as it can be with <BR/>-separated lines.
    rows = "".join(f"<TR><TD>{_html(line)}</TD></TR>" for line in node.lines) + _dot_maps(node.maps)
    return (f'{node.id} [shape=box, style={style}, fillcolor="{fill}", margin="0.06,0.04"{border}, '
            f'label=<<TABLE BORDER="0" CELLSPACING="1" CELLPADDING="0"><TR><TD><B>{_html(node.title)}</B></TD></TR>'
            f'{rows}</TABLE>>];')


def _dot_maps(maps: list[list[list[str]]]) -> str:
    """The thumbnails as one table row: a table of coloured cells per channel (Graphviz draws no images inline).

    NOTE: every table is FIXEDSIZE: Graphviz otherwise stretches a nested table to the width of its cell (the
    widest text line), spreading the cells apart."""
    if not maps:
        return ""
    cell = round(THUMB_POINTS * THUMB_CELLS / max(max(len(m), len(m[0])) for m in maps))
    tables = []
    for m in maps:
        rows = "".join("<TR>" + "".join(f'<TD BGCOLOR="{c}" WIDTH="{cell}" HEIGHT="{cell}" FIXEDSIZE="TRUE"></TD>'
                                         for c in row) + "</TR>" for row in m)
        tables.append(f'<TD><TABLE BORDER="0" CELLSPACING="0" CELLPADDING="0" FIXEDSIZE="TRUE" '
                      f'WIDTH="{len(m[0]) * cell}" HEIGHT="{len(m) * cell}">{rows}</TABLE></TD>')
    width = sum(len(m[0]) * cell for m in maps) + 4 * (len(maps) + 1)
    height = max(len(m) for m in maps) * cell + 8
    return (f'<TR><TD><TABLE BORDER="0" CELLSPACING="4" CELLPADDING="0" FIXEDSIZE="TRUE" WIDTH="{width}" '
            f'HEIGHT="{height}"><TR>{"".join(tables)}</TR></TABLE></TD></TR>')


def _legend(notes: list[str]) -> str:
    cells = "".join(f'<TD BGCOLOR="{ROLE_COLOURS[r]}" BORDER="1">{r}</TD>' for r in _TENSOR_ROLES)
    rows = f"<TR>{cells}</TR>"
    rows += "".join(f'<TR><TD COLSPAN="{len(_TENSOR_ROLES)}">{_html(n)}</TD></TR>' for n in notes)
    return f'<TABLE BORDER="0" CELLSPACING="3" CELLPADDING="2">{rows}</TABLE>'


def _cluster_label(cluster: Cluster) -> str:
    rest = cluster.label[len(cluster.title):] if cluster.label.startswith(cluster.title) else ""
    return f"<B>{_html(cluster.title)}</B>{_html(rest)}" if rest else f"<B>{_html(cluster.label)}</B>"


def picture_to_dot(picture: Picture) -> str:
    lines = [
        "digraph tinygrad_edu {",
        f'  graph [rankdir={picture.rankdir}, fontname="{FONT_FAMILY}", fontsize=10, nodesep=0.25, ranksep=0.3, '
        f"labelloc=b, label=<{_legend(picture.notes)}>];",
        f'  node [fontname="{FONT_FAMILY}", fontsize=10];',
        '  edge [color="#555555", arrowsize=0.6];',
    ]
    lines += [f"  {_dot_node(n)}" for n in picture.nodes]
    for c in picture.clusters:  # a node named again inside a cluster is drawn inside its frame
        lines.append(f"  subgraph {c.id} {{")
        lines.append(f'    label=<{_cluster_label(c)}>; labeljust=l; labelloc=t; style="dashed,rounded"; '
                     f'color="{CLUSTER_COLOUR}"; fontsize=10;')
        lines.append(f"    {'; '.join(c.members)};")
        lines.append("  }")
    for e in picture.edges:
        lit = f' [color="{HIGHLIGHT_COLOUR}", penwidth=2.5]' if e.highlight else ""
        lines.append(f"  {e.tail} -> {e.head}{lit};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_dot(*roots: Any, params: Any = None, show_values: bool = True, rankdir: str = "TB",
           collapse_modules: bool = False, max_depth: int | None = None, highlight: Any = None,
           max_nodes: int | None = 500) -> str:
    """The computation graph behind ``roots`` as Graphviz DOT text (the same text on every run).

    ``roots``: the tensors to draw from: Tensors, lists or tuples of them, or a dict ``{label: Tensor}`` whose
    keys name the roots. ``params``: names for the parameters, a model (``named_parameters()`` gives dotted
    names such as ``layers.0.weight``) or a dict ``{name: Tensor}``; other tensors show their ``.name`` or
    ``t<i>``, their position in the drawing order (a single unnamed root is ``loss``, as on the step-through
    page).

    Each tensor box shows its name, shape and dtype, and with ``show_values`` its data and gradient: every
    value for tensors of at most 6 elements, else min/mean/max. Before ``backward()`` no gradient is shown;
    the picture says ``grad: not computed yet`` instead. Ops are the small ellipses between tensors.

    * ``rankdir``: ``"TB"`` (top to bottom) or ``"LR"`` (left to right).
    * ``collapse_modules``: draw each module as one dashed box. A module is the dotted prefix of a parameter
      name (``layers.0``); its box takes its parameters, the ops that consume them, and the tensors made and
      used only inside (``x @ W`` in ``x @ W + b``). Ops that use no parameter (the activations) stay outside.
    * ``max_depth``: draw only tensors at most this many ops above a root; cut parents become a ``…`` box.
    * ``highlight``: a parameter (Tensor or name): the path(s) from the loss to it are drawn in red.
    * ``max_nodes``: above this many boxes, collapse by module, then cut the depth, and add a note saying so.

    >>> from tinygrad_edu import Tensor
    >>> w = Tensor([2.0], requires_grad=True, name="w")
    >>> dot = to_dot((w * 3).sum())
    >>> dot.count(" -> "), "mul" in dot, "grad: not computed yet" in dot
    (5, True, True)
    """
    return picture_to_dot(build_picture(
        roots, params=params, show_values=show_values, rankdir=rankdir, collapse_modules=collapse_modules,
        max_depth=max_depth, highlight=highlight, max_nodes=max_nodes, caller="to_dot"))


# -- text -----------------------------------------------------------------------------------------------------

def to_text(*roots: Any, params: Any = None, show_values: bool = True) -> str:
    """The graph as an indented tree for a terminal: each tensor under the tensor computed from it.

    A tensor used twice (shared subgraphs, ``a + a``) is written out once; later uses say ``(shown above)``.
    Roots may be given as for ``to_dot``.
    """
    graph = _Graph(flatten_roots(roots, "to_text"), named_tensors(params, "to_text"), "to_text")
    show_grads = show_values and not graph.pending
    out: list[str] = []
    written: set[int] = set()
    # NOTE: an explicit stack rather than recursion, so a 10,000-op chain prints without a RecursionError.
    stack: list[tuple[int, str, str]] = [(i, "", "") for i in reversed(graph.roots)]
    while stack:
        i, lead, rest = stack.pop()
        t = graph.order[i]
        if i in written:
            out.append(f"{lead}{graph.names[i]} (shown above)")
            continue
        written.add(i)
        op = t.op if t.parents else None
        what = op.name if op is not None else graph.role(i)
        arguments = op_arguments(t.op_args) if t.parents else ""
        line = f"{lead}{graph.names[i]}: {what}{f'({arguments})' if arguments else ''}"
        line += f" -> {shape_text(t)}" if t.parents else f" {shape_text(t)}"
        if show_values:
            line += f", data {summary(t.data)}"
            if show_grads and t.requires_grad:
                line += ", grad None" if t.grad is None else f", grad {summary(t.grad)}"
        if i in graph.changed:
            line += f" ({CHANGED_LINE})"
        out.append(line)
        parents = [graph.index[id(p)] for p in t.parents]
        for k in reversed(range(len(parents))):
            last = k == len(parents) - 1
            stack.append((parents[k], rest + ("└── " if last else "├── "), rest + ("    " if last else "│   ")))
    if graph.pending and show_values:
        out.append(GRAD_PENDING_NOTE)
    return "\n".join(out)
