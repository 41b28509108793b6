"""The course's convolution and pooling again, vectorised: every window copied into a row (im2col), then one
matrix product; the backward pass adds rows back onto their windows (col2im). No loop over pixels or examples.

The same layout and names as ``conv_loops`` (channels-last ``A_prev`` (m, n_H_prev, n_W_prev, n_C_prev),
filters ``W`` (f, f, n_C_prev, n_C), biases ``b`` (1, 1, 1, n_C)) and the same network for the compare table
(``conv_im2col``). With the windows as rows of ``cols`` (m n_H n_W, f f n_C_prev) and ``W`` as a matrix
``W_mat`` (f f n_C_prev, n_C)::

    Z   = cols @ W_mat + b                      one row per output pixel, one column per filter
    dW  = cols^T @ dZ                           every window, weighted by its pixel's gradient
    db  = sum of dZ over the rows
    dA_prev = col2im(dZ @ W_mat^T)              each window's share added back where it was read

The forward cache keeps ``cols``: the backward pass reads the windows without copying them again, at the
price of memory, f f copies of the input, (m n_H n_W) x (f f n_C_prev) numbers (``cols.nbytes``).

>>> rng = np.random.default_rng(0)
>>> A_prev, W, b = rng.standard_normal((2, 5, 5, 3)), rng.standard_normal((3, 3, 3, 4)), np.zeros((1, 1, 1, 4))
>>> Z, cache = conv_forward(A_prev, W, b, {"stride": 2, "pad": 1})
>>> Z.shape, cache[-1].shape                      # cols: 2 * 3 * 3 windows of 3 * 3 * 3 numbers
((2, 3, 3, 4), (18, 27))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import conv_loops
from .conv_loops import init_params, zero_pad

__all__ = ["im2col", "col2im", "conv_forward", "conv_backward", "pool_forward", "pool_backward",
           "init_params", "forward", "loss", "gradients"]

Params = dict[str, np.ndarray]
Cache = tuple[Any, ...]


def im2col(A_pad: np.ndarray, f: int, stride: int) -> np.ndarray:  # noqa: N803 (the course's names)
    """Every f x f window of the (already padded) A_pad as a row: (m, n_H, n_W, f, f, n_C), copied once."""
    windows = np.lib.stride_tricks.sliding_window_view(A_pad, (f, f), axis=(1, 2))[:, ::stride, ::stride]
    return windows.transpose(0, 1, 2, 4, 5, 3).copy()  # the view is (m, n_H, n_W, n_C, f, f)


def col2im(rows: np.ndarray, padded_shape: tuple[int, ...], stride: int) -> np.ndarray:
    """The transpose of im2col: rows (m, n_H, n_W, f, f, n_C) added back onto their windows of a zero array."""
    _, n_H, n_W, f, _, _ = rows.shape
    out = np.zeros(padded_shape)
    for i in range(f):  # f * f shifted, strided additions: a loop over the kernel, not over pixels
        for j in range(f):
            out[:, i:i + stride * n_H:stride, j:j + stride * n_W:stride, :] += rows[:, :, :, i, j, :]
    return out


def conv_forward(A_prev: np.ndarray, W: np.ndarray, b: np.ndarray,  # noqa: N803
                 hparameters: dict[str, int]) -> tuple[np.ndarray, Cache]:
    """Z (m, n_H, n_W, n_C) as one matrix product over all windows; the cache keeps the windows (cols)."""
    f, _, n_C_prev, n_C = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    windows = im2col(zero_pad(A_prev, pad), f, stride)
    m, n_H, n_W = windows.shape[:3]
    cols = windows.reshape(m * n_H * n_W, f * f * n_C_prev)
    Z = (cols @ W.reshape(f * f * n_C_prev, n_C) + b.reshape(1, n_C)).reshape(m, n_H, n_W, n_C)
    return Z, (A_prev, W, b, hparameters, cols)


def conv_backward(dZ: np.ndarray, cache: Cache,  # noqa: N803 (the course's names)
                  need_dA_prev: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:  # noqa: N803
    """dA_prev, dW, db from dZ; ``need_dA_prev=False`` skips dA_prev (a first layer's images need none)."""
    A_prev, W, b, hparameters, cols = cache
    stride, pad = hparameters["stride"], hparameters["pad"]
    f, _, n_C_prev, n_C = W.shape
    m, n_H, n_W, _ = dZ.shape
    dZ_rows = dZ.reshape(m * n_H * n_W, n_C)
    dW = (cols.T @ dZ_rows).reshape(W.shape)
    db = dZ_rows.sum(axis=0).reshape(b.shape)
    if not need_dA_prev:
        return None, dW, db
    rows = (dZ_rows @ W.reshape(f * f * n_C_prev, n_C).T).reshape(m, n_H, n_W, f, f, n_C_prev)
    _, n_H_prev, n_W_prev, _ = A_prev.shape
    padded = col2im(rows, (m, n_H_prev + 2 * pad, n_W_prev + 2 * pad, n_C_prev), stride)
    return padded[:, pad:pad + n_H_prev, pad:pad + n_W_prev, :], dW, db


def pool_forward(A_prev: np.ndarray, hparameters: dict[str, int],  # noqa: N803
                 mode: str = "max") -> tuple[np.ndarray, Cache]:
    """Max- or average-pool every f x f window of every channel at once."""
    f, stride = hparameters["f"], hparameters["stride"]
    windows = np.lib.stride_tricks.sliding_window_view(A_prev, (f, f), axis=(1, 2))[:, ::stride, ::stride]
    A = windows.max(axis=(4, 5)) if mode == "max" else windows.mean(axis=(4, 5))  # (m, n_H, n_W, n_C)
    return A, (A_prev, hparameters)


def pool_backward(dA: np.ndarray, cache: Cache, mode: str = "max", ties: str = "every") -> np.ndarray:  # noqa: N803
    """dA_prev from dA: to each window's maximum (``ties`` as in ``conv_loops.pool_backward``) or spread evenly."""
    A_prev, hparameters = cache
    f, stride = hparameters["f"], hparameters["stride"]
    m, n_H, n_W, n_C = dA.shape
    windows = np.lib.stride_tricks.sliding_window_view(A_prev, (f, f), axis=(1, 2))[:, ::stride, ::stride]
    windows = windows.transpose(0, 1, 2, 4, 5, 3)  # (m, n_H, n_W, f, f, n_C), the layout col2im adds back
    if mode != "max":
        share = np.full((f, f, 1), 1 / (f * f))
    elif ties == "every":
        share = windows == windows.max(axis=(3, 4), keepdims=True)
    else:
        flat = windows.reshape(m, n_H, n_W, f * f, n_C)
        share = (np.arange(f * f)[:, None] == flat.argmax(axis=3)[:, :, :, None, :]).reshape(windows.shape)
    return col2im(dA[:, :, :, None, None, :] * share, A_prev.shape, stride)


# -- the network of the compare table (the same as conv_loops', vectorised) --------------------------------

def forward(params: Params, X: np.ndarray) -> tuple[np.ndarray, list[Any]]:  # noqa: N803
    """The logits (m, classes) for images X (m, n_H, n_W, n_C_prev), and the caches the backward pass reads."""
    Z1, conv_cache = conv_forward(X, params["W1"], params["b1"], {"stride": 1, "pad": 0})
    A1 = np.maximum(Z1, 0)
    P1, pool_cache = pool_forward(A1, {"f": 2, "stride": 2})
    flat = P1.reshape(P1.shape[0], -1)
    return flat @ params["W2"] + params["b2"], [conv_cache, Z1, pool_cache, P1.shape, flat]


def loss(params: Params, X: np.ndarray, Y: np.ndarray) -> float:  # noqa: N803
    return conv_loops._softmax_cross_entropy(forward(params, X)[0], Y)[0]


def gradients(params: Params, X: np.ndarray, Y: np.ndarray, ties: str = "first") -> tuple[float, Params]:  # noqa: N803
    """The loss and dJ/dp for every parameter, backpropagated by hand with the vectorised layers (the pool's ties
    to the first maximum, as in ``conv_loops.gradients``)."""
    logits, (conv_cache, Z1, pool_cache, pooled_shape, flat) = forward(params, X)
    cost, dlogits = conv_loops._softmax_cross_entropy(logits, Y)
    dW2, db2 = flat.T @ dlogits, dlogits.sum(axis=0, keepdims=True)
    dP1 = (dlogits @ params["W2"].T).reshape(pooled_shape)
    dZ1 = pool_backward(dP1, pool_cache, "max", ties) * (Z1 > 0)
    _, dW1, db1 = conv_backward(dZ1, conv_cache, need_dA_prev=False)
    return cost, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
