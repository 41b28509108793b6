"""The course's "Gradient Checking" assignment: two-sided differences against backprop, with its planted mistakes.

**One dimension.** J(theta) = theta x, so dJ/dtheta = x. The two-sided difference

    gradapprox = (J(theta + eps) - J(theta - eps)) / (2 eps)

is compared with backprop's ``grad`` by the relative difference

    difference = ||grad - gradapprox||_2 / (||grad||_2 + ||gradapprox||_2),

which the course calls correct below 1e-7 (``gradient_check``; published: 2.919335883291695e-10 for x = 2,
theta = 4, eps = 1e-7).

**N dimensions.** The course's three-layer ReLU net (4 inputs, 5 and 3 hidden units, one sigmoid output) on three
examples (``gradient_check_n_test_case``: every array drawn from ``np.random.RandomState(1)`` in the course's
order). ``dictionary_to_vector`` stacks W1, b1, W2, b2, W3, b3 into one column theta, ``vector_to_dictionary``
undoes it, and ``gradient_check_n`` perturbs one entry of theta at a time. The course's ``backward_propagation_n``
carries two planted mistakes (``backward_propagation_n_with_mistakes``): dW2 doubled and db1 four times too
large; the check reports a difference of about 0.285 (published: 0.285093156781), where the correct backprop
(``backward_propagation_n``) gives about 1e-7: with eps = 1e-7 the two-sided difference itself carries rounding
errors of that size, so 1e-7 is where "correct" ends for this check, not where the math does.

>>> round(gradient_check(2.0, 4.0), 12) < 1e-7
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._three_layer import NAMES, relu, sigmoid

__all__ = [
    "forward_propagation", "backward_propagation", "gradient_check", "SHAPES", "dictionary_to_vector",
    "vector_to_dictionary", "gradients_to_vector", "gradient_check_n_test_case", "forward_propagation_n",
    "backward_propagation_n", "backward_propagation_n_with_mistakes", "gradient_check_n", "relative_difference",
    "gradients",
]

Params = dict[str, np.ndarray]

SHAPES: dict[str, tuple[int, int]] = {"W1": (5, 4), "b1": (5, 1), "W2": (3, 5), "b2": (3, 1), "W3": (1, 3),
                                      "b3": (1, 1)}
"""The course's net, by parameter, in the order ``dictionary_to_vector`` stacks them."""


# -- one dimension ------------------------------------------------------------------------------------------

def forward_propagation(x: float, theta: float) -> float:
    """J(theta) = theta x."""
    return theta * x


def backward_propagation(x: float, theta: float) -> float:
    """dJ/dtheta = x."""
    return x


def relative_difference(grad: np.ndarray | float, gradapprox: np.ndarray | float) -> float:
    """||grad - gradapprox|| / (||grad|| + ||gradapprox||): 0 when equal, 1 when opposite, scale-free.

    Both zero is a perfect agreement (0), not 0 / 0.
    """
    grad, gradapprox = np.asarray(grad, dtype=np.float64), np.asarray(gradapprox, dtype=np.float64)
    denominator = np.linalg.norm(grad) + np.linalg.norm(gradapprox)
    return 0.0 if denominator == 0 else float(np.linalg.norm(grad - gradapprox) / denominator)


def gradient_check(x: float, theta: float, epsilon: float = 1e-7) -> float:
    """The relative difference between the two-sided difference and ``backward_propagation`` at theta."""
    gradapprox = (forward_propagation(x, theta + epsilon) - forward_propagation(x, theta - epsilon)) / (2 * epsilon)
    return relative_difference(backward_propagation(x, theta), gradapprox)


# -- N dimensions -------------------------------------------------------------------------------------------

def dictionary_to_vector(parameters: Params,
                         shapes: dict[str, tuple[int, int]] | None = None) -> tuple[np.ndarray, list[str]]:
    """``(theta, keys)``: every parameter flattened (row by row) and stacked into one column (n, 1), in the order
    of ``shapes`` (the course's W1, b1, W2, b2, W3, b3), and the parameter name of each entry."""
    order = list(SHAPES if shapes is None else shapes)
    missing = [name for name in order if name not in parameters]
    if missing:
        raise KeyError(f"dictionary_to_vector: missing {', '.join(missing)}; expected {', '.join(order)}.")
    theta = np.concatenate([np.reshape(parameters[name], (-1, 1)) for name in order], axis=0)
    keys = [name for name in order for _ in range(np.size(parameters[name]))]
    return theta, keys


def vector_to_dictionary(theta: np.ndarray, shapes: dict[str, tuple[int, int]] | None = None) -> Params:
    """The inverse of ``dictionary_to_vector``: theta (n, 1) cut and reshaped into the parameters of ``shapes``."""
    shapes = SHAPES if shapes is None else shapes
    sizes = [int(np.prod(shape)) for shape in shapes.values()]
    if np.size(theta) != sum(sizes):
        raise ValueError(f"vector_to_dictionary: theta has {np.size(theta)} entries, the shapes "
                         f"{dict(shapes)} need {sum(sizes)}.")
    flat, params, start = np.reshape(theta, -1), {}, 0
    for (name, shape), size in zip(shapes.items(), sizes):
        params[name] = flat[start:start + size].reshape(shape)
        start += size
    return params


def gradients_to_vector(gradients: Params, shapes: dict[str, tuple[int, int]] | None = None) -> np.ndarray:
    """The gradients ``dW1, db1, ...`` stacked as ``dictionary_to_vector`` stacks the parameters."""
    order = list(SHAPES if shapes is None else shapes)
    return np.concatenate([np.reshape(gradients["d" + name], (-1, 1)) for name in order], axis=0)


def gradient_check_n_test_case(seed: int = 1) -> tuple[np.ndarray, np.ndarray, Params]:
    """``(X (4, 3), Y (3,), parameters)``, drawn from ``RandomState(seed)`` in the course's order (X, then W1, b1,
    W2, b2, W3, b3); Y is the course's [1, 1, 0], a flat array that broadcasts against A3 (1, 3)."""
    draw = np.random.RandomState(seed)
    X = draw.randn(4, 3)
    Y = np.array([1, 1, 0])
    parameters = {name: draw.randn(*shape) for name, shape in SHAPES.items()}
    return X, Y, parameters


def forward_propagation_n(X: np.ndarray, Y: np.ndarray, parameters: Params) -> tuple[float, tuple]:  # noqa: N803
    """``(cost, cache)``: the mean cross-entropy of the three-layer net, as the course computes it."""
    W1, b1, W2, b2, W3, b3 = (parameters[name] for name in NAMES)
    m = X.shape[1]
    Z1 = W1 @ X + b1
    A1 = relu(Z1)
    Z2 = W2 @ A1 + b2
    A2 = relu(Z2)
    Z3 = W3 @ A2 + b3
    A3 = sigmoid(Z3)
    logprobs = -np.log(A3) * Y + -np.log(1 - A3) * (1 - Y)
    return float(1.0 / m * np.sum(logprobs)), (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)


def _backward(X: np.ndarray, Y: np.ndarray, cache: tuple, w2_factor: float, b1_factor: float) -> Params:  # noqa: N803
    m = X.shape[1]
    _, A1, _, _, _, A2, W2, _, _, A3, W3, _ = cache  # (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)
    dZ3 = A3 - Y
    dW3 = 1.0 / m * (dZ3 @ A2.T)
    db3 = 1.0 / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = W3.T @ dZ3
    dZ2 = dA2 * (A2 > 0)
    dW2 = 1.0 / m * (dZ2 @ A1.T) * w2_factor
    db2 = 1.0 / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = W2.T @ dZ2
    dZ1 = dA1 * (A1 > 0)
    dW1 = 1.0 / m * (dZ1 @ X.T)
    db1 = b1_factor / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2, "db2": db2,
            "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


def backward_propagation_n(X: np.ndarray, Y: np.ndarray, cache: tuple) -> Params:  # noqa: N803
    """The correct gradients of ``forward_propagation_n``'s cost."""
    return _backward(X, Y, cache, 1.0, 1.0)


def backward_propagation_n_with_mistakes(X: np.ndarray, Y: np.ndarray, cache: tuple) -> Params:  # noqa: N803
    """The course's version, with its two planted mistakes: ``dW2`` times 2, ``db1`` with 4/m instead of 1/m."""
    return _backward(X, Y, cache, 2.0, 4.0)


def gradient_check_n(parameters: Params, gradients: Params, X: np.ndarray, Y: np.ndarray,  # noqa: N803
                     epsilon: float = 1e-7,
                     cost: Callable[[np.ndarray, np.ndarray, Params], tuple[float, tuple]] = forward_propagation_n,
                     ) -> tuple[float, np.ndarray, np.ndarray]:
    """``(difference, gradapprox, grad)``: every entry of theta nudged by +-epsilon in turn, the two-sided
    differences of ``cost`` collected into ``gradapprox`` and compared with ``gradients`` by the relative
    difference (one number for the whole vector, as the course computes it)."""
    parameters_values, _ = dictionary_to_vector(parameters)
    grad = gradients_to_vector(gradients)
    gradapprox = np.zeros_like(parameters_values)
    for i in range(parameters_values.shape[0]):
        theta_plus = np.copy(parameters_values)
        theta_plus[i, 0] += epsilon
        j_plus, _ = cost(X, Y, vector_to_dictionary(theta_plus))
        theta_minus = np.copy(parameters_values)
        theta_minus[i, 0] -= epsilon
        j_minus, _ = cost(X, Y, vector_to_dictionary(theta_minus))
        gradapprox[i, 0] = (j_plus - j_minus) / (2 * epsilon)
    return relative_difference(grad, gradapprox), gradapprox, grad


def gradients(params: Params, X: np.ndarray, Y: np.ndarray,  # noqa: N803
              backward: Callable[[np.ndarray, np.ndarray, tuple], Params] = backward_propagation_n,
              ) -> tuple[float, Params]:
    """The cost and ``{"W1": dJ/dW1, ...}`` by ``backward`` (the correct one unless told otherwise)."""
    value, cache = forward_propagation_n(X, np.asarray(Y), params)
    grads = backward(X, np.asarray(Y), cache)
    return value, {name: grads["d" + name] for name in NAMES}

