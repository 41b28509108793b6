"""The mnist3 tutorial (``000_e4b1b14548f8685e.txt``): a 3-layer MNIST network by hand, in numpy.

The tutorial's network is 784-64-64-10 with sigmoid on every layer and no biases; rows are samples::

    z1 = x w1,   a1 = sig(z1)            x (n, 784), w1 (784, h)
    z2 = a1 w2,  a2 = sig(z2)            w2 (h, h)
    z3 = a2 w3,  a3 = sig(z3)            w3 (h, 10)

Its loss is cross-entropy on the sigmoid outputs, summed over the 10 outputs and averaged over the n samples,

    L = -(1/n) sum [y log a3 + (1 - y) log(1 - a3)],

for which the tutorial states ``dc/da3 * da3/dz3 = a3 - y`` (its ``cross_entropy`` helper divides by the number of
samples), i.e. ``dL/dz3 = (a3 - y) / n``. The chain rule then gives, with sig'(z) = a (1 - a)::

    dL/dw3 = a2^T d3,  d3 = (a3 - y) / n
    dL/dw2 = a1^T d2,  d2 = (d3 w3^T) * a2 (1 - a2)
    dL/dw1 = x^T d1,   d1 = (d2 w2^T) * a1 (1 - a1)

and the update is ``w -= lr * dL/dw``. All randomness comes from an explicit ``np.random.Generator``.

>>> rng = np.random.default_rng(0)
>>> params = init_params(rng, hidden=5)
>>> x, y = rng.random((3, 784)), np.eye(10)[[1, 2, 3]]
>>> value, grads = gradients(params, x, y)
>>> sorted(grads), grads["w1"].shape, bool(np.isclose(value, loss(params, x, y)))
(['w1', 'w2', 'w3'], (784, 5), True)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from ._common import generator, softplus, stable_sigmoid

__all__ = ["sigmoid", "init_params", "forward", "loss", "gradients", "sgd_step", "predict", "train"]

Params = dict[str, np.ndarray]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The tutorial's ``sig``: 1 / (1 + exp(-z)), computed without overflow; keeps z's float dtype."""
    return stable_sigmoid(z)


def init_params(rng: np.random.Generator | int, hidden: int = 64, *, inputs: int = 784, outputs: int = 10,
                dtype: DTypeLike = np.float64) -> Params:
    """Standard-normal weights, as the tutorial's ``np.random.randn``: ``w1 (784, h), w2 (h, h), w3 (h, 10)``.

    >>> {k: v.shape for k, v in init_params(np.random.default_rng(0), hidden=8).items()}
    {'w1': (784, 8), 'w2': (8, 8), 'w3': (8, 10)}
    """
    rng = generator(rng, "mnist3.init_params")
    if hidden < 1:
        raise ValueError(f"mnist3.init_params: hidden must be at least 1, got {hidden}.")
    return {"w1": rng.standard_normal((inputs, hidden)).astype(dtype, copy=False),
            "w2": rng.standard_normal((hidden, hidden)).astype(dtype, copy=False),
            "w3": rng.standard_normal((hidden, outputs)).astype(dtype, copy=False)}


def _check(params: Params, x: np.ndarray, y: np.ndarray | None, caller: str) -> None:
    w1, w2, w3 = params["w1"], params["w2"], params["w3"]
    if x.ndim != 2 or x.shape[1] != w1.shape[0]:
        raise ValueError(f"mnist3.{caller}: x must be (n, {w1.shape[0]}) with one sample per row, got {x.shape}.")
    if w2.shape != (w1.shape[1], w1.shape[1]) or w3.shape[0] != w1.shape[1]:
        raise ValueError(f"mnist3.{caller}: weight shapes {w1.shape}, {w2.shape}, {w3.shape} do not chain; "
                         "expected (784, h), (h, h), (h, 10) as init_params makes them.")
    if y is not None and y.shape != (x.shape[0], w3.shape[1]):
        raise ValueError(f"mnist3.{caller}: y must be one-hot rows {(x.shape[0], w3.shape[1])}, got {y.shape}; "
                         "use tinygrad_edu.datasets.one_hot(labels).")


def _forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # returns a1, a2 and the output pre-activation z3 (the loss is computed from z3 to stay finite)
    a1 = sigmoid(x @ params["w1"])
    a2 = sigmoid(a1 @ params["w2"])
    return a1, a2, a2 @ params["w3"]


def forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tutorial's ``feedforward``: the activations ``(a1, a2, a3)``, each (n, width)."""
    x = np.asarray(x)
    _check(params, x, None, "forward")
    a1, a2, z3 = _forward(params, x)
    return a1, a2, sigmoid(z3)


def _loss_from_logits(z3: np.ndarray, y: np.ndarray) -> float:
    # NOTE: -[y log sig(z) + (1-y) log(1-sig(z))] = softplus(z) - y z exactly; this form stays finite
    # when a3 rounds to 0 or 1, which standard-normal weights on 784 inputs make common.
    return float(np.sum(softplus(z3) - y * z3) / z3.shape[0])


def _as_float(x: np.ndarray, y: np.ndarray, params: Params) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    dtype = np.result_type(x, *params.values(), np.float16)  # at least a float; float32 stays float32
    return x.astype(dtype, copy=False), np.asarray(y, dtype=dtype)


def loss(params: Params, x: np.ndarray, y: np.ndarray) -> float:
    """L = -(1/n) sum [y log a3 + (1 - y) log(1 - a3)] over the n rows and 10 outputs."""
    x, y = _as_float(x, y, params)
    _check(params, x, y, "loss")
    return _loss_from_logits(_forward(params, x)[2], y)


def gradients(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
    """The loss and dL/dw for ``w1, w2, w3`` (same shapes), by the tutorial's chain rule (module docstring)."""
    x, y = _as_float(x, y, params)
    _check(params, x, y, "gradients")
    a1, a2, z3 = _forward(params, x)
    a3 = sigmoid(z3)
    d3 = (a3 - y) / x.shape[0]                      # dL/dz3, the tutorial's cross_entropy(real, pred)
    d2 = (d3 @ params["w3"].T) * a2 * (1 - a2)      # dL/dz2
    # NOTE: the tutorial's dc/dw1 line reads "dz2/da2 * da2/dz1"; the chain is dz2/da1 * da1/dz1, used here.
    d1 = (d2 @ params["w2"].T) * a1 * (1 - a1)      # dL/dz1
    grads = {"w1": x.T @ d1, "w2": a1.T @ d2, "w3": a2.T @ d3}
    return _loss_from_logits(z3, y), grads


def sgd_step(params: Params, grads: Params, lr: float) -> Params:
    """One gradient-descent step, ``w - lr * dL/dw`` for every key; returns new arrays (inputs unchanged)."""
    missing = set(params) ^ set(grads)
    if missing:
        raise KeyError(f"mnist3.sgd_step: params and grads must have the same keys; "
                       f"mismatched: {sorted(missing)}.")
    return {k: params[k] - lr * grads[k] for k in params}


def predict(params: Params, x: np.ndarray) -> np.ndarray:
    """The predicted digit for each row of x: the index of the largest output."""
    return np.argmax(forward(params, x)[2], axis=1)


def train(params: Params, x: np.ndarray, y: np.ndarray, *, epochs: int = 10,
          lr: float = 0.5) -> tuple[Params, list[float]]:
    """Full-batch gradient descent as in the tutorial (one update per epoch); returns (params, losses).

    >>> rng = np.random.default_rng(1)
    >>> x, y = rng.random((8, 784)), np.eye(10)[rng.integers(0, 10, 8)]
    >>> _, history = train(init_params(rng, hidden=16), x, y, epochs=20, lr=1.0)
    >>> history[-1] < history[0]
    True
    """
    history = []
    for _ in range(epochs):
        value, grads = gradients(params, x, y)
        history.append(value)
        params = sgd_step(params, grads, lr)
    return params, history
