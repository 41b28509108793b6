"""Nielsen's ``network2.py`` (chapter 3): cross-entropy, L2 weight decay and the 1/sqrt(n_in) start, by hand.

The same column-vector network as chapter 1 (``nielsen.Network``: z = w a + b, a = sigmoid(z)), with three
changes, each one line of the update:

- **Cross-entropy cost**, C_x = -sum_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)]: its output error has no sigma',
  delta^L = a^L - y, so an output unit saturated on the wrong side still learns.
- **L2 regularisation**, C = C_0 + lambda / (2 n) sum_w w^2 over the *weights* (not the biases), with n the size
  of the whole training set. Its gradient adds (lambda / n) w, and a mini-batch step becomes Nielsen's
  equation (93), weight decay::

      w <- (1 - eta lambda / n) w - (eta / m) sum_x dC_x/dw,     b <- b - (eta / m) sum_x dC_x/db

- **Initialisation**: weights from N(0, 1 / n_in) (``init="default"``, network2's default) instead of
  N(0, 1) (``init="large"``, chapter 1's, ``large_weight_initializer``); biases N(0, 1) either way. With
  n_in = 784 inputs a hidden unit's z then has a standard deviation near 1 instead of near 20, so it does not
  start saturated.

``SGD`` also implements the chapter's early stopping (``early_stopping_n``: stop after that many epochs without
a better evaluation accuracy than the best so far) and its learning-rate schedule exercise (``halve_after``:
halve eta after that many epochs without improvement, stop once eta has fallen to eta / 128).

>>> net = Network([784, 30, 10], rng=0)
>>> round(float(net.weights[0].std() * np.sqrt(784)), 1)  # N(0, 1/784) weights
1.0
>>> round(float(Network([784, 30, 10], rng=0, init="large").weights[0].std()), 1)
1.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from . import nielsen
from .nielsen import _backward, _check_cost, _cost, _forward_flat, _output_delta, as_params, params_of

__all__ = ["INITS", "Network", "weight_decay_step", "loss", "gradients", "params_of", "as_params"]

Params = dict[str, np.ndarray]
INITS = ("default", "large")
History = dict[str, list[float]]


def _check_lmbda(lmbda: float, caller: str) -> float:
    if not lmbda >= 0:
        raise ValueError(f"{caller}: lmbda (the L2 strength lambda) must be >= 0, got {lmbda}; 0 turns it off.")
    return float(lmbda)


def weight_decay_step(w: np.ndarray, nabla_w: np.ndarray, eta: float, lmbda: float, n: int) -> np.ndarray:
    """Equation (93): (1 - eta lambda / n) w - eta nabla_w, with ``nabla_w`` the mini-batch's mean gradient.

    >>> weight_decay_step(np.array([1.0]), np.array([0.0]), eta=0.5, lmbda=5.0, n=50000).tolist()
    [0.99995]
    """
    return (1 - eta * lmbda / n) * w - eta * nabla_w


class Network(nielsen.Network):
    """``network2.Network``: cross-entropy by default, L2 weight decay in ``SGD``, N(0, 1/n_in) weights.

    ``rng`` (a Generator or an int seed) draws every bias, then every weight, as chapter 1's network does;
    ``init="default"`` divides each weight matrix by sqrt(n_in) (the same draws, rescaled).
    """

    def __init__(self, sizes: Sequence[int], rng: np.random.Generator | int, *, cost: str = "cross_entropy",
                 init: str = "default", dtype: DTypeLike = np.float64) -> None:
        if init not in INITS:
            raise ValueError(f"network2.Network: init must be one of {INITS}, got {init!r}.")
        super().__init__(sizes, rng, cost=cost, dtype=dtype)
        self.init = init
        if init == "default":
            self.weights = [w / np.sqrt(w.shape[1]) for w in self.weights]

    def __repr__(self) -> str:
        return f"network2.Network({self.sizes}, cost={self.cost!r}, init={self.init!r})"

    def update_mini_batch_l2(self, x: np.ndarray, y: np.ndarray, eta: float, lmbda: float, n: int) -> None:
        """One step of equation (93) on the columns x (n_in, m), y (n_out, m); ``n`` is the training-set size."""
        lmbda = _check_lmbda(lmbda, "Network.update_mini_batch_l2")
        nabla_b, nabla_w = self.backprop_batch(x, y)
        self.weights = [weight_decay_step(w, nw, eta, lmbda, n) for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - eta * nb for b, nb in zip(self.biases, nabla_b)]

    def total_cost(self, x: np.ndarray, y: np.ndarray, lmbda: float = 0.0) -> float:
        """C = C_0 + lambda / (2 n) sum w^2 on the columns x, y (n = x.shape[1], as network2 divides by len(data))."""
        lmbda = _check_lmbda(lmbda, "Network.total_cost")
        return loss(params_of(self), x, y, cost=self.cost, lmbda=lmbda, n=x.shape[1])

    def accuracy(self, x: np.ndarray, labels: np.ndarray) -> int:
        """How many columns of x the network classifies as ``labels`` (the output with the largest activation)."""
        return int(np.sum(np.argmax(self.feedforward(x), axis=0) == labels))

    def SGD(self, train_x: np.ndarray, train_y: np.ndarray, epochs: int, mini_batch_size: int,  # type: ignore[override]  # noqa: N802
            eta: float, lmbda: float = 0.0, evaluation: tuple[np.ndarray, np.ndarray] | None = None, *,
            rng: np.random.Generator | int, early_stopping_n: int = 0, halve_after: int = 0,
            monitor_training: bool = False, verbose: bool = False) -> History:
        """Mini-batch SGD with weight decay; returns the history of every epoch.

        ``train_x`` (n, n_in) rows with integer ``train_y`` (n,); ``evaluation`` = (x rows, labels) is scored
        after each epoch (``evaluation_accuracy``, a fraction; ``evaluation_cost``). ``monitor_training`` also
        records the training set's cost and accuracy. The order of each epoch is ``rng.permutation(n)``.
        """
        lmbda = _check_lmbda(lmbda, "Network.SGD")
        if (early_stopping_n or halve_after) and evaluation is None:
            raise ValueError("Network.SGD: early_stopping_n and halve_after watch the evaluation accuracy; pass "
                             "evaluation=(x, labels).")
        gen = nielsen.generator(rng, "network2.Network.SGD")
        X = np.asarray(train_x).T
        labels = np.asarray(train_y)
        Y = np.eye(self.sizes[-1], dtype=X.dtype)[labels].T
        n = X.shape[1]
        history: History = {"evaluation_accuracy": [], "evaluation_cost": [], "training_accuracy": [],
                            "training_cost": [], "eta": []}
        best, since_best, eta0 = -1.0, 0, eta
        for epoch in range(epochs):
            order = gen.permutation(n)
            for start in range(0, n, mini_batch_size):
                index = order[start:start + mini_batch_size]
                self.update_mini_batch_l2(X[:, index], Y[:, index], eta, lmbda, n)
            history["eta"].append(eta)
            if monitor_training:
                history["training_cost"].append(self.total_cost(X, Y, lmbda))
                history["training_accuracy"].append(self.accuracy(X, labels) / n)
            if evaluation is not None:
                ex, ey = np.asarray(evaluation[0]).T, np.asarray(evaluation[1])
                history["evaluation_accuracy"].append(self.accuracy(ex, ey) / len(ey))
                history["evaluation_cost"].append(
                    self.total_cost(ex, np.eye(self.sizes[-1], dtype=ex.dtype)[ey].T, lmbda))
                if verbose:
                    print(f"Epoch {epoch}: {history['evaluation_accuracy'][-1]:.2%}")
                if history["evaluation_accuracy"][-1] > best:
                    best, since_best = history["evaluation_accuracy"][-1], 0
                else:
                    since_best += 1
                if early_stopping_n and since_best >= early_stopping_n:
                    break
                if halve_after and since_best >= halve_after:
                    eta, since_best = eta / 2, 0
                    if eta < eta0 / 128:
                        break
        return history


def loss(params: Params, x: np.ndarray, y: np.ndarray, *, cost: str = "cross_entropy", lmbda: float = 0.0,
         n: int | None = None) -> float:
    """C_0 (the mean over the columns) + lambda / (2 n) sum_w w^2; ``n`` defaults to the number of columns."""
    _check_cost(cost, "network2.loss")
    x, y = np.asarray(x), np.asarray(y)
    weights, zs, activations = _forward_flat(params, x, y, "loss")
    n = x.shape[1] if n is None else n
    return _cost(activations[-1], y, zs[-1], cost) + lmbda / (2 * n) * sum(float(np.sum(w * w)) for w in weights)


def gradients(params: Params, x: np.ndarray, y: np.ndarray, *, cost: str = "cross_entropy", lmbda: float = 0.0,
              n: int | None = None) -> tuple[float, Params]:
    """C and dC/dparam for ``{"w0", "b0", ...}``: the mini-batch's mean gradient plus (lambda / n) w for weights.

    ``n`` is the training set's size (Nielsen's n), which the penalty divides by whatever the batch's size;
    it defaults to the number of columns.

    >>> params = params_of(Network([4, 3, 2], rng=0))
    >>> _, plain = gradients(params, np.ones((4, 5)), np.zeros((2, 5)))
    >>> _, decayed = gradients(params, np.ones((4, 5)), np.zeros((2, 5)), lmbda=2.0, n=10)
    >>> bool(np.allclose(decayed["w1"] - plain["w1"], 0.2 * params["w1"])), bool(np.all(decayed["b1"] == plain["b1"]))
    (True, True)
    """
    _check_cost(cost, "network2.gradients")
    lmbda = _check_lmbda(lmbda, "network2.gradients")
    x, y = np.asarray(x), np.asarray(y)
    weights, zs, activations = _forward_flat(params, x, y, "gradients")
    y = y.astype(activations[-1].dtype, copy=False)
    nabla_b, nabla_w = _backward(weights, zs, activations, _output_delta(activations[-1], y, zs[-1], cost))
    m = x.shape[1]
    n = m if n is None else n
    grads = as_params([nw / m + lmbda / n * w for nw, w in zip(nabla_w, weights)], [nb / m for nb in nabla_b])
    return loss(params, x, y, cost=cost, lmbda=lmbda, n=n), grads
