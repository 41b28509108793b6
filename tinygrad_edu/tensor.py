"""The Tensor and the reverse-mode engine.

A ``Tensor`` holds ``data`` (a numpy array) and, after ``backward()``, ``grad`` (an array of the same shape).
Every op on Tensors that need a gradient records the op and its parents (an ordered tuple: ``a + a`` has two
edges). ``backward()`` walks the recorded graph from the output back, always taking the newest tensor that
has a pending gradient (creation order is a topological order; iterative, so no recursion limit), applies each
op's rule from ``ops``, and undoes broadcasting in one place, ``_fit``.

>>> x = Tensor([1.0, 2.0, 3.0], requires_grad=True, name="x")
>>> y = (x * x).sum()
>>> y.backward()
>>> x.grad
array([2., 4., 6.])
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import operator
import os
import traceback
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.lib.array_utils import byte_bounds

from . import ops
from .ops import Op

__all__ = [
    "Tensor", "grad", "no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly",
    "where", "maximum", "minimum", "concatenate", "stack",
]

Scalar = int | float | bool


class _State:
    """Switches read on every op (whether to record graph, whether to hunt for NaN/Inf), and the clock time of
    the latest in-place change to any tensor (nodes made after it need no in-place check)."""

    __slots__ = ("grad_enabled", "anomaly", "last_change")

    def __init__(self) -> None:
        self.grad_enabled = True
        self.anomaly = False
        self.last_change = -1


_state = _State()


class _Switch(contextlib.ContextDecorator):
    """Set one switch of ``_state`` inside a ``with`` block or a decorated function; restore it on exit.

    The previous values are a stack, so one instance can be re-entered (a recursive decorated function).
    """

    _field = ""
    _value = False

    def __new__(cls, func: Any = None) -> Any:
        switch = super().__new__(cls)
        if func is None:
            return switch
        if not callable(func):
            raise TypeError(f"{cls.__name__}() takes no arguments (got {func!r}); use `with {cls.__name__}():` "
                            f"or decorate a function with @{cls.__name__}.")
        switch.__init__()
        return switch(func)  # `@no_grad` without parentheses decorates the function directly

    def __init__(self, func: Any = None) -> None:
        self._saved: list[bool] = []

    def __enter__(self) -> _Switch:
        self._saved.append(getattr(_state, self._field))
        setattr(_state, self._field, self._value)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(_state, self._field, self._saved.pop())


class no_grad(_Switch):
    """Record no graph inside (a context manager or a decorator); the previous mode comes back on exit."""

    _field, _value = "grad_enabled", False


class enable_grad(_Switch):
    """Record graph again inside a ``no_grad`` block."""

    _field, _value = "grad_enabled", True


class detect_anomaly(_Switch):
    """Stop at the first NaN or Inf in any forward result or gradient, naming the op and where it was made.

    Off by default; when off it costs one attribute read per op.
    """

    _field, _value = "anomaly", True


def is_grad_enabled() -> bool:
    return _state.grad_enabled


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_site() -> str:
    """file:line of the innermost frame outside this package: where the learner's code made a tensor."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno}"
    return "<unknown>"


def _describe(t: Tensor) -> str:
    label = f"'{t.name}' " if t.name else ""
    made_by = f"made by {t._op.name}" if t._op is not None else "created from data"
    return f"tensor {label}of shape {t.shape} and dtype {t.dtype} ({made_by})"


def _stats(a: np.ndarray) -> str:
    if a.size == 0 or a.dtype.kind not in "fc":
        return f"shape {a.shape}"
    finite = a[np.isfinite(a)]
    lo, hi = (f"{finite.min():.4g}", f"{finite.max():.4g}") if finite.size else ("-", "-")
    return (f"shape {a.shape}, finite min {lo}, finite max {hi}, "
            f"NaN: {int(np.isnan(a).sum())}, Inf: {int(np.isinf(a).sum())}")


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    ``Tensor(ndarray)`` shares memory with the array (no copy); Python numbers and lists become float64.
    Only floating-point tensors can require grad.

    >>> w = Tensor([[1.0, 2.0]], requires_grad=True, name="w")
    >>> w
    Tensor([[1., 2.]], requires_grad=True, name='w')
    >>> w * 2
    Tensor([[2., 4.]], op=mul, requires_grad=True)
    """

    __slots__ = ("_data", "_grad", "requires_grad", "name", "_op", "_parents", "_kwargs", "_seq",
                 "_changed", "_site", "__weakref__")
    __array_ufunc__ = None  # `ndarray * Tensor` defers to Tensor.__rmul__ instead of looping over elements

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None,
                 dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            data = data._data
        if isinstance(data, np.ndarray):
            array = data if dtype is None else data.astype(dtype, copy=False)
        else:
            array = np.asarray(data, dtype=dtype)
            if dtype is None and array.dtype.kind in "iu":
                array = array.astype(np.float64)  # Python numbers are for learning math: make them floats
        _init(self, array, False)
        self.name = name
        if requires_grad:
            self.requires_grad_(True)

    # -- the data and its bookkeeping -----------------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, array: np.ndarray) -> None:
        # NOTE: `w.data -= lr * w.grad` comes through this setter too, with the same array changed in place;
        # `w.data = new` brings another array (maybe of another shape). Both are stamped, so backward() can
        # refuse a graph that saved the old values.
        if array is self._data:
            _mark_written(array)
            return
        array = np.asarray(_raw(array))
        if self.requires_grad and array.dtype.kind not in "fc":
            raise TypeError(f"t.data = ...: {_describe(self)} requires grad, so its data must be floating-point, "
                            f"not {array.dtype}; convert it first, e.g. np.asarray(values, dtype=np.float64).")
        self._data = array
        self._changed = _state.last_change = next(_CLOCK)

    @property
    def grad(self) -> np.ndarray | None:
        """The gradient from ``backward()`` (None before): an array of this tensor's shape."""
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        # NOTE: checked here, where the mistake is made, and not in the middle of a later backward() (which
        # would have added this pass to some leaves already). The values are copied, in the tensor's dtype:
        # backward() adds into .grad in place, which must not change a tensor's data (`w.grad = b.data`).
        if value is not None:
            value = np.asarray(_raw(value))
            kinds = "fc" if self._data.dtype.kind == "c" else "f"
            if value.shape != self._data.shape or value.dtype.kind not in kinds or self._data.dtype.kind not in "fc":
                raise ValueError(
                    f"t.grad = ...: {_describe(self)} can only hold a gradient of its own shape, {self.shape}, "
                    f"with {'complex' if kinds == 'fc' else 'real'} floating-point values (and only a "
                    f"floating-point tensor has one); got shape {value.shape} and dtype {value.dtype}. Give an "
                    f"array like np.zeros({self.shape}), or None to clear it.")
            value = value.astype(self._data.dtype)  # always a copy
        self._grad = value

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def op(self) -> type[Op] | None:
        """The op that computed this tensor (None for one created from data)."""
        return self._op

    @property
    def parents(self) -> tuple[Tensor, ...]:
        """The tensors this one was computed from, in argument order (recorded only when grad is needed)."""
        return self._parents

    @property
    def is_leaf(self) -> bool:
        """True unless the graph recorded where this tensor came from: gradients accumulate in leaves."""
        return not self._parents

    def numpy(self) -> np.ndarray:
        return self._data

    def item(self) -> Scalar:
        return self._data.item()

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __float__(self) -> float:
        return float(self._data)

    __hash__ = object.__hash__  # `==` is elementwise, so hashing stays by identity

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        # a copy gets fresh stamps (below), so a node whose rule would read changed values must not be copied:
        # its copy would pass the in-place check and give a wrong gradient
        if self._parents and self._seq < _state.last_change:
            _check_unchanged(self, "copy/pickle")
        return None, {key: getattr(self, key) for key in Tensor.__slots__ if key != "__weakref__"}

    def __setstate__(self, state: Any) -> None:
        # NOTE: a copy (copy.copy, deepcopy, pickle) gets a fresh creation number and no change stamp: numbers
        # from the original (or from another process) would break "parents are older than children". Copying
        # a graph restores parents before children, so the order holds.
        for key, value in (state[1] if isinstance(state, tuple) else state or {}).items():
            setattr(self, key, value)
        self._seq = next(_CLOCK)
        self._changed = -1

    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", threshold=20, edgeitems=3, prefix="Tensor(")
        extras = [f"dtype={self.dtype}"] if self.dtype not in (np.float64, np.bool_) else []
        if self._op is not None:
            extras.append(f"op={self._op.name}")
        if self.requires_grad:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name={self.name!r}")
        return f"Tensor({', '.join([body] + extras)})"

    # -- gradient switches ------------------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Start (or stop) tracking gradients for this tensor, which becomes a leaf of future graphs."""
        if requires_grad and self._data.dtype.kind not in "fc":
            raise TypeError(
                f"requires_grad: {_describe(self)} holds {self.dtype} values, and only floating-point "
                f"tensors can have gradients (an integer cannot move by a small step). Make it a float "
                f"first, e.g. Tensor(array.astype(np.float64), requires_grad=True).")
        if not self._parents:
            self.requires_grad = requires_grad
        elif not requires_grad:
            raise RuntimeError(
                f"requires_grad_(False): {_describe(self)} is part of a recorded graph; use "
                f"t = t.detach() to get the same values without history.")
        return self

    def detach(self) -> Tensor:
        """The same data (shared, no copy) as a new leaf without history."""
        return _new(self._data, False)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``grad`` becomes None, as PyTorch's set_to_none)."""
        self._grad = None

    # -- the engine -------------------------------------------------------------------------------------------
    def backward(self, gradient: Any = None) -> None:
        """Fill ``.grad`` of every tensor this one depends on.

        Leaves *accumulate* into ``.grad`` across calls (call ``zero_grad`` between steps); intermediate
        tensors get this pass's gradient (overwritten), so a drawing shows the current pass. The graph is
        kept, so it can be inspected, drawn, or differentiated again.
        """
        if not self.requires_grad:
            why = ("it was created from data without requires_grad=True" if self._op is None else
                   f"none of the inputs of {self._op.name} required grad (or it ran under no_grad()), so "
                   f"no graph was recorded")
            raise RuntimeError(
                f"backward(): {_describe(self)} does not require grad: {why}. Create the parameters you want "
                f"gradients for with Tensor(..., requires_grad=True), or call p.requires_grad_() on them "
                f"before the forward pass.")
        if gradient is None:
            if self.size != 1:
                raise RuntimeError(
                    f"backward(): {_describe(self)} is not a scalar, and the gradient of a non-scalar is a "
                    f"Jacobian, not an array of its shape. Reduce it first (loss = y.sum() or y.mean()), or "
                    f"pass the upstream gradient: y.backward(gradient=np.ones({self.shape})).")
            seed = np.ones_like(self._data)
        else:
            seed = _check_gradient(self, gradient)
        _backprop([self], [seed], targets=None, create_graph=False)

    # -- ops: each method records one node of the graph ------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return _apply(ops.Add, self, _lift(other, self))

    def __radd__(self, other: Any) -> Tensor:
        return _apply(ops.Add, _lift(other, self), self)

    def __sub__(self, other: Any) -> Tensor:
        return _apply(ops.Sub, self, _lift(other, self))

    def __rsub__(self, other: Any) -> Tensor:
        return _apply(ops.Sub, _lift(other, self), self)

    def __mul__(self, other: Any) -> Tensor:
        return _apply(ops.Mul, self, _lift(other, self))

    def __rmul__(self, other: Any) -> Tensor:
        return _apply(ops.Mul, _lift(other, self), self)

    def __truediv__(self, other: Any) -> Tensor:
        return _apply(ops.TrueDiv, self, _lift(other, self))

    def __rtruediv__(self, other: Any) -> Tensor:
        return _apply(ops.TrueDiv, _lift(other, self), self)

    def __neg__(self) -> Tensor:
        return _apply(ops.Neg, self)

    def __pow__(self, exponent: Any) -> Tensor:
        exponent = _number(exponent)
        if isinstance(exponent, (int, float)) and not isinstance(exponent, bool):
            return _apply(ops.Pow, self, exponent=exponent)
        return _apply(ops.PowTensor, self, _lift(exponent, self))

    def __rpow__(self, base: Any) -> Tensor:
        return _apply(ops.PowTensor, _lift(base, self), self)

    def __matmul__(self, other: Any) -> Tensor:
        return _apply(ops.MatMul, self, _lift(other, self))

    def __rmatmul__(self, other: Any) -> Tensor:
        return _apply(ops.MatMul, _lift(other, self), self)

    # Comparisons are not differentiable: plain boolean tensors, no graph.
    def __lt__(self, other: Any) -> Tensor:
        return _new(self._data < _raw(other), False)

    def __le__(self, other: Any) -> Tensor:
        return _new(self._data <= _raw(other), False)

    def __gt__(self, other: Any) -> Tensor:
        return _new(self._data > _raw(other), False)

    def __ge__(self, other: Any) -> Tensor:
        return _new(self._data >= _raw(other), False)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _new(self._data == _raw(other), False)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _new(self._data != _raw(other), False)

    def exp(self) -> Tensor:
        return _apply(ops.Exp, self)

    def log(self) -> Tensor:
        return _apply(ops.Log, self)

    def sqrt(self) -> Tensor:
        return _apply(ops.Sqrt, self)

    def abs(self) -> Tensor:
        return _apply(ops.Abs, self)

    def __abs__(self) -> Tensor:
        return _apply(ops.Abs, self)

    def maximum(self, other: Any) -> Tensor:
        return _apply(ops.Maximum, self, _lift(other, self))

    def minimum(self, other: Any) -> Tensor:
        return _apply(ops.Minimum, self, _lift(other, self))

    def clip(self, low: Scalar | None = None, high: Scalar | None = None) -> Tensor:
        return _apply(ops.Clip, self, low=_number(low), high=_number(high))

    def sigmoid(self) -> Tensor:
        return _apply(ops.Sigmoid, self)

    def log_sigmoid(self) -> Tensor:
        """log(sigmoid(x)), finite even where sigmoid(x) rounds to 0."""
        return _apply(ops.LogSigmoid, self)

    def tanh(self) -> Tensor:
        return _apply(ops.Tanh, self)

    def relu(self) -> Tensor:
        return _apply(ops.Relu, self)

    def leaky_relu(self, slope: float = 0.01) -> Tensor:
        return _apply(ops.LeakyRelu, self, slope=_number(slope))

    def softmax(self, axis: int = -1) -> Tensor:
        return _apply(ops.Softmax, self, axis=_axis(axis))

    def log_softmax(self, axis: int = -1) -> Tensor:
        return _apply(ops.LogSoftmax, self, axis=_axis(axis))

    def logsumexp(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return _apply(ops.LogSumExp, self, axis=_axis(axis), keepdims=keepdims)

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return _apply(ops.Sum, self, axis=_axis(axis), keepdims=keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return _apply(ops.Mean, self, axis=_axis(axis), keepdims=keepdims)

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return _apply(ops.Max, self, axis=_axis(axis), keepdims=keepdims)

    def min(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return _apply(ops.Min, self, axis=_axis(axis), keepdims=keepdims)

    def var(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
        return _apply(ops.Var, self, axis=_axis(axis), keepdims=keepdims, ddof=ddof)

    def reshape(self, *shape: Any) -> Tensor:
        target = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return _apply(ops.Reshape, self, shape=target)

    def transpose(self, *axes: Any) -> Tensor:
        order = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        if any(not -self.ndim <= operator.index(a) < self.ndim for a in order):
            raise ValueError(f"transpose: axes {order} do not fit a tensor of shape {self.shape}; each axis "
                             f"must lie in [-{self.ndim}, {self.ndim - 1}].")
        order = tuple(operator.index(a) % self.ndim for a in order) or tuple(reversed(range(self.ndim)))
        return _apply(ops.Transpose, self, axes=order)

    permute = transpose  # PyTorch's word for the same op

    @property
    def T(self) -> Tensor:  # noqa: N802 (numpy's name)
        return self.transpose()

    @property
    def mT(self) -> Tensor:  # noqa: N802 (numpy's name)
        """Swap the last two axes (a batch of matrices transposed)."""
        order = list(range(self.ndim))
        order[-2:] = order[-1], order[-2]
        return self.transpose(tuple(order))

    def squeeze(self, axis: int | tuple[int, ...] | None = None) -> Tensor:
        return _apply(ops.Squeeze, self, axis=_axis(axis))

    def unsqueeze(self, axis: int) -> Tensor:
        return _apply(ops.Unsqueeze, self, axis=_axis(axis))

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        return _apply(ops.BroadcastTo, self, shape=tuple(shape))

    def __getitem__(self, index: Any) -> Tensor:
        return _apply(ops.GetItem, self, index=_index(index))

    def scatter_add(self, index: Any, shape: Sequence[int]) -> Tensor:
        """A zero tensor of ``shape`` with this tensor added at ``index`` (repeats add up)."""
        return _apply(ops.ScatterAdd, self, index=_index(index), shape=tuple(shape))

    def __setitem__(self, index: Any, new: Any) -> None:
        if self.requires_grad and _state.grad_enabled:
            raise RuntimeError(
                f"x[...] = ...: {_describe(self)} requires grad, and writing into it in place would not be "
                f"recorded in the graph. Build a new tensor instead (e.g. where(mask, new, x)), or change "
                f"the values outside training under no_grad().")
        index = _index(index)
        self._data[index] = _raw(new)
        parts = index if isinstance(index, tuple) else (index,)
        if ops.is_basic(parts):  # stamp a view of what was written; with `...`, one element is a 0-d view
            _mark_written(self._data[parts if Ellipsis in parts else (*parts, ...)])
        else:
            _mark_written(self._data)


# -- free functions for ops with several tensor inputs ------------------------------------------------------

def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Elementwise ``a`` where ``condition`` holds, else ``b`` (the condition gets no gradient)."""
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else Tensor(a)
    return _apply(ops.Where, _lift(a, like), _lift(b, like), condition=np.asarray(_raw(condition), dtype=bool))


def maximum(a: Any, b: Any) -> Tensor:
    return _lift(a, b if isinstance(b, Tensor) else None).maximum(b)


def minimum(a: Any, b: Any) -> Tensor:
    return _lift(a, b if isinstance(b, Tensor) else None).minimum(b)


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    like = next((t for t in tensors if isinstance(t, Tensor)), None)
    return _apply(ops.Concatenate, *[_lift(t, like) for t in tensors], axis=_axis(axis))


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    like = next((t for t in tensors if isinstance(t, Tensor)), None)
    return _apply(ops.Stack, *[_lift(t, like) for t in tensors], axis=_axis(axis))


# -- the recording side -------------------------------------------------------------------------------------

# NOTE: one clock numbers both events: a tensor's creation (`_seq`; a tensor is always made after its parents)
# and the last in-place change of its data (`_changed`). A node whose parent changed after the node was made
# saved the old values, so its rule would compute the gradient of values that are gone.
_CLOCK = itertools.count()
_DATA = operator.attrgetter("_data")
_REQUIRES_GRAD = operator.attrgetter("requires_grad")
_SEQ = operator.attrgetter("_seq")


def _init(t: Tensor, array: np.ndarray, requires_grad: bool) -> None:
    t._data = array
    t._grad = None
    t.requires_grad = requires_grad
    t.name = None
    t._op = None
    t._parents = ()
    t._kwargs = None
    t._seq = next(_CLOCK)
    t._changed = -1
    t._site = None


# NOTE: two kinds of change. A tensor given another array (`t.data = new`) keeps the time in `t._changed`.
# A write into memory (`t[i] = v`, `t.data -= d`) is kept by the array that owns the memory, with the byte
# range written (None: all of it), in _WRITES = {id(owner): {(low, high): time}}: a view, a detach() or a
# Tensor(t.data) shares memory with the tensor it came from, so a write through one changes the others where
# their byte ranges overlap (a conservative test: alternate rows or columns count as overlapping). An entry
# goes with its owner array.
_WRITES: dict[int, dict[tuple[int, int] | None, int]] = {}


def _owner(array: np.ndarray) -> np.ndarray:
    """The ndarray that owns ``array``'s memory (itself, unless it is a view)."""
    owner, base = array, array.base
    while base is not None:  # as_strided views have a non-ndarray link in the chain
        if isinstance(base, np.ndarray):
            owner = base
        base = getattr(base, "base", None)
    return owner


def _mark_written(array: np.ndarray) -> None:
    """Stamp a write into ``array``'s memory (see ``_check_unchanged``)."""
    owner = _owner(array)
    writes = _WRITES.get(id(owner))
    if writes is None:
        writes = _WRITES[id(owner)] = {}
        weakref.finalize(owner, _WRITES.pop, id(owner), None).atexit = False
    # the whole array (an optimizer's step) is `None`: byte_bounds costs a microsecond, 5% of a small step
    writes[None if array is owner else byte_bounds(array)] = _state.last_change = next(_CLOCK)


def _memory_changed(array: np.ndarray) -> int:
    """The clock time of the last write through any tensor into bytes of ``array`` (-1 if none)."""
    writes = _WRITES.get(id(_owner(array)))
    if not writes:
        return -1
    low, high = byte_bounds(array)
    return max((time for span, time in writes.items() if span is None or (span[0] < high and low < span[1])),
               default=-1)


def _new(array: np.ndarray, requires_grad: bool) -> Tensor:
    """A tensor around an array the engine made (no copy; a numpy scalar becomes a 0-d array)."""
    t = object.__new__(Tensor)
    _init(t, array if type(array) is np.ndarray else np.asarray(array), requires_grad)
    return t


def _raw(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else x


def _number(x: Any) -> Any:
    """A numpy scalar as the Python number it holds: numpy lets a Python number take the array's dtype, so
    float32 math stays float32 (an np.float64 operand would turn the result into float64)."""
    return x.item() if isinstance(x, (np.integer, np.floating)) else x


_CONSTANTS: dict[tuple[Any, ...], Tensor] = {}


def _lift(x: Any, like: Tensor | None) -> Tensor:
    """Make a constant operand a Tensor, in ``like``'s float dtype so float32 math stays float32."""
    if isinstance(x, Tensor):
        return x
    if like is not None and like._data.dtype.kind == "f":
        if (type(x) is float or type(x) is int) and x == x:  # NaN != NaN would never be found again
            # NOTE: `x * 2` and `1 - x` run every step with the same few numbers: wrap each one once
            # (read-only, so sharing it between graphs is safe).
            # 1 == 1.0 give the same constant; 0.0 == -0.0 must not (1 / x tells them apart)
            key = (x, like._data.dtype) if x else (x, math.copysign(1.0, x), like._data.dtype)
            constant = _CONSTANTS.get(key)
            if constant is None or constant._changed != -1 or constant.requires_grad:  # one a user changed
                if len(_CONSTANTS) >= 1024:
                    _CONSTANTS.clear()
                array = np.array(x, dtype=like._data.dtype)
                array.flags.writeable = False
                constant = _CONSTANTS[key] = _new(array, False)
            return constant
        array = np.asarray(x)
        if array.dtype.kind in "biuf":  # numbers (lists, numpy arrays and scalars): the tensor's float dtype,
            return _new(array.astype(like._data.dtype, copy=False), False)  # so float32 math stays float32
        return _new(np.asarray(x, dtype=np.result_type(like._data, x)), False)
    return Tensor(x)


def _axis(axis: Any) -> Any:
    """None, an int, or a tuple of ints (numpy integers and lists accepted)."""
    if axis is None:
        return None
    if isinstance(axis, (list, tuple)):
        return tuple(operator.index(a) for a in axis)
    return operator.index(axis)  # numpy integers yes; 1.7 or "1" no


def _index(index: Any) -> Any:
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, tuple):
        return tuple(i._data if isinstance(i, Tensor) else i for i in index)
    return index


def _apply(op: type[Op], *parents: Tensor, **kwargs: Any) -> Tensor:
    """Run ``op`` forward and, if any parent needs a gradient, record the node."""
    try:
        # NOTE: CPython's f(*args, **kwargs) costs about as much as a small op's numpy, so the common
        # shapes of call (one or two inputs, no keyword) are spelled out; the results are the same.
        if kwargs or len(parents) > 2:
            array = op.forward(*map(_DATA, parents), **kwargs)
        elif len(parents) == 2:
            array = op.forward(parents[0]._data, parents[1]._data)
        else:
            array = op.forward(parents[0]._data)
        out = _new(array, False)
    except ValueError as error:
        raise ValueError(_shape_message(op, parents, kwargs, error)) from error
    out._op = op  # always known, so an error can say what made a tensor; the graph edges are only recorded below
    if _state.grad_enabled:
        for p in parents:
            if p.requires_grad:
                out.requires_grad = True
                out._parents = parents
                out._kwargs = kwargs
                break
    if _state.anomaly:
        out._site = _user_site()
        if out._data.dtype.kind in "fc" and not np.isfinite(out._data).all():
            inputs = "\n".join(f"  input {i}: {_describe(p)}, {_stats(p._data)}" for i, p in enumerate(parents))
            raise FloatingPointError(
                f"detect_anomaly: {op.name} produced a non-finite value ({_stats(out._data)}) at "
                f"{out._site}.\n{inputs}")
    return out


def _shape_message(op: type[Op], parents: Sequence[Tensor], kwargs: dict[str, Any], error: ValueError) -> str:
    shapes = ", ".join(f"{p.name or f'input {i}'} {p.shape}" for i, p in enumerate(parents))
    if op is ops.MatMul and parents[0].ndim and parents[1].ndim:
        a, b = parents[0].shape, parents[1].shape
        k_b = b[-2] if len(b) > 1 else b[0]
        hint = (f"For a @ b the last axis of a ({a[-1]}) must equal the "
                f"{'second-to-last' if len(b) > 1 else 'only'} axis of b ({k_b}); did you mean a @ b.T?")
    elif op is ops.Concatenate:
        hint = (f"concatenate needs inputs with the same number of axes and the same sizes on every axis except "
                f"axis {kwargs['axis']}; reshape the odd one out.")
    elif op is ops.Stack:
        hint = "stack needs inputs of exactly the same shape (it adds a new axis); reshape the odd one out."
    elif len(parents) > 1:
        hint = ("Broadcasting compares shapes from the right: each pair of axes must be equal or one of them "
                f"1{_clash(parents)}. Reshape one input (e.g. x.reshape(-1, 1)) so the axes line up.")
    else:
        hint = f"Arguments: {kwargs}."
    return f"{op.name}: cannot apply to {shapes}. {hint} (numpy said: {error})"


def _clash(parents: Sequence[Tensor]) -> str:
    """``", and axis -1 clashes: 4 vs 3"``: the first axis, from the right, where the shapes disagree."""
    shapes = [p.shape for p in parents]
    for k in range(1, max(len(s) for s in shapes) + 1):
        sizes = {s[-k] for s in shapes if len(s) >= k} - {1}
        if len(sizes) > 1:
            return f", and axis -{k} clashes: {' vs '.join(str(s[-k]) for s in shapes if len(s) >= k)}"
    return ""


# -- the backward side --------------------------------------------------------------------------------------

def _toposort(roots: Iterable[Tensor], all_parents: bool = False) -> list[Tensor]:
    """Every tensor that needs a gradient, parents before children; iterative, so depth is unlimited.

    ``all_parents=True`` also follows parents that need no gradient (inputs, constants): what a drawing shows.
    """
    # NOTE: a tensor is made after its parents, so creation order is already a topological order: collect
    # the graph with a stack, then sort it by creation number (deterministic, and cheaper than a DFS order).
    seen: set[Tensor] = set(roots)  # Tensor hashes by identity
    stack = list(seen)
    while stack:
        for p in stack.pop()._parents:
            if (all_parents or p.requires_grad) and p not in seen:
                seen.add(p)
                stack.append(p)
    return sorted(seen, key=_SEQ)


def _fit(grad: Any, shape: tuple[int, ...]) -> Any:
    """Bring a rule's gradient to its input's shape: the one place where broadcasting is undone.

    NOTE: if numpy stretched an input (leading axes added, or size-1 axes repeated), each stretched copy
    got its own gradient, and the input's gradient is their sum. A reduction's rule returns a smaller,
    keepdims-shaped gradient instead; that one is broadcast up to the input's shape.
    """
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    if lead == 1 and grad.shape[1:] == shape:  # the usual bias: (batch, n) back to (n,)
        return grad.sum(axis=0)
    if lead >= 0:
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
        if axes:
            grad = grad.sum(axis=axes, keepdims=True)
        if lead:
            grad = grad.reshape(grad.shape[lead:])
        if grad.shape == shape:
            return grad
    if isinstance(grad, Tensor):
        return grad.broadcast_to(shape)
    full = np.empty(shape, dtype=grad.dtype)  # faster than np.broadcast_to, and writable
    full[...] = grad
    return full


def _check_gradient(root: Tensor, gradient: Any) -> np.ndarray:
    array = np.array(_raw(gradient), dtype=root.dtype)  # a copy: the root's .grad must not be the caller's buffer
    if array.shape != root.shape:
        raise ValueError(
            f"backward(gradient=...): the gradient has shape {array.shape}, but the output is a "
            f"{_describe(root)}; the upstream gradient must have exactly the output's shape, {root.shape}.")
    return array


def _backprop(roots: Sequence[Tensor], seeds: Sequence[Any], targets: Sequence[Tensor] | None,
              create_graph: bool) -> dict[Tensor, Any]:
    """Walk the graph from ``roots`` backwards.

    With ``targets=None`` (``backward()``) gradients land in ``.grad``; otherwise (``grad()``) no ``.grad``
    is touched and the gradients of ``targets`` come back in a dict keyed by tensor.
    """
    grads: dict[Tensor, Any] = {}  # keyed by the tensor itself: Tensor hashes by identity
    for root, seed in zip(roots, seeds):
        grads[root] = grads[root] + seed if root in grads else seed
    # NOTE: a tensor is made after its parents, so taking the newest tensor that has a pending gradient
    # (a heap by creation number) means every tensor it feeds has already passed its share back: its
    # gradient is complete. This is the reversed topological order, found without a separate pass.
    tiebreak = itertools.count()  # never compare two tensors (== is elementwise), even on equal numbers
    queue = [(-t._seq, next(tiebreak), t) for t in grads]
    heapq.heapify(queue)
    # NOTE: each leaf's .grad must be its own array. `handed` holds the arrays that a leaf must not take as they
    # are: the caller's seeds and the arrays already in some leaf's .grad. (A rule like add that hands its
    # upstream array on as it is gets copied below, when the input is a leaf: node.grad holds that array.)
    handed = {id(seed) for seed in seeds}
    wanted = None if targets is None else set(targets)
    found: dict[Tensor, Any] = {}
    anomaly, last_change = _state.anomaly, _state.last_change
    with (enable_grad() if create_graph else no_grad()):
        while queue:
            node = heapq.heappop(queue)[2]
            g = grads.pop(node)
            parents = node._parents
            if wanted is not None:
                if node in wanted:
                    found[node] = g
            elif parents:
                if type(g) is not np.ndarray:
                    g = np.asarray(g)
                node._grad = g  # intermediates: this pass
            elif node._grad is not None:
                _accumulate(node, g)
            else:
                if (type(g) is not np.ndarray or not g.flags.writeable or g.base is not None or id(g) in handed
                        or g.dtype != node._data.dtype):
                    # a numpy scalar, a view, an array another .grad already holds, or another dtype (a float32
                    # leaf used with float64 tensors): the leaf gets its own array, in its own dtype
                    g = np.array(g, dtype=node._data.dtype)
                node._grad = g
                handed.add(id(g))
            if not parents:
                continue
            if node._seq < last_change:  # something changed after this node was made: does its rule read it?
                _check_unchanged(node, "backward()" if wanted is None else "grad()")
            op = node._op
            if create_graph or node._kwargs or len(parents) > 2:
                parent_grads = _rule(node, g, create_graph)
            elif len(parents) == 1:  # the common shapes of call spelled out, as in _apply
                parent_grads = op.backward(g, node._data, parents[0]._data)
            else:
                a, b = parents
                if op.selective:
                    parent_grads = op.backward(g, node._data, a._data, b._data,
                                               needs=(a.requires_grad, b.requires_grad))
                else:
                    parent_grads = op.backward(g, node._data, a._data, b._data)
            for parent, pg in zip(parents, parent_grads):
                if pg is None or not parent.requires_grad:
                    continue
                if pg.shape != parent._data.shape:
                    pg = _fit(pg, parent._data.shape)
                elif pg is g and not parent._parents and wanted is None:
                    pg = pg.copy()  # see `handed` above
                if anomaly:
                    _check_finite_grad(node, parent, pg)
                if parent in grads:
                    grads[parent] = grads[parent] + pg
                else:
                    grads[parent] = pg
                    heapq.heappush(queue, (-parent._seq, next(tiebreak), parent))
    return found


def _accumulate(leaf: Tensor, g: Any) -> None:
    """Add this pass's gradient to a leaf's ``.grad``: in place (as in PyTorch, the array stays the leaf's own)
    unless the array cannot take it (made read-only, or of another dtype after ``w.data = ...``): then a new one."""
    total = leaf._grad
    if total.shape != leaf._data.shape:  # `w.data = ...` gave the leaf another shape since its .grad was set
        raise RuntimeError(
            f"backward(): {_describe(leaf)} has a .grad of shape {total.shape} from before its data changed "
            f"shape, so this pass's gradient cannot be added to it. Call zero_grad() after changing the "
            f"shape of a parameter.")
    if total.dtype == leaf._data.dtype and total.flags.writeable and np.can_cast(g.dtype, total.dtype, "same_kind"):
        total += g
    else:
        leaf._grad = (total + g).astype(leaf._data.dtype, copy=False)


def _rule(node: Tensor, g: Any, create_graph: bool) -> tuple[Any, ...]:
    """Run the backward rule of the op that made ``node`` for upstream gradient ``g``: one gradient per parent.

    Plain arrays in and out, or, with ``create_graph``, Tensors, so that the rule itself is recorded. (The
    general call; ``_backprop`` spells out the common shapes of call itself.)
    """
    op, parents, kwargs = node._op, node._parents, node._kwargs
    if op.selective:
        kwargs = {**kwargs, "needs": tuple(map(_REQUIRES_GRAD, parents))}
    if create_graph:
        return op.backward(g, node, *parents, **kwargs)
    return op.backward(g, node._data, *map(_DATA, parents), **kwargs)


def _check_unchanged(node: Tensor, caller: str = "backward()") -> None:
    """Refuse to run a node's rule if a value it reads (its inputs, its output, a mask or index it kept)
    changed after the node was computed."""
    op, made = node._op, node._seq
    if op.reads_out and max(node._changed, _memory_changed(node._data)) > made:
        raise RuntimeError(
            f"{caller}: {_describe(node)} was changed after {op.name} computed it, and the rule of {op.name} "
            f"reads its output, so the gradient would be computed from the wrong values. Change a copy "
            f"instead (e.g. y = y * mask), or run the forward pass again.")
    for parent in node._parents:
        # another array may have another shape, which even a rule that reads only shapes would get wrong
        if parent._changed > made:
            how, via = "was given new data (t.data = ...)", ""
        elif op.reads_inputs and _memory_changed(parent._data) > made:
            how, via = "was modified in place", " (through it, or through a tensor that shares its memory)"
        else:
            continue
        raise RuntimeError(
            f"{caller}: {_describe(parent)} {how} after {op.name} saved it for the backward pass{via}, so its "
            f"gradient would be computed from the wrong values. Run the forward pass again after changing "
            f"it, change it only between steps (after backward, before the next forward), or give a tensor "
            f"that will be changed its own copy of the data (Tensor(x.copy())).")
    for key, value in (node._kwargs or {}).items():  # masks and indices: where's condition, getitem's index
        arrays = value if isinstance(value, tuple) else (value,)
        if any(isinstance(a, np.ndarray) and _memory_changed(a) > made for a in arrays):
            raise RuntimeError(
                f"{caller}: the {key} array that {op.name} kept was modified in place after {op.name} used "
                f"it, so the gradient would go to the wrong elements. Run the forward pass again after "
                f"changing it.")


def _check_finite_grad(node: Tensor, parent: Tensor, pg: Any) -> None:
    values = pg._data if isinstance(pg, Tensor) else np.asarray(pg)
    if not np.isfinite(values).all():
        raise FloatingPointError(
            f"detect_anomaly: the backward of {node._op.name} (made at {node._site or '<unknown>'}) gave a "
            f"non-finite gradient ({_stats(values)}) for {_describe(parent)}.\n"
            f"  forward value of {parent.name or 'that input'}: {_stats(parent._data)}")


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs: Any = None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple[Any, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, returned without touching any ``.grad``.

    With ``create_graph=True`` the rules run on Tensors, so the returned gradients are Tensors with a graph
    of their own and can be differentiated again (second derivatives, Hessian-vector products).

    >>> x = Tensor(2.0, requires_grad=True)
    >>> (dy,) = grad(x ** 3, x, create_graph=True)
    >>> (d2y,) = grad(dy, x)
    >>> float(dy.data), float(d2y)
    (12.0, 12.0)
    """
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        upstream = [None] * len(outs)
    elif isinstance(grad_outputs, (list, tuple)):
        upstream = list(grad_outputs)
    else:
        upstream = [grad_outputs]
    if len(upstream) != len(outs):
        raise ValueError(f"grad(): {len(outs)} outputs but {len(upstream)} grad_outputs; give one per output.")
    seeds = []
    for out, g in zip(outs, upstream):
        if not out.requires_grad:
            raise RuntimeError(f"grad(): output {_describe(out)} does not require grad; nothing to differentiate.")
        if g is None:
            if out.size != 1:
                raise RuntimeError(
                    f"grad(): output {_describe(out)} is not a scalar; pass grad_outputs=[an array of shape "
                    f"{out.shape}].")
            g = np.ones_like(out._data)
        elif not (create_graph and isinstance(g, Tensor)):
            g = _check_gradient(out, g)
        seeds.append(_new(g, False) if create_graph and not isinstance(g, Tensor) else g)
    found = _backprop(outs, seeds, targets=ins, create_graph=create_graph)
    result = []
    for i, t in enumerate(ins):
        if t not in found:
            if not allow_unused:
                raise RuntimeError(
                    f"grad(): input {i} ({_describe(t)}) is not used to compute the outputs (or does not "
                    f"require grad). Pass allow_unused=True to get None for it.")
            result.append(None)
        else:
            g = found[t]
            result.append(g if isinstance(g, Tensor) else np.array(g))
    return tuple(result)
