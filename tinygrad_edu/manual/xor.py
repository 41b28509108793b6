"""The xor tutorial (``002_0be7f9c2ed40038e.txt``): the 2-layer XOR network, 3-4-1, sigmoid, no biases, by hand.

Rows are samples. The third input column is a constant 1, which gives the hidden layer a bias::

    layer1 = sigmoid(X weights1)         X (4, 3), weights1 (3, 4)
    output = sigmoid(layer1 weights2)    weights2 (4, 1)

The loss is the sum of squared errors L = sum (y - output)^2. The tutorial's ``backpropagation`` computes::

    d_weights2 = layer1^T [2 (y - output) * output (1 - output)]
    d_weights1 = X^T ([2 (y - output) * output (1 - output)] weights2^T * layer1 (1 - layer1))

NOTE: because of the ``(y - output)`` factor these are the NEGATIVE gradients -dL/dW, the descent direction,
so the update is ``weights += d_weights`` (a learning rate of 1). ``gradients`` returns the true dL/dW,
``backpropagation`` the tutorial's d_weights.

The tutorial prints the update as ``self.weights1 = d_weights1 + 1``: a typo for ``self.weights1 += d_weights1``.
``train`` uses ``+=``; ``train_with_typo`` runs the line literally, to show what it does: each step throws
the weights away and replaces them by 1 + (descent direction), so nothing accumulates and XOR is not learnt.

>>> x, y = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], float), np.array([[0], [1], [1], [0]], float)
>>> params, output = train(x, y, epochs=1000, rng=np.random.default_rng(0))
>>> output.round(1).ravel().tolist()
[0.0, 1.0, 1.0, 0.0]
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from ._common import generator, stable_sigmoid

__all__ = [
    "sigmoid", "sigmoid_derivative", "init_params", "forward", "loss", "gradients", "backpropagation",
    "train", "train_with_typo",
]

Params = dict[str, np.ndarray]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), computed without overflow."""
    return stable_sigmoid(x)


def sigmoid_derivative(s: np.ndarray) -> np.ndarray:
    """The sigmoid's derivative written in terms of its OUTPUT s = sigmoid(x): s (1 - s)."""
    return s * (1.0 - s)


def init_params(rng: np.random.Generator | int, *, inputs: int = 3, hidden: int = 4,
                dtype: DTypeLike = np.float64) -> Params:
    """Uniform [0, 1) weights, like the tutorial's ``np.random.rand``: ``weights1 (3, 4)``, ``weights2 (4, 1)``."""
    gen = generator(rng, "xor.init_params")
    return {"weights1": gen.random((inputs, hidden)).astype(dtype, copy=False),
            "weights2": gen.random((hidden, 1)).astype(dtype, copy=False)}


def _check(params: Params, x: np.ndarray, y: np.ndarray | None, caller: str) -> None:
    w1, w2 = params["weights1"], params["weights2"]
    if x.ndim != 2 or x.shape[1] != w1.shape[0] or w2.shape != (w1.shape[1], 1):
        raise ValueError(f"xor.{caller}: expected x (n, {w1.shape[0]}), weights1 (inputs, hidden), weights2 "
                         f"(hidden, 1); got x {x.shape}, weights1 {w1.shape}, weights2 {w2.shape}.")
    if y is not None and y.shape != (x.shape[0], 1):
        raise ValueError(f"xor.{caller}: y must be a column ({x.shape[0]}, 1), got {y.shape}; "
                         "use y.reshape(-1, 1).")


def forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's ``feedforward``: ``(layer1, output)``."""
    x = np.asarray(x)
    _check(params, x, None, "forward")
    layer1 = sigmoid(x @ params["weights1"])
    return layer1, sigmoid(layer1 @ params["weights2"])


def loss(params: Params, x: np.ndarray, y: np.ndarray) -> float:
    """Sum of squared errors, L = sum (y - output)^2."""
    y = np.asarray(y)
    _check(params, np.asarray(x), y, "loss")
    return float(np.sum((y - forward(params, x)[1]) ** 2))


def backpropagation(params: Params, x: np.ndarray, y: np.ndarray) -> Params:
    """The tutorial's ``d_weights1``, ``d_weights2``: the descent direction -dL/dW, keyed like the params."""
    x, y = np.asarray(x), np.asarray(y)
    _check(params, x, y, "backpropagation")
    layer1, output = forward(params, x)
    y = y.astype(output.dtype, copy=False)
    delta_out = 2 * (y - output) * sigmoid_derivative(output)
    delta_hidden = (delta_out @ params["weights2"].T) * sigmoid_derivative(layer1)
    return {"weights1": x.T @ delta_hidden, "weights2": layer1.T @ delta_out}


def gradients(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
    """The loss L = sum (y - output)^2 and the true gradients dL/dW (the negated d_weights of the tutorial).

    >>> params = init_params(np.random.default_rng(0))
    >>> x, y = np.eye(3), np.ones((3, 1))
    >>> value, grads = gradients(params, x, y)
    >>> bool(np.allclose(grads["weights2"], -backpropagation(params, x, y)["weights2"]))
    True
    """
    direction = backpropagation(params, x, y)
    return loss(params, x, y), {k: -v for k, v in direction.items()}


def _check_epochs(epochs: int, caller: str) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"xor.{caller}: epochs must be a non-negative integer, got {epochs!r}.")


def train(x: np.ndarray, y: np.ndarray, epochs: int = 1000, *, rng: np.random.Generator | int,
          params: Params | None = None) -> tuple[Params, np.ndarray]:
    """Train as the tutorial means it, ``weights += d_weights`` per epoch; returns ``(params, output)``.

    ``output`` is the network's output on ``x`` after training (the tutorial's final ``print(nn.output)``).
    ``params`` defaults to ``init_params(rng)``; the ones passed in are not modified.
    """
    _check_epochs(epochs, "train")
    params = init_params(rng) if params is None else {k: v.copy() for k, v in params.items()}
    for _ in range(epochs):
        direction = backpropagation(params, x, y)
        for name in params:
            params[name] += direction[name]
    return params, forward(params, x)[1]


def train_with_typo(x: np.ndarray, y: np.ndarray, epochs: int = 1000, *, rng: np.random.Generator | int,
                    params: Params | None = None) -> tuple[Params, np.ndarray]:
    """The tutorial's update run literally, ``weights = d_weights + 1``; returns ``(params, output)``.

    Each step discards the current weights and keeps only 1 + (descent direction), so the weights never
    accumulate progress and the outputs stay far from XOR's [0, 1, 1, 0].
    """
    _check_epochs(epochs, "train_with_typo")
    params = init_params(rng) if params is None else {k: v.copy() for k, v in params.items()}
    for _ in range(epochs):
        direction = backpropagation(params, x, y)
        params = {name: direction[name] + 1 for name in params}
    return params, forward(params, x)[1]
