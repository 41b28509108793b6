"""The deep-learning course's three-layer network, shared by its second-course assignments (private).

LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID, one sample per column: X (n0, m), Y (1, m), weights
``W1`` (n1, n0), ``W2`` (n2, n1), ``W3`` (1, n2), biases ``b1`` (n1, 1), ... The cost is the mean
cross-entropy J = -1/m sum [y log a3 + (1 - y) log(1 - a3)], and backward propagation is::

    dZ3 = (A3 - Y) / m                        (cross-entropy through the sigmoid)
    dW3 = dZ3 A2^T,  db3 = sum over columns of dZ3
    dA2 = W3^T dZ3,  dZ2 = dA2 * 1[A2 > 0]   (ReLU's derivative, 1 where the unit was on)
    dW2 = dZ2 A1^T,  db2 = ...,  and the same once more for layer 1.

The course writes ``1/m`` into dZ3 in some assignments and into each dW in others: the same numbers.
"""

from __future__ import annotations

import numpy as np

from ._common import softplus

__all__ = ["sigmoid", "relu", "forward_propagation", "backward_propagation", "compute_cost", "cost",
           "update_parameters", "predict", "accuracy", "check_columns"]

Params = dict[str, np.ndarray]
NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), written as the course writes it (the same bits); exp's overflow to inf gives 0."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def relu(x: np.ndarray) -> np.ndarray:
    """max(0, x)."""
    return np.maximum(0, x)


def check_columns(X: np.ndarray, Y: np.ndarray | None, params: Params, caller: str) -> None:  # noqa: N803
    missing = [name for name in NAMES if name not in params]
    if missing:
        raise KeyError(f"{caller}: params must hold {', '.join(NAMES)}; missing {', '.join(missing)}.")
    n0 = params["W1"].shape[1]
    if X.ndim != 2 or X.shape[0] != n0:
        raise ValueError(f"{caller}: X must be ({n0}, m), one sample per column; got {X.shape}. "
                         "Rows-as-samples data needs X.T.")
    if Y is not None and Y.shape != (1, X.shape[1]):
        raise ValueError(f"{caller}: Y must be (1, {X.shape[1]}), got {Y.shape}; use y.reshape(1, -1).")


def forward_propagation(X: np.ndarray, params: Params) -> tuple[np.ndarray, tuple]:  # noqa: N803
    """``(A3, cache)``; the cache holds (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) in the course's order."""
    W1, b1, W2, b2, W3, b3 = (params[name] for name in NAMES)
    Z1 = W1 @ X + b1
    A1 = relu(Z1)
    Z2 = W2 @ A1 + b2
    A2 = relu(Z2)
    Z3 = W3 @ A2 + b3
    A3 = sigmoid(Z3)
    return A3, (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)


def backward_propagation(X: np.ndarray, Y: np.ndarray, cache: tuple) -> Params:  # noqa: N803
    """The gradients of the mean cross-entropy: ``dW1, db1, ..., dW3, db3`` and the dZ / dA on the way."""
    m = X.shape[1]
    _, A1, _, _, _, A2, W2, _, _, A3, W3, _ = cache  # (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)
    dZ3 = 1.0 / m * (A3 - Y)
    dW3 = dZ3 @ A2.T
    db3 = np.sum(dZ3, axis=1, keepdims=True)
    dA2 = W3.T @ dZ3
    dZ2 = dA2 * (A2 > 0)
    dW2 = dZ2 @ A1.T
    db2 = np.sum(dZ2, axis=1, keepdims=True)
    dA1 = W2.T @ dZ2
    dZ1 = dA1 * (A1 > 0)
    dW1 = dZ1 @ X.T
    db1 = np.sum(dZ1, axis=1, keepdims=True)
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2, "db2": db2,
            "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


def compute_cost(A3: np.ndarray, Y: np.ndarray) -> float:  # noqa: N803
    """The mean cross-entropy as the course computes it, from A3: +inf where A3 rounded to 0 or 1 on the wrong side.

    ``nansum`` drops the 0 * log(0) terms of the right side, as the course's does.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        logprobs = -np.log(A3) * Y + -np.log(1 - A3) * (1 - Y)
    return float(1.0 / Y.shape[1] * np.nansum(logprobs))


def cost(Z3: np.ndarray, Y: np.ndarray) -> float:  # noqa: N803
    """The same mean cross-entropy from the logits Z3: softplus(z) - y z, finite where A3 rounds to 0 or 1."""
    return float(np.sum(softplus(Z3) - Y * Z3) / Y.shape[1])


def update_parameters(params: Params, grads: Params, learning_rate: float) -> Params:
    """One gradient-descent step, p - learning_rate * dp, as a new dict."""
    return {name: params[name] - learning_rate * grads["d" + name] for name in NAMES}


def predict(X: np.ndarray, params: Params) -> np.ndarray:  # noqa: N803
    """0/1 predictions (1, m): 1 where A3 > 0.5."""
    check_columns(X, None, params, "predict")
    return (forward_propagation(X, params)[0] > 0.5).astype(np.int64)


def accuracy(X: np.ndarray, Y: np.ndarray, params: Params) -> float:  # noqa: N803
    """The fraction of columns predicted right, as the course's ``predict`` prints it."""
    return float(np.mean(predict(X, params)[0, :] == Y[0, :]))
