"""The Tensor: an array that records how it was computed.

A ``Tensor`` holds ``data`` (a numpy array) and, after ``backward()``, ``grad`` (an array of the same shape).
Every op on Tensors that need a gradient records one node: the op and its parents (an ordered tuple: ``a + a``
has two edges). Read the class in order: what a tensor holds (its data), how an op records a node
(``apply_op``), the operators (one line each), and ``backward()``, which hands the recorded graph to
``autograd``, the chain rule walked back with each op's rule from ``ops``.

>>> x = Tensor([1.0, 2.0, 3.0], requires_grad=True, name="x")
>>> y = (x * x).sum()
>>> y.backward()
>>> x.grad
array([2., 4., 6.])
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import autograd, constants, conv_args, diagnostics, display, inplace, ops
from .grad_mode import mode
from .inplace import CLOCK
from .ops import Op

__all__ = ["Tensor", "apply_op", "where", "maximum", "minimum", "concatenate", "stack"]

Scalar = int | float | bool


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

    __slots__ = ("_data", "_grad", "requires_grad", "name", "_op", "_parents", "_kwargs", "_creation_number",
                 "_data_replaced_at", "_site", "__weakref__")
    # what each slot holds (set in `_init`, at the end of this file)
    _data: np.ndarray
    _grad: np.ndarray | None
    requires_grad: bool
    name: str | None
    _op: type[Op] | None  # the op that computed it, and its inputs and arguments (the graph's edges)
    _parents: tuple[Tensor, ...]
    _kwargs: dict[str, Any]
    _creation_number: int  # when it was made, on the clock of `inplace` (parents are always older)
    _data_replaced_at: int  # when `t.data = new` last gave it another array, on the same clock (-1: never)
    _site: str | None  # file:line of the learner's code that made it (recorded under detect_anomaly)
    __array_ufunc__ = None  # `ndarray * Tensor` defers to Tensor.__rmul__ instead of looping over elements

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None,
                 dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            data = data._data
        if isinstance(data, np.ndarray):
            array = data if dtype is None else data.astype(dtype, copy=False)
        else:
            array = diagnostics.as_array(data, dtype)  # nested lists, numbers; ragged lists explained
            if dtype is None and array.dtype.kind in "iu":
                array = array.astype(np.float64)  # Python numbers are for learning math: make them floats
        _init(self, array, False)
        self.name = name
        if requires_grad:
            self.requires_grad_(True)

    # -- the data and its bookkeeping ---------------------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, array: Any) -> None:
        # NOTE: `w.data -= lr * w.grad` comes through this setter too, with the same array changed in place;
        # `w.data = new` brings another array (maybe of another shape). Both are stamped, so backward() can
        # refuse a graph that saved the old values.
        if array is self._data:
            inplace.note_write(array)
            return
        array = np.asarray(_raw(array))
        if self.requires_grad and array.dtype.kind not in "fc":
            raise diagnostics.data_not_float(self, array)
        self._data = array
        inplace.note_new_data(self)

    @property
    def grad(self) -> np.ndarray | None:
        """The gradient from ``backward()`` (None before): an array of this tensor's shape."""
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        # checked where the mistake is made, and copied (backward() adds into .grad in place)
        self._grad = None if value is None else diagnostics.checked_grad(self, np.asarray(_raw(value)))

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
    def op_args(self) -> dict[str, Any]:
        """The op's keyword arguments as recorded (``axis=1``, ``exponent=2``, ...); empty for a leaf."""
        return dict(self._kwargs)

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

    # a copy (copy.copy, deepcopy, pickle) gets a fresh creation number; one that would be refused is not made
    def __getstate__(self) -> dict[str, Any]:
        return inplace.state_to_copy(self, [key for key in Tensor.__slots__ if key != "__weakref__"])

    def __setstate__(self, state: dict[str, Any]) -> None:
        inplace.restore_copy(self, state)

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

    def _repr_html_(self) -> str:
        """How Jupyter shows a tensor: a small table with a heat-map (see ``display``)."""
        return display.tensor_html(self)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Start (or stop) tracking gradients for this tensor, which becomes a leaf of future graphs."""
        if requires_grad and self._data.dtype.kind not in "fc":
            raise diagnostics.not_float(self)
        if not self._parents:
            self.requires_grad = requires_grad
        elif not requires_grad:
            raise diagnostics.part_of_graph(self)
        return self

    def detach(self) -> Tensor:
        """The same data (shared, no copy) as a new leaf without history."""
        return _new(self._data, False)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``grad`` becomes None, as PyTorch's set_to_none)."""
        self._grad = None

    def __setitem__(self, index: Any, new: Any) -> None:
        if self.requires_grad and mode.grad_enabled:
            raise diagnostics.write_into_parameter(self)
        index = _index(index)
        self._data[index] = _raw(new)
        inplace.note_write(self._data)

    # -- recording: every operator below is one call to apply_op ------------------------------------------------
    @staticmethod
    def apply_op(op: type[Op], *parents: Tensor, **kwargs: Any) -> Tensor:
        """Run ``op`` forward and, if any parent needs a gradient, record the node: the op, its parents, its arguments.

        Every operator below ends here; so can an op of your own (a subclass of ``ops.Op``): ``apply_op(MyOp, x)``.
        """
        try:
            if kwargs or len(parents) > 2:
                data = op.forward(*[p._data for p in parents], **kwargs)
            elif len(parents) == 2:  # NOTE: a fast path, the same call spelled out (bench row W3)
                a, b = parents[0]._data, parents[1]._data
                data = op.forward(a, b)
                if a.dtype is not b.dtype:  # float32 met float64?
                    diagnostics.watch_promotion(op, parents, data)
            else:
                data = op.forward(parents[0]._data)
        except ValueError as error:
            raise ValueError(diagnostics.shape_error(op, parents, kwargs, error)) from error
        out = object.__new__(Tensor)  # what `_new` does, spelled out on the path of every op (bench row W3)
        _init(out, data if type(data) is np.ndarray else np.asarray(data), False)
        out._op = op  # always known, so an error can say what made a tensor; the graph edges only when needed
        if mode.grad_enabled:
            for p in parents:
                if p.requires_grad:
                    out.requires_grad = True
                    out._parents = parents
                    out._kwargs = kwargs
                    break
        if mode.anomaly:
            diagnostics.check_finite_output(out, parents)
        return out

    # -- the operators: each records one node of the graph ------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return apply_op(ops.Add, self, _lift(other, self))

    def __radd__(self, other: Any) -> Tensor:
        return apply_op(ops.Add, _lift(other, self), self)

    def __sub__(self, other: Any) -> Tensor:
        if self._grad is not None and mode.grad_enabled:  # `w = w - lr * w.grad`? (one read per subtraction)
            diagnostics.watch_rebuilt_parameter(self, other)
        return apply_op(ops.Sub, self, _lift(other, self))

    def __rsub__(self, other: Any) -> Tensor:
        return apply_op(ops.Sub, _lift(other, self), self)

    def __mul__(self, other: Any) -> Tensor:
        return apply_op(ops.Mul, self, _lift(other, self))

    def __rmul__(self, other: Any) -> Tensor:
        return apply_op(ops.Mul, _lift(other, self), self)

    def __truediv__(self, other: Any) -> Tensor:
        divisor = _lift(other, self)
        return diagnostics.watch_nonfinite(apply_op(ops.TrueDiv, self, divisor), self, divisor)

    def __rtruediv__(self, other: Any) -> Tensor:
        dividend = _lift(other, self)
        return diagnostics.watch_nonfinite(apply_op(ops.TrueDiv, dividend, self), dividend, self)

    # `p -= lr * p.grad` writes into p (outside a recorded graph, as PyTorch's in-place ops under no_grad)
    def _update(self, other: Any, combine: Any, symbol: str) -> Tensor:
        if self.requires_grad and mode.grad_enabled:
            raise diagnostics.update_in_place(self, symbol)
        self[...] = combine(self._data, _raw(other))
        return self

    __iadd__ = lambda self, other: self._update(other, operator.add, "+=")
    __isub__ = lambda self, other: self._update(other, operator.sub, "-=")
    __imul__ = lambda self, other: self._update(other, operator.mul, "*=")
    __itruediv__ = lambda self, other: self._update(other, operator.truediv, "/=")

    def __neg__(self) -> Tensor:
        return apply_op(ops.Neg, self)

    def __pow__(self, exponent: Any) -> Tensor:
        exponent = _number(exponent)
        if isinstance(exponent, (int, float)) and not isinstance(exponent, bool):
            return apply_op(ops.Pow, self, exponent=exponent)
        return apply_op(ops.PowTensor, self, _lift(exponent, self))

    def __rpow__(self, base: Any) -> Tensor:
        return apply_op(ops.PowTensor, _lift(base, self), self)

    def __matmul__(self, other: Any) -> Tensor:
        return apply_op(ops.MatMul, self, _lift(other, self))

    def __rmatmul__(self, other: Any) -> Tensor:
        return apply_op(ops.MatMul, _lift(other, self), self)

    # Comparisons are not differentiable: plain boolean tensors, no graph.
    def _compare(self, other: Any, test: Any) -> Tensor:
        return _new(test(self._data, _raw(other)), False)

    __lt__ = lambda self, other: self._compare(other, operator.lt)
    __le__ = lambda self, other: self._compare(other, operator.le)
    __gt__ = lambda self, other: self._compare(other, operator.gt)
    __ge__ = lambda self, other: self._compare(other, operator.ge)
    __eq__ = lambda self, other: self._compare(other, operator.eq)  # type: ignore[attr-defined]  # self typed as object
    __ne__ = lambda self, other: self._compare(other, operator.ne)  # type: ignore[attr-defined]  # self typed as object

    def exp(self) -> Tensor:
        return apply_op(ops.Exp, self)

    def log(self) -> Tensor:
        return diagnostics.watch_nonfinite(apply_op(ops.Log, self), self)

    def sqrt(self) -> Tensor:
        return apply_op(ops.Sqrt, self)

    def abs(self) -> Tensor:
        return apply_op(ops.Abs, self)

    __abs__ = abs

    def maximum(self, other: Any) -> Tensor:
        return apply_op(ops.Maximum, self, _lift(other, self))

    def minimum(self, other: Any) -> Tensor:
        return apply_op(ops.Minimum, self, _lift(other, self))

    def clip(self, low: Scalar | None = None, high: Scalar | None = None) -> Tensor:
        return apply_op(ops.Clip, self, low=_number(low), high=_number(high))

    def sigmoid(self) -> Tensor:
        return apply_op(ops.Sigmoid, self)

    def log_sigmoid(self) -> Tensor:
        """log(sigmoid(x)), finite even where sigmoid(x) rounds to 0."""
        return apply_op(ops.LogSigmoid, self)

    def tanh(self) -> Tensor:
        return apply_op(ops.Tanh, self)

    def relu(self) -> Tensor:
        return apply_op(ops.Relu, self)

    def leaky_relu(self, slope: float = 0.01) -> Tensor:
        return apply_op(ops.LeakyRelu, self, slope=_number(slope))

    def softmax(self, axis: int = -1) -> Tensor:
        return apply_op(ops.Softmax, self, axis=_axis(axis))

    def log_softmax(self, axis: int = -1) -> Tensor:
        return apply_op(ops.LogSoftmax, self, axis=_axis(axis))

    def logsumexp(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return apply_op(ops.LogSumExp, self, axis=_axis(axis), keepdims=keepdims)

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return apply_op(ops.Sum, self, axis=_axis(axis), keepdims=keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return apply_op(ops.Mean, self, axis=_axis(axis), keepdims=keepdims)

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return apply_op(ops.Max, self, axis=_axis(axis), keepdims=keepdims)

    def min(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return apply_op(ops.Min, self, axis=_axis(axis), keepdims=keepdims)

    def var(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
        return apply_op(ops.Var, self, axis=_axis(axis), keepdims=keepdims, ddof=ddof)

    def reshape(self, *shape: Any) -> Tensor:
        target = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return apply_op(ops.Reshape, self, shape=target)

    def transpose(self, *axes: Any) -> Tensor:
        order = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        if any(not -self.ndim <= operator.index(a) < self.ndim for a in order):
            raise ValueError(f"transpose: axes {order} do not fit a tensor of shape {self.shape}; each axis "
                             f"must lie in [-{self.ndim}, {self.ndim - 1}].")
        order = tuple(operator.index(a) % self.ndim for a in order) or tuple(reversed(range(self.ndim)))
        return apply_op(ops.Transpose, self, axes=order)

    permute = transpose  # PyTorch's word for the same op

    @property
    def T(self) -> Tensor:  # noqa: N802 (numpy's name)
        return apply_op(ops.Transpose, self, axes=tuple(reversed(range(self.ndim))))

    @property
    def mT(self) -> Tensor:  # noqa: N802 (numpy's name)
        """Swap the last two axes (a batch of matrices transposed)."""
        order = list(range(self.ndim))
        order[-2:] = order[-1], order[-2]
        return self.transpose(tuple(order))

    def squeeze(self, axis: int | tuple[int, ...] | None = None) -> Tensor:
        return apply_op(ops.Squeeze, self, axis=_axis(axis))

    def unsqueeze(self, axis: int) -> Tensor:
        return apply_op(ops.Unsqueeze, self, axis=_axis(axis))

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        return apply_op(ops.BroadcastTo, self, shape=tuple(shape))

    def __getitem__(self, index: Any) -> Tensor:
        return apply_op(ops.GetItem, self, index=_index(index))

    def scatter_add(self, index: Any, shape: Sequence[int]) -> Tensor:
        """A zero tensor of ``shape`` with this tensor added at ``index`` (repeats add up)."""
        return apply_op(ops.ScatterAdd, self, index=_index(index), shape=tuple(shape))

    def conv2d(self, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0) -> Tensor:
        """Images (N, C, H, W) cross-correlated with filters ``weight`` (out, in, kh, kw), plus ``bias`` (out,)."""
        inputs = [_lift(t, self) for t in (weight, bias) if t is not None]
        return apply_op(ops.Conv2d, self, *inputs,
                        **conv_args.conv2d(self.shape, *[t.shape for t in inputs], stride=stride, padding=padding))

    def max_pool2d(self, kernel_size: Any, stride: Any = None) -> Tensor:
        return apply_op(ops.MaxPool2d, self, **conv_args.pool("max_pool2d", self.shape, kernel_size, stride))

    def avg_pool2d(self, kernel_size: Any, stride: Any = None) -> Tensor:
        return apply_op(ops.AvgPool2d, self, **conv_args.pool("avg_pool2d", self.shape, kernel_size, stride))

    def flatten(self, start_dim: int = 1, end_dim: int = -1) -> Tensor:
        """Axes start_dim..end_dim merged into one; by default all but the batch axis, as ``nn.Flatten``."""
        return apply_op(ops.Flatten, self, **conv_args.flatten(self.shape, start_dim, end_dim))

    # -- backward -----------------------------------------------------------------------------------------------
    def backward(self, gradient: Any = None) -> None:
        """Fill ``.grad`` of every tensor this one depends on (the walk is ``autograd.backward_steps``): leaves
        accumulate (``zero_grad`` between steps), intermediates get this pass's; the graph is kept."""
        autograd.backward(self, gradient)


apply_op = Tensor.apply_op  # the same function: what an op of your own calls (`apply_op(MyOp, x)`)


# -- free functions for ops with several tensor inputs ----------------------------------------------------------

def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Elementwise ``a`` where ``condition`` holds, else ``b`` (the condition gets no gradient)."""
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else Tensor(a)
    return apply_op(ops.Where, _lift(a, like), _lift(b, like), condition=np.asarray(_raw(condition), dtype=bool))


def maximum(a: Any, b: Any) -> Tensor:
    return _lift(a, b if isinstance(b, Tensor) else None).maximum(b)


def minimum(a: Any, b: Any) -> Tensor:
    return _lift(a, b if isinstance(b, Tensor) else None).minimum(b)


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    like = next((t for t in tensors if isinstance(t, Tensor)), None)
    return apply_op(ops.Concatenate, *[_lift(t, like) for t in tensors], axis=_axis(axis))


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    like = next((t for t in tensors if isinstance(t, Tensor)), None)
    return apply_op(ops.Stack, *[_lift(t, like) for t in tensors], axis=_axis(axis))


# -- making tensors and reading operands ------------------------------------------------------------------------

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


def _lift(x: Any, like: Tensor | None) -> Tensor:
    """Make a constant operand a Tensor, in ``like``'s float dtype so float32 math stays float32."""
    if isinstance(x, Tensor):
        return x
    if like is not None and like._data.dtype.kind == "f":
        if (type(x) is float or type(x) is int) and x == x:  # NaN != NaN would never be found again
            return constants.cached(x, like._data.dtype, _new)  # `x * 2` every step: one Tensor for the 2
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
    """An index as numpy takes it: Tensors as their arrays, lists as arrays of their own (a list changed later
    must not change the index an op kept)."""
    return tuple(map(_index_part, index)) if isinstance(index, tuple) else _index_part(index)


def _index_part(part: Any) -> Any:
    return np.array(part) if isinstance(part, list) else _raw(part)


_NO_ARGS: dict[str, Any] = {}  # a leaf's op arguments, shared by all leaves: never written into


def _init(t: Tensor, array: np.ndarray, requires_grad: bool) -> None:
    t._data = array
    t._grad = None
    t.requires_grad = requires_grad
    t.name = None
    t._op = None
    t._parents = ()
    t._kwargs = _NO_ARGS
    t._creation_number = next(CLOCK)
    t._data_replaced_at = -1
    t._site = None
