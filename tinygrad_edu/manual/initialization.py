"""The course's "Initialization" assignment: zeros, large random and He weights on the circles, by hand in numpy.

The network is the course's LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID with ``layers_dims = [2, 10,
5, 1]``, trained by full-batch gradient descent (learning rate 0.01, 15,000 iterations) on the 300 circles points
(``datasets.load_circles()``). Only the start differs:

- ``"zeros"``: every W and b zero. Every hidden unit of a layer computes the same thing and gets the same
  gradient, so they stay equal ("symmetry is not broken"); the ReLUs output 0, W's gradients are 0, and the
  network predicts 0 for everything: 50% on the circles.
- ``"random"``: W ~ N(0, 1) * 10, b = 0. The output sigmoid saturates, some examples start with a cost of inf,
  and learning is slow: 83% after 15,000 iterations.
- ``"he"``: W ~ N(0, 1) * sqrt(2 / n_prev) (He et al., 2015), b = 0: 99.3% (298 / 300).

The random draws are those of the course: a ``np.random.RandomState(3)`` (the course's ``np.random.seed(3)``)
draws W1, W2, W3 in turn, with ``randn`` and the (n_l, n_prev) shape, so the weights are the course's, bit for bit.

>>> params = initialize_parameters_he([2, 4, 1])
>>> params["W1"].round(8).tolist()[0], params["b2"].tolist()
([1.78862847, 0.43650985], [[0.0]])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._three_layer import (accuracy, backward_propagation, check_columns, compute_cost, cost, forward_propagation,
                           predict, update_parameters)

__all__ = [
    "INITIALIZATIONS", "initialize_parameters_zeros", "initialize_parameters_random", "initialize_parameters_he",
    "initialize", "forward_propagation", "backward_propagation", "compute_cost", "update_parameters", "model",
    "predict", "accuracy", "gradients",
]

Params = dict[str, np.ndarray]
INITIALIZATIONS = ("zeros", "random", "he")


def _dims(layers_dims: Sequence[int]) -> list[int]:
    dims = [int(n) for n in layers_dims]
    if len(dims) < 2 or min(dims) < 1:
        raise ValueError(f"initialization: layers_dims must list at least two positive sizes, e.g. [2, 10, 5, 1]; "
                         f"got {list(layers_dims)}.")
    return dims


def initialize_parameters_zeros(layers_dims: Sequence[int]) -> Params:
    """Every W_l (n_l, n_prev) and b_l (n_l, 1) zero."""
    dims = _dims(layers_dims)
    params: Params = {}
    for layer in range(1, len(dims)):
        params[f"W{layer}"] = np.zeros((dims[layer], dims[layer - 1]))
        params[f"b{layer}"] = np.zeros((dims[layer], 1))
    return params


def _scaled_normal(layers_dims: Sequence[int], scale: str, seed: int) -> Params:
    dims = _dims(layers_dims)
    draw = np.random.RandomState(seed)  # the course seeds numpy's global state; this is the same stream
    params: Params = {}
    for layer in range(1, len(dims)):
        factor = 10.0 if scale == "random" else np.sqrt(2.0 / dims[layer - 1])
        params[f"W{layer}"] = draw.randn(dims[layer], dims[layer - 1]) * factor
        params[f"b{layer}"] = np.zeros((dims[layer], 1))
    return params


def initialize_parameters_random(layers_dims: Sequence[int], seed: int = 3) -> Params:
    """W_l ~ N(0, 1) * 10 (too large on purpose), b_l = 0; the course's draws with ``seed=3``."""
    return _scaled_normal(layers_dims, "random", seed)


def initialize_parameters_he(layers_dims: Sequence[int], seed: int = 3) -> Params:
    """W_l ~ N(0, 1) * sqrt(2 / n_prev), b_l = 0 (He initialisation, for ReLU layers); the course's draws."""
    return _scaled_normal(layers_dims, "he", seed)


def initialize(layers_dims: Sequence[int], initialization: str, seed: int = 3) -> Params:
    """One of ``INITIALIZATIONS`` by name."""
    if initialization == "zeros":
        return initialize_parameters_zeros(layers_dims)
    if initialization not in INITIALIZATIONS:
        raise ValueError(f"initialization must be one of {INITIALIZATIONS}, got {initialization!r}.")
    return _scaled_normal(layers_dims, initialization, seed)


def model(X: np.ndarray, Y: np.ndarray, learning_rate: float = 0.01, num_iterations: int = 15000,  # noqa: N803
          print_cost: bool = False, initialization: str = "he",
          layers_dims: Sequence[int] | None = None) -> tuple[Params, list[float]]:
    """Full-batch gradient descent from the chosen start; returns ``(params, cost every 1000 iterations)``.

    The costs are the course's ``compute_loss`` (inf where an output is saturated on the wrong side), taken
    before each step, so ``costs[0]`` is the cost of the starting weights.
    """
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    params = initialize([X.shape[0], 10, 5, 1] if layers_dims is None else layers_dims, initialization)
    check_columns(X, Y, params, "initialization.model")
    costs: list[float] = []
    for i in range(num_iterations):
        A3, cache = forward_propagation(X, params)
        if i % 1000 == 0:
            costs.append(compute_cost(A3, Y))
            if print_cost:
                print(f"Cost after iteration {i}: {costs[-1]}")
        params = update_parameters(params, backward_propagation(X, Y, cache), learning_rate)
    return params, costs


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> tuple[float, Params]:  # noqa: N803
    """The mean cross-entropy and ``{"W1": dJ/dW1, ..., "b3": dJ/db3}``."""
    check_columns(X, Y, params, "initialization.gradients")
    _, cache = forward_propagation(X, params)
    grads = backward_propagation(X, Y, cache)
    return cost(cache[8], Y), {name: grads["d" + name] for name in params}
