"""The course's "Convolution model, step by step": convolution and pooling, forward and backward, in loops.

The deep-learning course's fourth course derives these by hand, one window at a time; this is our version of
its functions, with its names and its layout. A batch is channels-last, ``A_prev`` of shape
(m, n_H_prev, n_W_prev, n_C_prev); the filters are ``W`` (f, f, n_C_prev, n_C) with one bias each,
``b`` (1, 1, 1, n_C); a convolution's ``hparameters`` are ``{"stride": s, "pad": p}``, a pool's
``{"f": f, "stride": s}``. Output sizes: ``n_H = (n_H_prev + 2 p - f) // s + 1`` (and the same for n_W).

For example i, output pixel (h, w) and filter c, with the window ``win = (h s : h s + f, w s : w s + f)``::

    Z[i, h, w, c] = sum(A_prev_pad[i, win, :] * W[:, :, :, c]) + b[c]              (conv_single_step)
    dA_prev_pad[i, win, :] += W[:, :, :, c] * dZ[i, h, w, c]     every window gets each filter, weighted
    dW[:, :, :, c]         += A_prev_pad[i, win, :] * dZ[i, h, w, c]
    db[c]                  += dZ[i, h, w, c]

Summed over all windows, the first line is the *full* convolution of dZ with W rotated by 180 degrees
(``conv_backward_rot180`` computes it that way, and the two agree). Max-pooling sends each output's gradient
back to the maximum of its window, average-pooling shares it evenly (``distribute_value``).

Ties: the course's ``create_mask_from_window`` marks *every* element equal to the window's maximum, so a
window with two equal maxima sends the full gradient to both. PyTorch (and this engine) sends it to one
maximum, the first in reading order. ``pool_backward(..., ties="first")`` follows PyTorch:

>>> A_prev = np.array([1.0, 3.0, 3.0, 2.0]).reshape(1, 2, 2, 1)          # one 2x2 window, two maxima
>>> A, cache = pool_forward(A_prev, {"f": 2, "stride": 2})
>>> pool_backward(np.ones((1, 1, 1, 1)), cache).reshape(2, 2)            # the course: every maximum
array([[0., 1.],
       [1., 0.]])
>>> pool_backward(np.ones((1, 1, 1, 1)), cache, ties="first").reshape(2, 2)   # PyTorch: the first one
array([[0., 1.],
       [0., 0.]])

The network the compare table runs (``conv_loops``): conv (``f`` x ``f``, ``n_C`` filters, stride 1, no
padding) -> ReLU -> 2x2 max-pool -> flatten -> fully connected -> softmax, mean cross-entropy over the batch.
Its parameters: ``W1``, ``b1`` (the convolution), ``W2`` (n_flat, 10) and ``b2`` (1, 10); flatten reads the
pooled (m, n_H, n_W, n_C) volume row by row, channels last.

>>> params = init_params(0, f=3, n_C=2, image=(6, 6, 1))
>>> {name: p.shape for name, p in params.items()}
{'W1': (3, 3, 1, 2), 'b1': (1, 1, 1, 2), 'W2': (8, 10), 'b2': (1, 10)}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import generator

__all__ = [
    "zero_pad", "conv_single_step", "conv_forward", "conv_backward", "conv_backward_rot180", "pool_forward",
    "create_mask_from_window", "first_max_mask", "distribute_value", "pool_backward",
    "init_params", "forward", "loss", "gradients",
]

Params = dict[str, np.ndarray]
Cache = tuple[Any, ...]


def zero_pad(X: np.ndarray, pad: int) -> np.ndarray:  # noqa: N803 (the course's names)
    """Pad the height and width of every image of X (m, n_H, n_W, n_C) with ``pad`` zeros on each side."""
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=0)


def conv_single_step(a_slice_prev: np.ndarray, W: np.ndarray, b: np.ndarray) -> float:  # noqa: N803
    """One filter W (f, f, n_C_prev) on one window of the same shape, plus its bias: one output number."""
    return float(np.sum(a_slice_prev * W) + b.item())


def _out(n: int, f: int, stride: int, pad: int) -> int:
    return (n + 2 * pad - f) // stride + 1


def conv_forward(A_prev: np.ndarray, W: np.ndarray, b: np.ndarray,  # noqa: N803
                 hparameters: dict[str, int]) -> tuple[np.ndarray, Cache]:
    """Convolve the filters over the batch, one window at a time: Z (m, n_H, n_W, n_C) and the cache."""
    m, n_H_prev, n_W_prev, _ = A_prev.shape
    f, _, _, n_C = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    n_H, n_W = _out(n_H_prev, f, stride, pad), _out(n_W_prev, f, stride, pad)
    Z = np.zeros((m, n_H, n_W, n_C))
    A_prev_pad = zero_pad(A_prev, pad)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                window = A_prev_pad[i, h * stride:h * stride + f, w * stride:w * stride + f, :]
                for c in range(n_C):
                    Z[i, h, w, c] = conv_single_step(window, W[:, :, :, c], b[:, :, :, c])
    return Z, (A_prev, W, b, hparameters)


def conv_backward(dZ: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: N803
    """The gradients dA_prev, dW, db of a convolution, from dZ = dJ/dZ, one window at a time."""
    A_prev, W, b, hparameters = cache
    stride, pad = hparameters["stride"], hparameters["pad"]
    f = W.shape[0]
    m, n_H, n_W, n_C = dZ.shape
    A_prev_pad = zero_pad(A_prev, pad)
    dA_prev_pad = np.zeros(A_prev_pad.shape)
    dW, db = np.zeros(W.shape), np.zeros(b.shape)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                rows, cols = slice(h * stride, h * stride + f), slice(w * stride, w * stride + f)
                for c in range(n_C):
                    dA_prev_pad[i, rows, cols, :] += W[:, :, :, c] * dZ[i, h, w, c]
                    dW[:, :, :, c] += A_prev_pad[i, rows, cols, :] * dZ[i, h, w, c]
                    db[:, :, :, c] += dZ[i, h, w, c]
    # NOTE: the course crops with [pad:-pad], which is empty for pad = 0 (-0 is 0): count from the start
    n_H_prev, n_W_prev = A_prev.shape[1:3]
    return dA_prev_pad[:, pad:pad + n_H_prev, pad:pad + n_W_prev, :], dW, db


def conv_backward_rot180(dZ: np.ndarray, cache: Cache) -> np.ndarray:  # noqa: N803
    """dA_prev computed another way: the full convolution of dZ with every filter rotated by 180 degrees.

    dZ is spread out to the input's spacing (stride - 1 zeros between its pixels), padded with f - 1 zeros
    all round, and convolved (stride 1) with W flipped in both spatial axes and with its channel axes swapped
    (filter c now maps n_C channels back to n_C_prev). That gives the gradient of the padded input (rows a
    stride skipped at the end stay zero); crop the padding.
    """
    A_prev, W, _, hparameters = cache
    stride, pad = hparameters["stride"], hparameters["pad"]
    f = W.shape[0]
    m, n_H, n_W, n_C = dZ.shape
    spread = np.zeros((m, (n_H - 1) * stride + 1, (n_W - 1) * stride + 1, n_C))
    spread[:, ::stride, ::stride, :] = dZ
    rotated = W[::-1, ::-1, :, :].transpose(0, 1, 3, 2)  # (f, f, n_C, n_C_prev)
    full, _ = conv_forward(spread, rotated, np.zeros((1, 1, 1, W.shape[2])), {"stride": 1, "pad": f - 1})
    n_H_prev, n_W_prev = A_prev.shape[1:3]
    padded = np.zeros((m, n_H_prev + 2 * pad, n_W_prev + 2 * pad, W.shape[2]))
    padded[:, :full.shape[1], :full.shape[2], :] = full
    return padded[:, pad:pad + n_H_prev, pad:pad + n_W_prev, :]


def pool_forward(A_prev: np.ndarray, hparameters: dict[str, int],  # noqa: N803
                 mode: str = "max") -> tuple[np.ndarray, Cache]:
    """Max- or average-pool every f x f window, channel by channel: A (m, n_H, n_W, n_C) and the cache."""
    m, n_H_prev, n_W_prev, n_C = A_prev.shape
    f, stride = hparameters["f"], hparameters["stride"]
    n_H, n_W = _out(n_H_prev, f, stride, 0), _out(n_W_prev, f, stride, 0)
    reduce: Any = {"max": np.max, "average": np.mean}[mode]
    A = np.zeros((m, n_H, n_W, n_C))
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    A[i, h, w, c] = reduce(A_prev[i, h * stride:h * stride + f, w * stride:w * stride + f, c])
    return A, (A_prev, hparameters)


def create_mask_from_window(x: np.ndarray) -> np.ndarray:
    """True where x equals its maximum: *every* maximum, as the course writes it."""
    return x == np.max(x)


def first_max_mask(x: np.ndarray) -> np.ndarray:
    """True at the first maximum of x in reading order only: PyTorch's rule (and this engine's)."""
    mask = np.zeros(x.shape, dtype=bool)
    mask[np.unravel_index(np.argmax(x), x.shape)] = True
    return mask


def distribute_value(dz: float, shape: tuple[int, int]) -> np.ndarray:
    """dz shared evenly over a window of ``shape``: the gradient of an average."""
    n_H, n_W = shape
    return np.full(shape, dz / (n_H * n_W))


def pool_backward(dA: np.ndarray, cache: Cache, mode: str = "max", ties: str = "every") -> np.ndarray:  # noqa: N803
    """dA_prev from dA = dJ/dA: each window's gradient to its maximum (``mode="max"``) or spread evenly.

    ``ties="every"`` is the course's mask (every tied maximum gets the whole gradient); ``ties="first"``
    PyTorch's (the first maximum only).
    """
    A_prev, hparameters = cache
    f, stride = hparameters["f"], hparameters["stride"]
    m, n_H, n_W, n_C = dA.shape
    mask_of = {"every": create_mask_from_window, "first": first_max_mask}[ties]
    dA_prev = np.zeros(A_prev.shape)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                rows, cols = slice(h * stride, h * stride + f), slice(w * stride, w * stride + f)
                for c in range(n_C):
                    if mode == "max":
                        dA_prev[i, rows, cols, c] += mask_of(A_prev[i, rows, cols, c]) * dA[i, h, w, c]
                    else:
                        dA_prev[i, rows, cols, c] += distribute_value(dA[i, h, w, c], (f, f))
    return dA_prev


# -- the network of the compare table -----------------------------------------------------------------------

def init_params(rng: np.random.Generator | int, *, f: int = 5, n_C: int = 4,  # noqa: N803
                image: tuple[int, int, int] = (28, 28, 1), classes: int = 10) -> Params:
    """Filters N(0, 1/(f f n_C_prev)), zero biases, a fully connected layer N(0, 1/n_flat) on the pooled maps."""
    rng = generator(rng, "init_params")
    n_H, n_W, n_C_prev = image
    n_flat = ((n_H - f + 1) // 2) * ((n_W - f + 1) // 2) * n_C
    return {"W1": rng.standard_normal((f, f, n_C_prev, n_C)) / np.sqrt(f * f * n_C_prev),
            "b1": np.zeros((1, 1, 1, n_C)),
            "W2": rng.standard_normal((n_flat, classes)) / np.sqrt(n_flat),
            "b2": np.zeros((1, classes))}


def _softmax_cross_entropy(logits: np.ndarray, Y: np.ndarray) -> tuple[float, np.ndarray]:  # noqa: N803
    """The mean cross-entropy of softmax(logits) against one-hot Y, and its gradient with respect to the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    m = logits.shape[0]
    return float(-np.sum(Y * log_p) / m), (np.exp(log_p) - Y) / m


def forward(params: Params, X: np.ndarray) -> tuple[np.ndarray, list[Any]]:  # noqa: N803
    """The logits (m, classes) for images X (m, n_H, n_W, n_C_prev), and the caches the backward pass reads."""
    Z1, conv_cache = conv_forward(X, params["W1"], params["b1"], {"stride": 1, "pad": 0})
    A1 = np.maximum(Z1, 0)
    P1, pool_cache = pool_forward(A1, {"f": 2, "stride": 2})
    flat = P1.reshape(P1.shape[0], -1)
    return flat @ params["W2"] + params["b2"], [conv_cache, Z1, pool_cache, P1.shape, flat]


def loss(params: Params, X: np.ndarray, Y: np.ndarray) -> float:  # noqa: N803
    return _softmax_cross_entropy(forward(params, X)[0], Y)[0]


def gradients(params: Params, X: np.ndarray, Y: np.ndarray, ties: str = "first") -> tuple[float, Params]:  # noqa: N803
    """The loss and dJ/dp for every parameter, backpropagated by hand through the loops above.

    NOTE: the pool's ties go to the first maximum (PyTorch's rule, ``ties="first"``), not to every one as the
    course's mask does. On MNIST they are everywhere: over the blank background every window of a map holds the
    same number, the filter's bias, and once that bias is above 0 the ReLU passes it on; with the course's rule
    each such window would send back four times its gradient (``ties="every"`` shows it).
    """
    logits, (conv_cache, Z1, pool_cache, pooled_shape, flat) = forward(params, X)
    cost, dlogits = _softmax_cross_entropy(logits, Y)
    dW2, db2 = flat.T @ dlogits, dlogits.sum(axis=0, keepdims=True)
    dP1 = (dlogits @ params["W2"].T).reshape(pooled_shape)
    dA1 = pool_backward(dP1, pool_cache, "max", ties)
    dZ1 = dA1 * (Z1 > 0)
    _, dW1, db1 = conv_backward(dZ1, conv_cache)
    return cost, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
