"""The engine's messages: how a tensor is described, why shapes clash, and what ``detect_anomaly`` reports.

The engine raises with one call to a builder here, so its own code reads as the story it tells; every message
says what was called, with which shapes, and how to fix it (the README's error catalogue quotes them).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import ops

if TYPE_CHECKING:
    from .ops import Op
    from .tensor import Tensor

__all__ = ["describe", "stats", "user_site", "shape_error", "not_requiring_grad", "non_scalar",
           "check_finite_output", "check_finite_grads"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def user_site() -> str:
    """file:line of the innermost frame outside this package: where the learner's code made a tensor."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno}"
    return "<unknown>"


def describe(t: Tensor) -> str:
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


def shape_error(op: type[Op], parents: Sequence[Tensor], kwargs: dict[str, Any], error: ValueError) -> str:
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


def _clash(parents: Sequence[Tensor]) -> str:
    """``", and axis -1 clashes: 4 vs 3"``: the first axis, from the right, where the shapes disagree."""
    shapes = [p.shape for p in parents]
    for k in range(1, max(len(s) for s in shapes) + 1):
        sizes = {s[-k] for s in shapes if len(s) >= k} - {1}
        if len(sizes) > 1:
            return f", and axis -{k} clashes: {' vs '.join(str(s[-k]) for s in shapes if len(s) >= k)}"
    return ""


def not_requiring_grad(t: Tensor) -> RuntimeError:
    why = ("it was created from data without requires_grad=True" if t.op is None else
           f"none of the inputs of {t.op.name} required grad (or it ran under no_grad()), so no graph was recorded")
    return RuntimeError(
        f"backward(): {describe(t)} does not require grad: {why}. Create the parameters you want gradients for "
        f"with Tensor(..., requires_grad=True), or call p.requires_grad_() on them before the forward pass.")


def non_scalar(t: Tensor) -> RuntimeError:
    return RuntimeError(
        f"backward(): {describe(t)} is not a scalar, and the gradient of a non-scalar is a Jacobian, not an "
        f"array of its shape. Reduce it first (loss = y.sum() or y.mean()), or pass the upstream gradient: "
        f"y.backward(gradient=np.ones({t.shape})).")


def check_finite_output(out: Tensor, parents: Sequence[Tensor]) -> None:
    """``detect_anomaly``: remember where ``out`` was made, and stop if it holds NaN or Inf."""
    out._site = user_site()
    if out.dtype.kind in "fc" and not np.isfinite(out.data).all():
        inputs = "\n".join(f"  input {i}: {describe(p)}, {stats(p.data)}" for i, p in enumerate(parents))
        raise FloatingPointError(
            f"detect_anomaly: {out.op.name} produced a non-finite value ({stats(out.data)}) at "
            f"{out._site}.\n{inputs}")


def check_finite_grads(node: Tensor, parent_grads: Sequence[Any]) -> None:
    """``detect_anomaly``: stop at the first rule that sends a NaN or Inf gradient to an input."""
    for parent, g in zip(node.parents, parent_grads):
        values = None if g is None else np.asarray(getattr(g, "data", g))
        if values is not None and not np.isfinite(values).all():
            raise FloatingPointError(
                f"detect_anomaly: the backward of {node.op.name} (made at {node._site or '<unknown>'}) gave a "
                f"non-finite gradient ({stats(values)}) for {describe(parent)}.\n"
                f"  forward value of {parent.name or 'that input'}: {stats(parent.data)}")
