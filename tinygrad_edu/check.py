"""Check gradients you derived by hand against the engine's, and say what a wrong one most likely got wrong.

You wrote a forward pass and its backprop in numpy, in your own layout (the course's ``W1`` of shape
``(n_h, n_x)``, Nielsen's lists, anything). Give ``check_backprop`` three things:

- ``params``: a dict of name -> array, your parameters as you keep them;
- ``manual(params)``: your backprop on your batch, returning ``{name: gradient}`` (or ``{"d" + name: ...}``,
  the course's ``grads["dW1"]``), or a ``(cost, grads)`` pair;
- ``loss(t)``: the same forward pass and cost written with engine operators, where ``t`` maps each name to a
  Tensor holding a copy of your array; it returns the scalar cost.

The engine differentiates ``loss`` and the report compares, parameter by parameter. A parameter that
disagrees gets a diagnosis: a constant factor (a missing ``1/m``), a flipped sign, the transpose, another
parameter's gradient, right on some rows or columns only, or where a NaN or Inf first appears.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = ["check_backprop", "BackpropReport", "GradientRow"]

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class GradientRow:
    """One parameter's comparison: your gradient against the engine's."""

    name: str
    shape: tuple[int, ...]            # the parameter's shape
    abs_error: float                  # max |yours - engine| (inf if yours has the wrong shape or is not finite)
    rel_error: float                  # the same, divided by max |engine|
    index: tuple[int, ...] | None     # the first element that disagrees (None if all agree)
    yours: float | None               # your gradient there
    engine: float | None              # the engine's gradient there
    diagnosis: str = ""               # what a hand derivation usually got wrong here ("" when it agrees)

    @property
    def ok(self) -> bool:
        return not self.diagnosis


@dataclass
class BackpropReport:
    """What ``check_backprop`` found: ``ok``, ``worst``, one ``GradientRow`` per parameter, and the costs."""

    tolerance: float
    rows: list[GradientRow] = field(default_factory=list)
    cost: float | None = None         # the cost your manual returned, if it returned one
    engine_cost: float = float("nan")  # loss(t)

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

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
        return f"{verdict}: worst relative error {self.worst:.2e} (tolerance {self.tolerance:.0e})"

    def _cost_line(self) -> str:
        if self.cost is None:
            return f"cost: engine {self.engine_cost:.12g}"
        line = f"cost: yours {self.cost:.12g}, engine {self.engine_cost:.12g}"
        if not np.isclose(self.cost, self.engine_cost, rtol=max(self.tolerance, 1e-12), atol=0):
            line += "  (they differ: your forward pass and loss(t) do not compute the same cost)"
        return line

    def __str__(self) -> str:
        head = ("parameter", "shape", "max abs", "max rel", "first disagreement")
        cells = self._cells()
        width = [max(len(head[i]), *(len(c[i]) for c in cells)) for i in range(4)]
        lines = [self._cost_line(),
                 f"{head[0]:{width[0]}}  {head[1]:>{width[1]}}  {head[2]:>{width[2]}}  {head[3]:>{width[3]}}  "
                 f"{head[4]}"]
        for c in cells:
            lines.append(f"{c[0]:{width[0]}}  {c[1]:>{width[1]}}  {c[2]:>{width[2]}}  {c[3]:>{width[3]}}  {c[4]}")
        lines.append(self._verdict())
        lines += [f"  {r.name}: {r.diagnosis}" for r in self.rows if not r.ok]
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
        return (f"<div><p>{html.escape(self._cost_line())}</p><table><tr>{head}</tr>{''.join(body)}</table>"
                f'<p style="color:{colour}"><b>{html.escape(self._verdict())}</b></p></div>')


# -- check_backprop -----------------------------------------------------------------------------------------

def check_backprop(manual: Callable[[Arrays], Any], loss: Callable[[dict[str, Tensor]], Tensor],
                   params: Mapping[str, Any], tolerance: float = 1e-10) -> BackpropReport:
    """Compare ``manual(params)`` (your backprop) with the engine's gradients of ``loss``; see the module doc.

    ``params`` values are arrays; they may also be the Tensors themselves (``dict(model.named_parameters())``),
    and then ``loss`` gets those very tensors (their ``.grad`` is reset and then holds the engine's gradient).
    ``manual`` always gets copies, so a backprop that changes its inputs cannot change the check.
    A gradient agrees when max |yours - engine| <= ``tolerance`` * max |engine| (an all-zero engine gradient:
    when max |yours| <= ``tolerance``).
    """
    if not isinstance(params, Mapping) or not params:
        raise TypeError(f"check_backprop: params must be a non-empty dict of name -> array, like "
                        f"{{'W1': W1, 'b1': b1}}; got {type(params).__name__}.")
    if not isinstance(tolerance, (int, float)) or not tolerance >= 0:
        raise ValueError(f"check_backprop: tolerance is the largest relative error that agrees, a number >= 0 "
                         f"(1e-10 in float64, about 1e-4 in float32); got {tolerance!r}.")
    arrays = {name: _as_array(name, value) for name, value in params.items()}
    cost, by_hand = _manual_gradients(manual, arrays)
    tensors = {name: _as_tensor(name, params[name], arrays[name]) for name in arrays}
    out = loss(tensors)
    if not isinstance(out, Tensor) or out.size != 1:
        got = f"a Tensor of shape {out.shape}" if isinstance(out, Tensor) else f"a {type(out).__name__}"
        raise TypeError(f"check_backprop: loss(t) must return the cost as a scalar Tensor, built from the "
                        f"tensors in t with engine operators; it returned {got}. Reduce it (.sum() or .mean()) "
                        f"and keep it a Tensor (no .item(), no numpy functions on t).")
    out.backward()
    engine = {name: np.zeros_like(arrays[name]) if t.grad is None else np.array(t.grad)
              for name, t in tensors.items()}
    report = BackpropReport(tolerance, cost=cost, engine_cost=float(out.item()))
    for name in arrays:
        report.rows.append(_compare(name, by_hand[name], engine, tolerance))
    return report


def _as_array(name: str, value: Any) -> np.ndarray:
    array = np.array(value.data if isinstance(value, Tensor) else value)  # a copy
    if array.dtype.kind != "f":
        if array.dtype.kind not in "iub":
            raise TypeError(f"check_backprop: params[{name!r}] must be a numeric array, got dtype {array.dtype}.")
        array = array.astype(np.float64)
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


def _manual_gradients(manual: Callable[[Arrays], Any], arrays: Arrays) -> tuple[float | None, Arrays]:
    """Run your backprop on copies; return (its cost or None, its gradients keyed by parameter name)."""
    result = manual({name: a.copy() for name, a in arrays.items()})
    cost = None
    if isinstance(result, (tuple, list)) and len(result) == 2 and isinstance(result[1], Mapping):
        cost, result = result
        cost = float(np.asarray(cost, dtype=np.float64).reshape(-1)[0]) if np.size(cost) == 1 else None
    if not isinstance(result, Mapping):
        raise TypeError(f"check_backprop: manual(params) must return a dict of gradients ({{'dW1': ..., ...}}) "
                        f"or a (cost, grads) pair; it returned a {type(result).__name__}.")
    grads: Arrays = {}
    keys: dict[str, Any] = {}
    for key, value in result.items():
        name = _parameter_of(key, arrays)
        if name is None:
            raise KeyError(f"check_backprop: manual returned a gradient {key!r} for no parameter: params has "
                           f"{_names(arrays)}, and a gradient is keyed by the name or by 'd' + name. (The "
                           f"course's grads also hold dA1, dA2, ...: leave those out of what manual returns.)")
        if name in grads:
            raise KeyError(f"check_backprop: manual returned two gradients for {name!r} ({name!r} and "
                           f"{'d' + name!r}); return one.")
        keys[name] = key
        grads[name] = np.asarray(value)
        if grads[name].dtype.kind in "iub":
            grads[name] = grads[name].astype(np.float64)
    missing = [name for name in arrays if name not in grads]
    if missing:
        raise KeyError(f"check_backprop: manual returned no gradient for {_names(missing)} (looked for "
                       f"{' or '.join(repr(k) for k in (missing[0], 'd' + missing[0]))}); it returned "
                       f"{_names(result)}.")
    for name, g in grads.items():
        shape = arrays[name].shape
        if g.size != arrays[name].size:
            raise ValueError(f"check_backprop: manual's {keys[name]!r} has shape {g.shape}, which cannot be "
                             f"the gradient of a parameter of shape {shape} ({g.size} values instead of "
                             f"{arrays[name].size}); a gradient has its parameter's shape. (A sum over the "
                             f"examples left out? Check the axis and keepdims.)")
    return cost, grads


def _parameter_of(key: Any, arrays: Arrays) -> str | None:
    """The parameter a gradient's key names: the name itself, or "d" + name (the course's dW1)."""
    if key in arrays:
        return key
    if isinstance(key, str) and key.startswith("d") and key[1:] in arrays:
        return key[1:]
    return None


def _names(keys: Any) -> str:
    return ", ".join(repr(k) for k in keys) or "nothing"


# -- comparing one parameter, and the diagnosis --------------------------------------------------------------

def _compare(name: str, yours: np.ndarray, engine: Arrays, tolerance: float) -> GradientRow:
    right = engine[name]
    shape_problem = ""
    if yours.shape != right.shape:
        # Same number of values, other shape: compare the values as they would line up, and say so.
        if yours.ndim == 2 and yours.shape == right.shape[::-1]:
            yours = yours.T
            shape_problem = (f"has shape {yours.shape[::-1]}, the transpose of the parameter's {right.shape}: "
                             f"you computed the transpose of the gradient")
        else:
            shape_problem = _reshape_problem(yours.shape, right.shape)
            yours = yours.reshape(right.shape)
    diff = np.abs(yours - right)
    scale = float(np.max(np.abs(right))) if right.size and np.all(np.isfinite(right)) else 0.0
    bad = ~(diff <= tolerance * (scale if scale > 0 else 1.0))   # NaN compares False: a NaN is bad
    finite = bool(np.all(np.isfinite(diff)))
    abs_error = float(np.max(diff)) if finite and diff.size else (0.0 if finite else float("inf"))
    rel_error = abs_error / scale if scale > 0 else abs_error
    index = None
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
    diagnosis = ""
    if shape_problem:
        rest = "its values agree once it is transposed" if "transpose" in shape_problem else \
            "its values agree once reshaped"
        if index is not None:
            rest = "and even lined up it disagrees: " + _diagnose(name, yours, right, engine, bad, tolerance)
        diagnosis = f"{shape_problem}; {rest}."
        abs_error = rel_error = float("inf")
    elif index is not None:
        diagnosis = _diagnose(name, yours, right, engine, bad, tolerance)
    return GradientRow(name, right.shape, abs_error, rel_error, index,
                       None if index is None else float(yours[index]),
                       None if index is None else float(right[index]), diagnosis)


def _reshape_problem(got: tuple[int, ...], want: tuple[int, ...]) -> str:
    text = f"has shape {got}, but the parameter's is {want}"
    try:
        updated = np.broadcast_shapes(got, want)
    except ValueError:
        return text
    if updated != want:
        text += f" (p - lr * grad would broadcast to {updated}, not update p)"
    return text


def _diagnose(name: str, yours: np.ndarray, right: np.ndarray, engine: Arrays, bad: np.ndarray,
              tolerance: float) -> str:
    """The first simple story that explains yours from the right gradient, most telling first."""
    for label, array in (("yours", yours), ("the engine's", right)):
        if not np.all(np.isfinite(array)):
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
            kind = "NaN" if np.isnan(array[where]) else "Inf"
            fix = ("look for a log of 0, a division by 0 or an exp that overflowed" if label == "yours" else
                   "loss(t) itself overflows there; check the forward pass")
            return f"not finite: {label} has {kind} first at index {where} ({fix})"
    if not np.any(yours):
        return "all zeros: this gradient was never filled in (or a mask zeroed it)"

    def close(a: np.ndarray, b: np.ndarray) -> bool:
        return bool(np.max(np.abs(a - b)) <= tolerance * max(float(np.max(np.abs(b))), 1e-300))

    if close(yours, -right):
        return "sign flipped: yours is minus the right gradient (dL/dp, which points uphill)"
    if np.any(right):
        ratio = float(np.vdot(yours, right) / np.vdot(right, right))  # least squares: yours ~ ratio * right
        if ratio != 0 and close(yours, ratio * right):
            digits = ".2f" if abs(abs(ratio) - 1) > 0.005 else ".8f"
            text = f"{ratio:{digits}}" + (f" (= 1/{1 / ratio:{digits}})" if abs(ratio) < 1 else "")
            sign = "sign flipped and " if ratio < 0 else ""
            return (f"{sign}off by a constant factor: yours is {text} times the right gradient (a missing or "
                    f"extra 1/m, or the 2 from a square?)")
    if right.ndim == 2 and right.shape[0] == right.shape[1] and close(yours, right.T):
        return "transpose: yours is the transpose of the right gradient (check the order in the matrix product)"
    for other, g in engine.items():
        if other != name and g.shape == yours.shape and np.any(g) and close(yours, g):
            return f"this is the gradient of {other!r}, not of {name!r} (two gradients swapped or copied?)"
    return _where_wrong(bad, (yours != 0) | (right != 0))


def _where_wrong(bad: np.ndarray, nonzero: np.ndarray) -> str:
    """Which rows / columns hold every disagreeing element, when some rows / columns with a nonzero gradient
    agree (rows where both gradients are 0, such as blank pixels, prove nothing)."""
    if bad.ndim == 1:
        wrong = np.flatnonzero(bad)
        if not np.array_equal(wrong, np.flatnonzero(nonzero | bad)):
            return (f"right on some entries only: wrong at {_spans(wrong)} ({len(wrong)} of {bad.size}), the "
                    f"others agree")
    elif bad.ndim >= 2:
        parts = []
        for label, axes in (("rows", tuple(range(1, bad.ndim))), ("columns", tuple(range(bad.ndim - 1)))):
            wrong = np.flatnonzero(bad.any(axis=axes))
            if not np.array_equal(wrong, np.flatnonzero((nonzero | bad).any(axis=axes))):
                parts.append(f"{label} {_spans(wrong)} ({len(wrong)} of {bad.shape[0 if label == 'rows' else -1]})")
        if parts:
            return (f"right except in {' and '.join(parts)}, where every disagreeing value lies (one unit, one "
                    f"example or one bias term handled differently?)")
    return ("no simple pattern (not a factor, sign, transpose or another parameter's gradient): go through "
            "the derivation step by step")


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
