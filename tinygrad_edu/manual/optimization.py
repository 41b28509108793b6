"""The course's "Optimization methods" assignment: mini-batches, momentum, Adam and learning-rate decay, by hand.

The network is the course's three-layer ReLU net (``layers_dims = [2, 5, 2, 1]``, He start from
``np.random.RandomState(3)``) on the 300 moons points (``datasets.load_moons()``). Each epoch shuffles the
columns and cuts them into mini-batches (``random_mini_batches``), then takes one step per mini-batch with one
of three update rules, all with the gradients dW, db of the mini-batch's mean cross-entropy:

- gradient descent:  W <- W - alpha dW
- momentum:          v <- beta v + (1 - beta) dW;  W <- W - alpha v          (v starts at 0)
- Adam:              v <- beta1 v + (1 - beta1) dW,   s <- beta2 s + (1 - beta2) dW^2   (both start at 0)
                     v_hat = v / (1 - beta1^t),  s_hat = s / (1 - beta2^t)   (t counts every step, from 1)
                     W <- W - alpha v_hat / (sqrt(s_hat) + epsilon)

Published, after 10,000 epochs at alpha = 0.0007 with mini-batches of 64: training accuracy 79.7% (gradient
descent), 79.7% (momentum, beta = 0.9) and 94% (Adam). A later edition of the assignment runs 5,000 epochs
and adds learning-rate decay (``update_lr``, ``schedule_lr_decay``), applied after every epoch.

The random order is the course's: epoch ``i`` (from 0) shuffles with ``np.random.RandomState(11 + i)``, the
course's ``np.random.seed(seed)`` with its seed counter starting at 10.

>>> X, Y = np.arange(10.0).reshape(1, 10), np.arange(10.0).reshape(1, 10)
>>> [y.astype(int).tolist() for _, y in random_mini_batches(X, Y, 4, seed=0)]
[[[2, 8, 4, 9]], [[1, 6, 7, 3]], [[0, 5]]]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ._three_layer import (NAMES, accuracy, backward_propagation, check_columns, compute_cost, cost,
                           forward_propagation, predict)
from .initialization import initialize_parameters_he

__all__ = [
    "OPTIMIZERS", "random_mini_batches", "initialize_parameters", "update_parameters_with_gd",
    "initialize_velocity", "update_parameters_with_momentum", "initialize_adam", "update_parameters_with_adam",
    "update_lr", "schedule_lr_decay", "model", "predict", "accuracy", "gradients",
]

Params = dict[str, np.ndarray]
Batch = tuple[np.ndarray, np.ndarray]
OPTIMIZERS = ("gd", "momentum", "adam")


def random_mini_batches(X: np.ndarray, Y: np.ndarray, mini_batch_size: int = 64,  # noqa: N803
                        seed: int = 0) -> list[Batch]:
    """The columns of X, Y in the order ``RandomState(seed).permutation(m)``, cut into mini-batches.

    Every mini-batch holds ``mini_batch_size`` columns except the last, which holds the rest (m mod size).
    """
    if mini_batch_size < 1:
        raise ValueError(f"random_mini_batches: mini_batch_size must be at least 1, got {mini_batch_size}.")
    m = X.shape[1]
    permutation = np.random.RandomState(seed).permutation(m)
    shuffled_X, shuffled_Y = X[:, permutation], Y[:, permutation].reshape(Y.shape[0], m)
    return [(shuffled_X[:, k:k + mini_batch_size], shuffled_Y[:, k:k + mini_batch_size])
            for k in range(0, m, mini_batch_size)]


def initialize_parameters(layers_dims: Sequence[int]) -> Params:
    """The course's start for this assignment: He weights from ``RandomState(3)``, zero biases."""
    return initialize_parameters_he(layers_dims, seed=3)


def update_parameters_with_gd(params: Params, grads: Params, learning_rate: float) -> Params:
    """W <- W - alpha dW (and b), as a new dict."""
    return {name: params[name] - learning_rate * grads["d" + name] for name in params}


def initialize_velocity(params: Params) -> Params:
    """``{"dW1": 0, "db1": 0, ...}``, zeros of each parameter's shape."""
    return {"d" + name: np.zeros_like(value) for name, value in params.items()}


def update_parameters_with_momentum(params: Params, grads: Params, v: Params, beta: float,
                                    learning_rate: float) -> tuple[Params, Params]:
    """v <- beta v + (1 - beta) dW;  W <- W - alpha v. Returns new ``(params, v)``."""
    v = {key: beta * v[key] + (1 - beta) * grads[key] for key in v}
    return {name: params[name] - learning_rate * v["d" + name] for name in params}, v


def initialize_adam(params: Params) -> tuple[Params, Params]:
    """``(v, s)``: the first and second moment estimates, zeros."""
    return initialize_velocity(params), initialize_velocity(params)


def update_parameters_with_adam(params: Params, grads: Params, v: Params, s: Params, t: int,
                                learning_rate: float = 0.01, beta1: float = 0.9, beta2: float = 0.999,
                                epsilon: float = 1e-8) -> tuple[Params, Params, Params]:
    """One Adam step (the module docstring's rule); ``t`` is this step's number, from 1. Returns ``(params, v, s)``."""
    if t < 1:
        raise ValueError(f"update_parameters_with_adam: t counts the steps from 1, got {t}.")
    v = {key: beta1 * v[key] + (1 - beta1) * grads[key] for key in v}
    s = {key: beta2 * s[key] + (1 - beta2) * np.square(grads[key]) for key in s}
    new = {}
    for name in params:
        v_corrected = v["d" + name] / (1 - beta1**t)
        s_corrected = s["d" + name] / (1 - beta2**t)
        new[name] = params[name] - learning_rate * v_corrected / (np.sqrt(s_corrected) + epsilon)
    return new, v, s


def update_lr(learning_rate0: float, epoch_num: int, decay_rate: float) -> float:
    """alpha0 / (1 + decay_rate * epoch): decay after every epoch."""
    return 1 / (1 + decay_rate * epoch_num) * learning_rate0


def schedule_lr_decay(learning_rate0: float, epoch_num: int, decay_rate: float, time_interval: int = 1000) -> float:
    """alpha0 / (1 + decay_rate * floor(epoch / time_interval)): the same decay, in steps of ``time_interval``."""
    return 1 / (1 + decay_rate * math.floor(epoch_num / time_interval)) * learning_rate0


def model(X: np.ndarray, Y: np.ndarray, layers_dims: Sequence[int], optimizer: str,  # noqa: N803
          learning_rate: float = 0.0007, mini_batch_size: int = 64, beta: float = 0.9, beta1: float = 0.9,
          beta2: float = 0.999, epsilon: float = 1e-8, num_epochs: int = 10000, print_cost: bool = False,
          decay: Callable[[float, int, float], float] | None = None,
          decay_rate: float = 1.0) -> tuple[Params, list[float]]:
    """Train from the course's start; returns ``(params, the mean cost of each 100th epoch)``.

    An epoch's cost is the mean over all m examples of the cross-entropy, summed over its mini-batches (the
    later edition's ``cost_avg``). With ``decay`` the learning rate after epoch i is ``decay(alpha0, i,
    decay_rate)``, set at the end of the epoch, as the course does.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimization.model: optimizer must be one of {OPTIMIZERS}, got {optimizer!r}.")
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    params = initialize_parameters(layers_dims)
    check_columns(X, Y, params, "optimization.model")
    v, s = initialize_adam(params)
    learning_rate0, t, m = learning_rate, 0, X.shape[1]
    costs: list[float] = []
    for i in range(num_epochs):
        cost_total = 0.0
        for minibatch_X, minibatch_Y in random_mini_batches(X, Y, mini_batch_size, seed=11 + i):
            A3, cache = forward_propagation(minibatch_X, params)
            cost_total += compute_cost(A3, minibatch_Y) * minibatch_Y.shape[1]
            grads = backward_propagation(minibatch_X, minibatch_Y, cache)
            if optimizer == "gd":
                params = update_parameters_with_gd(params, grads, learning_rate)
            elif optimizer == "momentum":
                params, v = update_parameters_with_momentum(params, grads, v, beta, learning_rate)
            else:
                t += 1
                params, v, s = update_parameters_with_adam(params, grads, v, s, t, learning_rate, beta1, beta2,
                                                           epsilon)
        if decay is not None:
            learning_rate = decay(learning_rate0, i, decay_rate)
        if i % 100 == 0:
            costs.append(cost_total / m)
            if print_cost and i % 1000 == 0:
                print(f"Cost after epoch {i}: {costs[-1]:f}")
    return params, costs


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> tuple[float, Params]:  # noqa: N803
    """The mini-batch's mean cross-entropy and ``{"W1": dJ/dW1, ..., "b3": dJ/db3}``."""
    check_columns(X, Y, params, "optimization.gradients")
    _, cache = forward_propagation(X, params)
    grads = backward_propagation(X, Y, cache)
    return cost(cache[8], Y), {name: grads["d" + name] for name in NAMES}
