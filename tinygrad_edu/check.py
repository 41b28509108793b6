"""Check gradients you derived by hand against the engine's, and say what a wrong one most likely got wrong.

You wrote a forward pass and its backprop in numpy, in your own layout (the course's ``W1`` of shape
``(n_h, n_x)``, Nielsen's lists, anything). Give ``check_backprop`` three things:

- ``params``: your parameters as you keep them: a dict of name -> array, or a list of arrays, or a list of lists
  of arrays (Nielsen's ``[biases, weights]``; they are matched by position and named ``b0, b1, ..., w0, ...``);
- ``manual(params)``: your backprop on your batch, returning the gradients in the same form (a dict keyed by
  the name or by ``"d" + name``, the course's ``grads["dW1"]``; Nielsen's ``(nabla_b, nabla_w)``), alone or
  with the cost (``(cost, grads)`` or ``(grads, cost)``). A dict's ``dA1``, ``dZ1``, ... are skipped, with a note;
- ``loss(t)``: the same forward pass and cost written with engine operators, where ``t`` has the form of
  ``params`` with a Tensor holding a copy of each array; it returns the scalar cost.

The engine differentiates ``loss`` and the report compares, parameter by parameter. A parameter that disagrees
gets a diagnosis, found by the small checks in ``DIAGNOSES`` (first that names it wins): a NaN, all zeros, a sum
over the wrong axis, a flipped sign, a constant factor (named when it is one of loss(t)'s constants: m,
keep_prob, 2), the transpose, another parameter's gradient, the data term and the L2 term told apart (which
one is wrong, and by what), a convolution's or a pool's backward slip (the kernel not rotated, the channel
axes not swapped, the windows off by a row or at another stride, the course's pooling mask), a relu/abs/max
kink, one of the usual slips in a batch norm's backward (the variance's path through the mean, 1/(N - 1), eps
forgotten, d_gamma and d_beta), or some rows or columns only. When whole layers disagree from some layer
down, the report says where the mistake enters.

>>> X = np.array([[1.0, 2.0, -1.0]])                      # one feature, three examples (columns)
>>> Y = np.array([[0.5, 1.5, -1.0]])
>>> params = {"w": np.array([[0.3]]), "b": np.array([[0.1]])}
>>> def manual(p):                                        # cost = 1/(2m) sum (wX + b - Y)^2
...     m = X.shape[1]
...     dZ = (p["w"] @ X + p["b"] - Y) / m
...     return {"dw": dZ @ X.T, "db": dZ.sum(axis=1, keepdims=True)}
>>> report = check_backprop(manual, lambda t: ((t["w"] @ X + t["b"] - Y) ** 2).sum() / 6, params)
>>> report.ok, report.worst < 1e-15
(True, True)
>>> wrong = check_backprop(lambda p: {k: 3 * g for k, g in manual(p).items()},
...                        lambda t: ((t["w"] @ X + t["b"] - Y) ** 2).sum() / 6, params)
>>> wrong.ok, wrong.rows[0].diagnosis.split(":")[0]
(False, 'off by a constant factor')
"""

from __future__ import annotations

import html
import itertools
import os
import re
import traceback
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from . import autograd
from .tensor import Tensor

__all__ = ["check_backprop", "BackpropReport", "GradientRow", "CodeError", "Evidence", "Finding", "DIAGNOSES",
           "TOLERANCES"]

Arrays = dict[str, np.ndarray]

TOLERANCES = {"float64": 1e-10, "float32": 1e-4, "float16": 1e-2}
"""The default tolerance of each float type: the least precise one among your parameters and gradients rules.
A correct float32 backprop differs from the engine's by rounding (about 1e-6 relative on small nets): 1e-4
leaves room for that and still catches any slip that changes a gradient by more than 0.01%."""


# -- the report ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GradientRow:
    """One parameter's comparison: your gradient against the engine's."""

    name: str
    shape: tuple[int, ...]            # the parameter's shape
    abs_error: float                  # max |yours - engine| (inf if yours has the wrong shape or is not finite)
    rel_error: float                  # the same, divided by max |engine|
    index: tuple[int, ...] | None     # the first element that disagrees (None if all agree or shapes differ)
    yours: float | None               # your gradient there
    engine: float | None              # the engine's gradient there
    ok: bool                          # every element within the tolerance, and the shape right
    diagnosis: str = ""               # what a hand derivation usually got wrong here ("" when it agrees)


@dataclass
class BackpropReport:
    """What ``check_backprop`` found: ``ok``, ``worst``, one ``GradientRow`` per parameter, and the costs."""

    tolerance: float
    rows: list[GradientRow] = field(default_factory=list)
    cost: float | None = None         # the cost your manual returned, if it returned one
    engine_cost: float = float("nan")  # loss(t)
    tolerance_reason: str = "given"   # where the tolerance came from (your dtype's default, or given)
    notes: list[str] = field(default_factory=list)  # what was skipped or assumed (intermediates such as dA1)
    manual_varies: bool = False       # a second manual(params) gave other numbers (random draws, state)

    @property
    def costs_differ(self) -> bool:
        """Your cost and loss(t)'s are not the same number: the two compute different functions."""
        if self.cost is None:
            return False
        gap = abs(self.cost - self.engine_cost)
        return not gap <= self.tolerance * max(abs(self.cost), abs(self.engine_cost))

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows) and not self.costs_differ

    @property
    def worst(self) -> float:
        """The largest relative error over all parameters."""
        return max((row.rel_error for row in self.rows), default=0.0)

    @property
    def first_disagreement(self) -> GradientRow | None:
        return next((row for row in self.rows if not row.ok), None)

    def row(self, name: str) -> GradientRow:
        """The row of parameter ``name``."""
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no parameter {name!r} in this report; it has {', '.join(r.name for r in self.rows)}.")

    def _cells(self) -> list[tuple[str, str, str, str, str]]:
        cells = []
        for r in self.rows:
            where = ("-" if r.ok else "see the diagnosis") if r.index is None else \
                f"{r.index}: yours {r.yours:.6g}, engine {r.engine:.6g}"
            cells.append((r.name, str(r.shape), f"{r.abs_error:.2e}", f"{r.rel_error:.2e}", where))
        return cells

    def _verdict(self) -> str:
        verdict = "agree" if self.ok else "DISAGREE"
        return (f"{verdict}: worst relative error {self.worst:.2e} (tolerance {self.tolerance:.0e}, "
                f"{self.tolerance_reason})")

    def _cost_line(self) -> str:
        if self.cost is None:
            return f"cost: engine {self.engine_cost:.12g}"
        return f"cost: yours {self.cost:.12g}, engine {self.engine_cost:.12g}"

    def _lead(self) -> list[str]:
        lines = []
        if self.manual_varies:
            lines.append("DISAGREE: manual(params) gave other numbers when called again with the same params: it "
                         "draws random numbers on each call (dropout masks?) or keeps something from one call to the "
                         "next, which loss(t) cannot follow. Draw the masks once, outside both functions, and use "
                         "the same arrays in manual and in loss.")
        if self.costs_differ:
            lines.append(f"DISAGREE: your cost {self.cost:.12g} is not loss(t)'s {self.engine_cost:.12g}: your "
                         f"forward pass and loss(t) compute different functions, so their gradients cannot be "
                         f"compared. Make the costs agree first (the same data, the same regularisation, the same "
                         f"mean, the same dropout masks).")
        return lines

    def __str__(self) -> str:
        head = ("parameter", "shape", "max abs", "max rel", "first disagreement")
        cells = self._cells()
        width = [max(len(head[i]), *(len(c[i]) for c in cells)) for i in range(4)]
        lines = [*self._lead(), self._cost_line(),
                 f"{head[0]:{width[0]}}  {head[1]:>{width[1]}}  {head[2]:>{width[2]}}  {head[3]:>{width[3]}}  "
                 f"{head[4]}"]
        for c in cells:
            lines.append(f"{c[0]:{width[0]}}  {c[1]:>{width[1]}}  {c[2]:>{width[2]}}  {c[3]:>{width[3]}}  {c[4]}")
        lines.append(self._verdict())
        together: dict[str, list[str]] = {}  # rows with the same diagnosis (a mistake that enters above) share a line
        for r in self.rows:
            if not r.ok:
                together.setdefault(r.diagnosis, []).append(r.name)
        lines += [f"  {', '.join(names)}: {diagnosis}" for diagnosis, names in together.items()]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The same table for Jupyter, the disagreeing rows in red with their diagnosis."""
        head = "".join(f"<th>{h}</th>" for h in ("parameter", "shape", "max abs", "max rel",
                                                  "first disagreement", "diagnosis"))
        body = []
        for r, c in zip(self.rows, self._cells()):
            style = "" if r.ok else ' style="background:#fde0dc"'
            tds = "".join(f"<td>{html.escape(text)}</td>" for text in (*c, r.diagnosis or "agrees"))
            body.append(f"<tr{style}>{tds}</tr>")
        colour = "#1b7f3b" if self.ok else "#b3261e"
        lead = "".join(f'<p style="color:#b3261e"><b>{html.escape(line)}</b></p>' for line in self._lead())
        notes = "".join(f"<p>note: {html.escape(note)}</p>" for note in self.notes)
        return (f"<div>{lead}<p>{html.escape(self._cost_line())}</p><table><tr>{head}</tr>{''.join(body)}</table>"
                f'<p style="color:{colour}"><b>{html.escape(self._verdict())}</b></p>{notes}</div>')


class CodeError(Exception):
    """Your ``manual`` or ``loss`` raised (or called ``sys.exit``): the message says which, what and where."""

    def __init__(self, function: str, error: BaseException) -> None:
        self.function, self.error = function, error
        super().__init__(_code_error_message(function, error))


# -- check_backprop -----------------------------------------------------------------------------------------

def check_backprop(manual: Callable[[Any], Any], loss: Callable[[Any], Tensor], params: Any,
                   tolerance: float | None = None) -> BackpropReport:
    """Compare ``manual(params)`` (your backprop) with the engine's gradients of ``loss``; see the module doc.

    ``params`` values are arrays; they may also be the Tensors themselves (``dict(model.named_parameters())``),
    and then ``loss`` gets those very tensors (their ``.grad`` is reset and then holds the engine's gradient).
    ``manual`` always gets copies, so a backprop that changes its inputs cannot change the check.
    A gradient agrees when max |yours - engine| <= ``tolerance`` * max |engine| (an all-zero engine gradient:
    when max |yours| <= ``tolerance``); ``tolerance=None`` takes your dtype's default from ``TOLERANCES``.
    An exception in ``manual`` or ``loss`` comes back as a ``CodeError`` that names the function.
    """
    if not callable(manual) or not callable(loss):
        raise TypeError("check_backprop(manual, loss, params): manual and loss must be functions: manual(params) "
                        "returns your gradients, loss(t) the cost as a Tensor.")
    if tolerance is not None and (isinstance(tolerance, bool) or not isinstance(tolerance, (int, float))
                                  or not tolerance >= 0):
        raise ValueError(f"check_backprop: tolerance is the largest relative error that agrees, a number >= 0 "
                         f"(None: {TOLERANCES['float64']:.0e} in float64, {TOLERANCES['float32']:.0e} in float32); "
                         f"got {tolerance!r}.")
    layout = _Layout(params)
    arrays = {name: _as_array(name, value) for name, value in zip(layout.names, layout.values)}
    result = _call("manual(params)", manual, layout.pack([a.copy() for a in arrays.values()]))
    cost, by_hand, notes = _manual_gradients(result, layout, arrays)
    tolerance, reason = _tolerance(tolerance, [*arrays.values(), *by_hand.values()])
    tensors = {name: _as_tensor(name, value, arrays[name]) for name, value in zip(layout.names, layout.values)}
    out = _call("loss(t)", loss, layout.pack(list(tensors.values())))
    if not isinstance(out, Tensor) or out.size != 1:
        got = f"a Tensor of shape {out.shape}" if isinstance(out, Tensor) else f"a {type(out).__name__}"
        raise TypeError(f"check_backprop: loss(t) must return the cost as a scalar Tensor, built from the "
                        f"tensors in t with engine operators; it returned {got}. Reduce it (.sum() or .mean()) "
                        f"and keep it a Tensor (no .item(), no numpy functions on t).")
    if not out.requires_grad:
        raise TypeError("check_backprop: loss(t)'s cost does not depend on any tensor in t (it was computed from "
                        "the arrays, or under no_grad()): build it from t's tensors with engine operators.")
    out.backward()
    engine = {name: np.zeros_like(arrays[name]) if t.grad is None else np.array(t.grad)
              for name, t in tensors.items()}
    report = BackpropReport(tolerance, cost=cost, engine_cost=float(out.item()), tolerance_reason=reason,
                            notes=notes)
    graph = _Graph(out, tensors, engine)   # read only when something disagrees
    report.rows = _compare_all(by_hand, arrays, engine, graph, tolerance)
    if not report.ok:
        report.manual_varies = _varies(manual, layout, arrays, cost, by_hand, tolerance)
    return report


def _varies(manual: Callable[[Any], Any], layout: _Layout, arrays: Arrays, cost: float | None, by_hand: Arrays,
            tolerance: float) -> bool:
    """A second ``manual(params)`` gives another cost or other gradients, beyond the tolerance: it draws random
    numbers on each call, or keeps something from one call to the next."""
    try:
        again_cost, again, _ = _manual_gradients(manual(layout.pack([a.copy() for a in arrays.values()])), layout,
                                                  arrays)
    except (Exception, SystemExit):  # it ran once; a second run that fails tells nothing about random draws
        return False
    # no cost returned (None) reads as NaN, the same NaN both times
    return _differ(cost, again_cost, tolerance) or any(_differ(g, again[name], tolerance)
                                                       for name, g in by_hand.items())


def _differ(a: Any, b: Any, tolerance: float) -> bool:
    """Some entry of a and b differs by more than ``tolerance`` times max |a| (the same NaN or Inf is no difference)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore"):  # inf - inf where both are the same Inf: masked out, not a difference
        gap = np.abs(np.where((a == b) | (np.isnan(a) & np.isnan(b)), 0.0, a - b))
    finite = np.abs(a[np.isfinite(a)])
    scale = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return not bool(np.all(gap <= tolerance * scale))


def _tolerance(given: float | None, arrays: Sequence[np.ndarray]) -> tuple[float, str]:
    if given is not None:
        return float(given), "given"
    least = max((a.dtype for a in arrays), key=lambda d: np.finfo(d).eps)   # every array is float by now
    tolerance = TOLERANCES.get(least.name, TOLERANCES["float64"])   # a longer float than float64: as float64
    if least == np.float64:
        return tolerance, "float64's default"
    return tolerance, (f"{least.name}'s default: in {least.name} a correct backprop differs from the engine's "
                       f"by rounding, so {tolerance:.0e} allows for that")


class _Layout:
    """The form of ``params`` (a dict, a list, or a list of lists), its names, and the same form rebuilt."""

    def __init__(self, params: Any) -> None:
        self.nested = False
        if isinstance(params, Mapping) and params:
            self.names, self.values = list(params), list(params.values())
        elif isinstance(params, (list, tuple)) and params and all(_is_array(v) for v in params):
            self.values = list(params)
            self.names = _names_by_kind(self.values)
        elif isinstance(params, (list, tuple)) and params and all(
                isinstance(group, (list, tuple)) and group and all(_is_array(v) for v in group) for group in params):
            self.nested, self.groups = True, [len(group) for group in params]
            self.values = [v for group in params for v in group]
            letters = ["b" if all(_is_bias(v) for v in group) else "w" for group in params]
            letters = [letter if letters.count(letter) == 1 else f"p{i}_" for i, letter in enumerate(letters)]
            self.names = [f"{letter}{j}" for letter, size in zip(letters, self.groups) for j in range(size)]
        else:
            raise TypeError(f"check_backprop: params must be a non-empty dict of name -> array, like "
                            f"{{'W1': W1, 'b1': b1}}, or a list of arrays, or a list of lists of arrays (Nielsen's "
                            f"[biases, weights]); got {_kind_of(params)}.")
        self.mapping = isinstance(params, Mapping)

    def pack(self, values: list[Any]) -> Any:
        """``values`` (in ``names`` order) in the form of params."""
        if self.mapping:
            return dict(zip(self.names, values))
        if not self.nested:
            return list(values)
        out, start = [], 0
        for size in self.groups:
            out.append(values[start:start + size])
            start += size
        return out

    def matches(self, result: Any) -> bool:
        """Whether ``result`` has this form (a dict for a dict; the same lengths for lists)."""
        if self.mapping:
            return isinstance(result, Mapping)
        if not isinstance(result, (list, tuple)):
            return False
        if not self.nested:
            return len(result) == len(self.names) and all(_is_array(v) or np.isscalar(v) for v in result)
        return len(result) == len(self.groups) and all(
            isinstance(g, (list, tuple)) and len(g) == size for g, size in zip(result, self.groups))

    def form(self) -> str:
        if self.mapping:
            return "a dict of gradients ({'dW1': ..., ...})"
        if not self.nested:
            return f"a list of {len(self.names)} gradients, one per parameter, in params' order"
        return f"{len(self.groups)} lists of gradients of lengths {self.groups}, in params' order"


def _is_array(value: Any) -> bool:
    return isinstance(value, (np.ndarray, Tensor))


def _kind_of(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        inside = sorted({type(v).__name__ for v in value})
        return f"a {type(value).__name__} of {', '.join(inside) or 'nothing'}"
    return f"a {type(value).__name__}"


def _names_by_kind(values: list[Any]) -> list[str]:
    """w0, b0, w1, ...: a column or a 1-D array is a bias ``b``, anything else a weight ``w``, counted apart."""
    counts = {"w": 0, "b": 0}
    names = []
    for v in values:
        letter = "b" if _is_bias(v) else "w"
        names.append(f"{letter}{counts[letter]}")
        counts[letter] += 1
    return names


def _is_bias(value: Any) -> bool:
    shape = np.shape(value)
    return len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)


def _as_array(name: str, value: Any) -> np.ndarray:
    array = np.array(value.numpy() if isinstance(value, Tensor) else value)  # a copy
    if array.dtype.kind != "f":
        if array.dtype.kind not in "iub":
            raise TypeError(f"check_backprop: params[{name!r}] must be a numeric array, got dtype {array.dtype}.")
        array = array.astype(float)
    return array


def _as_tensor(name: str, value: Any, array: np.ndarray) -> Tensor:
    if isinstance(value, Tensor):
        if not value.requires_grad:
            raise ValueError(f"check_backprop: params[{name!r}] is a Tensor that does not require grad, so the "
                             f"engine gives it no gradient; pass one created with requires_grad=True, or its "
                             f"array.")
        value.zero_grad()
        return value
    return Tensor(array.copy(), requires_grad=True, name=name)


# -- your code, called with context ---------------------------------------------------------------------------

def _call(function: str, fn: Callable[[Any], Any], argument: Any) -> Any:
    try:
        return fn(argument)
    except (Exception, SystemExit) as error:  # SystemExit too: a sys.exit() in your code must not end the check
        raise CodeError(function, error) from error


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__))
_METHODS = {"tanh": "t.tanh()", "exp": "t.exp()", "log": "t.log()", "sqrt": "t.sqrt()", "abs": "t.abs()",
            "square": "t ** 2", "power": "t ** k", "maximum": "t.maximum(other) or tinygrad_edu.maximum(a, b)",
            "minimum": "t.minimum(other)", "multiply": "a * b", "add": "a + b", "subtract": "a - b",
            "divide": "a / b", "true_divide": "a / b", "matmul": "a @ b", "negative": "-t", "clip": "t.clip(lo, hi)"}


def _code_error_message(function: str, error: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not os.path.abspath(f.filename).startswith((_PACKAGE_DIR, _NUMPY_DIR))]
    place = ""
    if frames:
        frame = frames[-1]
        code = f": `{frame.line.strip()}`" if frame.line else ""
        place = f" (in {os.path.basename(frame.filename)}, line {frame.lineno}{code})"
    if isinstance(error, SystemExit):
        return f"your {function} called sys.exit({error.code!r}){place}: the check cannot go on."
    if isinstance(error, TypeError) and "ufunc" in str(error) and "Tensor" in str(error):
        called = re.search(r"\bnp\.(\w+)\s*\(", place)
        name = called.group(1) if called else ""
        fix = f"use {_METHODS[name]}" if name in _METHODS else "use the Tensor's own method (t.tanh(), t.exp(), ...)"
        what = f"np.{name}" if name else "a numpy function"
        return (f"your {function} called {what} on a Tensor{place}: numpy functions cannot follow a Tensor's "
                f"graph; {fix}.")
    return f"your {function} raised {type(error).__name__}: {error}{place}"


def _manual_gradients(result: Any, layout: _Layout, arrays: Arrays) -> tuple[float | None, Arrays, list[str]]:
    """Your backprop's result: (its cost or None, its gradients keyed by parameter name, notes)."""
    cost = None
    if not layout.matches(result) and isinstance(result, (tuple, list)) and len(result) == 2:
        costs = [_is_cost(part) for part in result]
        if costs in ([True, False], [False, True]):
            cost_part, result = (result[0], result[1]) if costs[0] else (result[1], result[0])
            cost = float(np.ravel(cost_part)[0])   # a number, a 1-element array or Tensor
    if not layout.matches(result):
        raise TypeError(f"check_backprop: manual(params) must return {layout.form()}, alone or with the cost as "
                        f"(cost, grads) or (grads, cost); it returned {_kind_of(result)}.")
    notes: list[str] = []
    grads: dict[str, Any] = {}
    keys: dict[str, Any] = {}
    if layout.mapping:
        skipped = []
        for key, value in result.items():
            name = _parameter_of(key, arrays)
            if name is None and isinstance(key, str) and re.match(r"d[AZ]", key):
                skipped.append(key)
                continue
            if name is None:
                raise KeyError(f"check_backprop: manual returned a gradient {key!r} for no parameter: params has "
                               f"{_names(arrays)}, and a gradient is keyed by the name or by 'd' + name.")
            if name in grads:
                raise KeyError(f"check_backprop: manual returned two gradients for {name!r} ({name!r} and "
                               f"{'d' + name!r}); return one.")
            keys[name], grads[name] = key, value
        if skipped:
            notes.append(f"skipped {', '.join(skipped)}: gradients of intermediates (dA, dZ), not of parameters.")
        missing = [name for name in arrays if name not in grads]
        if missing:
            raise KeyError(f"check_backprop: manual returned no gradient for {_names(missing)} (looked for "
                           f"{' or '.join(repr(k) for k in (missing[0], 'd' + missing[0]))}); it returned "
                           f"{_names(result)}.")
    else:
        flat = [g for group in result for g in group] if layout.nested else list(result)
        grads = dict(zip(layout.names, flat))
        keys = {name: f"{name} (position {i})" for i, name in enumerate(layout.names)}
        notes.append(f"params and gradients matched by position, named {', '.join(layout.names)}.")
    out: Arrays = {}
    for name in arrays:
        value = grads[name]
        g = np.asarray(value.numpy() if isinstance(value, Tensor) else value)
        if g.dtype.kind in "iub":
            g = g.astype(float)
        if g.dtype.kind != "f":
            raise TypeError(f"check_backprop: manual's {keys[name]!r} is {_kind_of(value)} of dtype {g.dtype}, not "
                            f"an array of numbers; return the gradient as a numpy array.")
        out[name] = g
    return cost, out, notes


def _is_cost(part: Any) -> bool:
    """A number (or a one-element array): the cost, beside the gradients."""
    if isinstance(part, (str, bytes, Mapping, list, tuple)):
        return False
    return bool(np.size(part) == 1)


def _parameter_of(key: Any, arrays: Arrays) -> str | None:
    """The parameter a gradient's key names: the name itself, or "d" + name (the course's dW1)."""
    if key in arrays:
        return key
    if isinstance(key, str) and key.startswith("d") and key[1:] in arrays:
        return key[1:]
    return None


def _names(keys: Any) -> str:
    return ", ".join(repr(k) for k in keys) or "nothing"


# -- comparing each parameter ---------------------------------------------------------------------------------

def _compare_all(by_hand: Arrays, arrays: Arrays, engine: Arrays, graph: _Graph,
                 tolerance: float) -> list[GradientRow]:
    evidence = {name: Evidence(name, by_hand[name], engine[name], arrays[name], engine, graph, tolerance)
                for name in arrays}
    findings = {name: _diagnose(ev) for name, ev in evidence.items() if not ev.ok}
    located = graph.locate(set(findings)) if findings else {}
    rows = []
    for name, ev in evidence.items():
        text = ""
        if name in findings:
            finding = findings[name]
            text = finding.text
            if name in located and finding.kind == WEAK:
                text = located[name]
            elif name in located and finding.kind == UPSTREAM:
                text = f"{text}; {located[name]}"
            if ev.shape_story and not text.startswith(ev.shape_story) and not text.startswith("summed over"):
                text = f"{ev.shape_story}; and even lined up it disagrees: {text}"
            if finding.kind == WEAK:  # no named pattern fits every entry: a kink upstream may explain the rest
                text += graph.kink_note(name)
        rows.append(ev.row(text))
    return rows


@dataclass
class Evidence:
    """What a diagnosis may look at for one parameter: your gradient, the engine's, and the engine's graph."""

    name: str
    given: np.ndarray         # your gradient as manual returned it
    right: np.ndarray         # the engine's gradient
    value: np.ndarray         # the parameter itself
    engine: Arrays            # every parameter's engine gradient (for swaps)
    graph: _Graph             # facts about loss(t)'s graph
    tolerance: float

    def __post_init__(self) -> None:
        self.shape_story = ""
        self.yours = self.given
        if self.given.shape != self.right.shape and self.given.size == self.right.size:
            # Same number of values, other shape: compare the values as they would line up, and say so.
            if self.given.ndim == 2 and self.given.shape == self.right.shape[::-1]:
                self.yours = self.given.T
                self.shape_story = (f"has shape {self.given.shape}, the transpose of the parameter's "
                                    f"{self.right.shape}: you computed the transpose of the gradient")
            else:
                self.yours = self.given.reshape(self.right.shape)
                self.shape_story = _reshape_problem(self.given.shape, self.right.shape)

    @cached_property
    def scale(self) -> float:
        right = self.right
        return float(np.max(np.abs(right))) if right.size and np.all(np.isfinite(right)) else 0.0

    @cached_property
    def bad(self) -> np.ndarray:
        """Which elements disagree (read only when yours lines up with the parameter)."""
        limit = self.tolerance * (self.scale if self.scale > 0 else 1.0)   # an all-zero engine gradient: absolute
        return ~(np.abs(self.yours - self.right) <= limit)   # NaN compares False: a NaN is bad

    @property
    def ok(self) -> bool:
        return not self.shape_story and self.lined_up and not bool(np.any(self.bad))

    @property
    def lined_up(self) -> bool:
        return self.yours.shape == self.right.shape

    def close(self, a: np.ndarray, b: np.ndarray) -> bool:
        """a agrees with b within the tolerance (relative to the larger of max |b| and max |right|)."""
        top = max(float(np.max(np.abs(b))), self.scale)
        return a.shape == b.shape and bool(np.max(np.abs(a - b)) <= self.tolerance * top)

    def row(self, diagnosis: str) -> GradientRow:
        right, yours = self.right, self.yours
        if not self.lined_up or self.shape_story:
            return GradientRow(self.name, right.shape, float("inf"), float("inf"), None, None, None, False, diagnosis)
        diff = np.abs(yours - right)
        finite = bool(np.all(np.isfinite(diff)))
        abs_error = float(np.max(diff)) if finite else float("inf")
        rel_error = abs_error / self.scale if self.scale > 0 else abs_error
        index = tuple(int(i) for i in np.argwhere(self.bad)[0]) if np.any(self.bad) else None
        return GradientRow(self.name, right.shape, abs_error, rel_error, index,
                           None if index is None else float(yours[index]),
                           None if index is None else float(right[index]), self.ok, diagnosis)


OWN, UPSTREAM, WEAK, KINK = "own", "upstream", "weak", "kink"
"""A Finding's kind: OWN, a slip in this gradient's own line (kept as it is); UPSTREAM, it fits a mistake that
reaches this gradient from above, e.g. a factor (the place where it enters is added); WEAK, a pattern only
(replaced by that place when there is one, and the only kind given a note about a kink upstream); KINK, right
but for a kink's convention."""


@dataclass(frozen=True)
class Finding:
    """A diagnosis: its text and its kind (OWN, UPSTREAM, WEAK or KINK)."""

    text: str
    kind: str = OWN


def _reshape_problem(got: tuple[int, ...], want: tuple[int, ...]) -> str:
    text = f"has shape {got}, but the parameter's is {want}"
    if got == tuple(n for n in want if n != 1):
        text += " (keepdims=True left out of a sum?)"
    try:
        updated = np.broadcast_shapes(got, want)
    except ValueError:
        return text
    if updated != want:
        text += f" (p - lr * grad would broadcast to {updated}, not update p)"
    return text


def _diagnose(ev: Evidence) -> Finding:
    """The first of DIAGNOSES that names what is wrong, or the fallback."""
    for diagnosis in DIAGNOSES:
        finding = diagnosis(ev)
        if finding is not None:
            return finding
    return Finding("no simple pattern (not a factor, sign, transpose, another parameter's gradient or an L2 term): "
                   "go through the derivation step by step", WEAK)


# -- the diagnoses: small named checks, most telling first; append to DIAGNOSES to add one ---------------------

def not_finite(ev: Evidence) -> Finding | None:
    for label, array in (("yours", ev.yours), ("the engine's", ev.right)):
        if not np.all(np.isfinite(array)):
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
            kind = "NaN" if np.isnan(array[where]) else "Inf"
            fix = ("look for a log of 0, a division by 0 or an exp that overflowed" if label == "yours" else
                   "loss(t) itself overflows there; check the forward pass")
            return Finding(f"not finite: {label} has {kind} first at index {where} ({fix})")
    return None


def wrong_axis(ev: Evidence) -> Finding | None:
    """A bias's gradient summed over the wrong axis, or not summed at all, or lined up in another shape. Every
    gradient that cannot line up with its parameter ends here, so the checks after this one see it lined up."""
    for upstream, axes, where in ev.graph.upstream_sums(ev.name):
        for count in range(upstream.ndim + 1):
            for other in itertools.combinations(range(upstream.ndim), count):
                for keep in (True, False):
                    summed = upstream.sum(axis=other, keepdims=keep)
                    if other == axes or summed.shape != ev.given.shape or not ev.close(ev.given, summed):
                        continue
                    fix = (f"{ev.name} was broadcast along axis {_axes(axes)}, so its gradient sums over it: "
                           f"np.sum(dZ, axis={_axes(axes)}, keepdims=True)")
                    if not other:
                        return Finding(f"not summed: yours is {where} itself, of shape {upstream.shape}; {fix}")
                    return Finding(f"summed over the wrong axis: yours is {where} summed over axis {_axes(other)} "
                                   f"(shape {summed.shape}); {fix}")
    if ev.shape_story:
        if np.any(ev.bad):
            return None
        rest = "once it is transposed" if ev.given.shape == ev.right.shape[::-1] else "once reshaped"
        return Finding(f"{ev.shape_story}; its values agree {rest}.")
    if not ev.lined_up:
        kept = _padding_kept(ev)
        if kept:
            return Finding(kept)
        return Finding(f"has shape {ev.given.shape}, which cannot be the gradient of a parameter of shape "
                       f"{ev.right.shape} ({ev.given.size} values instead of {ev.right.size}); a gradient has its "
                       f"parameter's shape (a sum over the examples left out? check the axis and keepdims)")
    return None


def _padding_kept(ev: Evidence) -> str | None:
    """Yours is larger by an even number on some axes, and its middle is the right gradient: the gradient of the
    zero-padded input, with the padding not cropped off (the course's dA_prev_pad)."""
    extra = [g - r for g, r in zip(ev.given.shape, ev.right.shape)]
    if ev.given.ndim != ev.right.ndim or any(e < 0 or e % 2 for e in extra) or not any(extra):
        return None
    middle = ev.given[tuple(slice(e // 2, e // 2 + r) for e, r in zip(extra, ev.right.shape))]
    if not ev.close(middle, ev.right):
        return None
    crop = ", ".join(f"{e // 2}:-{e // 2}" if e else ":" for e in extra)
    return (f"has shape {ev.given.shape}, the zero-padded input's, and its middle is the right gradient: the "
            f"padding was kept. Crop it off: yours[{crop}] (the course's dA_prev_pad[pad:-pad, pad:-pad])")


def _axes(axes: tuple[int, ...]) -> str:
    return str(axes[0]) if len(axes) == 1 else str(axes)


def all_zeros(ev: Evidence) -> Finding | None:
    if not np.any(ev.yours):
        return Finding("all zeros: this gradient was never filled in (or a mask zeroed it)", UPSTREAM)
    return None


def engine_zero(ev: Evidence) -> Finding | None:
    if not np.any(ev.right):
        return Finding(f"the engine's gradient is all zeros and yours is not: loss(t)'s cost does not depend on "
                       f"{ev.name} (is it used in loss(t) as in your forward pass?), or every path to it is cut (a "
                       f"relu that is 0 everywhere, a mask)")
    return None


def sign(ev: Evidence) -> Finding | None:
    if ev.close(ev.yours, -ev.right):
        return Finding("sign flipped: yours is minus the right gradient (dL/dp, which points uphill)", UPSTREAM)
    return None


def factor(ev: Evidence) -> Finding | None:
    ratio = _multiple(ev.yours, ev.right, ev.tolerance * ev.scale)
    if ratio is None:
        return None
    named = ev.graph.name_factor(abs(ratio))
    if not named:
        named = (" (one number: any wrong value is some factor of the right one)" if ev.right.size == 1 else
                 " (a missing or extra 1/m, or the 2 from a square?)")
    digits = ".2f" if abs(abs(ratio) - 1) > 0.005 else ".8f"
    text = f"{ratio:{digits}}" + (f" (= 1/{1 / ratio:{digits}})" if abs(ratio) < 1 else "")
    flipped = "sign flipped and " if ratio < 0 else ""
    return Finding(f"{flipped}off by a constant factor: yours is {text} times the right gradient{named}", UPSTREAM)


def _multiple(a: np.ndarray, b: np.ndarray, atol: float) -> float | None:
    """k with a = k b to within atol everywhere (k by least squares), or None (also when b is all zeros)."""
    if not np.any(b):
        return None
    k = float(np.vdot(a, b) / np.vdot(b, b))
    return k if float(np.max(np.abs(a - k * b))) <= atol else None


def transpose(ev: Evidence) -> Finding | None:
    right = ev.right
    if right.ndim == 2 and ev.close(ev.yours, right.T):   # close() is False unless the shapes match
        return Finding("transpose: yours is the transpose of the right gradient (check the order in the matrix "
                       "product)")
    return None


def swapped(ev: Evidence) -> Finding | None:
    for other, g in ev.engine.items():
        if other != ev.name and g.shape == ev.yours.shape and np.any(g) and ev.close(ev.yours, g):
            return Finding(f"this is the gradient of {other!r}, not of {ev.name!r} (two gradients swapped or "
                           f"copied?)")
    return None


def data_and_l2(ev: Evidence) -> Finding | None:
    """yours = a * data term + b * L2 term (+ their transposes), by least squares: which part is wrong, and how."""
    data, (kind, penalty) = ev.graph.data_term(ev.name), ev.graph.penalty(ev.name)
    if penalty is None:   # no penalty in loss(t): does yours add one? p scaled to the gradient's size, so that
        unit = ev.scale / max(float(np.max(np.abs(ev.value))), 1e-300)   # its coefficient reads like a's
        extra = ev.value * unit
    else:
        unit, extra = 1.0, penalty
    bases = [data, extra] + ([data.T, extra.T] if data.ndim == 2 and data.shape[0] == data.shape[1] else [])
    if ev.yours.size <= 2 * len(bases) or not np.any(data) or not np.any(extra):
        return None  # NOTE: the size guard: with few values any gradient is some mix of the bases
    matrix = np.stack([b.ravel() for b in bases], axis=1)
    coef, _, rank, _ = np.linalg.lstsq(matrix, ev.yours.ravel(), rcond=None)
    if rank < len(bases) or not ev.close(ev.yours, (matrix @ coef).reshape(ev.yours.shape)):
        return None
    a, b, a_t, b_t = (*coef, 0.0, 0.0)[:4]
    data_text = _term_story(a, a_t, ev.graph)
    if penalty is not None:
        penalty_text = ev.graph.penalty_story(ev.name, kind, b, b_t)
    elif not _near(b_t, 0.0):
        return None   # a multiple of p's transpose: no slip we know
    else:
        penalty_text = None if _near(b, 0.0) else (f"yours has an L2 term {b * unit:.4g}·{ev.name} that loss(t) has "
                                                   f"not (is it in loss(t)'s cost? biases are usually not regularised)")
    if data_text is None:
        return None if penalty_text is None else Finding(penalty_text)
    if penalty_text is None:
        return Finding(data_text + ("" if penalty is None else f"; the {kind} term is right"), UPSTREAM)
    return Finding(f"{data_text}, and {penalty_text}", UPSTREAM)


def _near(c: float, target: float) -> bool:
    """A fitted coefficient equals a simple number (the fits are exact to rounding when the story is true)."""
    return abs(c - target) <= 1e-6 * max(1.0, abs(target))


def _term_story(a: float, a_t: float, graph: _Graph) -> str | None:
    """How the data term of yours (a times it, plus a_t times its transpose) differs from the right one."""
    if not _near(a_t, 0.0):
        if _near(a, 0.0) and _near(a_t, 1.0):
            return "the data term is transposed (check the order in the matrix product: dZ @ A_prev.T)"
        return f"the data term mixes itself and its transpose ({a:.3g} and {a_t:.3g} times)"
    if _near(a, 1.0):
        return None
    if _near(a, -1.0):
        return "the data term's sign flipped: yours has minus the right data term"
    return f"the data term is {a:.2f} times the right one{graph.name_factor(abs(a))}"


def kink(ev: Evidence) -> Finding | None:
    """Right everywhere except where relu/abs/max/clip sits exactly at its kink, with another convention there."""
    for story, extra in ev.graph.kink_alternatives():
        if ev.name in extra and ev.close(ev.yours, ev.right + extra[ev.name]):
            return Finding(f"right except at a kink: {story}", KINK)
    return None


def where_wrong(ev: Evidence) -> Finding | None:
    """Which rows / columns hold every disagreeing element, when some rows / columns with a nonzero gradient
    agree (rows where both gradients are 0, such as blank pixels, prove nothing)."""
    bad, nonzero = ev.bad, ev.right != 0
    if bad.ndim == 1:
        wrong = np.flatnonzero(bad)
        if not np.array_equal(wrong, np.flatnonzero(nonzero | bad)):
            return Finding(f"right on some entries only: wrong at {_spans(wrong)} ({len(wrong)} of {bad.size}), "
                           f"the others agree", WEAK)
    elif bad.ndim >= 2:
        parts = []
        for label, axes in (("rows", tuple(range(1, bad.ndim))), ("columns", tuple(range(bad.ndim - 1)))):
            wrong = np.flatnonzero(bad.any(axis=axes))
            if not np.array_equal(wrong, np.flatnonzero((nonzero | bad).any(axis=axes))):
                parts.append(f"{label} {_spans(wrong)} ({len(wrong)} of {bad.shape[0 if label == 'rows' else -1]})")
        if parts:
            return Finding(f"right except in {' and '.join(parts)}, where every disagreeing value lies (one unit, "
                           f"one example or one bias term handled differently?)", WEAK)
    return None


def batchnorm(ev: Evidence) -> Finding | None:
    """Right but for one of the usual slips in a hand-derived batch-norm backward (``_BATCHNORM_SLIPS``)."""
    for story, extra in ev.graph.batchnorm_alternatives:
        if ev.name in extra and ev.close(ev.yours, ev.right + extra[ev.name]):
            return Finding(story)
    return None


def conv_slip(ev: Evidence) -> Finding | None:
    """A conv2d's or a pool's backward with a slip of the course's loops in it (see ``_conv_slips`` and
    ``_pool_slips``), or a conv weight's gradient in another axis order."""
    for story, extra, kind in ev.graph.conv_alternatives:
        if ev.name in extra and ev.close(ev.yours, ev.right + extra[ev.name]):
            return Finding(story, kind)
    if ev.given.ndim != 4 or not ev.graph.is_conv_weight(ev.name):
        return None
    for axes, story in (((1, 0, 2, 3), "its channel axes swapped: yours is (in_channels, out_channels, kh, kw), "
                                       "conv2d's weight (out_channels, in_channels, kh, kw): transpose(1, 0, 2, 3)"),
                        ((2, 3, 1, 0), "the course's layout (f, f, n_C_prev, n_C), where conv2d's weight is "
                                       "(out_channels, in_channels, kh, kw): transpose(3, 2, 0, 1)")):
        want = ev.right.transpose(axes)
        if ev.given.shape == want.shape and ev.close(ev.given, want):
            lead = ev.shape_story or f"has the shape {ev.given.shape} of the parameter"
            return Finding(f"{lead}; its values are the right gradient in {story}")
    return None


DIAGNOSES: list[Callable[[Evidence], Finding | None]] = [
    not_finite, wrong_axis, all_zeros, engine_zero, batchnorm, conv_slip, sign, factor, transpose, swapped,
    data_and_l2, kink, where_wrong,
]
"""The checks ``check_backprop`` tries on a gradient that disagrees, in order; the first Finding wins."""


def _spans(indices: Sequence[int] | np.ndarray, most: int = 8) -> str:
    """[0, 1, 2, 5] -> '0-2, 5' (at most ``most`` pieces)."""
    pieces: list[list[int]] = []
    for i in (int(k) for k in indices):
        if pieces and pieces[-1][1] == i - 1:
            pieces[-1][1] = i
        else:
            pieces.append([i, i])
    text = [str(a) if a == b else f"{a}-{b}" for a, b in pieces[:most]]
    return ", ".join(text) + (", ..." if len(pieces) > most else "")


# -- what the engine's graph knows: terms, layers, constants, kinks ---------------------------------------------

_LINEAR = {"matmul", "add", "sub", "transpose", "reshape", "broadcast_to", "unsqueeze", "squeeze", "conv2d",
           "flatten"}
_ACTIVATIONS = {"relu", "leaky_relu", "tanh", "sigmoid", "softmax", "log_softmax", "log_sigmoid", "exp", "log",
                "abs", "maximum", "minimum", "clip", "logsumexp", "max_pool2d", "avg_pool2d"}


Seeds = Callable[[np.ndarray, dict[str, Any]], list[np.ndarray]]
_KINK_CONVENTIONS: dict[str, list[tuple[str, Seeds]]] = {
    # op: [(another convention at the kink, what it sends each input beyond the engine's rule, from g there)]
    "relu": [("derivative 1 at 0 (Z >= 0) where the engine takes 0 (Z > 0)", lambda g, kw: [g])],
    "leaky_relu": [("derivative 1 at 0 where the engine takes the slope", lambda g, kw: [g * (1 - kw["slope"])])],
    "abs": [("sign taken as +1 at 0 where the engine takes 0", lambda g, kw: [g]),
            ("sign taken as -1 at 0 where the engine takes 0", lambda g, kw: [-g])],
    "clip": [("derivative 0 at the clip's bounds where the engine takes 1", lambda g, kw: [-g])],
    "maximum": [("whole gradient to the first input at a tie, where the engine splits it",
                 lambda g, kw: [g / 2, -g / 2]),
                ("whole gradient to the second input at a tie, where the engine splits it",
                 lambda g, kw: [-g / 2, g / 2])],
}
_KINK_CONVENTIONS["minimum"] = _KINK_CONVENTIONS["maximum"]


@dataclass(eq=False)   # found by identity (`.index` in _batchnorm_place): its fields are arrays
class _BatchNorm:
    """A train-mode batch norm found in loss(t)'s graph: its nodes and what its backward reads."""

    x: Tensor                  # its input
    mean: np.ndarray           # the batch statistics, shaped to broadcast against x
    centred: np.ndarray
    variance: np.ndarray
    eps: float
    x_hat: np.ndarray
    top: Tensor                # its output: x_hat * gamma + beta (as far as the graph goes)
    gamma: Tensor | None       # the node that scales x_hat (None: no scale)
    beta: Tensor | None        # the node added after it (None: no shift)
    axis: tuple[int, ...]      # the batch axes, the ones its statistics average over

    @property
    def n(self) -> int:
        return int(np.prod([self.x.shape[a] for a in self.axis]))

    def sum(self, a: np.ndarray) -> np.ndarray:
        return a.sum(axis=self.axis, keepdims=True)

    def d_x_hat(self, d_out: np.ndarray) -> np.ndarray:
        return d_out * (1.0 if self.gamma is None else self.gamma.data)

    def d_x(self, d_out: np.ndarray, inv_std: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
        """The closed form dx = (1/N) gamma inv_std (N d_out - Σ d_out - x_hat Σ d_out x_hat), as given."""
        d_x_hat = self.d_x_hat(d_out)
        return inv_std / self.n * (self.n * d_x_hat - self.sum(d_x_hat) - x_hat * self.sum(d_x_hat * x_hat))

    def d_variance(self, d_out: np.ndarray) -> np.ndarray:
        return self.sum(self.d_x_hat(d_out) * self.centred) * -0.5 * (self.variance + self.eps) ** -1.5


def _no_eps_in_backward(bn: _BatchNorm, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    right = bn.d_x(d, (bn.variance + bn.eps) ** -0.5, bn.x_hat)
    return bn.d_x(d, bn.variance ** -0.5, bn.x_hat) - right, 0 * d, 0 * d


def _no_eps_anywhere(bn: _BatchNorm, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    right, inv_std = bn.d_x(d, (bn.variance + bn.eps) ** -0.5, bn.x_hat), bn.variance ** -0.5
    x_hat = bn.centred * inv_std
    return bn.d_x(d, inv_std, x_hat) - right, d * (x_hat - bn.x_hat), 0 * d


BatchNormSlip = Callable[[_BatchNorm, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
_BATCHNORM_SLIPS: list[tuple[str, BatchNormSlip]] = [
    # (the slip in words, with {n} and {eps}; from d_out, what it adds to dx, to d_gamma, to d_beta before the sum)
    ("the variance's gradient misses its path through the mean: with the variance written one-pass, "
     "mean(x²) - mean², dL/dmean needs the term -2·mean·dL/dvariance (the paper's dL/dvariance·(-2/N)·Σ(x - mean) "
     "vanishes in the centred form, as Σ(x - mean) = 0; one-pass only where the batch mean is 0)",
     lambda bn, d: (2 * bn.mean * bn.d_variance(d) / bn.n + 0 * d, 0 * d, 0 * d)),
    ("dx misses its path through the mean: x reaches the output through the mean too, so dx needs + dL/dmean / N "
     "(dL/dmean = -Σ dL/dcentred over the batch, N = {n})",
     lambda bn, d: (bn.sum(bn.d_x_hat(d)) * (bn.variance + bn.eps) ** -0.5 / bn.n + 0 * d, 0 * d, 0 * d)),
    ("dL/dmean not divided by N: mean = (1/N) Σ x, so x's path through the mean adds dL/dmean / N to dx "
     "(N = {n}), not dL/dmean (dL/dmean = -Σ dL/dcentred over the batch)",
     lambda bn, d: (-bn.sum(bn.d_x_hat(d)) * (bn.variance + bn.eps) ** -0.5 * (1 - 1 / bn.n) + 0 * d, 0 * d, 0 * d)),
    ("dL/dmean with the wrong sign: centred = x - mean, so dL/dmean = -Σ dL/dcentred over the batch, and dx "
     "gets + dL/dmean / N",
     lambda bn, d: (2 * bn.sum(bn.d_x_hat(d)) * (bn.variance + bn.eps) ** -0.5 / bn.n + 0 * d, 0 * d, 0 * d)),
    ("the 2 of d(centred²)/dcentred dropped: the variance's path adds dL/dvariance·2(x - mean)/N to dx "
     "(N = {n}), not dL/dvariance·(x - mean)/N",
     lambda bn, d: (-bn.centred * bn.d_variance(d) / bn.n, 0 * d, 0 * d)),
    ("1/(N - 1) where the batch variance has 1/N (N = {n}): the batch is normalised with the biased variance, "
     "so d(variance)/d(x - mean) = 2(x - mean)/N; only running_var keeps the unbiased 1/(N - 1)",
     lambda bn, d: (2 * bn.centred * bn.d_variance(d) * (1 / (bn.n - 1) - 1 / bn.n), 0 * d, 0 * d)),
    ("eps forgotten in the backward pass: it needs (variance + eps)^(-1/2), as the forward pass (eps = {eps:g}), "
     "not variance^(-1/2)", _no_eps_in_backward),
    ("eps forgotten: x_hat = (x - mean)/sqrt(variance + eps) (eps = {eps:g}), in the forward pass and in the "
     "backward's (variance + eps)^(-1/2)", _no_eps_anywhere),
    ("d_gamma without x_hat: yours is Σ d_out, which is d_beta; d_gamma = Σ d_out·x_hat (when beta's row says "
     "d_beta and d_gamma are swapped, they are)", lambda bn, d: (0 * d, d - d * bn.x_hat, 0 * d)),
    ("d_beta and d_gamma swapped: yours is Σ d_out·x_hat, which is d_gamma; d_beta = Σ d_out",
     lambda bn, d: (0 * d, 0 * d, d * bn.x_hat - d)),
]
"""The usual slips in a hand-derived batch-norm backward (the same as ``manual.batchnorm.SLIPS``), each as what
it adds to the right gradients; ``batchnorm`` tries them on every batch norm of loss(t)'s graph."""


def _find_batchnorm(var_eps: Tensor, children: Mapping[Tensor, list[Tensor]]) -> _BatchNorm | None:
    """The batch norm whose ``variance + eps`` is ``var_eps``, or None: the nodes are found by their place in the
    graph (centred = x - mean, divided by sqrt(var_eps) in any of the usual spellings) and checked by value."""
    if _op_name(var_eps) != "add" or len(var_eps.parents) != 2:
        return None
    constants = [p for p in var_eps.parents if not p.requires_grad and p.size == 1]
    learned = [p for p in var_eps.parents if p.requires_grad]
    if len(constants) != 1 or len(learned) != 1 or not float(constants[0].item()) >= 0:
        return None
    eps, variance_node = float(constants[0].item()), learned[0]
    found: list[tuple[Tensor, Tensor]] = []
    frontier = [var_eps]
    for _ in range(3):   # var_eps -> (sqrt, pow, 1 / .) -> x_hat = centred * inv_std or centred / std
        frontier = [c for node in frontier for c in children.get(node, [])]
        found = [(c, p) for c in frontier for p in _centred_parent(c)]
        if found:
            break
    if not found:
        return None
    x_hat, centred_node = found[0]
    x, mean_node = centred_node.parents
    if not (x.requires_grad and mean_node.requires_grad) or x.ndim == 0:
        return None    # eval mode (constant statistics) or a scalar: no slips to find
    if centred_node.shape != x.shape or x_hat.shape != x.shape or mean_node.size != variance_node.size:
        return None
    shape = (1,) * (x.ndim - variance_node.ndim) + variance_node.shape
    if len(shape) != x.ndim or any(s not in (1, n) for s, n in zip(shape, x.shape)):
        return None    # statistics that do not broadcast against x: not a batch norm of x
    axis = tuple(i for i in range(x.ndim) if shape[i] == 1 and x.shape[i] > 1)
    data = x.data.astype(np.float64)
    mean, variance = mean_node.data.reshape(shape), variance_node.data.reshape(shape)
    centred = centred_node.data
    scale = float(np.max(np.abs(data))) if data.size else 0.0   # loose: float32 statistics are found too
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        looks_right = (axis and np.allclose(mean, data.mean(axis=axis, keepdims=True), rtol=1e-4, atol=1e-5 * scale)
                       and np.allclose(variance, (centred ** 2).mean(axis=axis, keepdims=True), rtol=1e-4,
                                       atol=1e-5 * scale ** 2)
                       and np.allclose(x_hat.data, centred / np.sqrt(variance + eps), rtol=1e-4, atol=1e-5))
    if not looks_right or np.any(variance <= 0):
        return None
    gamma = beta = None
    top = x_hat
    kids = children.get(top, [])
    if len(kids) == 1 and _op_name(kids[0]) == "mul":
        gamma = next(p for p in kids[0].parents if p is not top) if kids[0].parents[0] is not kids[0].parents[1] \
            else None
        top = kids[0] if gamma is not None else top
    kids = children.get(top, [])
    if len(kids) == 1 and _op_name(kids[0]) == "add":
        beta, top = next(p for p in kids[0].parents if p is not top), kids[0]
    return _BatchNorm(x, mean, centred, variance, eps, x_hat.data, top, gamma, beta, axis)


def _centred_parent(node: Tensor) -> list[Tensor]:
    """``centred`` when ``node`` is centred * (something) or centred / (something), centred = x - mean."""
    name, parents = _op_name(node), node.parents
    if len(parents) != 2 or parents[0] is parents[1] or name not in ("mul", "truediv"):
        return []
    candidates = parents if name == "mul" else parents[:1]
    return [p for p in candidates if _op_name(p) == "sub" and len(p.parents) == 2][:1]


@dataclass
class _Layer:
    names: list[str]   # its parameters
    top: Tensor        # its pre-activation Z (the last linear node before the activation)
    chain: set[Tensor]  # the nodes from its parameters up to Z

    @property
    def number(self) -> str | None:
        digits = {m.group(1) for m in (re.search(r"(\d+)$", n) for n in self.names) if m}
        return digits.pop() if len(digits) == 1 and all(re.search(r"\d$", n) for n in self.names) else None

    @property
    def label(self) -> str:
        return f"layer {self.number}" if self.number is not None else f"the layer of {', '.join(self.names)}"


class _Graph:
    """Facts about loss(t)'s graph, each computed on first use (a backprop that agrees never needs them)."""

    def __init__(self, out: Tensor, tensors: dict[str, Tensor], engine: Arrays) -> None:
        self.out, self.tensors, self.engine = out, tensors, engine
        self.param_of = {t: name for name, t in tensors.items()}

    @cached_property
    def nodes(self) -> list[Tensor]:
        return autograd.toposort([self.out])

    @cached_property
    def order(self) -> dict[Tensor, int]:
        """Each node's place in creation order (a node comes after its parents)."""
        return {node: i for i, node in enumerate(self.nodes)}

    @cached_property
    def children(self) -> dict[Tensor, list[Tensor]]:
        kids: dict[Tensor, list[Tensor]] = defaultdict(list)   # a parameter loss(t) never uses has none
        for node in self.nodes:
            for parent in node.parents:
                if parent.requires_grad and not any(k is node for k in kids[parent]):
                    kids[parent].append(node)
        return kids

    @cached_property
    def walk(self) -> tuple[dict[Tensor, Any], dict[tuple[Tensor, Tensor], np.ndarray]]:
        """The gradient at every node, and what each node sends to each parameter it reads."""
        at: dict[Tensor, Any] = {}
        sent: dict[tuple[Tensor, Tensor], np.ndarray] = {}
        for node, grad_out, parent_grads in autograd.backward_steps([self.out], [np.ones_like(self.out.data)]):
            at[node] = grad_out
            for parent, g in zip(node.parents, parent_grads):
                if g is not None and parent in self.param_of:
                    sent[(node, parent)] = sent[(node, parent)] + g if (node, parent) in sent else np.asarray(g)
        return at, sent

    def _is_penalty(self, node: Tensor, param: Tensor) -> str | None:
        """'L2' for p ** 2 or p * p, 'L1' for |p|: a term made of the parameter alone."""
        name = _op_name(node)
        alone = all(p is param for p in node.parents)  # NOTE: `is`: == on Tensors compares their values
        if name == "pow" and alone and node.op_args.get("exponent") == 2:
            return "L2"
        if name == "mul" and alone:
            return "L2"
        if name == "abs" and alone:
            return "L1"
        return None

    def penalty(self, name: str) -> tuple[str, np.ndarray | None]:
        """("L2" / "L1" / "penalty", the gradient its penalty terms give the parameter) or (.., None)."""
        param, sent = self.tensors[name], self.walk[1]
        kinds = [(self._is_penalty(c, param), c) for c in self.children[param]]
        parts = [sent[(c, param)] for kind, c in kinds if kind is not None and (c, param) in sent]
        found = {kind for kind, _ in kinds if kind is not None}
        kind = found.pop() if len(found) == 1 else "penalty"
        return (kind, sum(parts[1:], parts[0].copy()) if parts else None)

    def data_term(self, name: str) -> np.ndarray:
        """The gradient without the penalty terms: what reaches the parameter through the network."""
        penalty = self.penalty(name)[1]
        return self.engine[name] - penalty if penalty is not None else self.engine[name]

    def penalty_story(self, name: str, kind: str, b: float, b_t: float) -> str | None:
        """How yours's penalty term (b times loss(t)'s, plus b_t times its transpose) differs, in words."""
        near = _near
        if not near(b_t, 0.0):
            return f"the {kind} term is mixed with its transpose ({b:.3g} and {b_t:.3g} times loss(t)'s)"
        if near(b, 1.0):
            return None
        param, penalty = self.tensors[name].data, self.penalty(name)[1]
        assert penalty is not None
        kappa = _multiple(penalty, param, 1e-9 * float(np.max(np.abs(penalty)))) if kind == "L2" else None
        if kappa is None:  # not kappa * p: an L1 term, or several penalties
            return f"{kind} term missing" if near(b, 0.0) else f"the {kind} term is {b:.3g} times loss(t)'s"
        term = f"{kappa:.4g}·{name}"
        if near(b, 0.0):
            return f"L2 term missing: yours lacks {term}, the gradient of loss(t)'s {kappa / 2:.4g}·Σ{name}²"
        if near(b, -1.0):
            return f"the L2 term's sign flipped: yours has -{term}, loss(t) +{term}"
        if near(b, 2.0):
            return (f"the L2 term is twice loss(t)'s ({2 * kappa:.4g}·{name}, not {term}): the 1/2 in λ/(2m)·ΣW² "
                    f"cancels the 2 of the square")
        if near(b, 0.5):
            return f"the L2 term is half loss(t)'s ({kappa / 2:.4g}·{name}, not {term}): the square's 2 left out"
        yours = f"the L2 term is {b * kappa:.4g}·{name} where loss(t) has {term}"
        for m in sorted(self.constants["m"]):
            if near(b, m):
                return f"{yours}: you used λ where loss(t) has λ/m (m = {m:g}, a missing 1/m)"
            if near(b, 1 / m):
                return f"{yours}: λ/m divided by m once more (m = {m:g})"
            for ratio, yours_, theirs in ((b, "m", "n"), (1 / b, "n", "m")):
                n = ratio * m   # NOTE: an integer n (not m or 1: b would be m or 1/m) reads as λ/m against λ/n
                if _near(n, round(n)):
                    sizes = {"m": f"m = {m:g}, the mini-batch", "n": f"n = {round(n)}, the training set?"}
                    return (f"{yours}: you used λ/{yours_} ({sizes[yours_]}) where loss(t) has λ/{theirs} "
                            f"({sizes[theirs]})")
        return f"{yours} ({b:.3g} times)"

    @cached_property
    def constants(self) -> dict[str, set[float]]:
        """loss(t)'s numbers that name a factor: m (an integer it divides by), keep_prob (a fraction it divides
        by after a 0/1 mask, or the inverse of a scaled mask)."""
        found: dict[str, set[float]] = {"m": set(), "keep_prob": set()}
        for node in autograd.toposort([self.out], all_parents=True):
            name = _op_name(node)
            for c in (p for p in node.parents if not p.requires_grad):
                values = np.unique(c.data)
                if name == "truediv" and c.size == 1 and c is node.parents[1]:
                    _add_divisor(found, float(values[0]))          # x / m, x / keep_prob
                elif name == "mul" and c.size == 1 and values[0] > 0:
                    _add_divisor(found, 1 / float(values[0]))      # x * (1 / m)
                elif name == "mul" and values.size == 2 and values[0] == 0 and values[1] > 1:
                    found["keep_prob"].add(1 / float(values[1]))   # a mask scaled by 1 / keep_prob
            if name == "mean" and node.parents:
                count = node.parents[0].size // max(node.size, 1)
                if count > 1:
                    found["m"].add(float(count))
        return found

    def name_factor(self, f: float) -> str:
        """' (= m, ...)' when f is one of loss(t)'s constants (or 2, 1/2), else ''."""
        near = lambda x: _near(f, x)
        for m in sorted(self.constants["m"]):
            if near(m):
                return f" (= m = {m:g}, the number of examples loss(t) divides by: a missing 1/m)"
            if near(1 / m):
                return f" (= 1/m, m = {m:g}: divided by m once more than loss(t))"
        for kp in sorted(self.constants["keep_prob"]):
            if near(kp):
                return f" (= keep_prob = {kp:g}: a missing / keep_prob)"
            if near(1 / kp):
                return f" (= 1/keep_prob, keep_prob = {kp:g}: an extra / keep_prob)"
            if near(kp * kp):
                return (f" (= keep_prob², keep_prob = {kp:g}: multiplied by keep_prob where it divides, or "
                        f"/ keep_prob missing twice, as in two layers' masks)")
        if near(2.0):
            return " (= 2: the 2 from a square counted twice, or a 1/2 left out)"
        if near(0.5):
            return " (= 1/2: the 2 from a square left out)"
        return ""

    def upstream_sums(self, name: str) -> list[tuple[np.ndarray, tuple[int, ...], str]]:
        """For each place the parameter was broadcast (a bias added to W @ A): the gradient there, the axes the
        right sum runs over, and a few words naming it."""
        param, (at, _) = self.tensors[name], self.walk
        found = []
        for child in self.children[param]:
            if _op_name(child) not in ("add", "sub") or child not in at:
                continue
            g = np.asarray(at[child]) * (-1 if _op_name(child) == "sub" and child.parents[1] is param else 1)
            lead = g.ndim - param.ndim
            shape = (1,) * lead + param.shape
            axes = tuple(i for i in range(g.ndim) if shape[i] == 1 and g.shape[i] != 1)
            if axes:
                found.append((g, axes, f"the gradient at the sum where {name} is added (dZ)"))
        return found

    @cached_property
    def layers(self) -> list[_Layer]:
        """The parameters grouped by the pre-activation they feed, nearest the output first."""
        tops: dict[Tensor, _Layer] = {}
        for name, param in self.tensors.items():
            for child in self.children[param]:
                if self._is_penalty(child, param):
                    continue
                node, chain = child, {child}
                while len(self.children[node]) == 1 and _op_name(self.children[node][0]) in _LINEAR:
                    node = self.children[node][0]
                    chain.add(node)
                layer = tops.setdefault(node, _Layer([], node, set()))
                layer.chain |= chain
                if name not in layer.names:
                    layer.names.append(name)
        return sorted(tops.values(), key=lambda layer: -self.order[layer.top])

    def _between(self, start: Tensor, stop: set[Tensor]) -> list[Tensor]:
        """The nodes on the way from ``start`` towards the output, up to (not into) ``stop`` (None: to the end)."""
        seen: set[Tensor] = set()
        stack = list(self.children[start])
        while stack:
            node = stack.pop()
            if node in seen or node in stop:
                continue
            seen.add(node)
            stack += self.children[node]
        return sorted(seen, key=self.order.__getitem__)

    def _describe(self, nodes: list[Tensor]) -> str:
        """What a backward step through ``nodes`` applies: activations' derivatives, a mask, a / keep_prob."""
        words: list[str] = []
        for node in nodes:
            name = _op_name(node)
            const = next((p for p in node.parents if not p.requires_grad), None)
            if name in _ACTIVATIONS:
                word = f"{name}'s derivative"
            elif name == "mul" and const is not None and const.size > 1:
                word = "the dropout mask"   # a constant array multiplying the activations between two layers
            elif name == "truediv" and const is not None and const.size == 1:
                value = float(const.item())
                word = "/ keep_prob" if 0 < value < 1 else f"/ {value:g}"
            else:
                continue
            if word not in words:
                words.append(word)
        return ", ".join(words) or "the operations in between"

    def locate(self, wrong: set[str]) -> dict[str, str]:
        """When whole layers disagree from some layer down and the layers above agree: where the mistake enters."""
        layers = self.layers
        placed = [n for layer in layers for n in layer.names]
        if any(name not in placed for name in wrong) or len(placed) != len(set(placed)):
            return {}   # a parameter outside the layers, or in two of them (shared): no one place
        status = [{name in wrong for name in layer.names} for layer in layers]
        if any(len(s) != 1 for s in status):
            return {}
        bad = [s == {True} for s in status]
        first = bad.index(True) if True in bad else len(bad)
        if first == len(bad) or not all(bad[first:]) or (first == 0 and len(layers) < 2):
            return {}
        lower = layers[first]
        if first == 0:
            ops = ", ".join(dict.fromkeys(_op_name(n) for n in self._between(lower.top, set())
                                          if _op_name(n) in _ACTIVATIONS))
            step = f"dZ{lower.number}, " if lower.number is not None else ""
            through = f" through {ops}" if ops else ""
            text = (f"the mistake enters at the output: every layer disagrees, so the gradient at the output "
                    f"layer's pre-activation ({step}the cost's derivative{through}) is already wrong")
        else:
            upper = layers[first - 1]
            ops = self._describe(self._between(lower.top, upper.chain))
            step = f"dA{lower.number} -> dZ{lower.number}: " if lower.number is not None else ""
            text = (f"{upper.label} agrees, {lower.label} and below do not: the mistake enters between "
                    f"{upper.label} and {lower.label} ({step}{ops})")
        return {name: text for layer in layers[first:] for name in layer.names}

    @cached_property
    def kinks(self) -> list[tuple[Tensor, str, np.ndarray]]:
        """Nodes whose input sits exactly at a kink, newest first: (node, op, where: a mask of the node's shape)."""
        found = []
        for node in reversed(self.nodes):
            name = _op_name(node)
            if name not in _KINK_CONVENTIONS:
                continue
            a = node.parents[0].data
            if name == "clip":
                at_kink = (a == node.op_args.get("low")) | (a == node.op_args.get("high"))
            else:   # relu, leaky_relu, abs: at 0; maximum, minimum: at a tie with the second input
                at_kink = a == (node.parents[1].data if len(node.parents) > 1 else 0)
            at_kink = np.broadcast_to(at_kink, node.shape)
            if np.any(at_kink):
                found.append((node, name, at_kink))
        return found

    def kink_alternatives(self) -> list[tuple[str, Arrays]]:
        """For each kink convention (at every such node at once, then at each node alone): the extra gradient
        each parameter would get from it."""
        kinks, at = self.kinks, self.walk[0]
        # every node of one op at once first (a learner's `Z >= 0` is the same in every layer), then each alone
        groups = [kinks] * (len({name for _, name, _ in kinks}) == 1) + [[k] for k in kinks]
        result = []
        for group in groups:
            for choice, (convention, _) in enumerate(_KINK_CONVENTIONS[group[0][1]]):
                roots: list[Tensor] = []
                seeds: list[np.ndarray] = []
                for node, name, at_kink in group:   # newest first: what a newer kink adds reaches the older ones
                    arriving = dict((n, g) for n, g, _ in autograd.backward_steps(roots, seeds)) if roots else {}
                    g = np.asarray(at[node]) + (np.asarray(arriving[node]) if node in arriving else 0.0)
                    kwargs = node.op_args
                    for parent, seed in zip(node.parents, _KINK_CONVENTIONS[name][choice][1](np.where(at_kink, g, 0.0),
                                                                                              kwargs)):
                        if parent.requires_grad:
                            roots.append(parent)
                            seeds.append(autograd.unbroadcast(seed, parent.shape))
                extra = {self.param_of[n]: np.asarray(g) for n, g, _ in autograd.backward_steps(roots, seeds)
                         if n in self.param_of}
                count = sum(int(np.count_nonzero(at_kink)) for _, _, at_kink in group)
                story = (f"{group[0][1]}'s input sits exactly at its kink in {count} entries, and there yours "
                         f"takes the {convention}. Both are valid choices and differ only there (move the data off "
                         f"the kink, or take the engine's convention)")
                result.append((story, extra))
        return result

    def kink_note(self, name: str) -> str:
        param = self.tensors[name]
        for node, op, at_kink in self.kinks:
            if any(t is param for t in autograd.toposort([node])):
                return (f" (note: {op}'s input is exactly at its kink in {int(np.count_nonzero(at_kink))} entries, and "
                        f"{name} is upstream: there the derivative is a convention, the engine's is in ops.py)")
        return ""

    @cached_property
    def batchnorms(self) -> list[_BatchNorm]:
        """The train-mode batch norms in loss(t)'s graph, newest first."""
        found = (_find_batchnorm(node, self.children) for node in reversed(self.nodes))
        return [bn for bn in found if bn is not None]

    @cached_property
    def batchnorm_alternatives(self) -> list[tuple[str, Arrays]]:
        """For each of the usual batch-norm slips (in every batch norm at once, then in each alone): its story and
        the extra gradient each parameter would get from it."""
        norms, at = self.batchnorms, self.walk[0]
        groups = [norms] * (len(norms) > 1) + [[bn] for bn in norms]
        result = []
        for what, slip in _BATCHNORM_SLIPS:
            for group in groups:
                roots: list[Tensor] = []
                seeds: list[np.ndarray] = []
                for bn in group:   # newest first: what a newer batch norm's slip sends reaches the older ones
                    arriving = dict((n, g) for n, g, _ in autograd.backward_steps(roots, seeds)) if roots else {}
                    if bn.top not in at or bn.top.shape != bn.x.shape:
                        continue
                    d_out = np.asarray(at[bn.top]) + (np.asarray(arriving[bn.top]) if bn.top in arriving else 0.0)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        extras = slip(bn, d_out)
                    for node, extra in zip((bn.x, bn.gamma, bn.beta), extras):
                        if node is not None and node.requires_grad and np.any(extra):
                            roots.append(node)
                            seeds.append(autograd.unbroadcast(np.broadcast_to(extra, bn.x.shape), node.shape))
                if len(group) > 1 and not any(root is bn.x for bn in group for root in roots):
                    continue   # a slip in d_gamma or d_beta only stays in its own layer: its place is that layer
                extra_of = {self.param_of[n]: np.asarray(g) for n, g, _ in autograd.backward_steps(roots, seeds)
                            if n in self.param_of} if roots else {}
                bn = group[0]
                result.append((f"a batch-norm slip{self._batchnorm_place(group)}: "
                               f"{what.format(n=bn.n, eps=bn.eps)}", extra_of))
        return result

    def _batchnorm_place(self, group: list[_BatchNorm]) -> str:
        if len(self.batchnorms) == 1:
            return ""
        if len(group) > 1:
            return " in every batch norm"
        bn = group[0]
        named = next((self.param_of[p] for p in (bn.gamma, bn.beta) if p is not None and p in self.param_of), None)
        if named is not None:
            return f" in the batch norm of {named}"
        number = len(self.batchnorms) - self.batchnorms.index(bn)
        return f" in batch norm {number} of {len(self.batchnorms)} (counted from the input)"


    def is_conv_weight(self, name: str) -> bool:
        """Whether the parameter is a conv2d's weight as it is (no transpose between)."""
        param = self.tensors[name]
        return any(_op_name(c) == "conv2d" and c.parents[1] is param for c in self.children[param])

    def _source(self, node: Tensor) -> Tensor:
        """The tensor ``node`` was made from by transposes and reshapes alone (a weight kept in another layout)."""
        while _op_name(node) in ("transpose", "reshape") and node.parents[0].requires_grad:
            node = node.parents[0]
        return node

    @cached_property
    def conv_alternatives(self) -> list[tuple[str, Arrays, str]]:
        """For each conv2d and pool in loss(t) and each slip of its hand-written backward (``_conv_slips``,
        ``_pool_slips``): the story, the extra gradient the slip gives each parameter, the Finding's kind."""
        at, result = self.walk[0], []
        for node in self.nodes:
            op = _op_name(node)
            if op not in ("conv2d", "max_pool2d", "avg_pool2d") or node not in at:
                continue
            g = np.asarray(at[node])
            if op == "conv2d":
                weight = self.param_of.get(self._source(node.parents[1]))
                where = (f"the conv2d with {weight}" if weight else
                         f"the conv2d with a weight of shape {node.parents[1].shape}")
                slips = _conv_slips(node, g, where)
            else:
                slips = _pool_slips(node, g)
            for story, seeds, kind in slips:
                roots = [p for p, seed in zip(node.parents, seeds) if seed is not None and p.requires_grad]
                if not roots:
                    continue
                grads = [seed for p, seed in zip(node.parents, seeds) if seed is not None and p.requires_grad]
                extra = {self.param_of[n]: np.asarray(g_n) for n, g_n, _ in autograd.backward_steps(roots, grads)
                         if n in self.param_of}
                result.append((story, extra, kind))
        return result


# -- the slips of a hand-written conv2d or pool backward (the course's loops, its full convolution) -----------

Slip = tuple[str, list[np.ndarray | None], str]   # story, what it adds to each input's gradient, Finding kind


def _conv_grads(g: np.ndarray, x: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: tuple[int, int],
                shift: tuple[int, int] = (0, 0), step: tuple[int, int] | None = None
                ) -> tuple[np.ndarray, np.ndarray] | None:
    """conv2d's input and weight gradients summed window by window, as the course's backward loop does, with
    the windows every ``step`` pixels (the stride) and moved by ``shift`` in the padded input; None when such
    windows leave the padded input (plus a border of ``shift``'s size: the crop of the padded gradient may be off
    instead of the windows, which gives the same numbers)."""
    (sh, sw), (ph, pw), (dy, dx) = step or stride, padding, shift
    kh, kw = w.shape[2:]
    ho, wo = g.shape[2:]
    m = max(abs(dy), abs(dx))
    xp = np.pad(x, ((0, 0), (0, 0), (ph + m, ph + m), (pw + m, pw + m)))
    top, left = m + dy, m + dx
    if top + sh * (ho - 1) + kh > xp.shape[2] or left + sw * (wo - 1) + kw > xp.shape[3]:
        return None
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(kh):   # a loop over the kernel's offsets, every window at once
        for j in range(kw):
            rows = slice(top + i, top + i + sh * (ho - 1) + 1, sh)
            cols = slice(left + j, left + j + sw * (wo - 1) + 1, sw)
            dw[:, :, i, j] = np.einsum("nohw,nchw->oc", g, xp[:, :, rows, cols])
            dxp[:, :, rows, cols] += np.einsum("nohw,oc->nchw", g, w[:, :, i, j])
    return dxp[:, :, m + ph:m + ph + x.shape[2], m + pw:m + pw + x.shape[3]], dw


def _offset_words(dy: int, dx: int) -> str:
    words = [f"{abs(d)} {unit}{'s' if abs(d) > 1 else ''} {away}" for d, unit, away in
             ((dy, "row", "lower" if dy > 0 else "higher"), (dx, "column", "to the right" if dx > 0 else "to the left"))
             if d]
    return " and ".join(words)


def _conv_slips(node: Tensor, g: np.ndarray, where: str) -> list[Slip]:
    """A conv2d's backward written by hand: the input gradient as the full convolution of dZ with the kernel
    rotated by 180° and its channel axes swapped (either step left out), the weight gradient as the correlation
    of the input with dZ (turned into a convolution: rotated), either one's windows off by a row or a column (a
    padding or index offset) or at another stride."""
    x, w = node.parents[0].data, node.parents[1].data
    stride, padding = node.op_args["stride"], node.op_args["padding"]
    right = _conv_grads(g, x, w, stride, padding)
    assert right is not None
    rest: list[np.ndarray | None] = [None] * (len(node.parents) - 2)   # the bias: its gradient is a sum, no slip here
    slips: list[Slip] = []

    def input_slip(story: str, grads: tuple[np.ndarray, np.ndarray] | None) -> None:
        if grads is not None:
            slips.append((f"the input gradient (dA_prev) of {where} {story}", [grads[0] - right[0], None, *rest],
                          UPSTREAM))

    def weight_slip(story: str, dw: np.ndarray | None) -> None:
        if dw is not None:
            slips.append((f"the weight gradient of {where} {story}", [None, dw - right[1], *rest], OWN))

    o, c, kh, kw = w.shape
    rotated = w[:, :, ::-1, ::-1]
    full = ("the input gradient is the full convolution of dZ with every filter rotated by 180° (flipped along "
            "both its height and its width) and its channel axes swapped")
    if kh * kw > 1:
        input_slip(f"uses the kernel unrotated (or rotated twice): {full}; in the course's loop form, "
                   f"dA_prev_pad[window] += W[..., c] * dZ[h, w, c], W goes in as it is, never rotated",
                   _conv_grads(g, x, rotated, stride, padding))
        weight_slip("is rotated by 180°: it is the correlation of the input with dZ (dW += a_slice_prev * dZ), not a "
                    "convolution, so no filter is turned", right[1][:, :, ::-1, ::-1])
    if o == c:
        input_slip(f"leaves the kernel's channel axes unswapped (out and in): {full}",
                   _conv_grads(g, x, w.transpose(1, 0, 2, 3), stride, padding))
        if kh * kw > 1:
            input_slip(f"uses the kernel neither rotated nor with its channel axes swapped: {full}",
                       _conv_grads(g, x, rotated.transpose(1, 0, 2, 3), stride, padding))
        weight_slip("has its channel axes swapped: (out_channels, in_channels, kh, kw) is the weight's order",
                    right[1].transpose(1, 0, 2, 3))
    reach = max(1, *padding)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            if (dy, dx) == (0, 0):
                continue
            moved = _conv_grads(g, x, w, stride, padding, shift=(dy, dx))
            offset = (f"reads windows {_offset_words(dy, dx)} than the forward pass (padding {padding}, stride "
                      f"{stride}: vert_start = h * stride, the padded input, the crop dA_prev_pad[pad:-pad])")
            input_slip(offset, moved)
            weight_slip(offset, None if moved is None else moved[1])
    for s in range(1, max(stride) + 2):
        if (s, s) != tuple(stride):
            at_s = _conv_grads(g, x, w, stride, padding, step=(s, s))
            places = f"every {s} pixels" if s > 1 else "at every pixel"
            story = f"places its windows {places} where the forward pass's stride is {stride}"
            input_slip(story, at_s)
            weight_slip(story, None if at_s is None else at_s[1])
    return slips


def _pool_slips(node: Tensor, g: np.ndarray) -> list[Slip]:
    """A pool's backward written by hand with another mask: for a max pool the course's (every tied maximum),
    the last maximum, none at all or the average's share; for an average pool no division, or the max's mask."""
    a, op = node.parents[0].data, _op_name(node)
    (kh, kw), (sh, sw) = node.op_args["kernel"], node.op_args["stride"]
    ho, wo = node.shape[2:]
    places = [(slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw))
              for i in range(kh) for j in range(kw)]
    top = np.maximum.reduce([a[:, :, rows, cols] for rows, cols in places])   # an average pool's output is no max

    def spread(shares: list[Any]) -> np.ndarray:
        out = np.zeros_like(a)
        for (rows, cols), share in zip(places, shares):
            out[:, :, rows, cols] += g * share
        return out

    hits = [a[:, :, rows, cols] == top for rows, cols in places]
    firsts: list[np.ndarray] = []
    lasts: list[np.ndarray] = []
    for order, chosen in ((hits, firsts), (hits[::-1], lasts)):
        taken = np.zeros(top.shape, dtype=bool)
        for hit in order:
            chosen.append(hit & ~taken)
            taken |= hit
    lasts.reverse()
    every, even = [1.0] * len(places), [1.0 / len(places)] * len(places)
    if op == "avg_pool2d":
        right = spread(even)
        return [("avg_pool2d's gradient goes whole to every entry of its window: distribute_value divides it by the "
                 f"window's {len(places)} entries", [spread(every) - right], UPSTREAM),
                ("avg_pool2d's gradient goes to the window's maximum: the max pool's mask in an average pool",
                 [spread(firsts) - right], UPSTREAM)]
    right = spread(firsts)
    ties = int(np.count_nonzero(sum(h.astype(int) for h in hits) > 1))
    slips: list[Slip] = []
    if ties:
        slips += [(f"max_pool2d's gradient goes to every tied maximum of a window (the course's mask, x == np.max(x)); "
                   f"the engine, as PyTorch, sends it to the first only: in the {ties} windows with a tie yours hands "
                   f"the gradient out more than once", [spread(hits) - right], UPSTREAM),
                  (f"right except at a kink: {ties} max_pool2d windows hold a tied maximum, and there yours sends the "
                   f"gradient to the last one, the engine (as PyTorch) to the first. Both are valid choices and differ "
                   f"only there", [spread(lasts) - right], KINK)]
    slips += [("max_pool2d's gradient goes to every entry of its window: the mask (create_mask_from_window) left out",
               [spread(every) - right], UPSTREAM),
              ("max_pool2d's gradient is shared evenly over its window (distribute_value, the average pool's rule); a "
               "max pool's goes to the window's maximum alone", [spread(even) - right], UPSTREAM)]
    return slips


def _op_name(node: Tensor) -> str:
    return node.op.name if node.op is not None else ""


def _add_divisor(found: dict[str, set[float]], d: float) -> None:
    """An integer from 3 up is an m (2 is a square's 2, named apart); a fraction is a keep_prob."""
    if d >= 3 and _near(d, round(d)):
        found["m"].add(float(round(d)))
    elif d < 1:   # d > 0: a divisor, or the inverse of a positive factor
        found["keep_prob"].add(d)

