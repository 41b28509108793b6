"""The op table: every differentiable op, its forward and its backward side by side.

Read it top to bottom like a derivative cheat sheet. Each op is a class with

* a one-line docstring stating its local derivative,
* ``forward(*inputs, **kwargs)``: plain numpy on ndarrays, returns the output array,
* ``backward(grad_out, out, *inputs, **kwargs)``: one gradient per input (or ``None``).

An op whose gradients are costly sets ``needs_input_grad = True``; its ``backward`` then also gets
``needs_input_grad=(bool, ...)``, which inputs want a gradient (PyTorch's and teenygrad's name).

``backward`` is written only with operators and methods that both ``np.ndarray`` and ``Tensor`` support
(``+ - * / ** @``, ``.sum``, ``.reshape``, ``.transpose``, indexing, and the ``exp``/``log`` helpers below).
The engine calls it on plain arrays for a normal ``backward()`` (full numpy speed) and on Tensors when
``grad(..., create_graph=True)`` asks for the backward pass to be recorded too (higher-order gradients).

A rule may return a gradient whose shape is *broadcast-compatible* with its input rather than equal to it
(``a + b`` returns ``grad_out`` for both): the engine sums or broadcasts it back to the input's shape, in one
place (``autograd.unbroadcast``), so no rule here undoes broadcasting itself.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

__all__ = ["Op", "OPS"]

OPS: dict[str, type[Op]] = {}
"""Every op class by class name, so the tests can require a gradient check for each one."""


class Op:
    """Base class of the op table; subclasses register themselves in ``OPS``."""

    name: str = ""
    needs_input_grad: bool = False
    """If True, ``backward`` also gets ``needs_input_grad``: which inputs want a gradient, so it skips the others."""
    reads_out: bool = False
    """If True, ``backward`` reads ``out``, so the output must not change in place before backward()."""
    reads_inputs: bool = True
    """If False, ``backward`` needs only the inputs' shapes, so their values may change before backward()."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.__dict__.get("name") or cls.__name__.lower()
        OPS[cls.__name__] = cls

    @staticmethod
    def forward(*inputs: np.ndarray, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(grad_out: Any, out: Any, *inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------------------
# Helpers that work on both ndarrays and Tensors (the Tensor versions record graph for create_graph=True).

_ARRAY = (np.ndarray, np.generic)  # numpy reductions of 0-d arrays give numpy scalars


def exp(x: Any) -> Any:
    return np.exp(x) if isinstance(x, _ARRAY) else x.exp()


def log(x: Any) -> Any:
    return np.log(x) if isinstance(x, _ARRAY) else x.log()


def array_of(x: Any) -> np.ndarray | np.generic:
    """The ndarray behind ``x``: used for masks, which are constants of the derivative."""
    return x if isinstance(x, _ARRAY) else x.data


def mask(condition: np.ndarray, like: Any) -> np.ndarray:
    """A 0/1 (or fractional) mask in the dtype of ``like``, so float32 stays float32."""
    return np.asarray(condition, dtype=array_of(like).dtype)


def as_keepdims(g: Any, in_shape: tuple[int, ...], axis: Any) -> Any:
    """Reshape a reduction's gradient to keepdims shape, so it broadcasts against the input."""
    if axis is None:
        return g.reshape((1,) * len(in_shape))
    axes = (axis,) if isinstance(axis, int) else axis
    axes = {a % len(in_shape) for a in axes}
    return g.reshape(tuple(1 if i in axes else n for i, n in enumerate(in_shape)))


def reduction_size(in_shape: tuple[int, ...], axis: Any) -> int:
    """How many elements a reduction over ``axis`` combines into one."""
    if axis is None:
        return int(np.prod(in_shape))
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([in_shape[a] for a in axes]))


def row_major(x: Any) -> bool:
    """False for a matrix stored column by column (a transposed view such as ``W.T``)."""
    strides = array_of(x).strides
    return strides[-1] <= strides[-2]


def is_basic(index: Any) -> bool:
    """True for a basic index (ints, slices, None, ...), which numpy answers with a view or one element."""
    parts = index if isinstance(index, tuple) else (index,)
    # NOTE: a bool is an int to Python, but numpy reads `x[True]` as a mask (a copy, not a view)
    return all((isinstance(p, (int, np.integer, slice)) and not isinstance(p, bool)) or p is None or p is Ellipsis
               for p in parts)


# ---------------------------------------------------------------------------------------------------------
# Elementwise arithmetic

class Add(Op):
    """d(a + b) = da + db"""

    reads_inputs = False

    @staticmethod
    def forward(a, b):
        return a + b

    @staticmethod
    def backward(g, out, a, b):
        return g, g


class Sub(Op):
    """d(a - b) = da - db"""

    needs_input_grad = True  # to skip the target of `y_hat - y`, which needs no gradient
    reads_inputs = False

    @staticmethod
    def forward(a, b):
        return a - b

    @staticmethod
    def backward(g, out, a, b, *, needs_input_grad=(True, True)):
        return g, (-g if needs_input_grad[1] else None)


class Mul(Op):
    """d(a * b) = b da + a db"""

    needs_input_grad = True  # to skip a constant factor (`2 * x`, `x * mask`)

    @staticmethod
    def forward(a, b):
        return a * b

    @staticmethod
    def backward(g, out, a, b, *, needs_input_grad=(True, True)):
        return (g * b if needs_input_grad[0] else None), (g * a if needs_input_grad[1] else None)


class TrueDiv(Op):
    """d(a / b) = da / b - (a / b^2) db"""

    name = "truediv"

    needs_input_grad = True  # to skip a constant divisor (`loss / n`)
    reads_out = True

    @staticmethod
    def forward(a, b):
        return a / b

    @staticmethod
    def backward(g, out, a, b, *, needs_input_grad=(True, True)):
        return (g / b if needs_input_grad[0] else None), (-g * out / b if needs_input_grad[1] else None)


class Neg(Op):
    """d(-a) = -da"""

    reads_inputs = False

    @staticmethod
    def forward(a):
        return -a

    @staticmethod
    def backward(g, out, a):
        return (-g,)


class Pow(Op):
    """d(a ** c) = c a^(c-1) da   (c a constant number)"""

    @staticmethod
    def forward(a, *, exponent):
        return a**exponent

    @staticmethod
    def backward(g, out, a, *, exponent):
        if exponent == 0:
            return (g * 0,)  # a constant: also at a = 0, where 0 * 0^-1 would be nan
        if exponent == 2:  # the squared error (bench row W1): the same numbers without numpy's general power
            return (g * 2 * a,)
        return (g * exponent * a ** (exponent - 1),)


class PowTensor(Op):
    """d(a ** b) = b a^(b-1) da + a^b ln(a) db   (the db term needs a > 0)"""

    name = "pow"

    needs_input_grad = True  # to skip ln(a) unless the exponent wants a gradient (`x ** Tensor(2.0)`)
    reads_out = True

    @staticmethod
    def forward(a, b):
        return a**b

    @staticmethod
    def backward(g, out, a, b, *, needs_input_grad=(True, True)):
        # NOTE: where b == 0 the output is the constant 1, also at a = 0, where b * a^(b-1) would be 0 * inf
        grad_a = g * b * a ** (b - 1 + mask(array_of(b) == 0, g)) if needs_input_grad[0] else None
        if not needs_input_grad[1]:
            return grad_a, None
        # NOTE: a^b ln(a) -> 0 as a -> 0 for b > 0 (and 0^b is the constant 1 at b = 0): add 1 where a == 0
        # so ln gives 0 there instead of -inf. For b < 0, 0^b = inf and inf * ln(0) = -inf stays, as in PyTorch.
        return grad_a, g * out * log(a + mask((array_of(a) == 0) & (array_of(b) >= 0), g))


class Exp(Op):
    """d exp(a) = exp(a) da"""

    reads_out = True
    reads_inputs = False

    @staticmethod
    def forward(a):
        return np.exp(a)

    @staticmethod
    def backward(g, out, a):
        return (g * out,)


class Log(Op):
    """d ln(a) = da / a"""

    @staticmethod
    def forward(a):
        return np.log(a)

    @staticmethod
    def backward(g, out, a):
        return (g / a,)


class Sqrt(Op):
    """d sqrt(a) = da / (2 sqrt(a))"""

    reads_out = True
    reads_inputs = False

    @staticmethod
    def forward(a):
        return np.sqrt(a)

    @staticmethod
    def backward(g, out, a):
        return (g * 0.5 / out,)


class Abs(Op):
    """d|a| = sign(a) da   (0 at a = 0, as numpy's sign)"""

    @staticmethod
    def forward(a):
        return np.abs(a)

    @staticmethod
    def backward(g, out, a):
        return (g * mask(np.sign(array_of(a)), g),)


class Maximum(Op):
    """d max(a, b) = [a > b] da + [a < b] db   (a tie splits the gradient in half)"""

    @staticmethod
    def forward(a, b):
        return np.maximum(a, b)

    @staticmethod
    def backward(g, out, a, b):
        a_, b_ = array_of(a), array_of(b)
        wins = mask(a_ > b_, g) + mask(a_ == b_, g) * 0.5
        return g * wins, g * (1 - wins)


class Minimum(Op):
    """d min(a, b) = [a < b] da + [a > b] db   (a tie splits the gradient in half)"""

    @staticmethod
    def forward(a, b):
        return np.minimum(a, b)

    @staticmethod
    def backward(g, out, a, b):
        a_, b_ = array_of(a), array_of(b)
        wins = mask(a_ < b_, g) + mask(a_ == b_, g) * 0.5
        return g * wins, g * (1 - wins)


class Where(Op):
    """d where(c, a, b) = [c] da + [not c] db   (c a boolean constant)"""

    reads_inputs = False

    @staticmethod
    def forward(a, b, *, condition):
        return np.where(condition, a, b)

    @staticmethod
    def backward(g, out, a, b, *, condition):
        return g * mask(condition, g), g * mask(~condition, g)


class Clip(Op):
    """d clip(a, lo, hi) = [lo <= a <= hi] da"""

    @staticmethod
    def forward(a, *, low, high):
        return np.clip(a, low, high)

    @staticmethod
    def backward(g, out, a, *, low, high):
        a_ = array_of(a)
        inside = np.ones(a_.shape, dtype=bool)
        if low is not None:
            inside &= a_ >= low
        if high is not None:
            inside &= a_ <= high
        return (g * mask(inside, g),)


# ---------------------------------------------------------------------------------------------------------
# Activations

class Sigmoid(Op):
    """d sigmoid(a) = s (1 - s) da,  s = 1 / (1 + exp(-a))"""

    reads_out = True
    reads_inputs = False

    @staticmethod
    def forward(a):
        # NOTE: exp(-a) overflows (with a warning) once -a passes log(largest float): about 709 in float64,
        # 88 in float32. Clipping a there returns s = e^-708 (1e-308; float32: 1e-38) instead of an even
        # tinier number for more negative a, and keeps the tutorials' hand-written formula, bit for bit,
        # everywhere else.
        return 1 / (1 + np.exp(-np.maximum(a, _exp_floor(a.dtype))))

    @staticmethod
    def backward(g, out, a):
        return (g * out * (1 - out),)


@functools.cache
def _exp_floor(dtype: np.dtype) -> float:
    info = np.finfo(dtype if np.issubdtype(dtype, np.floating) else np.float64)
    return -(float(np.log(info.max)) - 1.0)


class LogSigmoid(Op):
    """d log(sigmoid(a)) = (1 - sigmoid(a)) da = sigmoid(-a) da"""

    name = "log_sigmoid"
    reads_out = True

    @staticmethod
    def forward(a):
        # NOTE: log(sigmoid(a)) = -log(1 + exp(-a)) = -logaddexp(0, -a): finite for every a, no overflow.
        return -np.logaddexp(0, -a)

    @staticmethod
    def backward(g, out, a):
        # NOTE: sigmoid(-a) = exp(log_sigmoid(a) - a): no cancellation (1 - exp(out) loses digits for
        # large a) and no overflow.
        return (g * exp(out - a),)


class Tanh(Op):
    """d tanh(a) = (1 - tanh(a)^2) da"""

    reads_out = True
    reads_inputs = False

    @staticmethod
    def forward(a):
        return np.tanh(a)

    @staticmethod
    def backward(g, out, a):
        return (g * (1 - out * out),)


class Relu(Op):
    """d relu(a) = [a > 0] da"""

    @staticmethod
    def forward(a):
        return np.maximum(a, 0)

    @staticmethod
    def backward(g, out, a):
        return (g * mask(array_of(a) > 0, g),)


class LeakyRelu(Op):
    """d leaky_relu(a) = (1 if a > 0 else slope) da"""

    name = "leaky_relu"

    @staticmethod
    def forward(a, *, slope):
        return np.where(a > 0, a, a * slope)

    @staticmethod
    def backward(g, out, a, *, slope):
        return (g * mask(np.where(array_of(a) > 0, 1.0, slope), g),)


class Softmax(Op):
    """d softmax(a) = s * (da - sum(s * da)),  s = softmax(a) along axis"""

    reads_out = True
    reads_inputs = False

    @staticmethod
    def forward(a, *, axis):
        # NOTE: subtracting the max changes nothing mathematically and keeps exp() from overflowing.
        e = np.exp(_shifted(a, axis))
        return e / e.sum(axis=axis, keepdims=True)

    @staticmethod
    def backward(g, out, a, *, axis):
        return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)


class LogSoftmax(Op):
    """d log_softmax(a) = da - softmax(a) sum(da)   along axis"""

    name = "log_softmax"
    reads_out = True
    reads_inputs = False

    @staticmethod
    def forward(a, *, axis):
        shifted = _shifted(a, axis)
        with np.errstate(divide="ignore"):  # log(0) only for an empty axis, whose result is empty anyway
            return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    @staticmethod
    def backward(g, out, a, *, axis):
        return (g - exp(out) * g.sum(axis=axis, keepdims=True),)


def _shifted(a: np.ndarray, axis: Any) -> np.ndarray:
    """``a - max(a)`` along ``axis``, for softmax and log_softmax: an empty axis gives an empty result.

    NOTE: ``initial=-inf`` gives an empty axis a maximum (numpy has none, so ``a.max`` raises), and a
    difference that overflows (1e308 - (-1e308)) is -inf, whose exp() is 0: the right limit, so no warning.
    """
    with np.errstate(over="ignore"):
        return a - a.max(axis=axis, keepdims=True, initial=-np.inf)


class LogSumExp(Op):
    """d logsumexp(a) = softmax(a) da   along axis"""

    reads_out = True

    @staticmethod
    def forward(a, *, axis, keepdims):
        top = a.max(axis=axis, keepdims=True, initial=-np.inf)  # an empty axis: -inf, the log of a sum of nothing
        top = np.where(np.isfinite(top), top, 0)  # all -inf rows (and empty ones): keep them -inf, not nan
        with np.errstate(over="ignore", divide="ignore"):  # a - top may overflow to -inf; log(0) is -inf
            out = np.log(np.exp(a - top).sum(axis=axis, keepdims=True)) + top
        if keepdims:
            return out
        return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)

    @staticmethod
    def backward(g, out, a, *, axis, keepdims):
        return (as_keepdims(g, a.shape, axis) * exp(a - as_keepdims(out, a.shape, axis)),)


# ---------------------------------------------------------------------------------------------------------
# Reductions (the engine broadcasts their keepdims-shaped gradients back to the input's shape)

class Sum(Op):
    """d sum(a) = da summed: each element gets the upstream gradient"""

    reads_inputs = False

    @staticmethod
    def forward(a, *, axis, keepdims):
        return a.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(g, out, a, *, axis, keepdims):
        return (as_keepdims(g, a.shape, axis),)


class Mean(Op):
    """d mean(a) = da / n   (n elements per mean)"""

    reads_inputs = False

    @staticmethod
    def forward(a, *, axis, keepdims):
        return a.mean(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(g, out, a, *, axis, keepdims):
        # NOTE: n == 0 only for an empty input, whose gradient is empty too; max(n, 1) avoids a 0/0 warning
        return (as_keepdims(g, a.shape, axis) / max(reduction_size(a.shape, axis), 1),)


def _refuse_empty(a: np.ndarray, axis: Any, name: str) -> None:
    """max and min of nothing have no value (numpy and PyTorch refuse them too): say so plainly."""
    if a.size == 0:
        axes = range(a.ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
        empty = [ax % a.ndim for ax in axes if -a.ndim <= ax < a.ndim and a.shape[ax] == 0]
        if empty or axis is None:
            raise ValueError(f"{name} over an empty axis ({'all axes' if axis is None else f'axis {empty[0]}'} of "
                             f"shape {a.shape}) has no value; numpy and PyTorch refuse it too. Check the shape, or "
                             f"use logsumexp (-inf for nothing) or sum (0 for nothing) if that is what you need.")


class Max(Op):
    """d max(a) = [a == max] da / (number of ties)"""

    reads_out = True

    @staticmethod
    def forward(a, *, axis, keepdims):
        _refuse_empty(a, axis, "max")
        return a.max(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(g, out, a, *, axis, keepdims):
        hit = mask(array_of(a) == array_of(as_keepdims(out, a.shape, axis)), g)
        return (as_keepdims(g, a.shape, axis) * (hit / hit.sum(axis=axis, keepdims=True)),)


class Min(Op):
    """d min(a) = [a == min] da / (number of ties)"""

    reads_out = True

    @staticmethod
    def forward(a, *, axis, keepdims):
        _refuse_empty(a, axis, "min")
        return a.min(axis=axis, keepdims=keepdims)

    # the same rule: the gradient goes to the chosen elements (ignore: each rule names its own arguments)
    backward = staticmethod(Max.backward)  # type: ignore[assignment]


class Var(Op):
    """d var(a) = 2 (a - mean(a)) da / (n - ddof)"""

    @staticmethod
    def forward(a, *, axis, keepdims, ddof):
        return a.var(axis=axis, keepdims=keepdims, ddof=ddof)  # n - ddof <= 0: nan or inf, with a warning

    @staticmethod
    def backward(g, out, a, *, axis, keepdims, ddof):
        n = reduction_size(a.shape, axis)
        if n == 0:
            return (as_keepdims(g, a.shape, axis) * a,)  # an empty input: an empty gradient (and no mean to take)
        # NOTE: with no degrees of freedom left (n - ddof <= 0, e.g. one element and ddof=1) the value is
        # 0 / 0 = nan, as in numpy and PyTorch, and the factor 2 / (n - ddof) is infinite (numpy, too, divides
        # by max(n - ddof, 0)): the gradient is nan where a equals its mean, +-inf elsewhere.
        scale = 2 / (n - ddof) if n > ddof else np.inf
        centred = a - a.mean(axis=axis, keepdims=True)
        with np.errstate(invalid="ignore"):  # 0 * inf = nan is the answer here, and forward already warned
            return (as_keepdims(g, a.shape, axis) * centred * scale,)


# ---------------------------------------------------------------------------------------------------------
# Linear algebra

class MatMul(Op):
    """d(a @ b) = da @ b + a @ db,  so grad_a = g @ b^T and grad_b = a^T @ g"""

    needs_input_grad = True  # to skip a data batch: for x @ W its gradient costs as much as the rest

    @staticmethod
    def forward(a, b):
        return a @ b

    @staticmethod
    def backward(g, out, a, b, *, needs_input_grad=(True, True)):
        if a.ndim > 1 and b.ndim > 1:  # the common case; batch axes are summed by the engine
            # NOTE: each gradient is computed in its input's memory layout: for b = W.T (stored column by
            # column) grad_b = (g^T a)^T rather than a^T g, the same numbers. W's .grad then comes out laid out
            # like W's data, and every later pass over it (the update, accumulation) runs along the grain.
            grad_a = (g @ b.mT if row_major(a) else (b @ g.mT).mT) if needs_input_grad[0] else None
            grad_b = (a.mT @ g if row_major(b) else (g.mT @ a).mT) if needs_input_grad[1] else None
            return grad_a, grad_b
        # NOTE: numpy treats a 1-D a as a row (1, k) and a 1-D b as a column (k, 1); do the same
        # explicitly, then drop the axis that was added.
        a2 = a.reshape((1,) + a.shape) if a.ndim == 1 else a
        b2 = b.reshape(b.shape + (1,)) if b.ndim == 1 else b
        g2 = g.reshape(g.shape[:-1] + (1, g.shape[-1]) if a.ndim == 1 and b.ndim > 1 else
                       g.shape + (1,) if b.ndim == 1 and a.ndim > 1 else (1, 1))
        grad_a, grad_b = g2 @ b2.mT, a2.mT @ g2
        if a.ndim == 1:
            grad_a = grad_a.reshape(grad_a.shape[:-2] + grad_a.shape[-1:])
        if b.ndim == 1:
            grad_b = grad_b.reshape(grad_b.shape[:-1])
        return grad_a, grad_b


# ---------------------------------------------------------------------------------------------------------
# Shape ops: they move numbers around, so their gradients move them back

class Reshape(Op):
    """d reshape(a) = reshape(da) back to a's shape"""

    reads_inputs = False

    @staticmethod
    def forward(a, *, shape):
        return a.reshape(shape)

    @staticmethod
    def backward(g, out, a, *, shape):
        return (g.reshape(a.shape),)


class Transpose(Op):
    """d transpose(a, axes) = transpose(da, inverse of axes)"""

    reads_inputs = False

    @staticmethod
    def forward(a, *, axes):
        return a.transpose(axes)

    @staticmethod
    def backward(g, out, a, *, axes):
        return (g.transpose(tuple(axes.index(i) for i in range(len(axes)))),)  # the inverse permutation


class Squeeze(Op):
    """d squeeze(a) = da with the size-1 axes put back"""

    reads_inputs = False

    @staticmethod
    def forward(a, *, axis):
        return np.squeeze(a, axis=axis)

    @staticmethod
    def backward(g, out, a, *, axis):
        return (g.reshape(a.shape),)


class Unsqueeze(Op):
    """d unsqueeze(a) = da with the new size-1 axis removed"""

    reads_inputs = False

    @staticmethod
    def forward(a, *, axis):
        return np.expand_dims(a, axis)

    @staticmethod
    def backward(g, out, a, *, axis):
        return (g.reshape(a.shape),)


class BroadcastTo(Op):
    """d broadcast_to(a) = da summed over the broadcast axes (done by the engine)"""

    name = "broadcast_to"
    reads_inputs = False

    @staticmethod
    def forward(a, *, shape):
        return np.broadcast_to(a, shape)

    @staticmethod
    def backward(g, out, a, *, shape):
        return (g,)


class GetItem(Op):
    """d a[index] = da scattered back into a zero array (repeated indices add up)"""

    name = "getitem"
    reads_inputs = False

    @staticmethod
    def forward(a, *, index):
        return a[index]

    @staticmethod
    def backward(g, out, a, *, index):
        if isinstance(g, _ARRAY):
            return (ScatterAdd.forward(g, index=index, shape=a.shape),)
        return (g.scatter_add(index, a.shape),)


class ScatterAdd(Op):
    """d scatter_add(a, index) = da[index]   (the transpose of getitem)"""

    name = "scatter_add"
    reads_inputs = False

    @staticmethod
    def forward(a, *, index, shape):
        out = np.zeros(shape, dtype=a.dtype)
        if is_basic(index):
            out[index] = a  # basic indexing cannot repeat an element
        else:
            np.add.at(out, index, a)
        return out

    @staticmethod
    def backward(g, out, a, *, index, shape):
        return (g[index],)


class Concatenate(Op):
    """d concatenate(a1, a2, ...) = the matching slice of da for each input"""

    reads_inputs = False

    @staticmethod
    def forward(*arrays, axis):
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(g, out, *arrays, axis):
        ax = axis % g.ndim
        ends = np.cumsum([x.shape[ax] for x in arrays])
        return tuple(g[(slice(None),) * ax + (slice(int(end - x.shape[ax]), int(end)),)]
                     for x, end in zip(arrays, ends))


class Stack(Op):
    """d stack(a1, a2, ...) = da[..., i, ...] for input i"""

    reads_inputs = False

    @staticmethod
    def forward(*arrays, axis):
        return np.stack(arrays, axis=axis)

    @staticmethod
    def backward(g, out, *arrays, axis):
        ax = axis % g.ndim
        return tuple(g[(slice(None),) * ax + (i,)] for i in range(len(arrays)))


# ---------------------------------------------------------------------------------------------------------
# Convolution and pooling, on NCHW batches: N examples, C channels, height H, width W
#
# A kh x kw kernel sees one window of the zero-padded input per output pixel. im2col copies every window into a
# column, so a convolution is one matrix product; col2im is its transpose: it adds each column back onto the
# window it came from (where windows overlap, their values add up). The gradients of all four ops use the two.
# ``kernel``, ``stride`` and ``padding`` are (height, width) pairs here; ``conv_args`` checks and makes them.

def windows(a: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
            padding: tuple[int, int]) -> np.ndarray:
    """Every kernel-sized window of the zero-padded ``a``: a read-only view (N, C, Ho, Wo, kh, kw), no copy."""
    (ph, pw), (sh, sw) = padding, stride
    if ph or pw:
        a = np.pad(a, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    return np.lib.stride_tricks.sliding_window_view(a, kernel, axis=(2, 3))[:, :, ::sh, ::sw]


def out_size(size: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
             padding: tuple[int, int]) -> tuple[int, int]:
    """(Ho, Wo): how many windows fit along the padded height and width, ``(H + 2 p - k) // s + 1``."""
    (h, w), (kh, kw), (sh, sw), (ph, pw) = size, kernel, stride, padding
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def im2col(a: Any, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]) -> Any:
    """Every window of ``a`` (N, C, H, W) as a column: (N, C kh kw, Ho Wo), PyTorch's ``unfold``."""
    if isinstance(a, _ARRAY):
        return Im2Col.forward(a, kernel=kernel, stride=stride, padding=padding)
    return _record(Im2Col, a, kernel=kernel, stride=stride, padding=padding)


def col2im(cols: Any, size: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
           padding: tuple[int, int]) -> Any:
    """Columns (N, C kh kw, Ho Wo) added back onto their windows of an (N, C, *size) image: PyTorch's ``fold``."""
    if isinstance(cols, _ARRAY):
        return Col2Im.forward(cols, size=tuple(size), kernel=kernel, stride=stride, padding=padding)
    return _record(Col2Im, cols, size=tuple(size), kernel=kernel, stride=stride, padding=padding)


def _record(op: type[Op], a: Any, **kwargs: Any) -> Any:
    """``op`` on a Tensor, recorded (for a rule run with ``create_graph=True``) by the Tensor's own ``apply_op``:
    this module is read before tensor.py and imports nothing from it."""
    return a.apply_op(op, a, **kwargs)


class Im2Col(Op):
    """d im2col(a) = col2im(da): each column's gradient is added back onto the window it was copied from"""

    name = "im2col"
    reads_inputs = False

    @staticmethod
    def forward(a, *, kernel, stride, padding):
        view = windows(a, kernel, stride, padding)
        n, c, ho, wo, kh, kw = view.shape
        cols = np.empty((n, c, kh, kw, ho, wo), dtype=a.dtype)  # one copy, never a view of a
        cols[...] = view.transpose(0, 1, 4, 5, 2, 3)
        return cols.reshape(n, c * kh * kw, ho * wo)

    @staticmethod
    def backward(g, out, a, *, kernel, stride, padding):
        return (col2im(g, a.shape[2:], kernel, stride, padding),)


class Col2Im(Op):
    """d col2im(a) = im2col(da): each column gets the gradient of the window it was added onto"""

    name = "col2im"
    reads_inputs = False

    @staticmethod
    def forward(a, *, size, kernel, stride, padding):
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        ho, wo = out_size(size, kernel, stride, padding)
        if a.ndim != 3 or a.shape[1] % (kh * kw) or a.shape[2] != ho * wo:
            raise ValueError(f"col2im of an output {tuple(size)} with a {kh}x{kw} kernel needs columns shaped "
                             f"(N, C*{kh * kw}, {ho * wo}), got {a.shape}")
        n, c = a.shape[0], a.shape[1] // (kh * kw)
        blocks = a.reshape(n, c, kh, kw, ho, wo)
        if (sh, sw) == (kh, kw) and (ho * kh, wo * kw) == tuple(size) and not (ph or pw):
            # NOTE: windows that tile the image (a pool's default): every element is in exactly one window, so
            # the sum is a transpose, one pass over memory instead of kh * kw (the W4 row's max-pool backward)
            return blocks.transpose(0, 1, 4, 2, 5, 3).reshape(n, c, size[0], size[1])
        out = np.zeros((n, c, size[0] + 2 * ph, size[1] + 2 * pw), dtype=a.dtype)
        for i in range(kh):  # a loop over the kernel's kh * kw offsets, not over pixels or examples
            for j in range(kw):
                out[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw] += blocks[:, :, i, j]
        return out[:, :, ph:ph + size[0], pw:pw + size[1]].copy() if ph or pw else out

    @staticmethod
    def backward(g, out, a, *, size, kernel, stride, padding):
        return (im2col(g, kernel, stride, padding),)


class Conv2d(Op):
    """d conv2d(x, w, b): grad_x = g fully convolved with w rotated 180°, grad_w = x correlated with g, grad_b = Σ g"""

    name = "conv2d"
    needs_input_grad = True  # to skip the images of a first layer: their gradient costs as much as the weights'

    @staticmethod
    def forward(x, w, *bias, stride, padding):
        o, c, kh, kw = w.shape
        cols = Im2Col.forward(x, kernel=(kh, kw), stride=stride, padding=padding)  # (N, C kh kw, Ho Wo)
        out = (w.reshape(o, c * kh * kw) @ cols).reshape((x.shape[0], o) + out_size(x.shape[2:], (kh, kw),
                                                                                       stride, padding))
        if bias:
            out += bias[0].reshape(1, o, 1, 1)
        return out

    @staticmethod
    def backward(g, out, x, w, *bias, stride, padding, needs_input_grad=(True, True, True)):
        o, c, kh, kw = w.shape
        g_rows = g.reshape(g.shape[0], o, g.shape[2] * g.shape[3])  # (N, O, Ho Wo): one row per filter
        # NOTE: w^T g gives each window the sum of the filters weighted by that window's upstream gradients,
        # and col2im adds every window back where it came from: the full convolution of g with w rotated
        # 180°, written as a sum over windows (manual/conv_loops.py computes it both ways).
        grad_x = col2im(w.reshape(o, c * kh * kw).T @ g_rows, x.shape[2:], (kh, kw), stride, padding) \
            if needs_input_grad[0] else None
        grad_w = (g_rows @ im2col(x, (kh, kw), stride, padding).mT).sum(axis=0).reshape(w.shape) \
            if needs_input_grad[1] else None
        if not bias:
            return grad_x, grad_w
        return grad_x, grad_w, (g.sum(axis=(0, 2, 3)) if needs_input_grad[2] else None)


def offsets(a: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> list[np.ndarray]:
    """The kh * kw positions of a window, in reading order: view k holds every window's k-th element,
    (N, C, Ho, Wo) each. A pool over them is kh * kw elementwise steps (numpy is slow to reduce tiny axes)."""
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = out_size(a.shape[2:], kernel, stride, (0, 0))
    return [a[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw] for i in range(kh) for j in range(kw)]


def _spread(g: Any, share: Any, size: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int]) -> Any:
    """A pool's input gradient: each window's ``g`` times its ``share`` (N, C, kh kw, Ho, Wo), added back in place."""
    n, c, ho, wo = g.shape
    cols = (g.reshape(n, c, 1, ho, wo) * share).reshape(n, c * kernel[0] * kernel[1], ho * wo)
    return col2im(cols, size, kernel, stride, (0, 0))


class MaxPool2d(Op):
    """d max_pool2d(a) = da at each window's maximum, 0 elsewhere   (a tie: the first maximum, as in PyTorch)"""

    name = "max_pool2d"
    reads_out = True

    @staticmethod
    def forward(a, *, kernel, stride):
        parts = offsets(a, kernel, stride)
        out = parts[0].copy()
        for part in parts[1:]:
            np.maximum(out, part, out=out)
        return out

    @staticmethod
    def backward(g, out, a, *, kernel, stride):
        parts, top = offsets(array_of(a), kernel, stride), array_of(out)
        hit = np.empty(top.shape[:2] + (len(parts),) + top.shape[2:], dtype=bool)  # (N, C, kh kw, Ho, Wo)
        taken = np.zeros(top.shape, dtype=bool)
        for k, part in enumerate(parts):
            # NOTE: each window's first maximum in reading order takes the gradient (later ties find it taken),
            # as in PyTorch, whose kernel replaces its maximum only by a strictly larger value. The course's
            # mask `window == max` gives it to every tied maximum instead (manual/conv_loops.py shows both).
            first = (part == top) & ~taken
            taken |= first
            hit[:, :, k] = first
        return (_spread(g, hit, a.shape[2:], kernel, stride),)


class AvgPool2d(Op):
    """d avg_pool2d(a) = da / (kh kw), shared evenly by every element of the window"""

    name = "avg_pool2d"
    reads_inputs = False

    @staticmethod
    def forward(a, *, kernel, stride):
        parts = offsets(a, kernel, stride)
        total = parts[0].copy()
        for part in parts[1:]:
            total += part
        return total / len(parts)

    @staticmethod
    def backward(g, out, a, *, kernel, stride):
        share = mask(np.full((kernel[0] * kernel[1], 1, 1), 1 / (kernel[0] * kernel[1])), g)
        return (_spread(g, share, a.shape[2:], kernel, stride),)


class Flatten(Op):
    """d flatten(a) = da reshaped back to a's shape"""

    reads_inputs = False

    @staticmethod
    def forward(a, *, start, end):
        return a.reshape(a.shape[:start] + (int(np.prod(a.shape[start:end + 1])),) + a.shape[end + 1:])

    @staticmethod
    def backward(g, out, a, *, start, end):
        return (g.reshape(a.shape),)
