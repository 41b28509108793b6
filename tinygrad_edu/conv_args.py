"""The arguments of conv2d, the pools and flatten, checked and put in the form the ops take.

Sizes may be one int (the same for height and width) or an (h, w) pair, as in PyTorch; the ops get pairs. A
mistake is refused here, before any array is touched, with a message that names the sizes and the fix:

>>> conv2d((2, 28, 28, 1), (20, 1, 5, 5))
Traceback (most recent call last):
...
ValueError: conv2d: the input (2, 28, 28, 1) looks channels-last (N, H, W, C) with C = 1, ... x.transpose(0, 3, 1, 2).
>>> conv2d((2, 1, 28, 28), (20, 1, 5, 5), (20,), padding=2)
{'stride': (1, 1), 'padding': (2, 2)}
"""

from __future__ import annotations

import math
import operator
from typing import Any

__all__ = ["conv2d", "pool", "flatten", "pair"]

Shape = tuple[int, ...]


def pair(value: Any, what: str, op: str, smallest: int) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, each at least ``smallest``, as an (h, w) pair."""
    parts = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    try:
        if len(parts) != 2 or any(isinstance(p, bool) for p in parts):
            raise TypeError
        found = (operator.index(parts[0]), operator.index(parts[1]))
    except TypeError:
        raise TypeError(f"{op}: {what} must be an int or a pair of ints (height, width), got {value!r}; sizes "
                        f"count pixels, so round a computed size with int() or //.") from None
    if min(found) < smallest:
        need = "at least 1 (a stride of 0 never moves the window)" if smallest == 1 else "0 or more"
        raise ValueError(f"{op}: {what} must be {need}, got {value!r}.")
    return found


def _square_side(size: int, channels: int, kernel: int) -> int:
    """The side s of square images when ``size`` = channels * s * s (MNIST's 784 = 28 x 28) and the kernel fits
    in them, else 0."""
    side = math.isqrt(size // channels)
    return side if side >= kernel and side * side * channels == size else 0


def _images(op: str, x: Shape, channels: int | None = None, kernel: int = 1) -> None:
    """Refuse anything but (N, C, H, W); ``channels`` (conv2d's in_channels) tells a batch from one image, and
    flattened images must be at least ``kernel`` (its larger side) wide."""
    if len(x) == 4:
        return
    if len(x) == 3 and channels is not None and x[2] == channels != x[0]:
        hint = (f"for one channels-last image (H, W, C) pass x.transpose(2, 0, 1).reshape(1, {channels}, {x[0]}, "
                f"{x[1]})")
    elif len(x) == 3 and channels is not None and x[0] != channels:
        hint = (f"for a batch of grey images (N, H, W) pass x.reshape({x[0]}, 1, {x[1]}, {x[2]})" if channels == 1
                else f"the weight expects {channels} channels: reshape it to (N, {channels}, H, W)")
    elif len(x) == 3:
        hint = (f"for one image (C, H, W) pass x.reshape(1, {x[0]}, {x[1]}, {x[2]})" if channels is not None else
                f"for a batch of grey images (N, H, W) pass x.reshape({x[0]}, 1, {x[1]}, {x[2]}); for one image "
                f"(C, H, W), x.reshape(1, {x[0]}, {x[1]}, {x[2]})")
    elif len(x) == 2 and channels and (_square_side(x[1], channels, kernel) or _square_side(x[0], channels, kernel)):
        # flattened square images, one per row (PyTorch's X) or per column (the course's X): the larger images
        # are the likelier reading (784 x 64 is 64 MNIST digits, not 784 images of 8x8)
        rows, columns = _square_side(x[1], channels, kernel), _square_side(x[0], channels, kernel)
        count, side, how = (x[0], rows, "x.reshape") if rows >= columns else (x[1], columns, "x.T.reshape")
        hint = (f"for {count} flattened {side}x{side} image{'s' * (count != 1)}, one per "
                f"{'row' if rows >= columns else 'column'}, pass {how}({count}, {channels}, {side}, {side})")
    elif len(x) == 2 and channels in (None, 1):
        hint = f"for one grey image (H, W) pass x.reshape(1, 1, {x[0]}, {x[1]})"
    else:
        hint = "reshape it to (N, C, H, W)"
    raise ValueError(f"{op}: the input must be a batch of images shaped (N, C, H, W), got {x}; {hint}.")


def _fits(op: str, x: Shape, kernel: tuple[int, int], padding: tuple[int, int]) -> None:
    padded = (x[2] + 2 * padding[0], x[3] + 2 * padding[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(f"{op}: the {kernel[0]}x{kernel[1]} kernel is larger than the "
                         f"{'padded ' if any(padding) else ''}input, {padded[0]}x{padded[1]} (input {x}"
                         f"{f', padding {padding}' if any(padding) else ''}); use a smaller kernel"
                         f"{', more padding' if op == 'conv2d' else ''} or a larger image.")


def conv2d(x: Shape, weight: Shape, bias: Shape | None = None, *, stride: Any = 1, padding: Any = 0) -> dict[str, Any]:
    """Check ``conv2d``'s shapes (input, weight, bias) and sizes; return the op's ``stride`` and ``padding``."""
    channels, kernel = (weight[1], max(weight[2], weight[3])) if len(weight) == 4 else (None, 1)
    _images("conv2d", x, channels, kernel)
    if len(weight) != 4:
        one = f"; for one filter (in_channels, kh, kw) pass w.reshape(1, {', '.join(map(str, weight))})"
        raise ValueError(f"conv2d: the weight must be shaped (out_channels, in_channels, kh, kw), got {weight}"
                         f"{one if len(weight) == 3 else ''}.")
    if x[1] != weight[1]:
        if x[3] == weight[1]:
            raise ValueError(f"conv2d: the input {x} looks channels-last (N, H, W, C) with C = {x[3]}, but conv2d "
                             f"takes NCHW (N, C, H, W) like PyTorch: pass x.transpose(0, 3, 1, 2).")
        if weight[2] == x[1] and weight[0] == weight[1]:
            raise ValueError(f"conv2d: the weight {weight} looks laid out as the course's W (f, f, n_C_prev, n_C); "
                             f"conv2d takes (out_channels, in_channels, kh, kw): pass W.transpose(3, 2, 0, 1).")
        raise ValueError(f"conv2d: the input has {x[1]} channels (axis 1 of {x}) but the weight {weight} expects "
                         f"{weight[1]} (its axis 1, in_channels); the weight is (out_channels, in_channels, kh, kw).")
    if bias is not None and tuple(bias) != (weight[0],):
        raise ValueError(f"conv2d: the bias must be shaped ({weight[0]},), one number per output channel, got "
                         f"{tuple(bias)}.")
    found = {"stride": pair(stride, "stride", "conv2d", 1), "padding": pair(padding, "padding", "conv2d", 0)}
    _fits("conv2d", x, (weight[2], weight[3]), found["padding"])
    return found


def pool(op: str, x: Shape, kernel_size: Any, stride: Any) -> dict[str, Any]:
    """Check a pool's input and sizes; return the op's ``kernel`` and ``stride`` (by default the kernel's)."""
    _images(op, x)
    kernel = pair(kernel_size, "kernel_size", op, 1)
    found = {"kernel": kernel, "stride": kernel if stride is None else pair(stride, "stride", op, 1)}
    _fits(op, x, kernel, (0, 0))
    return found


def flatten(x: Shape, start_dim: Any, end_dim: Any) -> dict[str, Any]:
    """Check ``flatten``'s axes; return them as the op takes them, ``start`` <= ``end``, both counted from 0."""
    ndim = max(len(x), 1)
    axes = []
    for what, axis in (("start_dim", start_dim), ("end_dim", end_dim)):
        if isinstance(axis, bool) or not hasattr(axis, "__index__") or not -ndim <= operator.index(axis) < ndim:
            raise ValueError(f"flatten: {what}={axis!r} does not fit a tensor of shape {x}; axes lie in "
                             f"[-{ndim}, {ndim - 1}]. (flatten keeps axes before start_dim, as nn.Flatten: "
                             f"start_dim=1 keeps the batch axis.)")
        axes.append(operator.index(axis) % ndim)
    if axes[0] > axes[1]:
        raise ValueError(f"flatten: start_dim ({start_dim}) comes after end_dim ({end_dim}) on shape {x}.")
    return {"start": axes[0], "end": axes[1]}
