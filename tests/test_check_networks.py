"""check_backprop names the mistake in the networks of the next chapters, and agrees with every correct one.

Five networks written the way the tutorials' next chapters write them (our own code, in their styles):

- ``course_l2``: the deep-learning course's regularisation exercise: LINEAR-RELU-LINEAR-RELU-LINEAR-SIGMOID in
  the (features, examples) layout, cross-entropy plus the L2 cost lambda/(2m) sum ||W||^2. Its backprop returns
  the course's dict, intermediates ``dZ3``, ``dA2``, ... included, and ``(grads, cost)`` in that order.
- ``course_dropout``: the same network with inverted dropout on both hidden layers (fixed masks, keep_prob).
- ``tanh_softmax``: two tanh layers and a softmax output with the cross-entropy cost.
- ``nielsen``: Nielsen's chapter-3 network: sigmoid layers, cross-entropy, weight decay lambda/n (n the size of
  the training set, not of the mini-batch), parameters as his two lists ``[biases, weights]`` and a backprop
  that loops over the examples and returns ``(nabla_b, nabla_w)``.
- ``course_conv``: the course's convolutional model in its layout (images (m, n_H, n_W, n_C), filters
  (f, f, n_C_prev, n_C)): conv 3x3 padding 1, tanh, conv 3x3 stride 2 padding 1, tanh, 2x2 max-pool, a softmax
  layer on the pooled maps flattened channels-last. Its backprop writes dA_prev as the full convolution of dZ with
  the filters rotated by 180° and their channel axes swapped, dW as the correlation of the padded input with dZ.

Each backprop takes a ``slip``: the name of one planted mistake, written where a learner makes it. PLANTED lists
every slip with the rows that must disagree and the words their diagnosis must contain (its *name*: sign, factor
with the constant, L2 term, transpose, another parameter, the wrong axis, where the mistake enters).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinygrad_edu import Tensor, check_backprop

Params = Any  # a dict of arrays, or Nielsen's [biases, weights]


@dataclass
class Net:
    params: Params
    manual: Callable[..., Any]   # the hand-derived backprop: manual(params, slip=''), a slip switched on by name
    loss: Callable[[Any], Tensor]          # the same cost with engine operators


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


# -- the course's L2-regularised 3-layer net, and the same with inverted dropout ---------------------------------

COURSE_M, LAMBD, KEEP_PROB = 8, 0.7, 0.8


def course(dtype: Any, dropout: bool) -> Net:
    rng = np.random.default_rng(1)
    sizes = [4, 5, 5, 1]  # W2 is square (a transposed data term keeps its shape), b1 and b2 alike (a swap)
    params = {}
    for i in range(1, 4):
        params[f"W{i}"] = (rng.standard_normal((sizes[i], sizes[i - 1])) / np.sqrt(sizes[i - 1])).astype(dtype)
        params[f"b{i}"] = (0.1 * rng.standard_normal((sizes[i], 1))).astype(dtype)
    X = rng.standard_normal((4, COURSE_M)).astype(dtype)
    Y = (rng.random((1, COURSE_M)) < 0.5).astype(dtype)
    D1 = (rng.random((5, COURSE_M)) < KEEP_PROB).astype(dtype)
    D2 = (rng.random((5, COURSE_M)) < KEEP_PROB).astype(dtype)
    fresh = (rng.random((5, COURSE_M)) < KEEP_PROB).astype(dtype)  # a mask drawn again in backward
    m, lambd, kp = COURSE_M, (0.0 if dropout else LAMBD), KEEP_PROB

    def manual(p: dict[str, np.ndarray], slip: str = "") -> Any:
        W1, b1, W2, b2, W3, b3 = (p[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
        Z1 = W1 @ X + b1
        A1 = _relu(Z1)
        if dropout:
            A1 = A1 * D1 / kp
        Z2 = W2 @ A1 + b2
        A2 = _relu(Z2)
        if dropout:
            A2 = A2 * D2 / kp
        Z3 = W3 @ A2 + b3
        A3 = _sigmoid(Z3)
        cost = (-np.sum(Y * np.log(A3) + (1 - Y) * np.log(1 - A3)) / m
                + lambd / (2 * m) * sum(np.sum(np.square(W)) for W in (W1, W2, W3)))

        dZ3 = A3 - Y if slip != "dZ3 sign" else Y - A3
        dW3 = dZ3 @ A2.T / m + lambd / m * W3
        if slip == "dW3 no L2":
            dW3 = dZ3 @ A2.T / m
        if slip == "dW3 no 1/m":
            dW3 = dZ3 @ A2.T + lambd / m * W3
        if slip == "dW3 sign":
            dW3 = -dW3
        db3 = np.sum(dZ3, axis=1, keepdims=True) / m
        dA2 = W3.T @ dZ3
        if dropout:
            dA2 = {"no /keep_prob": dA2 * D2, "no mask": dA2 / kp}.get(slip, dA2 * D2 / kp)
        dZ2 = dA2 * (Z2 > 0) if slip != "relu' = A" else dA2 * A2
        dW2 = dZ2 @ A1.T / m + lambd / m * W2
        if slip == "dW2 lambda":
            dW2 = dZ2 @ A1.T / m + lambd * W2
        if slip == "dW2 data sign":
            dW2 = -dZ2 @ A1.T / m + lambd / m * W2
        if slip == "dW2 data transposed":
            dW2 = A1 @ dZ2.T / m + lambd / m * W2
        db2 = np.sum(dZ2, axis=1, keepdims=True) / m
        if slip == "db2 L2":
            db2 = db2 + lambd / m * b2
        if slip == "db2 keepdims":
            db2 = np.sum(dZ2, axis=1) / m
        dA1 = W2.T @ dZ2
        if dropout:
            dA1 = {"fresh mask": dA1 * fresh / kp, "/keep_prob twice": dA1 * D1 / kp / kp,
                   "*keep_prob": dA1 * D1 * kp}.get(slip, dA1 * D1 / kp)
        dZ1 = dA1 * (Z1 > 0)
        dW1 = dZ1 @ X.T / m + lambd / m * W1
        if slip == "dW1 2lambda":
            dW1 = dZ1 @ X.T / m + 2 * lambd / m * W1
        db1 = np.sum(dZ1, axis=1, keepdims=True) / m
        if slip == "db1 no 1/m":
            db1 = np.sum(dZ1, axis=1, keepdims=True)
        if slip == "db1 wrong axis":
            db1 = np.sum(dZ1, axis=0, keepdims=True) / m
        grads = {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2, "db2": db2,
                 "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}
        if slip == "db1 db2 swapped":
            grads["db1"], grads["db2"] = db2, db1
        if dropout:
            return cost, {k: v for k, v in grads.items() if k[1] in "Wb"}
        return grads, cost   # the order of the course's propagate()

    def loss(t: dict[str, Tensor]) -> Tensor:
        A1 = (t["W1"] @ X + t["b1"]).relu()
        if dropout:
            A1 = A1 * D1 / kp
        A2 = (t["W2"] @ A1 + t["b2"]).relu()
        if dropout:
            A2 = A2 * D2 / kp
        A3 = (t["W3"] @ A2 + t["b3"]).sigmoid()
        cross_entropy = -(Y * A3.log() + (1 - Y) * (1 - A3).log()).sum() / m
        if not dropout:
            return cross_entropy + lambd / (2 * m) * sum((t[k] ** 2).sum() for k in ("W1", "W2", "W3"))
        return cross_entropy

    return Net(params, manual, loss)


# -- two tanh layers and a softmax output, cross-entropy ---------------------------------------------------------

SOFTMAX_M = 5


def tanh_softmax(dtype: Any) -> Net:
    rng = np.random.default_rng(2)
    params = {"W1": rng.standard_normal((5, 4)), "b1": rng.standard_normal((5, 1)),
              "W2": rng.standard_normal((5, 5)) * 0.5, "b2": rng.standard_normal((5, 1)),
              "W3": rng.standard_normal((3, 5)), "b3": rng.standard_normal((3, 1))}
    params = {k: v.astype(dtype) for k, v in params.items()}
    X = rng.standard_normal((4, SOFTMAX_M)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[:, rng.integers(0, 3, SOFTMAX_M)]
    m = SOFTMAX_M

    def manual(p: dict[str, np.ndarray], slip: str = "") -> Any:
        Z1 = p["W1"] @ X + p["b1"]
        A1 = np.tanh(Z1)
        A2 = np.tanh(p["W2"] @ A1 + p["b2"])
        Z3 = p["W3"] @ A2 + p["b3"]
        E = np.exp(Z3 - Z3.max(axis=0))
        A3 = E / E.sum(axis=0)
        dZ3 = (A3 - Y) / m
        if slip == "softmax as sigmoid":
            dZ3 = (-Y / A3 / m) * A3 * (1 - A3)
        if slip == "softmax without Y":
            dZ3 = A3 / m
        dZ2 = (p["W3"].T @ dZ3) * (1 - A2 ** 2)
        dZ1 = (p["W2"].T @ dZ2) * ((1 - A1 ** 2) if slip != "tanh' from Z" else (1 - Z1 ** 2))
        grads = {"W3": dZ3 @ A2.T, "b3": dZ3.sum(axis=1, keepdims=True),
                 "W2": dZ2 @ A1.T, "b2": dZ2.sum(axis=1, keepdims=True),
                 "W1": dZ1 @ X.T, "b1": dZ1.sum(axis=1, keepdims=True)}
        if slip == "W2 transposed":
            grads["W2"] = A1 @ dZ2.T
        if slip == "b2 wrong axis":
            grads["b2"] = dZ2.sum(axis=0, keepdims=True)   # (1, 5) for a (5, 1) bias
        if slip == "b1 is b2's":
            grads["b1"] = grads["b2"]
        if slip == "W3 no 1/m":
            grads["W3"] = grads["W3"] * m
        return grads

    def loss(t: dict[str, Tensor]) -> Tensor:
        A1 = (t["W1"] @ X + t["b1"]).tanh()
        A2 = (t["W2"] @ A1 + t["b2"]).tanh()
        return -((t["W3"] @ A2 + t["b3"]).log_softmax(axis=0) * Y).sum() / m

    return Net(params, manual, loss)


# -- Nielsen's chapter 3: sigmoid, cross-entropy, weight decay lambda/n, lists of arrays ---------------------------

NIELSEN_M, NIELSEN_N, LMBDA = 6, 40, 2.0


def nielsen(dtype: Any) -> Net:
    rng = np.random.default_rng(3)
    sizes = [4, 5, 5, 3]
    biases = [rng.standard_normal((y, 1)).astype(dtype) for y in sizes[1:]]
    weights = [(rng.standard_normal((y, x)) / np.sqrt(x)).astype(dtype) for x, y in zip(sizes[:-1], sizes[1:])]
    X = rng.random((4, NIELSEN_M)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[:, rng.integers(0, 3, NIELSEN_M)]
    m, n, lmbda = NIELSEN_M, NIELSEN_N, LMBDA

    def manual(params: list[list[np.ndarray]], slip: str = "") -> Any:
        biases, weights = params
        nabla_b = [np.zeros(b.shape, dtype) for b in biases]
        nabla_w = [np.zeros(w.shape, dtype) for w in weights]
        for k in range(m):   # one example at a time, as network2.backprop does
            activation = X[:, [k]]
            activations, zs = [activation], []
            for b, w in zip(biases, weights):
                zs.append(w @ activation + b)
                activation = _sigmoid(zs[-1])
                activations.append(activation)
            delta = activations[-1] - Y[:, [k]]   # the cross-entropy cost's delta
            if slip == "quadratic delta":
                delta = delta * _sigmoid(zs[-1]) * (1 - _sigmoid(zs[-1]))
            nabla_b[-1] += delta
            nabla_w[-1] += delta @ activations[-2].T
            for layer in range(2, len(sizes)):
                sp = _sigmoid(zs[-layer]) * (1 - _sigmoid(zs[-layer]))
                if slip == "sigmoid' of a" and layer == 2:
                    sp = _sigmoid(activations[-layer]) * (1 - _sigmoid(activations[-layer]))
                delta = (weights[-layer + 1].T @ delta) * sp
                nabla_b[-layer] += delta
                if slip == "w1 data transposed" and layer == 2:
                    nabla_w[-layer] += activations[-layer - 1] @ delta.T
                else:
                    nabla_w[-layer] += delta @ activations[-layer - 1].T
        decay = {"lambda/m": lmbda / m, "no decay": 0.0, "decay sign": -lmbda / n}.get(slip, lmbda / n)
        nabla_w = [nw / (1 if slip == "no 1/m" else m) + decay * w for nw, w in zip(nabla_w, weights)]
        nabla_b = [nb / m for nb in nabla_b]
        if slip == "nabla_b swapped":
            nabla_b[0], nabla_b[1] = nabla_b[1], nabla_b[0]
        return nabla_b, nabla_w

    def loss(t: list[list[Tensor]]) -> Tensor:
        biases, weights = t
        a: Any = X
        for b, w in zip(biases, weights):
            a = (w @ a + b).sigmoid()
        cross_entropy = -(Y * a.log() + (1 - Y) * (1 - a).log()).sum() / m
        return cross_entropy + lmbda / (2 * n) * sum((w * w).sum() for w in weights)

    return Net([biases, weights], manual, loss)


# -- the course's conv model: channels-last, dA_prev by the rotated kernel, dW by correlation ------------------------

CONV_M = 2


def _windows(a: np.ndarray, f: int) -> np.ndarray:
    """Every f x f window of a batch (m, n_H, n_W, n_C): (m, n_H', n_W', n_C, f, f), a view."""
    return np.lib.stride_tricks.sliding_window_view(a, (f, f), axis=(1, 2))


def _pad(a: np.ndarray, pad: int) -> np.ndarray:
    return np.pad(a, ((0, 0), (pad, pad), (pad, pad), (0, 0)))


def course_conv(dtype: Any) -> Net:
    rng = np.random.default_rng(4)
    params = {"W1": rng.standard_normal((3, 3, 2, 3)) * 0.5, "b1": rng.standard_normal((1, 1, 1, 3)) * 0.5,
              "W2": rng.standard_normal((3, 3, 3, 3)) * 0.5, "b2": rng.standard_normal((1, 1, 1, 3)) * 0.5,
              "W3": rng.standard_normal((12, 3)), "b3": rng.standard_normal((1, 3))}   # W2: 3 channels in and out
    params = {k: v.astype(dtype) for k, v in params.items()}
    X = rng.standard_normal((CONV_M, 7, 7, 2)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, CONV_M)]
    m = CONV_M

    def conv_forward(A: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:  # noqa: N803
        return np.einsum("mhwcij,ijcn->mhwn", _windows(_pad(A, pad), W.shape[0])[:, ::stride, ::stride], W) + b

    def conv_backward(dZ: np.ndarray, A: np.ndarray, W: np.ndarray, stride: int, pad: int,  # noqa: N803
                      slip: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        f, (_, n_H, n_W, _) = W.shape[0], dZ.shape
        spread = np.zeros((m, (n_H - 1) * stride + 1, (n_W - 1) * stride + 1, dZ.shape[3]), dZ.dtype)
        spread[:, ::stride, ::stride] = dZ
        kernel = W if slip == "kernel unrotated" else W[::-1, ::-1]
        kernel = kernel if slip == "channels unswapped" else kernel.transpose(0, 1, 3, 2)   # (f, f, n_C, n_C_prev)
        dA_pad = np.einsum("mhwnij,ijnc->mhwc", _windows(_pad(spread, f - 1), f), kernel)
        size = A.shape[1] + 2 * pad
        dA_pad = np.pad(dA_pad, ((0, 0), (0, size - dA_pad.shape[1]), (0, size - dA_pad.shape[2]), (0, 0)))
        top = pad + 1 if slip == "crop off by one" else pad
        dA_prev = dA_pad[:, top:top + A.shape[1], top:top + A.shape[2]]   # dA_prev_pad[:, pad:-pad, pad:-pad]
        step = 1 if slip == "dW stride 1" else stride                      # vert_start = h, not h * stride
        dW = np.einsum("mhwcij,mhwn->ijcn", _windows(_pad(A, pad), f)[:, ::step, ::step][:, :n_H, :n_W], dZ)
        if slip == "dW turned":
            dW = dW[::-1, ::-1]
        return dA_prev, dW, dZ.sum(axis=(0, 1, 2), keepdims=True)

    def manual(p: dict[str, np.ndarray], slip: str = "") -> Any:
        A1 = np.tanh(conv_forward(X, p["W1"], p["b1"], 1, 1))
        A2 = np.tanh(conv_forward(A1, p["W2"], p["b2"], 2, 1))                  # (m, 4, 4, 3)
        corners = [A2[:, i::2, j::2] for i in range(2) for j in range(2)]
        P = np.maximum.reduce(corners)
        Z3 = P.reshape(m, -1) @ p["W3"] + p["b3"]
        E = np.exp(Z3 - Z3.max(axis=1, keepdims=True))
        dZ3 = (E / E.sum(axis=1, keepdims=True) - Y) / m
        grads = {"W3": P.reshape(m, -1).T @ dZ3, "b3": dZ3.sum(axis=0, keepdims=True)}
        dP = (dZ3 @ p["W3"].T).reshape(P.shape)
        dA2, taken = np.zeros_like(A2), np.zeros(P.shape, dtype=bool)
        for (i, j), corner in zip([(0, 0), (0, 1), (1, 0), (1, 1)], corners):   # the first maximum, as PyTorch
            first = (corner == P) & ~taken
            dA2[:, i::2, j::2], taken = dP * first, taken | first
        dA1, grads["W2"], grads["b2"] = conv_backward(dA2 * (1 - A2 ** 2), A1, p["W2"], 2, 1, slip)
        _, grads["W1"], grads["b1"] = conv_backward(dA1 * (1 - A1 ** 2), X, p["W1"], 1, 1)
        return grads

    def loss(t: dict[str, Tensor]) -> Tensor:
        def conv(a: Tensor, W: Tensor, b: Tensor, stride: int) -> Tensor:  # noqa: N803 (the course's layouts in)
            return a.conv2d(W.transpose(3, 2, 0, 1), b.reshape(-1), stride=stride, padding=1)
        A1 = conv(Tensor(X.transpose(0, 3, 1, 2)), t["W1"], t["b1"], 1).tanh()
        A2 = conv(A1, t["W2"], t["b2"], 2).tanh()
        P = A2.max_pool2d(2).transpose(0, 2, 3, 1).reshape(m, -1)               # flattened channels-last
        return -((P @ t["W3"] + t["b3"]).log_softmax(axis=1) * Y).sum() / m

    return Net(params, manual, loss)


NETS: dict[str, Callable[[type], Net]] = {
    "course_l2": lambda dtype: course(dtype, dropout=False),
    "course_dropout": lambda dtype: course(dtype, dropout=True),
    "tanh_softmax": tanh_softmax,
    "nielsen": nielsen,
    "course_conv": course_conv,
}

# -- the planted mistakes: (network, slip) -> {row that must disagree: words its diagnosis must contain} ----------

BELOW_3 = "the mistake enters between layer 3 and layer 2"
BELOW_2 = "the mistake enters between layer 2 and layer 1"
AT_OUTPUT = "the mistake enters at the output"
ALL_COURSE = ("W1", "b1", "W2", "b2", "W3", "b3")
ALL_SOFTMAX = ALL_COURSE
ALL_NIELSEN = ("b0", "b1", "b2", "w0", "w1", "w2")

PLANTED: list[tuple[str, str, dict[str, tuple[str, ...]]]] = [
    ("course_l2", "dW3 no L2", {"W3": ("L2 term missing",)}),
    ("course_l2", "dW2 lambda", {"W2": ("L2 term", "λ where loss(t) has λ/m", "m = 8")}),
    ("course_l2", "dW1 2lambda", {"W1": ("L2 term", "twice", "1/2")}),
    ("course_l2", "dW3 no 1/m", {"W3": ("data term", "8.00", "= m", "L2 term is right")}),
    ("course_l2", "dW2 data sign", {"W2": ("data term", "sign flipped", "L2 term is right")}),
    ("course_l2", "dW3 sign", {"W3": ("sign flipped",)}),
    ("course_l2", "relu' = A", {k: (BELOW_3, "dA2 -> dZ2", "relu") for k in ("W2", "b2", "W1", "b1")}),
    ("course_l2", "db1 db2 swapped", {"b1": ("gradient of 'b2'",), "b2": ("gradient of 'b1'",)}),
    ("course_l2", "db1 wrong axis", {"b1": ("summed over the wrong axis", "axis 0", "axis 1")}),
    ("course_l2", "db2 keepdims", {"b2": ("keepdims",)}),
    ("course_l2", "dW2 data transposed", {"W2": ("data term", "transposed", "L2 term is right")}),
    ("course_l2", "db2 L2", {"b2": ("L2 term", "that loss(t) has not")}),
    ("course_l2", "db1 no 1/m", {"b1": ("factor", "8.00", "= m")}),
    ("course_l2", "dZ3 sign", {k: ("sign flipped", AT_OUTPUT) for k in ALL_COURSE}),
    ("course_dropout", "no /keep_prob", {k: ("0.80", "keep_prob", BELOW_3) for k in ("W2", "b2", "W1", "b1")}),
    ("course_dropout", "no mask", {k: (BELOW_3, "dropout mask") for k in ("W2", "b2", "W1", "b1")}),
    ("course_dropout", "fresh mask", {k: (BELOW_2, "dA1 -> dZ1", "dropout mask") for k in ("W1", "b1")}),
    ("course_dropout", "/keep_prob twice", {k: ("1.25", "1/keep_prob", BELOW_2) for k in ("W1", "b1")}),
    ("course_dropout", "*keep_prob", {k: ("0.64", "keep_prob²", BELOW_2) for k in ("W1", "b1")}),
    ("course_dropout", "dW3 no 1/m", {"W3": ("factor", "8.00", "= m")}),
    ("tanh_softmax", "tanh' from Z", {k: (BELOW_2, "dA1 -> dZ1", "tanh") for k in ("W1", "b1")}),
    ("tanh_softmax", "softmax as sigmoid", {k: (AT_OUTPUT, "log_softmax") for k in ALL_SOFTMAX}),
    ("tanh_softmax", "softmax without Y", {k: (AT_OUTPUT,) for k in ALL_SOFTMAX}),
    ("tanh_softmax", "W2 transposed", {"W2": ("transpose",)}),
    ("tanh_softmax", "b2 wrong axis", {"b2": ("summed over the wrong axis", "axis 0", "axis 1")}),
    ("tanh_softmax", "b1 is b2's", {"b1": ("gradient of 'b2'",)}),
    ("tanh_softmax", "W3 no 1/m", {"W3": ("factor", "5.00", "= m")}),
    ("nielsen", "lambda/m", {k: ("L2 term", "λ/m", "λ/n", "n = 40") for k in ("w0", "w1", "w2")}),
    ("nielsen", "no decay", {k: ("L2 term missing",) for k in ("w0", "w1", "w2")}),
    ("nielsen", "decay sign", {k: ("L2 term", "sign flipped") for k in ("w0", "w1", "w2")}),
    ("nielsen", "no 1/m", {k: ("data term", "6.00", "= m", "L2 term is right") for k in ("w0", "w1", "w2")}),
    ("nielsen", "quadratic delta", {k: (AT_OUTPUT, "sigmoid") for k in ALL_NIELSEN}),
    ("nielsen", "sigmoid' of a", {k: (BELOW_2, "sigmoid") for k in ("b0", "b1", "w0", "w1")}),
    ("nielsen", "nabla_b swapped", {"b0": ("gradient of 'b1'",), "b1": ("gradient of 'b0'",)}),
    ("nielsen", "w1 data transposed", {"w1": ("data term", "transposed", "L2 term is right")}),
    ("course_conv", "kernel unrotated", {k: ("dA_prev", "conv2d with W2", "unrotated", BELOW_2) for k in ("W1", "b1")}),
    ("course_conv", "channels unswapped", {k: ("dA_prev", "W2", "channel axes unswapped", BELOW_2)
                                           for k in ("W1", "b1")}),
    ("course_conv", "crop off by one", {k: ("dA_prev", "W2", "1 row higher and 1 column to the left", BELOW_2)
                                        for k in ("W1", "b1")}),
    ("course_conv", "dW stride 1", {"W2": ("weight gradient", "W2", "at every pixel", "stride is (2, 2)")}),
    ("course_conv", "dW turned", {"W2": ("weight gradient", "W2", "rotated by 180°", "correlation")}),
]


def named(report: Any, expected: dict[str, tuple[str, ...]]) -> bool:
    """The report disagrees on exactly the expected rows, and each row's diagnosis holds its words."""
    wrong = {row.name for row in report.rows if not row.ok}
    return wrong == set(expected) and all(all(word in report.row(name).diagnosis for word in words)
                                          for name, words in expected.items())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("key", list(NETS))
def test_every_correct_backprop_agrees(key: str, dtype: Any) -> None:
    net = NETS[key](dtype)
    report = check_backprop(net.manual, net.loss, net.params)
    assert report.ok, str(report)
    assert all(row.diagnosis == "" for row in report.rows)
    if dtype is np.float32:
        assert "float32" in str(report) and report.tolerance > 1e-6
    else:
        assert report.tolerance == 1e-10


@pytest.mark.parametrize(("key", "slip", "expected"), PLANTED, ids=[f"{k}: {s}" for k, s, _ in PLANTED])
def test_each_planted_mistake_is_flagged_and_named(key: str, slip: str, expected: dict[str, tuple[str, ...]]) -> None:
    net = NETS[key](np.float64)
    report = check_backprop(lambda p: net.manual(p, slip), net.loss, net.params)
    assert not report.ok
    assert named(report, expected), str(report)
    assert "no simple pattern" not in str(report), str(report)


def test_the_planted_mistakes_cover_every_kind() -> None:
    words = " ".join(" ".join(w) for _, _, expected in PLANTED for w in expected.values())
    for kind in ("sign flipped", "factor", "L2 term missing", "L2 term", "transpose", "gradient of",
                 "summed over the wrong axis", "enters between", "enters at the output", "keep_prob", "= m"):
        assert kind in words
    assert len(PLANTED) >= 25 and len({key for key, _, _ in PLANTED}) == len(NETS)


def test_each_planted_mistake_is_flagged_in_float32_too() -> None:
    for key, slip, expected in PLANTED:
        net = NETS[key](np.float32)
        report = check_backprop(functools.partial(net.manual, slip=slip), net.loss, net.params)
        assert {row.name for row in report.rows if not row.ok} == set(expected), (key, slip, str(report))


# -- the table of planted mistakes and their diagnoses, word for word -------------------------------------------

SNAPSHOT = Path(__file__).with_name("check_diagnoses.md")


def diagnosis_table() -> str:
    """Every planted mistake's diagnoses (rows with the same one share a line), then a few whole reports."""
    lines = ["# check_backprop on the planted mistakes of tests/test_check_networks.py", "",
             "Written by `python tests/test_check_networks.py > tests/check_diagnoses.md`; the suite compares.", "",
             "| network | planted mistake | parameters | diagnosis |", "| --- | --- | --- | --- |"]
    reports = {}
    for key, slip, _ in PLANTED:
        net = NETS[key](np.float64)
        report = check_backprop(functools.partial(net.manual, slip=slip), net.loss, net.params)
        reports[key, slip] = report
        together: dict[str, list[str]] = {}
        for row in report.rows:
            if not row.ok:
                together.setdefault(row.diagnosis, []).append(row.name)
        for diagnosis, names in together.items():
            lines.append(f"| {key} | {slip} | {', '.join(names)} | {diagnosis.replace('|', '/')} |")
    for key, slip in (("course_l2", "dZ3 sign"), ("nielsen", "lambda/m"), ("course_dropout", "no mask"),
                      ("course_l2", "db1 wrong axis")):
        lines += ["", f"## {key}: {slip}", "", "```", _rounding(str(reports[key, slip])), "```"]
    page = reports["course_l2", "dW3 no L2"]._repr_html_().replace("<tr", "\n<tr").replace("<p", "\n<p")
    lines += ["", "## course_l2: dW3 no L2, as Jupyter shows it", "", "```html", _rounding(page), "```"]
    return "\n".join(lines) + "\n"


def _rounding(text: str) -> str:
    """Errors below 1e-12 are rounding, which differs between machines: shown as 'rounding'."""
    return re.sub(r"\b(\d\.\d\de-(1[3-9]|[2-9]\d)|0\.00e\+00)\b", "rounding", text)


def test_the_diagnoses_read_as_recorded() -> None:
    # the wording is part of what this module teaches: a change must show up here and in the recorded table
    assert diagnosis_table() == SNAPSHOT.read_text(), "regenerate: python tests/test_check_networks.py > " \
                                                      "tests/check_diagnoses.md, and read the diff"


if __name__ == "__main__":
    print(diagnosis_table(), end="")


def test_two_slips_in_one_gradient_are_both_named_and_located() -> None:
    net = NETS["course_l2"](np.float64)

    def both(p: dict[str, np.ndarray]) -> Any:
        grads, cost = net.manual(p, "dZ3 sign")
        for k in ("1", "2", "3"):   # and the L2 term left out of every weight's gradient
            grads["dW" + k] = grads["dW" + k] - LAMBD / COURSE_M * p["W" + k]
        return grads, cost

    report = check_backprop(both, net.loss, net.params)
    assert report.row("W2").diagnosis.startswith("the data term's sign flipped: yours has minus the right data "
                                                 "term, and L2 term missing: yours lacks 0.0875·W2")
    assert report.row("W2").diagnosis.endswith(AT_OUTPUT + ": every layer disagrees, so the gradient at the output "
                                               "layer's pre-activation (dZ3, the cost's derivative through sigmoid, "
                                               "log) is already wrong")


# -- the tutorials' own hand-derived references (tinygrad_edu.manual), checked as a learner would check them --------

def _sigmoid_cross_entropy(z: Tensor, y: np.ndarray) -> Tensor:
    a = z.sigmoid()
    return -(y * a.log() + (1 - y) * (1 - a).log()).sum() / y.shape[1]


def test_the_courses_gradient_checking_net_and_its_two_planted_mistakes() -> None:
    from tinygrad_edu.manual import gradient_checking as gc
    x, y, params = gc.gradient_check_n_test_case()
    y2 = y.reshape(1, -1).astype(np.float64)

    def loss(t: dict[str, Tensor]) -> Tensor:
        a1 = (t["W1"] @ x + t["b1"]).relu()
        a2 = (t["W2"] @ a1 + t["b2"]).relu()
        return _sigmoid_cross_entropy(t["W3"] @ a2 + t["b3"], y2)

    def manual(p: dict[str, np.ndarray], backward: Callable[..., Any]) -> tuple[float, dict[str, np.ndarray]]:
        cost, cache = gc.forward_propagation_n(x, y, p)
        return cost, backward(x, y, cache)   # the course's dict, dZ3, dA2, ... included

    right = check_backprop(lambda p: manual(p, gc.backward_propagation_n), loss, params)
    assert right.ok, str(right)
    assert any(note.startswith("skipped dZ3, dA2, dZ2, dA1, dZ1") for note in right.notes), right.notes
    wrong = check_backprop(lambda p: manual(p, gc.backward_propagation_n_with_mistakes), loss, params)
    assert [r.name for r in wrong.rows if not r.ok] == ["b1", "W2"], str(wrong)
    assert "yours is 2.00 times the right gradient (= 2" in wrong.row("W2").diagnosis
    assert "yours is 4.00 times the right gradient" in wrong.row("b1").diagnosis


def test_nielsens_network2_and_weight_decay_over_the_mini_batch() -> None:
    from tinygrad_edu.manual import network2
    params = network2.params_of(network2.Network([4, 3, 2], rng=0))
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((4, 5)), np.eye(2)[:, rng.integers(0, 2, 5)]
    lmbda, n = 5.0, 50   # the penalty divides by the training set's size, not the mini-batch's 5

    def loss(t: dict[str, Tensor]) -> Tensor:
        a = (t["w0"] @ x + t["b0"]).sigmoid()
        return _sigmoid_cross_entropy(t["w1"] @ a + t["b1"], y) + lmbda / (2 * n) * ((t["w0"] ** 2).sum() +
                                                                                  (t["w1"] ** 2).sum())

    right = check_backprop(lambda p: network2.gradients(p, x, y, lmbda=lmbda, n=n), loss, params)
    assert right.ok, str(right)
    wrong = check_backprop(lambda p: network2.gradients(p, x, y, lmbda=lmbda), loss, params)   # n = the batch's
    assert [r.name for r in wrong.rows if not r.ok] == ["w0", "w1"], str(wrong)
    assert "you used λ/m (m = 5, the mini-batch) where loss(t) has λ/n (n = 50, the training set?)" in \
        wrong.row("w0").diagnosis, str(wrong)
