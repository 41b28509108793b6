"""The engine's messages: how a tensor is described, why shapes clash, and what ``detect_anomaly`` reports.

The engine raises with one call to a builder here, so its own code reads as the story it tells; every message
says what was called, with which shapes, and how to fix it (the README's error catalogue quotes them).
"""

from __future__ import annotations

import math
import os
import sys
import traceback
import warnings
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import ops
from .node import AnyNode, Node
from .ops import Op

__all__ = [
    "LearnerWarning", "learner_warning", "second_pass", "watch_promotion", "watch_nonfinite",
    "as_array", "ragged", "describe", "stats", "user_site", "shape_error", "not_requiring_grad", "non_scalar",
    "data_not_float", "checked_grad", "shape_changed", "checked_gradient", "not_float", "part_of_graph",
    "write_into_parameter", "update_in_place", "watch_rebuilt_parameter", "check_finite_output", "check_finite_grads",
]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class LearnerWarning(UserWarning):
    """A likely mistake that is not an error. Each kind is shown once per place in your code; silence them with
    ``warnings.simplefilter("ignore", LearnerWarning)``."""


_WARNED: set[tuple[str, str, int]] = set()


def learner_warning(kind: str, message: str) -> None:
    """Warn at the innermost line of the learner's own code, once per kind and place."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__", "").split(".")[0] == "tinygrad_edu":
        frame = frame.f_back
    place = (kind, frame.f_code.co_filename, frame.f_lineno)
    if place not in _WARNED:
        _WARNED.add(place)
        warnings.warn_explicit(message, LearnerWarning, frame.f_code.co_filename, frame.f_lineno,
                               module=frame.f_globals.get("__name__", "__main__"))


_REBUILT: dict[int, weakref.ref[Any]] = {}  # the first w of each `w = w - lr * w.grad` chain, by id


def second_pass(leaf: Node) -> None:
    """A leaf's .grad receives a second backward() pass: right for gradient accumulation, a bug in a loop."""
    rebuilt = _REBUILT.get(id(leaf))
    if rebuilt is not None and rebuilt() is leaf:
        return  # the leaf under a `w = w - lr * w.grad` chain: watch_rebuilt_parameter named the fix
    learner_warning("accumulate", (
        f"backward(): {describe(leaf)} already had a .grad, and this pass was added to it (leaves accumulate "
        f"gradients). In a training loop, call zero_grad() (optimizer.zero_grad() or model.zero_grad()) before "
        f"each backward(); if you accumulate on purpose, silence this LearnerWarning."))


def watch_promotion(op: type[Op], parents: Sequence[Node], out: np.ndarray) -> None:
    """float32 meets float64: numpy silently makes the result float64 (twice the memory, slower math)."""
    kinds = {p.dtype for p in parents}
    if out.dtype == np.float64 and np.dtype(np.float32) in kinds:
        names = ", ".join(f"{p.name or f'input {i}'} {p.dtype}" for i, p in enumerate(parents))
        learner_warning("promotion", (
            f"{op.name}: a float32 tensor met a float64 one ({names}), so the result is float64. Make both the "
            f"same dtype, e.g. Tensor(x, dtype=np.float32) or model parameters created with dtype=np.float32."))


# numpy's own warning for the same event ("divide by zero encountered in log") would point at ops.py, a line the
# learner did not write; watch_nonfinite says it once, at the learner's line, with the way out
warnings.filterwarnings("ignore", r"(divide by zero|invalid value) encountered in (log|divide)", RuntimeWarning,
                        r"tinygrad_edu\.ops")


def watch_nonfinite(out: AnyNode, *inputs: Node) -> AnyNode:
    """``log`` or a division made Inf or NaN from finite inputs (log(0), x / 0)."""
    a = out.data
    # a one-element result (W1's `loss / n` every step) is checked in Python, without numpy's call overhead
    finite = math.isfinite(a.item()) if a.size == 1 and a.dtype.kind == "f" else np.isfinite(a).all()
    if not finite and all(np.isfinite(t.data).all() for t in inputs):
        assert out.op is not None  # every op's output knows its op
        learner_warning("nonfinite", (
            f"{out.op.name} produced Inf or NaN from finite inputs ({stats(out.data)}); log(0) and x / 0 are the "
            f"usual causes. Wrap the step in `with detect_anomaly():` to find where it starts, and prefer the "
            f"stable losses: losses.binary_cross_entropy_with_logits, losses.softmax_cross_entropy "
            f"(they take logits, not probabilities)."))
    return out


def as_array(data: Any, dtype: Any) -> np.ndarray:
    """``np.asarray``, with a message that says which rows are ragged where numpy says "inhomogeneous shape"."""
    try:
        return np.asarray(data, dtype=dtype)
    except ValueError as error:
        if not isinstance(data, (list, tuple)):
            raise
        raise ragged(data) from error


def ragged(data: Any) -> ValueError:
    """``Tensor([[1, 2], [3]])``: say which rows have which lengths (numpy says "inhomogeneous shape")."""
    level: list[tuple[str, Any]] = [("", data)]
    while level:
        rows = [(f"{path}[{i}]", row) for path, items in level if isinstance(items, (list, tuple))
                for i, row in enumerate(items)]
        lengths = {path: len(row) if isinstance(row, (list, tuple)) else None for path, row in rows}
        if len(set(lengths.values())) > 1:
            values = list(lengths.values())
            common = max(values, key=values.count)  # the usual length (the first row's, in a tie)
            odd = [f"row {path} has {'a number' if n is None else f'length {n}'}"
                   for path, n in lengths.items() if n != common][:5]
            usual = "numbers" if common is None else f"length {common}"
            return ValueError(f"Tensor(...): the nested lists are ragged: {', '.join(odd)}, where the other rows at "
                              f"that depth have {usual}. Every row must have the same length; pad the short rows "
                              f"or build one tensor per row.")
        level = [(path, row) for path, row in rows if isinstance(row, (list, tuple))]
    return ValueError("Tensor(...): the nested lists are ragged (rows of different lengths); every row at one "
                      "depth must have the same length.")


def user_site() -> str:
    """file:line of the innermost frame outside this package: where the learner's code made a tensor."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR + os.sep):
            return f"{frame.filename}:{frame.lineno}"
    return "<unknown>"


def describe(t: Node) -> str:
    """``tensor 'w' of shape (2, 3) and dtype float64 (made by matmul)``."""
    label = f"'{t.name}' " if t.name else ""
    made_by = f"made by {t.op.name}" if t.op is not None else "created from data"
    return f"tensor {label}of shape {t.shape} and dtype {t.dtype} ({made_by})"


def stats(a: np.ndarray) -> str:
    """Shape, finite range and NaN/Inf counts of an array: what a learner needs to find a blow-up."""
    if a.size == 0 or a.dtype.kind not in "fc":
        return f"shape {a.shape}"
    finite = a[np.isfinite(a)]
    lo, hi = (f"{finite.min():.4g}", f"{finite.max():.4g}") if finite.size else ("-", "-")
    return (f"shape {a.shape}, finite min {lo}, finite max {hi}, "
            f"NaN: {int(np.isnan(a).sum())}, Inf: {int(np.isinf(a).sum())}")


def shape_error(op: type[Op], parents: Sequence[Node], kwargs: dict[str, Any], error: ValueError) -> str:
    """Why numpy refused ``op`` on these inputs, in the learner's terms, with the fix."""
    shapes = ", ".join(f"{p.name or f'input {i}'} {p.shape}" for i, p in enumerate(parents))
    if op is ops.MatMul and parents[0].ndim and parents[1].ndim:
        a, b = parents[0].shape, parents[1].shape
        k_b = b[-2] if len(b) > 1 else b[0]
        hint = (f"For a @ b the last axis of a ({a[-1]}) must equal the "
                f"{'second-to-last' if len(b) > 1 else 'only'} axis of b ({k_b}); did you mean a @ b.T?")
    elif op is ops.Concatenate:
        hint = (f"concatenate needs inputs with the same number of axes and the same sizes on every axis except "
                f"axis {kwargs['axis']}; reshape the odd one out.")
    elif op is ops.Stack:
        hint = "stack needs inputs of exactly the same shape (it adds a new axis); reshape the odd one out."
    elif len(parents) > 1:
        hint = ("Broadcasting compares shapes from the right: each pair of axes must be equal or one of them "
                f"1{_clash(parents)}. Reshape one input (e.g. x.reshape(-1, 1)) so the axes line up.")
    else:
        hint = f"Arguments: {kwargs}."
    return f"{op.name}: cannot apply to {shapes}. {hint} (numpy said: {error})"


def _clash(parents: Sequence[Node]) -> str:
    """``", and axis -1 clashes: 4 vs 3"``: the first axis, from the right, where the shapes disagree."""
    shapes = [p.shape for p in parents]
    for k in range(1, max(len(s) for s in shapes) + 1):
        sizes = {s[-k] for s in shapes if len(s) >= k} - {1}
        if len(sizes) > 1:
            return f", and axis -{k} clashes: {' vs '.join(str(s[-k]) for s in shapes if len(s) >= k)}"
    return ""


def not_requiring_grad(t: Node) -> RuntimeError:
    why = ("it was created from data without requires_grad=True" if t.op is None else
           f"none of the inputs of {t.op.name} required grad (or it ran under no_grad()), so no graph was recorded")
    return RuntimeError(
        f"backward(): {describe(t)} does not require grad: {why}. Create the parameters you want gradients for "
        f"with Tensor(..., requires_grad=True), or call p.requires_grad_() on them before the forward pass.")


def non_scalar(t: Node) -> RuntimeError:
    return RuntimeError(
        f"backward(): {describe(t)} is not a scalar, and the gradient of a non-scalar is a Jacobian, not an "
        f"array of its shape. Reduce it first (loss = y.sum() or y.mean()), or pass the upstream gradient: "
        f"y.backward(gradient=np.ones({t.shape})).")


def data_not_float(t: Node, array: np.ndarray) -> TypeError:
    return TypeError(f"t.data = ...: {describe(t)} requires grad, so its data must be floating-point, not "
                     f"{array.dtype}; convert it first, e.g. np.asarray(values, dtype=np.float64).")


def checked_grad(t: Node, value: np.ndarray) -> np.ndarray:
    """``t.grad = value``: a copy in the tensor's dtype, refused where the mistake is made if it cannot fit."""
    # NOTE: checked here, and not in the middle of a later backward() (which would have added that pass to some
    # leaves already). A copy: backward() adds into .grad in place, which must not change data (`w.grad = b.data`).
    kinds = "fc" if t.dtype.kind == "c" else "f"
    if value.shape != t.shape or value.dtype.kind not in kinds or t.dtype.kind not in "fc":
        raise ValueError(
            f"t.grad = ...: {describe(t)} can only hold a gradient of its own shape, {t.shape}, with "
            f"{'complex' if kinds == 'fc' else 'real'} floating-point values (and only a floating-point tensor has "
            f"one); got shape {value.shape} and dtype {value.dtype}. Give an array like np.zeros({t.shape}), or "
            f"None to clear it.")
    return value.astype(t.dtype)  # always a copy


def shape_changed(leaf: Node) -> RuntimeError:
    return RuntimeError(
        f"backward(): {describe(leaf)} has a .grad of shape {leaf.grad.shape if leaf.grad is not None else None} "
        f"from before its data changed shape, so this pass's gradient cannot be added to it. Call zero_grad() "
        f"after changing the shape of a parameter.")


def checked_gradient(root: Node, gradient: Any, keep_graph: bool = False) -> Any:
    """``backward(gradient=...)``: a copy (never the caller's buffer) in the output's dtype, of its shape; with
    ``keep_graph`` (``grad(..., create_graph=True)``) a Tensor gradient is kept as it is, once its shape fits."""
    keep = keep_graph and isinstance(gradient, type(root))  # a Tensor, as the output is
    array = gradient if keep else np.array(getattr(gradient, "data", gradient), dtype=root.dtype)
    if array.shape != root.shape:
        raise ValueError(
            f"backward(gradient=...): the gradient has shape {array.shape}, but the output is a {describe(root)}; "
            f"the upstream gradient must have exactly the output's shape, {root.shape}.")
    return array


def not_float(t: Node) -> TypeError:
    return TypeError(
        f"requires_grad: {describe(t)} holds {t.dtype} values, and only floating-point tensors can have gradients "
        f"(an integer cannot move by a small step). Make it a float first, e.g. "
        f"Tensor(array.astype(np.float64), requires_grad=True).")


def part_of_graph(t: Node) -> RuntimeError:
    return RuntimeError(f"requires_grad_(False): {describe(t)} is part of a recorded graph; use t = t.detach() to "
                        f"get the same values without history.")


def write_into_parameter(t: Node) -> RuntimeError:
    return RuntimeError(
        f"x[...] = ...: {describe(t)} requires grad, and writing into it in place would not be recorded in the "
        f"graph. Build a new tensor instead (e.g. where(mask, new, x)), or change the values outside training "
        f"under no_grad().")


def update_in_place(t: Node, symbol: str) -> RuntimeError:
    """``w -= lr * w.grad`` with recording on: say ``no_grad()`` first, and name the operator written."""
    name = t.name or "w"
    return RuntimeError(
        f"{name} {symbol} ...: update a tensor that requires grad inside no_grad(): `with no_grad(): {name} -= lr * "
        f"{name}.grad`, then `{name}.grad = None` before the next backward() (or let an optimizer do both: "
        f"optim.SGD(params, lr=lr).step() and .zero_grad()). With gradient recording on, {symbol} would write into "
        f"{describe(t)} without the graph recording it.")


def watch_rebuilt_parameter(w: Node, step: Any) -> None:
    """``w = w - lr * w.grad`` with recording on: the new w is one more node of a graph that grows every step."""
    g = w.grad
    if hasattr(step, "requires_grad"):  # a Tensor: its values, unless it is part of a graph itself
        if step.requires_grad:
            return
        step = step.data
    step = np.asarray(step)
    if g is None or step.shape != g.shape:
        return
    # step = k * grad? Two elements first (a few scalar operations, enough to clear an ordinary subtraction),
    # then every element, relative to each
    i = 0 if g.flat[0] else int(np.argmax(np.abs(g)))
    k = float(step.flat[i] / g.flat[i]) if g.flat[i] else 0.0
    last = step.flat[-1]
    if k == 0 or abs(last - k * g.flat[-1]) > 1e-9 * abs(last) or \
            not np.all(np.abs(step - k * g) <= 1e-9 * np.abs(step)):
        return
    first = w
    while first.parents:
        first = first.parents[0]
    _REBUILT[id(first)] = weakref.ref(first)
    name = w.name or "w"
    learner_warning("rebuilt", (
        f"{name} - lr * {name}.grad: {describe(w)} is rebuilt from itself with gradient recording on, so the "
        f"new {name} is not a leaf: it is one more node of a graph that grows by one step each time (and every "
        f"backward() walks all of it, down to the first {name}). Update it in place instead: `with no_grad(): "
        f"{name} -= lr * {name}.grad`, then `{name}.grad = None`; or use an optimizer: `opt = "
        f"optim.SGD([{name}], lr=lr)`, then opt.step() and opt.zero_grad() each step."))


def check_finite_output(out: Node, parents: Sequence[Node]) -> None:
    """``detect_anomaly``: remember where ``out`` was made, and stop if it holds NaN or Inf."""
    out._site = user_site()
    if out.dtype.kind in "fc" and not np.isfinite(out.data).all():
        assert out.op is not None  # every op's output knows its op
        inputs = "\n".join(f"  input {i}: {describe(p)}, {stats(p.data)}" for i, p in enumerate(parents))
        raise FloatingPointError(
            f"detect_anomaly: {out.op.name} produced a non-finite value ({stats(out.data)}) at "
            f"{out._site}.\n{inputs}")


def check_finite_grads(node: Node, parent_grads: Sequence[Any]) -> None:
    """``detect_anomaly``: stop at the first rule that sends a NaN or Inf gradient to an input."""
    for parent, g in zip(node.parents, parent_grads):
        values = None if g is None else np.asarray(getattr(g, "data", g))
        if values is not None and not np.isfinite(values).all():
            assert node.op is not None  # a node with parents was recorded by its op
            raise FloatingPointError(
                f"detect_anomaly: the backward of {node.op.name} (made at {node._site or '<unknown>'}) gave a "
                f"non-finite gradient ({stats(values)}) for {describe(parent)}.\n"
                f"  forward value of {parent.name or 'that input'}: {stats(parent.data)}")
