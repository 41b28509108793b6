"""The course's "Regularization" assignment: L2 and inverted dropout on the three-layer ReLU net, by hand.

The network is the course's LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID (``layers_dims = [n0, 20, 3,
1]``, W_l ~ N(0, 1) / sqrt(n_prev) from ``np.random.RandomState(3)``, b = 0), trained by full-batch gradient
descent (learning rate 0.3, 30,000 iterations).

**L2.** The cost gains (1/m)(lambda/2) sum_l ||W_l||^2 (weights only; m the number of examples in the batch),
so each dW gains (lambda/m) W_l; the biases' gradients do not change::

    J = cross-entropy + lambda / (2 m) (||W1||^2 + ||W2||^2 + ||W3||^2)
    dW_l = (the unregularized dW_l) + lambda / m * W_l

**Inverted dropout** on the two hidden layers. A mask D_l of A_l's shape keeps each unit with probability
``keep_prob`` (D_l = U < keep_prob, U uniform on [0, 1)), and the kept units are divided by keep_prob so the
expected value of A_l does not change::

    forward:   A_l <- A_l * D_l / keep_prob
    backward:  dA_l <- dA_l * D_l / keep_prob     (the same mask, the same scale: A_l's local derivative)

The course draws its masks after ``np.random.seed(1)`` *inside* the forward pass, so every iteration uses the
same two masks; ``model(..., rng=None)`` does the same (a fresh ``RandomState(1)`` per iteration), and a
Generator or RandomState of your own draws new masks at every step, as dropout is meant to. At test time no unit
is dropped and nothing is scaled: the division during training already kept the expected activations equal.

The course's football data (``data.mat``) is its own file, not generated; here the model runs on any 2-D data
(the notebook uses the circles and moons).

>>> A3, Y = np.array([[0.8, 0.2]]), np.array([[1.0, 0.0]])
>>> params = {"W1": np.ones((1, 2)), "b1": np.zeros((1, 1)), "W2": np.ones((1, 1)), "b2": np.zeros((1, 1)),
...           "W3": np.ones((1, 1)), "b3": np.zeros((1, 1))}
>>> round(compute_cost_with_regularization(A3, Y, params, lambd=0.1), 6)  # -ln 0.8 + 0.1 / 4 * 4
0.323144
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._three_layer import (NAMES, accuracy, backward_propagation, check_columns, compute_cost, cost, relu,
                           forward_propagation, predict, sigmoid, update_parameters)

__all__ = [
    "initialize_parameters", "compute_cost_with_regularization", "backward_propagation_with_regularization",
    "dropout_masks", "forward_propagation_with_dropout", "backward_propagation_with_dropout", "model",
    "predict", "accuracy", "gradients_l2", "gradients_dropout",
]

Params = dict[str, np.ndarray]
Draw = np.random.Generator | np.random.RandomState


def initialize_parameters(layers_dims: Sequence[int], seed: int = 3) -> Params:
    """W_l ~ N(0, 1) / sqrt(n_prev) from ``RandomState(seed)``, b_l = 0: the course's start for this assignment."""
    dims = [int(n) for n in layers_dims]
    draw = np.random.RandomState(seed)
    params: Params = {}
    for layer in range(1, len(dims)):
        params[f"W{layer}"] = draw.randn(dims[layer], dims[layer - 1]) / np.sqrt(dims[layer - 1])
        params[f"b{layer}"] = np.zeros((dims[layer], 1))
    return params


def _check_lambd(lambd: float, caller: str) -> float:
    if not lambd >= 0:
        raise ValueError(f"{caller}: lambd (the L2 strength lambda) must be >= 0, got {lambd}; 0 turns L2 off.")
    return float(lambd)


def _check_keep_prob(keep_prob: float, caller: str) -> float:
    if not 0 < keep_prob <= 1:
        raise ValueError(f"{caller}: keep_prob must lie in (0, 1], got {keep_prob}; it is the probability of "
                         f"KEEPING a unit (1 - keep_prob is nn.Dropout's p).")
    return float(keep_prob)


def compute_cost_with_regularization(A3: np.ndarray, Y: np.ndarray, params: Params,  # noqa: N803
                                     lambd: float) -> float:
    """The course's cross-entropy plus lambda / (2 m) times the sum of the squared weights (not the biases)."""
    lambd = _check_lambd(lambd, "compute_cost_with_regularization")
    m = Y.shape[1]
    squares = sum(float(np.sum(np.square(params[f"W{layer}"]))) for layer in (1, 2, 3))
    return compute_cost(A3, Y) + lambd / 2 / m * squares


def backward_propagation_with_regularization(X: np.ndarray, Y: np.ndarray, cache: tuple,  # noqa: N803
                                             lambd: float) -> Params:
    """``backward_propagation`` with lambda / m * W_l added to each dW_l (the L2 term's gradient)."""
    lambd = _check_lambd(lambd, "backward_propagation_with_regularization")
    m = X.shape[1]
    grads = backward_propagation(X, Y, cache)
    weights = {"W1": cache[2], "W2": cache[6], "W3": cache[10]}
    for name, W in weights.items():
        grads["d" + name] = grads["d" + name] + lambd / m * W
    return grads


def dropout_masks(shapes: Sequence[tuple[int, ...]], keep_prob: float, rng: Draw) -> list[np.ndarray]:
    """One 0/1 float mask per shape, in order: 1 with probability keep_prob (``rng.random(shape) < keep_prob``)."""
    keep_prob = _check_keep_prob(keep_prob, "dropout_masks")
    return [(rng.random(shape) < keep_prob).astype(np.float64) for shape in shapes]


def forward_propagation_with_dropout(X: np.ndarray, params: Params, keep_prob: float = 0.5,  # noqa: N803
                                     rng: Draw | None = None,
                                     masks: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, tuple]:
    """The forward pass with dropout on A1 and A2; returns ``(A3, cache)`` with the masks D1, D2 in the cache.

    The masks are ``masks`` when given (D1 of A1's shape, D2 of A2's), else drawn from ``rng`` right after each
    layer's ReLU as the course draws them; ``rng=None`` is the course's ``np.random.seed(1)``, reset every call.
    """
    keep_prob = _check_keep_prob(keep_prob, "forward_propagation_with_dropout")
    W1, b1, W2, b2, W3, b3 = (params[name] for name in NAMES)
    draw = np.random.RandomState(1) if rng is None and masks is None else rng
    Z1 = W1 @ X + b1
    A1 = relu(Z1)
    D1 = masks[0] if masks is not None else dropout_masks([A1.shape], keep_prob, draw)[0]  # type: ignore[arg-type]
    A1 = A1 * D1 / keep_prob
    Z2 = W2 @ A1 + b2
    A2 = relu(Z2)
    D2 = masks[1] if masks is not None else dropout_masks([A2.shape], keep_prob, draw)[0]  # type: ignore[arg-type]
    A2 = A2 * D2 / keep_prob
    Z3 = W3 @ A2 + b3
    A3 = sigmoid(Z3)
    return A3, (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)


def backward_propagation_with_dropout(X: np.ndarray, Y: np.ndarray, cache: tuple,  # noqa: N803
                                      keep_prob: float) -> Params:
    """Backward through the dropout pass: dA_l masked by D_l and divided by keep_prob, as in the forward pass."""
    keep_prob = _check_keep_prob(keep_prob, "backward_propagation_with_dropout")
    m = X.shape[1]
    _, D1, A1, _, _, _, D2, A2, W2, _, _, A3, W3, _ = cache  # (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, ...)
    dZ3 = A3 - Y
    dW3 = 1.0 / m * (dZ3 @ A2.T)
    db3 = 1.0 / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = (W3.T @ dZ3) * D2 / keep_prob
    # NOTE: A2 here is the scaled, masked output; where it is > 0 the ReLU was on and the unit was kept
    dZ2 = dA2 * (A2 > 0)
    dW2 = 1.0 / m * (dZ2 @ A1.T)
    db2 = 1.0 / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = (W2.T @ dZ2) * D1 / keep_prob
    dZ1 = dA1 * (A1 > 0)
    dW1 = 1.0 / m * (dZ1 @ X.T)
    db1 = 1.0 / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2, "db2": db2,
            "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


def model(X: np.ndarray, Y: np.ndarray, learning_rate: float = 0.3, num_iterations: int = 30000,  # noqa: N803
          print_cost: bool = False, lambd: float = 0.0, keep_prob: float = 1.0,
          layers_dims: Sequence[int] | None = None, rng: Draw | None = None) -> tuple[Params, list[float]]:
    """Full-batch gradient descent with L2 (``lambd > 0``) or dropout (``keep_prob < 1``), one at a time as the
    course does; returns ``(params, the cost every 1000 iterations)``, the cost taken before each step."""
    lambd = _check_lambd(lambd, "regularization.model")
    keep_prob = _check_keep_prob(keep_prob, "regularization.model")
    if lambd > 0 and keep_prob < 1:
        raise ValueError("regularization.model: use L2 (lambd > 0) or dropout (keep_prob < 1), not both: the "
                         "course's assignment explores one at a time, and so does this reference.")
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    params = initialize_parameters([X.shape[0], 20, 3, 1] if layers_dims is None else layers_dims)
    check_columns(X, Y, params, "regularization.model")
    costs: list[float] = []
    for i in range(num_iterations):
        if keep_prob < 1:
            A3, cache = forward_propagation_with_dropout(X, params, keep_prob, rng)
        else:
            A3, cache = forward_propagation(X, params)
        if i % 1000 == 0:
            costs.append(compute_cost_with_regularization(A3, Y, params, lambd) if lambd else compute_cost(A3, Y))
            if print_cost and i % 10000 == 0:
                print(f"Cost after iteration {i}: {costs[-1]}")
        if lambd:
            grads = backward_propagation_with_regularization(X, Y, cache, lambd)
        elif keep_prob < 1:
            grads = backward_propagation_with_dropout(X, Y, cache, keep_prob)
        else:
            grads = backward_propagation(X, Y, cache)
        params = update_parameters(params, grads, learning_rate)
    return params, costs


def gradients_l2(params: Params, X: np.ndarray, Y: np.ndarray, lambd: float) -> tuple[float, Params]:  # noqa: N803
    """The L2-regularized cost and ``{"W1": dJ/dW1, ..., "b3": dJ/db3}`` (the course's two graded functions)."""
    check_columns(X, Y, params, "regularization.gradients_l2")
    _, cache = forward_propagation(X, params)
    grads = backward_propagation_with_regularization(X, Y, cache, lambd)
    squares = sum(float(np.sum(np.square(params[f"W{layer}"]))) for layer in (1, 2, 3))
    return cost(cache[8], Y) + lambd / 2 / X.shape[1] * squares, {name: grads["d" + name] for name in NAMES}


def gradients_dropout(params: Params, X: np.ndarray, Y: np.ndarray, masks: Sequence[np.ndarray],  # noqa: N803
                      keep_prob: float) -> tuple[float, Params]:
    """The cost and gradients of the dropout pass with the given masks (D1, D2): a fixed mask makes the net an
    ordinary function of its parameters, so its backprop can be checked like any other."""
    check_columns(X, Y, params, "regularization.gradients_dropout")
    _, cache = forward_propagation_with_dropout(X, params, keep_prob, masks=masks)
    grads = backward_propagation_with_dropout(X, Y, cache, keep_prob)
    return cost(cache[10], Y), {name: grads["d" + name] for name in NAMES}
