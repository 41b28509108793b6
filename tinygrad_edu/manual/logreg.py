"""The logreg tutorial (``004_a0972d99761e4873.txt``): logistic regression on the cat images, by hand in numpy.

One sigmoid unit on the 12288 pixel values of a flattened 64x64x3 image. Columns are samples: X (n, m),
Y (1, m), weights ``w`` (n, 1), bias ``b``. The tutorial's equations:

- (1) z(i) = w^T x(i) + b
- (2) a(i) = sigmoid(z(i))
- (3) L(a(i), y(i)) = -y(i) log a(i) - (1 - y(i)) log(1 - a(i))
- (4) J = 1/m sum_i L(a(i), y(i))
- (5.1)-(5.8) the chain rule, dL/dw_j = (a(i) - y(i)) x_j(i)
- (6) dw = 1/m sum_i (a(i) - y(i)) x(i)
- (7) db = 1/m sum_i (a(i) - y(i))
- (8) w = w - alpha dw
- (9) b = b - alpha db

A prediction is "cat" when a > 0.5. ``b`` is kept as a (1, 1) array (not a Python float) so that every
parameter and gradient is an ndarray of a fixed shape.

>>> w, b = initialize_with_zeros(3)
>>> X, Y = np.array([[1.0, -1.0], [2.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0]])
>>> grads, cost = propagate(w, b, X, Y)
>>> grads["dw"].ravel().tolist(), grads["db"].tolist(), round(cost, 4)
([-0.5, -0.5, 0.25], [[0.0]], 0.6931)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from ._common import softplus, stable_sigmoid

__all__ = ["sigmoid", "initialize_with_zeros", "propagate", "optimize", "predict", "model", "gradients"]

Params = dict[str, np.ndarray]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Equation (2)'s g: 1 / (1 + exp(-z)), computed without overflow."""
    return stable_sigmoid(z)


def initialize_with_zeros(dim: int, dtype: DTypeLike = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """``(w, b)``: zeros of shape (dim, 1) and (1, 1)."""
    if dim < 1:
        raise ValueError(f"logreg.initialize_with_zeros: dim must be at least 1, got {dim}.")
    return np.zeros((dim, 1), dtype=dtype), np.zeros((1, 1), dtype=dtype)


def _check(w: np.ndarray, b: np.ndarray, X: np.ndarray, Y: np.ndarray | None, caller: str) -> None:  # noqa: N803
    if X.ndim != 2 or w.shape != (X.shape[0], 1) or np.shape(b) != (1, 1):
        raise ValueError(f"logreg.{caller}: expected w (n, 1), b (1, 1) and X (n, m) with one sample per column; "
                         f"got w {w.shape}, b {np.shape(b)}, X {X.shape}. Rows-as-samples data needs X.T.")
    if Y is not None and Y.shape != (1, X.shape[1]):
        raise ValueError(f"logreg.{caller}: Y must be (1, {X.shape[1]}), got {Y.shape}; use y.reshape(1, -1).")


def propagate(w: np.ndarray, b: np.ndarray, X: np.ndarray,  # noqa: N803
              Y: np.ndarray) -> tuple[Params, float]:  # noqa: N803
    """Forward (eqs 1, 2), cost (3, 4) and gradients (6, 7): ``({"dw": (n, 1), "db": (1, 1)}, cost)``."""
    X, Y = np.asarray(X), np.asarray(Y)
    _check(w, b, X, Y, "propagate")
    m = X.shape[1]
    Z = w.T @ X + b
    A = sigmoid(Z)
    Y = Y.astype(A.dtype, copy=False)
    # NOTE: eq (3) summed is -[y log a + (1-y) log(1-a)] = softplus(z) - y z; the same number, but finite
    # when a rounds to 0 or 1
    cost = float(np.sum(softplus(Z) - Y * Z) / m)
    dZ = A - Y                                   # eqs (5.5)-(5.6) combined: dL/dz = a - y
    grads = {"dw": X @ dZ.T / m, "db": np.sum(dZ, axis=1, keepdims=True) / m}
    return grads, cost


def optimize(w: np.ndarray, b: np.ndarray, X: np.ndarray, Y: np.ndarray, num_iterations: int,  # noqa: N803
             learning_rate: float, print_cost: bool = False) -> tuple[Params, Params, list[float]]:
    """Gradient descent, eqs (8) and (9); returns ``({"w", "b"}, last grads, cost every 100 iterations)``."""
    costs: list[float] = []
    grads: Params = {}
    for i in range(num_iterations):
        grads, cost = propagate(w, b, X, Y)
        w = w - learning_rate * grads["dw"]
        b = b - learning_rate * grads["db"]
        if i % 100 == 0:
            costs.append(cost)
            if print_cost:
                print(f"Cost after iteration {i}: {cost:.6f}")
    return {"w": w, "b": b}, grads, costs


def predict(w: np.ndarray, b: np.ndarray, X: np.ndarray) -> np.ndarray:  # noqa: N803
    """0/1 predictions (1, m): 1 ("cat") where sigmoid(w^T x + b) > 0.5."""
    X = np.asarray(X)
    _check(w, b, X, None, "predict")
    return (sigmoid(w.T @ X + b) > 0.5).astype(np.int64)


def model(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
          num_iterations: int = 2000, learning_rate: float = 0.005, print_cost: bool = False) -> dict:
    """Zero initialisation, ``optimize``, then accuracy on both sets (columns are samples, Y is (1, m)).

    Returns a dict with ``w``, ``b``, ``costs``, ``train_predictions``, ``test_predictions``,
    ``train_accuracy`` and ``test_accuracy`` (fractions in [0, 1]).

    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((2, 40)); Y = (X[:1] + X[1:] > 0).astype(np.int64)
    >>> result = model(X, Y, X, Y, num_iterations=300, learning_rate=0.5)
    >>> result["train_accuracy"] > 0.9
    True
    """
    train_x, test_x = np.asarray(train_x), np.asarray(test_x)
    w, b = initialize_with_zeros(train_x.shape[0], dtype=np.result_type(train_x, np.float16))
    params, _, costs = optimize(w, b, train_x, np.asarray(train_y), num_iterations, learning_rate, print_cost)
    w, b = params["w"], params["b"]
    train_predictions = predict(w, b, train_x)
    test_predictions = predict(w, b, test_x)
    return {
        "w": w, "b": b, "costs": costs,
        "train_predictions": train_predictions, "test_predictions": test_predictions,
        "train_accuracy": float(np.mean(train_predictions == np.asarray(train_y))),
        "test_accuracy": float(np.mean(test_predictions == np.asarray(test_y))),
    }


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> tuple[float, Params]:  # noqa: N803
    """The cost J and ``{"w": dJ/dw, "b": dJ/db}`` for ``params = {"w": (n, 1), "b": (1, 1)}``."""
    grads, cost = propagate(params["w"], params["b"], X, Y)
    return cost, {"w": grads["dw"], "b": grads["db"]}
