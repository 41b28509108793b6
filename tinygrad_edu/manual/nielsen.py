"""The nielsen tutorial (``001_8974e2b09711c500.txt``): Nielsen-style ``Network`` with mini-batch SGD, by hand in numpy.

Layout as in the tutorial: ``sizes`` lists the layer widths, ``biases[l]`` is (n_out, 1), ``weights[l]`` is
(n_out, n_in), both drawn from N(0, 1), and activations are column vectors::

    z^l = w^l a^(l-1) + b^l,   a^l = sigmoid(z^l)

Backpropagation for one sample (x, y) with the quadratic cost C_x = 1/2 ||y - a^L||^2::

    delta^L = (a^L - y) * sigmoid'(z^L)                (the tutorial's cost_derivative times sigmoid prime)
    delta^l = (w^(l+1)^T delta^(l+1)) * sigmoid'(z^l)
    dC_x/db^l = delta^l,   dC_x/dw^l = delta^l (a^(l-1))^T

With the cross-entropy cost C_x = -sum [y ln a^L + (1 - y) ln(1 - a^L)] the sigmoid' cancels and
delta^L = a^L - y (``cost="cross_entropy"``). A mini-batch of m samples is one step of
``w -= eta/m * sum_x dC_x/dw`` (and the same for b), i.e. gradient descent on C = 1/m sum_x C_x.
``backprop_batch`` computes the same averaged gradients for all m columns at once with matrix products.

>>> net = Network([2, 3, 1], rng=0)
>>> [w.shape for w in net.weights], [b.shape for b in net.biases]
([(3, 2), (1, 3)], [(3, 1), (1, 1)])
>>> nabla_b, nabla_w = net.backprop(np.array([[0.5], [1.0]]), np.array([[1.0]]))
>>> nabla_w[0].shape
(3, 2)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from ._common import generator, softplus, stable_sigmoid

__all__ = [
    "sigmoid", "sigmoid_prime", "Network", "COSTS", "params_of", "as_params", "loss", "gradients", "training_pairs",
    "test_pairs",
]

Params = dict[str, np.ndarray]
Pair = tuple[np.ndarray, np.ndarray]
COSTS = ("quadratic", "cross_entropy")


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, computed without overflow; keeps z's float dtype."""
    return stable_sigmoid(z)


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    """Derivative of the sigmoid, sigmoid(z) (1 - sigmoid(z))."""
    s = stable_sigmoid(z)
    return s * (1 - s)


def _check_cost(cost: str, caller: str) -> str:
    if cost not in COSTS:
        raise ValueError(f"{caller}: cost must be one of {COSTS}, got {cost!r}.")
    return cost


def _output_delta(a: np.ndarray, y: np.ndarray, z: np.ndarray, cost: str) -> np.ndarray:
    if cost == "quadratic":
        return (a - y) * sigmoid_prime(z)
    # NOTE: for cross-entropy dC/da = (a - y) / (a (1 - a)) and sigmoid' = a (1 - a): they cancel
    return a - y


def _backward(weights: Sequence[np.ndarray], zs: list[np.ndarray], activations: list[np.ndarray],
              delta: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Summed-over-columns nabla_b, nabla_w from the output delta (one or many columns)."""
    layers = len(weights)
    nabla_b: list[np.ndarray] = [np.empty(0)] * layers
    nabla_w: list[np.ndarray] = [np.empty(0)] * layers
    for layer in range(layers - 1, -1, -1):
        if layer < layers - 1:
            delta = (weights[layer + 1].T @ delta) * sigmoid_prime(zs[layer])
        nabla_b[layer] = delta.sum(axis=1, keepdims=True)
        nabla_w[layer] = delta @ activations[layer].T
    return nabla_b, nabla_w


class Network:
    """A fully connected sigmoid network, laid out as in Nielsen's ``network.py`` (see the module docstring).

    ``rng`` (a Generator or an int seed) draws every bias, then every weight, from N(0, 1). ``cost`` picks
    the output delta: ``"quadratic"`` (the tutorial's) or ``"cross_entropy"``.
    """

    def __init__(self, sizes: Sequence[int], rng: np.random.Generator | int, *, cost: str = "quadratic",
                 dtype: DTypeLike = np.float64) -> None:
        sizes = [int(n) for n in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"Network: sizes must list at least two positive layer widths, e.g. [784, 30, 10]; "
                             f"got {sizes}.")
        gen = generator(rng, "Network")
        self.sizes = sizes
        self.num_layers = len(sizes)
        self.cost = _check_cost(cost, "Network")
        self.biases = [gen.standard_normal((n, 1)).astype(dtype, copy=False) for n in sizes[1:]]
        self.weights = [gen.standard_normal((n_out, n_in)).astype(dtype, copy=False)
                        for n_in, n_out in zip(sizes[:-1], sizes[1:])]

    def __repr__(self) -> str:
        return f"Network({self.sizes}, cost={self.cost!r})"

    def feedforward(self, a: np.ndarray) -> np.ndarray:
        """The output for input ``a`` (n_in, 1), or for many inputs at once as columns (n_in, m)."""
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(w @ a + b)
        return a

    def _forward(self, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        activation, activations, zs = x, [x], []
        for b, w in zip(self.biases, self.weights):
            z = w @ activation + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        return zs, activations

    def _check_columns(self, x: np.ndarray, y: np.ndarray, caller: str) -> None:
        n_in, n_out = self.sizes[0], self.sizes[-1]
        if x.ndim != 2 or x.shape[0] != n_in or y.shape != (n_out, x.shape[1]):
            raise ValueError(f"Network.{caller}: expected x ({n_in}, m) and y ({n_out}, m) with one sample per "
                             f"column, got x {x.shape} and y {y.shape}. Rows-as-samples data needs x.T, y.T.")

    def cost_derivative(self, output_activations: np.ndarray, y: np.ndarray) -> np.ndarray:
        """dC_x/da for the quadratic cost: a - y."""
        return output_activations - y

    def backprop(self, x: np.ndarray, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``(nabla_b, nabla_w)``, the gradient of C_x for one sample: x (n_in, 1), y (n_out, 1) one-hot."""
        self._check_columns(x, y, "backprop")
        if x.shape[1] != 1:
            raise ValueError(f"Network.backprop: one sample at a time, x (n_in, 1); got {x.shape}. "
                             "Use backprop_batch for a whole mini-batch.")
        zs, activations = self._forward(x)
        if self.cost == "quadratic":
            delta = self.cost_derivative(activations[-1], y) * sigmoid_prime(zs[-1])
        else:
            delta = _output_delta(activations[-1], y, zs[-1], self.cost)
        return _backward(self.weights, zs, activations, delta)

    def update_mini_batch(self, mini_batch: Sequence[Pair], eta: float) -> None:
        """One SGD step from a list of ``(x, y)`` pairs, one ``backprop`` per sample, as in the tutorial."""
        if len(mini_batch) == 0:
            raise ValueError("Network.update_mini_batch: the mini-batch is empty.")
        nabla_b = [np.zeros_like(b) for b in self.biases]
        nabla_w = [np.zeros_like(w) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        step = eta / len(mini_batch)
        self.weights = [w - step * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - step * nb for b, nb in zip(self.biases, nabla_b)]

    def backprop_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Averaged ``(nabla_b, nabla_w)`` of C = 1/m sum C_x for a mini-batch x (n_in, m), y (n_out, m).

        Equal (to rounding) to the mean of ``backprop`` over the m columns, in a few matrix products.
        """
        self._check_columns(x, y, "backprop_batch")
        zs, activations = self._forward(x)
        y = y.astype(activations[-1].dtype, copy=False)
        delta = _output_delta(activations[-1], y, zs[-1], self.cost)
        nabla_b, nabla_w = _backward(self.weights, zs, activations, delta)
        m = x.shape[1]
        return [nb / m for nb in nabla_b], [nw / m for nw in nabla_w]

    def update_mini_batch_matrix(self, x: np.ndarray, y: np.ndarray, eta: float) -> None:
        """The same step as ``update_mini_batch``, from the columns x (n_in, m), y (n_out, m), in matrix form."""
        nabla_b, nabla_w = self.backprop_batch(x, y)
        self.weights = [w - eta * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - eta * nb for b, nb in zip(self.biases, nabla_b)]

    def evaluate(self, test_data: Sequence[tuple[np.ndarray, int]]) -> int:
        """How many ``(x, label)`` pairs the network gets right (the output with the largest activation)."""
        if len(test_data) == 0:
            return 0
        x = np.hstack([sample for sample, _ in test_data])
        labels = np.array([int(label) for _, label in test_data])
        return int(np.sum(np.argmax(self.feedforward(x), axis=0) == labels))

    def SGD(self, training_data: Sequence[Pair], epochs: int, mini_batch_size: int, eta: float,  # noqa: N802
            test_data: Sequence[tuple[np.ndarray, int]] | None = None, *, rng: np.random.Generator | int,
            matrix: bool = True, verbose: bool = True) -> list[float]:
        """Mini-batch stochastic gradient descent; returns the test accuracy after each epoch.

        Each epoch shuffles ``training_data`` (pairs from ``training_pairs``) with ``rng``, cuts it into
        mini-batches of ``mini_batch_size`` and updates once per batch, by ``update_mini_batch_matrix``
        (``matrix=True``) or the tutorial's per-sample ``update_mini_batch``. With ``test_data`` (pairs from
        ``test_pairs``) it prints ``Epoch k: correct / n`` after each epoch, as the tutorial does.
        """
        if mini_batch_size < 1 or epochs < 0:
            raise ValueError(f"Network.SGD: need mini_batch_size >= 1 and epochs >= 0, got {mini_batch_size} "
                             f"and {epochs}.")
        gen = generator(rng, "Network.SGD")
        training_data = list(training_data)
        test_data = list(test_data) if test_data is not None else None
        accuracies: list[float] = []
        for epoch in range(epochs):
            order = gen.permutation(len(training_data))
            for start in range(0, len(order), mini_batch_size):
                mini_batch = [training_data[i] for i in order[start:start + mini_batch_size]]
                if matrix:
                    self.update_mini_batch_matrix(np.hstack([x for x, _ in mini_batch]),
                                                  np.hstack([y for _, y in mini_batch]), eta)
                else:
                    self.update_mini_batch(mini_batch, eta)
            if test_data:
                correct = self.evaluate(test_data)
                accuracies.append(correct / len(test_data))
                if verbose:
                    print(f"Epoch {epoch}: {correct} / {len(test_data)}")
            elif verbose:
                print(f"Epoch {epoch} complete")
        return accuracies


# -- the flat form used by the comparison harness ----------------------------------------------------------

def params_of(network: Network) -> Params:
    """A copy of the network's parameters as ``{"w0", "b0", "w1", "b1", ...}``: weights (out, in), biases (out, 1)."""
    return as_params([w.copy() for w in network.weights], [b.copy() for b in network.biases])


def as_params(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> Params:
    """Lists of weights and biases (or of their gradients, ``nabla_w`` and ``nabla_b``) as ``{"w0", "b0", ...}``.

    >>> sorted(as_params([np.ones((3, 4)), np.ones((2, 3))], [np.ones((3, 1)), np.ones((2, 1))]))
    ['b0', 'b1', 'w0', 'w1']
    """
    params: Params = {}
    for i, (w, b) in enumerate(zip(weights, biases)):
        params[f"w{i}"] = w
        params[f"b{i}"] = b
    return params


def _unpack(params: Params, caller: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    layers = len(params) // 2
    try:
        weights = [params[f"w{i}"] for i in range(layers)]
        biases = [params[f"b{i}"] for i in range(layers)]
    except KeyError as error:
        raise KeyError(f"nielsen.{caller}: params must hold w0, b0, w1, b1, ... (see params_of); missing "
                       f"{error}, got keys {sorted(params)}.") from None
    return weights, biases


def _forward_flat(params: Params, x: np.ndarray, y: np.ndarray,
                  caller: str) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    weights, biases = _unpack(params, caller)
    if x.ndim != 2 or x.shape[0] != weights[0].shape[1] or y.shape != (weights[-1].shape[0], x.shape[1]):
        raise ValueError(f"nielsen.{caller}: expected x ({weights[0].shape[1]}, m) and y "
                         f"({weights[-1].shape[0]}, m), one sample per column; got x {x.shape}, y {y.shape}.")
    activation, activations, zs = x, [x], []
    for w, b in zip(weights, biases):
        zs.append(w @ activation + b)
        activation = sigmoid(zs[-1])
        activations.append(activation)
    return weights, zs, activations


def _cost(a: np.ndarray, y: np.ndarray, z: np.ndarray, cost: str) -> float:
    m = a.shape[1]
    if cost == "quadratic":
        return float(0.5 * np.sum((y - a) ** 2) / m)
    # -[y ln a + (1 - y) ln(1 - a)] = softplus(z) - y z, finite even where a rounds to 0 or 1
    return float(np.sum(softplus(z) - y * z) / m)


def loss(params: Params, x: np.ndarray, y: np.ndarray, *, cost: str = "quadratic") -> float:
    """C = 1/m sum_x C_x for columns x (n_in, m), y (n_out, m); quadratic C_x = 1/2 ||y - a||^2 by default."""
    _check_cost(cost, "nielsen.loss")
    _, zs, activations = _forward_flat(params, np.asarray(x), np.asarray(y), "loss")
    return _cost(activations[-1], np.asarray(y), zs[-1], cost)


def gradients(params: Params, x: np.ndarray, y: np.ndarray, *, cost: str = "quadratic") -> tuple[float, Params]:
    """C and dC/dparam (batch-averaged) for ``{"w0", "b0", ...}`` on columns x (n_in, m), y (n_out, m).

    >>> params = params_of(Network([4, 3, 2], rng=0))
    >>> x, y = np.ones((4, 5)), np.zeros((2, 5))
    >>> value, grads = gradients(params, x, y)
    >>> sorted(grads), grads["b1"].shape
    (['b0', 'b1', 'w0', 'w1'], (2, 1))
    """
    _check_cost(cost, "nielsen.gradients")
    x, y = np.asarray(x), np.asarray(y)
    weights, zs, activations = _forward_flat(params, x, y, "gradients")
    y = y.astype(activations[-1].dtype, copy=False)
    delta = _output_delta(activations[-1], y, zs[-1], cost)
    nabla_b, nabla_w = _backward(weights, zs, activations, delta)
    m = x.shape[1]
    grads = as_params([nw / m for nw in nabla_w], [nb / m for nb in nabla_b])
    return _cost(activations[-1], y, zs[-1], cost), grads


# -- data in the tutorial's format -----------------------------------------------------------------------------

def training_pairs(x: np.ndarray, labels: np.ndarray, num_classes: int = 10) -> list[Pair]:
    """Rows x (n, 784) and integer labels (n,) as the tutorial's list of ``(x (784, 1), y (10, 1) one-hot)``.

    >>> pairs = training_pairs(np.zeros((2, 4)), np.array([1, 0]), num_classes=2)
    >>> pairs[0][0].shape, pairs[0][1].ravel().tolist()
    ((4, 1), [0.0, 1.0])
    """
    x, labels = np.asarray(x), np.asarray(labels)
    if x.ndim != 2 or labels.shape != (len(x),):
        raise ValueError(f"nielsen.training_pairs: expected x (n, features) and labels (n,), got {x.shape} "
                         f"and {labels.shape}.")
    targets = np.eye(num_classes, dtype=x.dtype if x.dtype.kind == "f" else np.float64)[labels]
    return [(row.reshape(-1, 1), target.reshape(-1, 1)) for row, target in zip(x, targets)]


def test_pairs(x: np.ndarray, labels: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Rows x (n, 784) and labels (n,) as the tutorial's list of ``(x (784, 1), label)`` for ``evaluate``."""
    x, labels = np.asarray(x), np.asarray(labels)
    if x.ndim != 2 or labels.shape != (len(x),):
        raise ValueError(f"nielsen.test_pairs: expected x (n, features) and labels (n,), got {x.shape} "
                         f"and {labels.shape}.")
    return [(row.reshape(-1, 1), int(label)) for row, label in zip(x, labels)]


# pytest collects module-level functions named test_*; this one is a data helper, not a test
test_pairs.__test__ = False  # type: ignore[attr-defined]
