"""The lnet tutorial (``003_64939f56b2e4bc34.txt``): an L-layer sigmoid network kept in a params dict, by hand.

``layer_dims = [n0, n1, ..., nL]``; ``params["Wl"]`` is (n_l, n_(l-1)) and ``params["bl"]`` is (n_l, 1);
columns are samples, X (n0, m), Y (nL, m). For l = 1..L (sigmoid on every layer, as the tutorial chooses)::

    Z^l = W^l A^(l-1) + b^l,   A^l = sigmoid(Z^l),   A^0 = X,   AL = A^L

Cost (cross-entropy): J = -1/m sum [Y log AL + (1 - Y) log(1 - AL)].

Backward, one layer at a time from dA^L = -(Y / AL - (1 - Y) / (1 - AL))::

    dZ^l = dA^l * A^l (1 - A^l)
    dW^l = 1/m dZ^l (A^(l-1))^T,   db^l = 1/m sum_columns dZ^l,   dA^(l-1) = (W^l)^T dZ^l

and gradient descent ``W^l -= learning_rate * dW^l``, ``b^l -= learning_rate * db^l``.

The tutorial's text does not show its initialisation; ``init_params`` uses small random weights,
``randn * 0.01`` (``scale``), and zero biases, the usual choice for this layout.

>>> rng = np.random.default_rng(0)
>>> params = init_params([4, 3, 1], rng)
>>> X, Y = rng.random((4, 6)), (rng.random((1, 6)) > 0.5).astype(float)
>>> AL, caches = forward_prop(X, params)
>>> grads = backprop(AL, Y, caches)
>>> sorted(grads), grads["dW1"].shape
(['dW1', 'dW2', 'db1', 'db2'], (3, 4))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from ._common import generator, stable_sigmoid

__all__ = [
    "init_params", "sigmoid", "forward_prop", "cost_function", "one_layer_backward", "backprop",
    "update_parameters", "model", "predict", "gradients",
]

Params = dict[str, np.ndarray]
# ((A_prev, W, b), Z): what one layer's backward step needs
Cache = tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def init_params(layer_dims: Sequence[int], rng: np.random.Generator | int, *, scale: float = 0.01,
                dtype: DTypeLike = np.float64) -> Params:
    """``W1 .. WL`` drawn as ``randn * scale`` and zero ``b1 .. bL`` for ``layer_dims = [n0, ..., nL]``.

    >>> {k: v.shape for k, v in init_params([5, 2, 1], 0).items()}
    {'W1': (2, 5), 'b1': (2, 1), 'W2': (1, 2), 'b2': (1, 1)}
    """
    dims = [int(n) for n in layer_dims]
    if len(dims) < 2 or min(dims) < 1:
        raise ValueError(f"lnet.init_params: layer_dims must list at least two positive sizes, e.g. "
                         f"[12288, 20, 7, 5, 1]; got {list(layer_dims)}.")
    gen = generator(rng, "lnet.init_params")
    params: Params = {}
    for layer in range(1, len(dims)):
        weights = gen.standard_normal((dims[layer], dims[layer - 1])) * scale
        params[f"W{layer}"] = weights.astype(dtype, copy=False)
        params[f"b{layer}"] = np.zeros((dims[layer], 1), dtype=dtype)
    return params


def sigmoid(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803 (the tutorial's names)
    """``(A, cache)``: A = 1 / (1 + exp(-Z)) and Z itself, kept for the backward pass."""
    return stable_sigmoid(Z), Z


def _layers(params: Params, caller: str) -> int:
    count = len(params) // 2
    expected = {f"{p}{layer}" for layer in range(1, count + 1) for p in "Wb"}
    if set(params) != expected or count == 0:
        raise KeyError(f"lnet.{caller}: params must hold W1, b1, ..., WL, bL as init_params makes them; "
                       f"got keys {sorted(params)}.")
    return count


def forward_prop(X: np.ndarray, params: Params) -> tuple[np.ndarray, list[Cache]]:  # noqa: N803
    """``(AL, caches)``: the output (nL, m) and, per layer, ``((A_prev, W, b), Z)``."""
    X = np.asarray(X)
    layers = _layers(params, "forward_prop")
    if X.ndim != 2 or X.shape[0] != params["W1"].shape[1]:
        raise ValueError(f"lnet.forward_prop: X must be ({params['W1'].shape[1]}, m) with one sample per column, "
                         f"got {X.shape}; rows-as-samples data needs X.T.")
    A = X
    caches: list[Cache] = []
    for layer in range(1, layers + 1):
        W, b = params[f"W{layer}"], params[f"b{layer}"]
        A_prev = A
        A, Z = sigmoid(W @ A_prev + b)
        caches.append(((A_prev, W, b), Z))
    return A, caches


def cost_function(AL: np.ndarray, Y: np.ndarray) -> float:  # noqa: N803
    """J = -1/m sum [Y log AL + (1 - Y) log(1 - AL)] over the m columns (and every output row).

    It works from the probabilities AL, as the tutorial does, so an AL of exactly 0 or 1 gives an infinite cost.

    >>> round(cost_function(np.array([[0.9, 0.2]]), np.array([[1.0, 0.0]])), 4)
    0.1643
    """
    AL, Y = np.asarray(AL), np.asarray(Y)
    if AL.shape != Y.shape:
        raise ValueError(f"lnet.cost_function: AL {AL.shape} and Y {Y.shape} must have the same shape (nL, m).")
    m = AL.shape[1]
    return float(-np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m)


def one_layer_backward(dA: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: N803
    """``(dA_prev, dW, db)`` for one sigmoid layer, from dJ/dA of its output and its cache."""
    (A_prev, W, _), Z = cache
    s = stable_sigmoid(Z)
    dZ = dA * s * (1 - s)
    m = A_prev.shape[1]
    # NOTE: the 1/m of the cost enters here, once per layer; dA itself is per-sample (not divided by m)
    dW = dZ @ A_prev.T / m
    db = np.sum(dZ, axis=1, keepdims=True) / m
    return W.T @ dZ, dW, db


def backprop(AL: np.ndarray, Y: np.ndarray, caches: Sequence[Cache]) -> Params:  # noqa: N803
    """``{"dW1", "db1", ..., "dWL", "dbL"}``: the cost's gradients, walking the layers backwards."""
    AL = np.asarray(AL)
    Y = np.asarray(Y, dtype=AL.dtype).reshape(AL.shape)
    # dJ/dAL per sample (the 1/m is applied in one_layer_backward)
    dA = -(Y / AL - (1 - Y) / (1 - AL))
    grads: Params = {}
    for layer in range(len(caches), 0, -1):
        dA, grads[f"dW{layer}"], grads[f"db{layer}"] = one_layer_backward(dA, caches[layer - 1])
    return grads


def update_parameters(params: Params, grads: Params, learning_rate: float) -> Params:
    """One gradient-descent step; returns new arrays ``W - learning_rate * dW`` (inputs unchanged)."""
    layers = _layers(params, "update_parameters")
    updated: Params = {}
    for layer in range(1, layers + 1):
        for name in ("W", "b"):
            key = f"{name}{layer}"
            updated[key] = params[key] - learning_rate * grads[f"d{key}"]
    return updated


def predict(X: np.ndarray, params: Params) -> np.ndarray:  # noqa: N803
    """0/1 predictions (nL, m): 1 where AL > 0.5."""
    return (forward_prop(X, params)[0] > 0.5).astype(np.int64)


def model(X: np.ndarray, Y: np.ndarray, layer_dims: Sequence[int], epochs: int = 3000,  # noqa: N803
          lr: float = 0.0075, *, rng: np.random.Generator | int, scale: float = 0.01,
          print_every: int | None = None) -> tuple[Params, list[float]]:
    """Initialise, then ``epochs`` full-batch steps of forward, cost, backprop, update; ``(params, costs)``.

    ``costs`` holds the cost before every step; ``print_every=k`` also prints it every k epochs.

    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((2, 50)); Y = (X[:1] > 0.5).astype(float)
    >>> params, costs = model(X, Y, [2, 3, 1], epochs=500, lr=1.0, rng=rng, scale=1.0)
    >>> costs[-1] < costs[0]
    True
    """
    X, Y = np.asarray(X), np.asarray(Y)
    if layer_dims[0] != X.shape[0] or layer_dims[-1] != Y.shape[0]:
        raise ValueError(f"lnet.model: layer_dims {list(layer_dims)} must start with X's {X.shape[0]} features "
                         f"and end with Y's {Y.shape[0]} outputs (columns are samples).")
    params = init_params(layer_dims, rng, scale=scale, dtype=np.result_type(X, np.float16))
    costs: list[float] = []
    for epoch in range(epochs):
        AL, caches = forward_prop(X, params)
        costs.append(cost_function(AL, Y))
        if print_every and epoch % print_every == 0:
            print(f"Cost after epoch {epoch}: {costs[-1]:.6f}")
        params = update_parameters(params, backprop(AL, Y, caches), lr)
    return params, costs


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> tuple[float, Params]:  # noqa: N803
    """The cost and its gradients keyed like ``params`` (``W1, b1, ...``) rather than ``dW1, db1, ...``."""
    AL, caches = forward_prop(X, params)
    Y = np.asarray(Y, dtype=AL.dtype)
    if Y.shape != AL.shape:
        raise ValueError(f"lnet.gradients: Y must be {AL.shape} (nL, m) like the output, got {Y.shape}.")
    grads = backprop(AL, Y, caches)
    return cost_function(AL, Y), {key: grads[f"d{key}"] for key in params}
