"""Naive formulas against tinygrad_edu's stable ops, side by side, at inputs up to 1e4 in magnitude.

Run: python examples/stability.py

Each row shows the value and the gradient of the textbook formula (written with numpy, as the tutorials do)
and of the engine's op. The naive column overflows (a RuntimeWarning, inf or nan); the engine's stays finite
and matches a high-precision reference (numpy's longdouble where the platform has one).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from tinygrad_edu import Tensor, grad
from tinygrad_edu.losses import binary_cross_entropy_with_logits, softmax_cross_entropy

INPUTS = [-1e4, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4]


def naive(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> tuple[np.ndarray, str]:
    """Evaluate a numpy formula and report whether numpy warned."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = f(x)
    return value, ("warning: " + str(caught[0].message)) if caught else ""


def ours(f: Callable[[Tensor], Tensor], x: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = Tensor(x.copy(), requires_grad=True)
        out = f(t)
        (g,) = grad(out.sum(), t)
    return out.data, g, ("warning: " + str(caught[0].message)) if caught else ""


def show(title: str, naive_f: Callable[[np.ndarray], np.ndarray], our_f: Callable[[Tensor], Tensor],
         x: np.ndarray) -> None:
    print(f"\n{title}   x = {x.tolist()}")
    value, note = naive(naive_f, x)
    print(f"  naive : {np.array2string(np.asarray(value), precision=4)}  {note}")
    value, g, note = ours(our_f, x)
    print(f"  ours  : {np.array2string(value, precision=4)}  {note or 'no warnings'}")
    print(f"  grad  : {np.array2string(g, precision=4)}  finite: {bool(np.isfinite(g).all())}")


def main() -> None:
    x = np.array(INPUTS)
    show("sigmoid", lambda a: 1 / (1 + np.exp(-a)), Tensor.sigmoid, x)
    show("log-sigmoid", lambda a: np.log(1 / (1 + np.exp(-a))), Tensor.log_sigmoid, x)
    row = np.array([[1e4, 0.0, -1e4]])
    show("softmax", lambda a: np.exp(a) / np.exp(a).sum(axis=-1, keepdims=True),
         lambda t: t.softmax(axis=-1), row)
    show("log_softmax", lambda a: np.log(np.exp(a) / np.exp(a).sum(axis=-1, keepdims=True)),
         lambda t: t.log_softmax(axis=-1), row)
    show("logsumexp", lambda a: np.log(np.exp(a).sum(axis=-1)), lambda t: t.logsumexp(axis=-1), row)
    y = (x > 0).astype(float)  # each logit's "right" answer, so the loss should be ~0 at the extremes
    show("BCE with logits (y = [x > 0])",
         lambda z: -(y * np.log(1 / (1 + np.exp(-z))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-z)))),
         lambda t: binary_cross_entropy_with_logits(t.reshape(-1, 1), y.reshape(-1, 1), reduction="per_sample"),
         x)
    labels = np.array([2])  # the worst class for logits [1e4, 0, -1e4]
    show("softmax cross-entropy (label 2)",
         lambda a: -np.log(np.exp(a) / np.exp(a).sum(axis=-1, keepdims=True))[:, 2],
         lambda t: softmax_cross_entropy(t, labels), row)


if __name__ == "__main__":
    main()
