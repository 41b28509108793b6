"""Every op in the op table, checked against float64 central differences.

``CASES`` maps each op class name in ``ops.OPS`` to small programs that use it: broadcast pairs, 0-d
scalars, reductions over every kind of axis, all matmul ranks, getitem with repeated indices, masks and
tuples. Adding an op to ``OPS`` without adding cases here fails ``test_every_op_has_gradcheck_cases``.

Inputs are kept away from kinks (``abs``/``relu`` at 0, ties of ``max``, clip boundaries) for the finite
differences; the conventions *at* the kinks are checked with exact values in separate tests.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_edu import Tensor, concatenate, grad, gradcheck, maximum, minimum, stack, where
from tinygrad_edu.ops import OPS
from tinygrad_edu.autograd import toposort
from tinygrad_edu.tensor import apply_op

_RNG = np.random.default_rng(20240611)

Shape = tuple[int, ...]


# -- input generators (all from _RNG, so the table is the same on every run) -----------------------------

def _smooth(shape: Shape, low: float = -1.5, high: float = 1.5) -> np.ndarray:
    return _RNG.uniform(low, high, size=shape)


def _positive(shape: Shape) -> np.ndarray:
    return _RNG.uniform(0.5, 2.0, size=shape)


def _away_from_zero(shape: Shape) -> np.ndarray:
    """|x| in [0.2, 1.5]: far from the kink of abs, relu and leaky_relu at 0 (eps is 1e-6)."""
    return _RNG.choice([-1.0, 1.0], size=shape) * _RNG.uniform(0.2, 1.5, size=shape)


def _odd_grid(shape: Shape) -> np.ndarray:
    """Odd multiples of 0.1 (plus a little noise): at least 0.08 from every even multiple of 0.1."""
    return (2 * _RNG.integers(-6, 6, size=shape) + 1) * 0.1 + _RNG.uniform(-0.01, 0.01, size=shape)


def _even_grid(shape: Shape) -> np.ndarray:
    return 2 * _RNG.integers(-6, 6, size=shape) * 0.1 + _RNG.uniform(-0.01, 0.01, size=shape)


def _distinct(shape: Shape) -> np.ndarray:
    """All values at least 0.08 apart, in random order, so max/min never tie during the differences."""
    size = int(np.prod(shape))
    values = (_RNG.permutation(size) - size / 2) * 0.1 + _RNG.uniform(-0.01, 0.01, size=size)
    return values.reshape(shape)


# -- the case table --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    op: str
    label: str
    fn: Callable[..., Tensor]
    inputs: tuple[np.ndarray, ...]
    bug: str | None = None  # a known engine bug: the case runs as xfail(strict=True) until it is fixed


CASES: dict[str, list[Case]] = {}


def _case(op: str, label: str, fn: Callable[..., Tensor], *inputs: Any, bug: str | None = None) -> None:
    arrays = tuple(np.asarray(x, dtype=np.float64) for x in inputs)
    CASES.setdefault(op, []).append(Case(op, label, fn, arrays, bug))


def _shape_label(*shapes: Shape) -> str:
    return "&".join(str(s).replace(" ", "") for s in shapes)


BROADCAST_PAIRS: list[tuple[Shape, Shape]] = [
    ((2, 3), (2, 3)), ((3, 1), (1, 4)), ((2, 3), (3,)), ((3,), (2, 3)), ((), (2, 2)), ((2, 2), ()), ((), ()),
    ((2, 1, 3), (4, 1)),
]

for _a, _b in BROADCAST_PAIRS:
    _label = _shape_label(_a, _b)
    _case("Add", _label, lambda a, b: a + b, _smooth(_a), _smooth(_b))
    _case("Sub", _label, lambda a, b: a - b, _smooth(_a), _smooth(_b))
    _case("Mul", _label, lambda a, b: a * b, _smooth(_a), _smooth(_b))
    _case("TrueDiv", _label, lambda a, b: a / b, _smooth(_a), _away_from_zero(_b) * 2)
    _case("PowTensor", _label, lambda a, b: a ** b, _positive(_a), _smooth(_b))
    _case("Maximum", _label, lambda a, b: a.maximum(b), _odd_grid(_a), _even_grid(_b))
    _case("Maximum", "free-" + _label, lambda a, b: maximum(a, b), _even_grid(_a), _odd_grid(_b))
    _case("Minimum", _label, lambda a, b: a.minimum(b), _odd_grid(_a), _even_grid(_b))
    _case("Minimum", "free-" + _label, lambda a, b: minimum(a, b), _even_grid(_a), _odd_grid(_b))

# Python numbers on either side (the constants become Tensors of the input's dtype).
_case("Add", "x+1.5", lambda x: x + 1.5, _smooth((2, 3)))
_case("Add", "2+x", lambda x: 2 + x, _smooth((3,)))
_case("Sub", "1-x", lambda x: 1 - x, _smooth((2, 3)))
_case("Sub", "x-0.5", lambda x: x - 0.5, _smooth(()))
_case("Mul", "x*2", lambda x: x * 2, _smooth((2, 3)))
_case("Mul", "3*x", lambda x: 3.0 * x, _smooth(()))
_case("Mul", "a*a", lambda a: a * a, _smooth((2, 3)))
_case("TrueDiv", "x/3.0", lambda x: x / 3.0, _smooth((2, 3)))
_case("TrueDiv", "1/x", lambda x: 1 / x, _away_from_zero((2, 3)))
_case("PowTensor", "2**x", lambda x: 2 ** x, _smooth((2, 3)))
_case("PowTensor", "x**x", lambda x: x ** x, _positive((4,)))
_case("Maximum", "x.maximum(0.2)", lambda x: x.maximum(0.2), _odd_grid((2, 3)))
_case("Minimum", "minimum(0.2,x)", lambda x: minimum(0.2, x), _odd_grid((2, 3)))

for _shape in [(), (4,), (2, 3)]:
    _label = _shape_label(_shape)
    _case("Neg", _label, lambda x: -x, _smooth(_shape))
    _case("Exp", _label, lambda x: x.exp(), _smooth(_shape))
    _case("Log", _label, lambda x: x.log(), _positive(_shape))
    _case("Sqrt", _label, lambda x: x.sqrt(), _positive(_shape))
    _case("Abs", _label, lambda x: x.abs(), _away_from_zero(_shape))
    _case("Abs", "abs()-" + _label, lambda x: abs(x), _away_from_zero(_shape))
    _case("Sigmoid", _label, lambda x: x.sigmoid(), _smooth(_shape, -4, 4))
    _case("LogSigmoid", _label, lambda x: x.log_sigmoid(), _smooth(_shape, -4, 4))
    _case("Tanh", _label, lambda x: x.tanh(), _smooth(_shape))
    _case("Relu", _label, lambda x: x.relu(), _away_from_zero(_shape))
    _case("LeakyRelu", _label, lambda x: x.leaky_relu(), _away_from_zero(_shape))
    _case("LeakyRelu", "slope0.2-" + _label, lambda x: x.leaky_relu(0.2), _away_from_zero(_shape))
    _case("Clip", _label, lambda x: x.clip(-0.4, 0.6), _odd_grid(_shape))
    _case("Clip", "low-" + _label, lambda x: x.clip(low=-0.2), _odd_grid(_shape))
    _case("Clip", "high-" + _label, lambda x: x.clip(high=0.2), _odd_grid(_shape))
    for _exponent in (2, 3, -1, -2):
        _case("Pow", f"**{_exponent}-{_label}", lambda x, e=_exponent: x ** e, _away_from_zero(_shape))
    for _fraction in (0.5, 2.5, -1.5):
        _case("Pow", f"**{_fraction}-{_label}", lambda x, e=_fraction: x ** e, _positive(_shape))

# where: the condition is a constant (numpy, Python list or boolean Tensor) and broadcasts with both sides.
_COND_23 = np.array([[True, False, True], [False, False, True]])
_case("Where", "same", lambda a, b: where(_COND_23, a, b), _smooth((2, 3)), _smooth((2, 3)))
_case("Where", "broadcast-cond", lambda a, b: where(_COND_23, a, b), _smooth((3,)), _smooth(()))
_case("Where", "broadcast-ab", lambda a, b: where(np.array([True, False, True]), a, b),
      _smooth((2, 1)), _smooth((2, 3)))
_case("Where", "list-cond", lambda a, b: where([[True], [False]], a, b), _smooth((2, 3)), _smooth((1, 3)))
_case("Where", "tensor-cond", lambda a, b: where(a > b, a, b * 2), _odd_grid((2, 3)), _even_grid((2, 3)))
_case("Where", "scalar-other", lambda a: where(_COND_23, a, 0.0), _smooth((2, 3)))
_case("Where", "scalar-first", lambda a: where(_COND_23, 1.0, a), _smooth((2, 3)))

# Reductions: axis None / int / negative int / tuple, keepdims both ways.
_AXES: list[Any] = [None, 0, 1, -1, (0, 2), (-1, 0), ()]
for _axis in _AXES:
    for _keep in (False, True):
        _label = f"axis={_axis}-keepdims={_keep}"
        _case("Sum", _label, lambda x, a=_axis, k=_keep: x.sum(a, k), _smooth((2, 3, 4)))
        _case("Mean", _label, lambda x, a=_axis, k=_keep: x.mean(axis=a, keepdims=k), _smooth((2, 3, 4)))
        _case("Max", _label, lambda x, a=_axis, k=_keep: x.max(a, k), _distinct((2, 3, 4)))
        _case("Min", _label, lambda x, a=_axis, k=_keep: x.min(a, k), _distinct((2, 3, 4)))
        _case("LogSumExp", _label, lambda x, a=_axis, k=_keep: x.logsumexp(a, k), _smooth((2, 3, 4)))
        if _axis != ():
            _case("Var", _label, lambda x, a=_axis, k=_keep: x.var(a, k), _smooth((2, 3, 4)))
            _case("Var", "ddof=1-" + _label, lambda x, a=_axis, k=_keep: x.var(a, k, ddof=1), _smooth((2, 3, 4)))
for _op, _fn in [("Sum", Tensor.sum), ("Mean", Tensor.mean), ("Max", Tensor.max), ("Min", Tensor.min),
                 ("LogSumExp", Tensor.logsumexp), ("Var", lambda x: x.var(ddof=0))]:
    _case(_op, "0-d", _fn, _smooth(()))
    _case(_op, "1-d", _fn, _distinct((5,)))
_case("Sum", "list-axis", lambda x: x.sum([0, 1]), _smooth((2, 3, 4)))

for _axis in (0, 1, -1):
    _case("Softmax", f"axis={_axis}", lambda x, a=_axis: x.softmax(a), _smooth((2, 3, 4)))
    _case("LogSoftmax", f"axis={_axis}", lambda x, a=_axis: x.log_softmax(a), _smooth((2, 3, 4)))
_case("Softmax", "1-d", lambda x: x.softmax(), _smooth((5,)))
_case("LogSoftmax", "1-d", lambda x: x.log_softmax(), _smooth((5,)))

for _a, _b in [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((2, 3, 4), (4, 5)),
               ((2, 1, 3, 4), (5, 4, 2)), ((3,), (2, 3, 4)), ((2, 3, 4), (4,)), ((4, 5), (2, 5, 3))]:
    _case("MatMul", _shape_label(_a, _b), lambda a, b: a @ b, _smooth(_a), _smooth(_b))
_MATRIX = _smooth((2, 3))
# A constant operand (a data batch): the rule, told needs_input_grad, skips its gradient.
_case("MatMul", "const@w", lambda w: Tensor(_MATRIX.astype(w.dtype)) @ w, _smooth((3, 4)))
_case("MatMul", "w@const", lambda w: w @ Tensor(_MATRIX.astype(w.dtype)), _smooth((4, 2)))
_case("MatMul", "x@x.T", lambda x: x @ x.T, _smooth((2, 3)))

_case("Reshape", "(6,4)", lambda x: x.reshape(6, 4), _smooth((2, 3, 4)))
_case("Reshape", "(-1,)", lambda x: x.reshape((-1,)), _smooth((2, 3, 4)))
_case("Reshape", "(4,-1,2)", lambda x: x.reshape([4, -1, 2]), _smooth((2, 3, 4)))
_case("Reshape", "0-d", lambda x: x.reshape(1, 1), _smooth(()))
_case("Transpose", ".T-3d", lambda x: x.T, _smooth((2, 3, 4)))
_case("Transpose", ".T-2d", lambda x: x.T, _smooth((2, 3)))
_case("Transpose", "(1,2,0)", lambda x: x.transpose(1, 2, 0), _smooth((2, 3, 4)))
_case("Transpose", "(2,0,1)", lambda x: x.transpose((2, 0, 1)), _smooth((2, 3, 4)))
_case("Transpose", "permute", lambda x: x.permute(0, 2, 1), _smooth((2, 3, 4)))
_case("Transpose", ".mT", lambda x: x.mT, _smooth((2, 3, 4)))
_case("Transpose", "negative-axes", lambda x: x.transpose(0, -1, 1), _smooth((2, 3, 4)))
_case("Transpose", "negative-axes-cube", lambda x: x.transpose(1, -1, 0), _smooth((3, 3, 3)))
_case("Squeeze", "None", lambda x: x.squeeze(), _smooth((1, 3, 1)))
_case("Squeeze", "0", lambda x: x.squeeze(0), _smooth((1, 3, 1)))
_case("Squeeze", "-1", lambda x: x.squeeze(-1), _smooth((1, 3, 1)))
_case("Squeeze", "(0,2)", lambda x: x.squeeze((0, 2)), _smooth((1, 3, 1)))
_case("Squeeze", "to-0-d", lambda x: x.squeeze(), _smooth((1,)))
_case("Unsqueeze", "0", lambda x: x.unsqueeze(0), _smooth((2, 3)))
_case("Unsqueeze", "-1", lambda x: x.unsqueeze(-1), _smooth((2, 3)))
_case("Unsqueeze", "1", lambda x: x.unsqueeze(1), _smooth((2, 3)))
_case("Unsqueeze", "0-d", lambda x: x.unsqueeze(0), _smooth(()))
_case("BroadcastTo", "(3,1)->(2,3,4)", lambda x: x.broadcast_to((2, 3, 4)), _smooth((3, 1)))
_case("BroadcastTo", "()->(2,2)", lambda x: x.broadcast_to((2, 2)), _smooth(()))
_case("BroadcastTo", "(3,)->(4,3)", lambda x: x.broadcast_to([4, 3]), _smooth((3,)))
_case("BroadcastTo", "same", lambda x: x.broadcast_to((2, 3)), _smooth((2, 3)))

_MASK_43 = np.array([[True, False, True], [False, False, False], [True, True, False], [False, True, True]])
_GETITEMS: list[tuple[str, Any]] = [
    ("slice", slice(1, 3)), ("step", slice(None, None, 2)), ("reverse", slice(None, None, -1)),
    ("2-slices", (slice(None, None, 2), slice(1, None))), ("int", 1), ("int-int", (-1, 0)),
    ("repeated-ints", [0, 0, 2, 0]), ("repeated-2d-array", np.array([[1, 1], [3, 1]])),
    ("negative-repeated", np.array([-1, 3, -4, 0])), ("bool-mask", _MASK_43),
    ("bool-rows", np.array([True, False, True, True])),
    ("tuple-slice-array", (slice(None), [2, 2, 0])), ("tuple-arrays-repeated", ([0, 0, 3], [1, 1, 2])),
    ("none-ellipsis", (None, Ellipsis, 1)), ("tensor-mask", Tensor(_MASK_43)),
    ("tensor-int-index", Tensor(np.array([2, 2, 1]))),
]
for _label, _index in _GETITEMS:
    _case("GetItem", _label, lambda x, i=_index: x[i], _smooth((4, 3)))
_case("GetItem", "3d-mixed", lambda x: x[:, [1, 1], 0], _smooth((2, 3, 4)))
_case("GetItem", "3d-ellipsis-array", lambda x: x[..., [3, 0, 3]], _smooth((2, 3, 4)))

_case("ScatterAdd", "repeated", lambda x: x.scatter_add([0, 2, 0], (4,)), _smooth((3,)))
_case("ScatterAdd", "slice", lambda x: x.scatter_add(slice(1, 3), (4,)), _smooth((2,)))
_case("ScatterAdd", "tuple", lambda x: x.scatter_add(([0, 0, 1], [2, 2, 0]), (2, 3)), _smooth((3,)))
_case("ScatterAdd", "rows", lambda x: x.scatter_add(np.array([1, 1]), (4, 3)), _smooth((2, 3)))
_case("ScatterAdd", "mask", lambda x: x.scatter_add(_MASK_43, (4, 3)), _smooth((int(_MASK_43.sum()),)))

_case("Concatenate", "axis0", lambda a, b: concatenate([a, b]), _smooth((2, 3)), _smooth((1, 3)))
_case("Concatenate", "axis1-three", lambda a, b, c: concatenate([a, b, c], axis=1),
      _smooth((2, 1)), _smooth((2, 3)), _smooth((2, 2)))
_case("Concatenate", "axis-1-3d", lambda a, b: concatenate((a, b), axis=-1),
      _smooth((2, 3, 1)), _smooth((2, 3, 2)))
_case("Concatenate", "1-d-reused", lambda a: concatenate([a, a * 2, a]), _smooth((3,)))
_case("Stack", "axis0", lambda a, b, c: stack([a, b, c]), _smooth((2, 3)), _smooth((2, 3)), _smooth((2, 3)))
_case("Stack", "axis1", lambda a, b: stack([a, b], axis=1), _smooth((2, 3)), _smooth((2, 3)))
_case("Stack", "axis-1", lambda a, b: stack([a, b], axis=-1), _smooth((2, 3)), _smooth((2, 3)))
_case("Stack", "scalars", lambda a, b: stack([a, b]), _smooth(()), _smooth(()))

# Convolution and pooling (NCHW); tests/test_conv.py draws random geometries, these run the checks below too.
_GEOMETRY = {"kernel": (2, 3), "stride": (2, 1), "padding": (1, 0)}
_case("Conv2d", "bias-stride-padding",
      lambda x, w, b: x.conv2d(w, b, stride=(2, 1), padding=(1, 0)),
      _smooth((2, 2, 4, 5)), _smooth((3, 2, 2, 3)), _smooth((3,)))
_case("Conv2d", "no-bias", lambda x, w: x.conv2d(w),
      _smooth((1, 3, 4, 4)), _smooth((2, 3, 3, 3)))
_IMAGES = _smooth((2, 1, 5, 5))
_case("Conv2d", "const-images", lambda w: Tensor(_IMAGES.astype(w.dtype)).conv2d(w), _smooth((2, 1, 3, 3)))
_case("MaxPool2d", "2x2", lambda x: x.max_pool2d(2),
      _distinct((2, 2, 4, 5)))
_case("MaxPool2d", "overlapping", lambda x: x.max_pool2d((3, 2), (1, 2)),
      _distinct((1, 2, 4, 5)))
_case("AvgPool2d", "2x2", lambda x: x.avg_pool2d(2), _smooth((2, 2, 4, 5)))
_case("AvgPool2d", "overlapping", lambda x: x.avg_pool2d((3, 2), (1, 2)),
      _smooth((1, 2, 4, 5)))
_case("Flatten", "start1", lambda x: x.flatten(), _smooth((2, 3, 2, 2)))
_case("Flatten", "middle", lambda x: x.flatten(1, 2), _smooth((2, 3, 2, 2)))
_case("Flatten", "0-d", lambda x: x.flatten(0), _smooth(()))
_case("Im2Col", "geometry", lambda x: apply_op(OPS["Im2Col"], x, **_GEOMETRY), _smooth((2, 2, 4, 5)))
_case("Col2Im", "geometry", lambda c: apply_op(OPS["Col2Im"], c, size=(4, 5), **_GEOMETRY), _smooth((2, 12, 9)))


def _params(bugs: str = "xfail") -> list[Any]:
    """Every case; a case with a known bug is xfail(strict=True) for ``bugs="xfail"``, skipped for "skip"."""
    params = []
    for op, cases in CASES.items():
        for case in cases:
            marks: list[Any] = []
            if case.bug:
                marks = [pytest.mark.xfail(strict=True, reason=case.bug) if bugs == "xfail" else
                         pytest.mark.skip(reason=f"known bug, xfailed in test_gradcheck: {case.bug}")]
            params.append(pytest.param(case, id=f"{op}-{case.label}", marks=marks))
    return params


def _leaves(case: Case, dtype: Any = np.float64) -> list[Tensor]:
    return [Tensor(x.astype(dtype), requires_grad=True) for x in case.inputs]


# -- the checks ------------------------------------------------------------------------------------------

def test_reads_out_says_exactly_which_rules_read_their_output() -> None:
    # the in-place check trusts this flag: a rule that reads `out` without it would miss a changed output
    import dis

    for name, op in OPS.items():
        reads = any(i.opname.startswith("LOAD_FAST") and i.argval == "out"
                    for i in dis.get_instructions(op.backward))
        assert op.reads_out == reads, f"{name}.reads_out is {op.reads_out}, but its backward reads out: {reads}"


@pytest.mark.parametrize("case", [p for p in _params(bugs="skip") if not OPS[p.values[0].op].reads_inputs])
def test_reads_inputs_false_means_the_rule_never_reads_input_values(case: Case) -> None:
    # the in-place check trusts this flag: with the inputs' values replaced by NaN, the gradient must not change
    op = OPS[case.op]
    out = case.fn(*_leaves(case))
    rng = np.random.default_rng(1)
    for node in toposort([out]):
        if node.op is op:
            kwargs = dict(node._kwargs)
            if op.needs_input_grad:
                kwargs["needs_input_grad"] = tuple(p.requires_grad for p in node.parents)
            g = rng.standard_normal(node.shape)
            real = op.backward(g, node.data, *[p.data for p in node.parents], **kwargs)
            blind = op.backward(g, node.data, *[np.full_like(p.data, np.nan) for p in node.parents], **kwargs)
            for r, b in zip(real, blind):
                assert (r is None) == (b is None)
                if r is not None:
                    np.testing.assert_array_equal(r, b)


def test_every_op_has_gradcheck_cases() -> None:
    missing = sorted(set(OPS) - set(CASES))
    assert not missing, f"ops without gradcheck cases in tests/test_ops.py CASES: {missing}"


def test_case_table_names_only_real_ops() -> None:
    assert set(CASES) <= set(OPS), sorted(set(CASES) - set(OPS))


@pytest.mark.parametrize("case", _params())
def test_gradcheck(case: Case) -> None:
    leaves = _leaves(case)
    out = case.fn(*leaves)
    used = {node.op for node in toposort([out])}
    assert OPS[case.op] in used, f"case {case.label} does not use {case.op}: it used {used}"
    assert gradcheck(case.fn, leaves)


@pytest.mark.parametrize("case", _params(bugs="skip"))
def test_float32_stays_float32(case: Case) -> None:
    leaves = _leaves(case, np.float32)
    out = case.fn(*leaves)
    assert out.dtype == np.float32
    u = np.random.default_rng(0).standard_normal(out.shape).astype(np.float32)
    grads = grad(out, leaves, grad_outputs=u)
    assert [g.dtype for g in grads] == [np.float32] * len(leaves)
    graph_grads = grad(out, leaves, grad_outputs=Tensor(u), create_graph=True)
    assert [g.dtype for g in graph_grads] == [np.float32] * len(leaves)
    out.backward(gradient=u)
    assert [x.grad.dtype for x in leaves] == [np.float32] * len(leaves)
    # The float32 gradient is the float64 gradient, rounded.
    wide = _leaves(case)
    expected = grad(case.fn(*wide), wide, grad_outputs=u.astype(np.float64))
    for got, want in zip(grads, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


_SCALAR_MIXES: dict[str, Callable[[Tensor], Tensor]] = {
    "x*2": lambda x: x * 2, "2*x": lambda x: 2 * x, "1-x": lambda x: 1 - x, "x-1": lambda x: x - 1,
    "x+0.5": lambda x: x + 0.5, "x/3.0": lambda x: x / 3.0, "3.0/x": lambda x: 3.0 / x,
    "x**2": lambda x: x ** 2, "x**0.5": lambda x: x ** 0.5, "2**x": lambda x: 2 ** x, "-x": lambda x: -x,
    "maximum(x,1)": lambda x: x.maximum(1), "minimum(1,x)": lambda x: minimum(1, x),
    "where(x>1,x,0.0)": lambda x: where(x > 1, x, 0.0), "clip(0,1)": lambda x: x.clip(0, 1),
    "leaky_relu(0.3)": lambda x: x.leaky_relu(0.3), "var(ddof=1)": lambda x: x.var(ddof=1),
    "mean": lambda x: x.mean(), "x*True": lambda x: x * True,
    # numpy scalars and arrays as the other operand take the tensor's dtype too
    "x**np.float64(2)": lambda x: x ** np.float64(2), "x**np.int64(3)": lambda x: x ** np.int64(3),
    "clip(np.float64)": lambda x: x.clip(np.float64(0.8), np.float64(1.5)),
    "leaky_relu(np.float64)": lambda x: x.leaky_relu(np.float64(0.3)),
    "concatenate([x, float64 array])": lambda x: concatenate([x, np.zeros(2)]),
    "stack([float64 array, x])": lambda x: stack([np.zeros(3), x], axis=1),
}


@pytest.mark.parametrize("name", list(_SCALAR_MIXES))
def test_python_scalars_do_not_upcast_float32(name: str) -> None:
    x = Tensor(np.array([0.7, 1.3, 2.0], dtype=np.float32), requires_grad=True)
    out = _SCALAR_MIXES[name](x)
    assert out.dtype == np.float32, name
    out.backward(gradient=np.ones(out.shape, dtype=np.float32))
    assert x.grad.dtype == np.float32, name
    (g,) = grad(out, x, grad_outputs=np.ones(out.shape, dtype=np.float32), create_graph=True)
    assert g.dtype == np.float32, name


# -- exact values at the places the finite differences avoid ------------------------------------------------

def test_repeated_integer_indices_accumulate_exactly() -> None:
    x = Tensor(np.array([10.0, 20.0, 30.0, 40.0]), requires_grad=True)
    y = x[[0, 0, 2, 0, 3]]
    np.testing.assert_array_equal(y.data, [10.0, 10.0, 30.0, 10.0, 40.0])
    y.backward(gradient=np.array([1.0, 2.0, 4.0, 8.0, 16.0]))
    np.testing.assert_array_equal(x.grad, [1.0 + 2.0 + 8.0, 0.0, 4.0, 16.0])


def test_repeated_index_pairs_accumulate_exactly() -> None:
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    y = x[[1, 1, 0, 1], [2, 2, 0, -1]]  # (1, 2) three times, once as (1, -1)
    y.backward(gradient=np.array([1.0, 10.0, 100.0, 1000.0]))
    np.testing.assert_array_equal(x.grad, [[100.0, 0.0, 0.0], [0.0, 0.0, 1011.0]])


def test_repeated_rows_accumulate_and_boolean_mask_scatters_back() -> None:
    x = Tensor(np.ones((3, 2)), requires_grad=True)
    x[np.array([2, 2, 2])].backward(gradient=np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    np.testing.assert_array_equal(x.grad, [[0.0, 0.0], [0.0, 0.0], [9.0, 12.0]])
    z = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    mask = np.array([[True, False, True], [False, True, False]])
    picked = z[mask]
    np.testing.assert_array_equal(picked.data, [0.0, 2.0, 4.0])
    picked.backward(gradient=np.array([5.0, 6.0, 7.0]))
    np.testing.assert_array_equal(z.grad, [[5.0, 0.0, 6.0], [0.0, 7.0, 0.0]])


def test_scatter_add_sums_repeats_and_is_the_transpose_of_getitem() -> None:
    a = Tensor(np.array([1.0, 2.0, 4.0]), requires_grad=True)
    out = a.scatter_add([0, 2, 0], (4,))
    np.testing.assert_array_equal(out.data, [5.0, 0.0, 2.0, 0.0])
    out.backward(gradient=np.array([10.0, 20.0, 30.0, 40.0]))
    np.testing.assert_array_equal(a.grad, [10.0, 30.0, 10.0])


def test_maximum_and_minimum_split_ties_in_half() -> None:
    a = Tensor(np.array([1.0, 2.0, 3.0, -1.0]), requires_grad=True)
    b = Tensor(np.array([1.0, 1.0, 4.0, -1.0]), requires_grad=True)
    u = np.array([2.0, 4.0, 8.0, 16.0])
    maximum(a, b).backward(gradient=u)
    np.testing.assert_array_equal(a.grad, [1.0, 4.0, 0.0, 8.0])
    np.testing.assert_array_equal(b.grad, [1.0, 0.0, 8.0, 8.0])
    a.zero_grad()
    b.zero_grad()
    minimum(a, b).backward(gradient=u)
    np.testing.assert_array_equal(a.grad, [1.0, 0.0, 8.0, 8.0])
    np.testing.assert_array_equal(b.grad, [1.0, 4.0, 0.0, 8.0])


def test_maximum_tie_with_a_broadcast_scalar_sums_the_halves() -> None:
    x = Tensor(np.array([0.0, 0.0, 1.0]), requires_grad=True)
    c = Tensor(np.array(0.0), requires_grad=True)
    x.maximum(c).backward(gradient=np.array([1.0, 3.0, 5.0]))
    np.testing.assert_array_equal(x.grad, [0.5, 1.5, 5.0])
    np.testing.assert_array_equal(c.grad, 2.0)  # 0.5 + 1.5 from the two ties, nothing from the win


def test_max_and_min_reductions_share_the_gradient_among_ties() -> None:
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    x.max(axis=1).backward(gradient=np.array([6.0, 9.0]))
    np.testing.assert_array_equal(x.grad, [[0.0, 3.0, 3.0], [3.0, 3.0, 3.0]])
    y = Tensor(np.array([[1.0, 3.0, 1.0], [2.0, 1.0, 5.0]]), requires_grad=True)
    y.min().backward()
    np.testing.assert_array_equal(y.grad, [[1 / 3, 0.0, 1 / 3], [0.0, 1 / 3, 0.0]])


def test_where_routes_the_gradient_and_not_to_the_condition() -> None:
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array(10.0), requires_grad=True)
    out = where(np.array([True, False, True]), a, b)
    np.testing.assert_array_equal(out.data, [1.0, 10.0, 3.0])
    out.backward(gradient=np.array([1.0, 2.0, 4.0]))
    np.testing.assert_array_equal(a.grad, [1.0, 0.0, 4.0])
    np.testing.assert_array_equal(b.grad, 2.0)


def test_clip_passes_the_gradient_at_its_boundaries() -> None:
    # The convention is inclusive (as PyTorch's clamp): a value exactly at low or high keeps its gradient.
    x = Tensor(np.array([-1.0, -0.5, 0.0, 0.5, 0.75]), requires_grad=True)
    out = x.clip(-0.5, 0.5)
    np.testing.assert_array_equal(out.data, [-0.5, -0.5, 0.0, 0.5, 0.5])
    out.backward(gradient=np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_array_equal(x.grad, [0.0, 2.0, 3.0, 4.0, 0.0])
    y = Tensor(np.array([-1.0, 0.0, 1.0]), requires_grad=True)
    y.clip(low=0.0).sum().backward()
    np.testing.assert_array_equal(y.grad, [0.0, 1.0, 1.0])


def test_abs_relu_and_leaky_relu_at_zero_and_away() -> None:
    values = np.array([-2.0, 0.0, 3.0])
    for method, expected in [(Tensor.abs, [-1.0, 0.0, 1.0]), (Tensor.relu, [0.0, 0.0, 1.0]),
                             (lambda t: t.leaky_relu(0.25), [0.25, 0.25, 1.0]),
                             (Tensor.leaky_relu, [0.01, 0.01, 1.0])]:
        x = Tensor(values.copy(), requires_grad=True)
        method(x).sum().backward()
        np.testing.assert_array_equal(x.grad, expected)
    x = Tensor(values.copy(), requires_grad=True)
    np.testing.assert_array_equal(x.leaky_relu(0.25).data, [-0.5, 0.0, 3.0])


def test_pow_values_and_gradients_against_closed_forms() -> None:
    x = Tensor(np.array([-1.5, 0.5, 2.0]), requires_grad=True)
    (g3,) = grad(x ** 3, x, grad_outputs=np.ones(3))
    np.testing.assert_allclose(g3, 3 * x.data ** 2, rtol=1e-15)
    (gm2,) = grad(x ** -2, x, grad_outputs=np.ones(3))
    np.testing.assert_allclose(gm2, -2 * x.data ** -3, rtol=1e-15)
    base = Tensor(np.array([0.5, 2.0, 3.0]), requires_grad=True)
    exponent = Tensor(np.array([1.5, -0.5, 2.0]), requires_grad=True)
    out = base ** exponent
    np.testing.assert_allclose(out.data, [0.5 ** 1.5, 2.0 ** -0.5, 9.0], rtol=1e-15)
    out.sum().backward()
    np.testing.assert_allclose(base.grad, exponent.data * base.data ** (exponent.data - 1), rtol=1e-14)
    np.testing.assert_allclose(exponent.grad, out.data * np.log(base.data), rtol=1e-14)


def test_tensor_exponent_constant_with_negative_base_does_not_warn() -> None:
    x = Tensor(np.array([-2.0, 3.0]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (x ** Tensor(2.0)).sum().backward()
    np.testing.assert_array_equal(x.grad, [-4.0, 6.0])


def test_pow_zero_has_zero_gradient_everywhere() -> None:
    x = Tensor(np.array([0.0, 2.0, -3.0]), requires_grad=True)
    with _strict_floats():
        (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0])


def test_tensor_exponent_at_zero_base_has_zero_exponent_gradient() -> None:
    x = Tensor(np.array([0.0, 2.0]), requires_grad=True)
    p = Tensor(np.array([2.0, 1.5]), requires_grad=True)
    with _strict_floats():
        (x ** p).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.5 * 2.0 ** 0.5])
    np.testing.assert_allclose(p.grad, [0.0, 2.0 ** 1.5 * np.log(2.0)], rtol=1e-15)


def test_tensor_exponent_at_zero_base_with_a_negative_exponent_is_minus_infinity() -> None:
    """0^b = inf for b < 0, and d/db a^b = a^b ln(a) = inf * -inf there (PyTorch gives the same -inf)."""
    x = Tensor(np.array([0.0, 0.0, 0.0]), requires_grad=True)
    p = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    with np.errstate(divide="ignore"):
        (x ** p).backward(gradient=np.ones(3))
    np.testing.assert_array_equal(p.grad, [-np.inf, 0.0, 0.0])


def test_tensor_exponent_second_derivatives_at_zero_base() -> None:
    """Hessian of a^b against its closed form, at a = 0 (the limits) and at a = 2.

    d2/da2 = b(b-1) a^(b-2);  d2/da db = a^(b-1) (1 + b ln a) -> 0 at a = 0 for b > 1;
    d2/db2 = a^b ln(a)^2 -> 0 at a = 0 for b > 0.
    """
    a_values, b_values = np.array([0.0, 2.0]), np.array([2.0, 1.5])
    a = Tensor(a_values.copy(), requires_grad=True)
    b = Tensor(b_values.copy(), requires_grad=True)
    da, db = grad((a ** b).sum(), [a, b], create_graph=True)
    daa, dab = grad(da.sum(), [a, b])
    dba, dbb = grad(db.sum(), [a, b])
    log2 = np.log(2.0)
    np.testing.assert_allclose(daa, [2.0, 1.5 * 0.5 * 2.0 ** -0.5], rtol=1e-14)
    np.testing.assert_allclose(dab, [0.0, 2.0 ** 0.5 * (1 + 1.5 * log2)], rtol=1e-14)
    np.testing.assert_allclose(dba, dab, rtol=1e-14)
    np.testing.assert_allclose(dbb, [0.0, 2.0 ** 1.5 * log2 ** 2], rtol=1e-14)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "var", "logsumexp"])
def test_reductions_accept_a_numpy_integer_axis(name: str) -> None:
    data = np.arange(6.0).reshape(2, 3)
    x = Tensor(data.copy(), requires_grad=True)
    y = Tensor(data.copy(), requires_grad=True)
    getattr(x, name)(axis=np.int64(1)).sum().backward()
    getattr(y, name)(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, y.grad)


def test_list_operands_behave_like_numpy() -> None:
    data = np.array([0.5, 3.0])
    other = [1.0, 2.0]
    checks: list[tuple[Callable[[Tensor], Tensor], np.ndarray, np.ndarray]] = [
        (lambda x: x + other, data + other, np.ones(2)),
        (lambda x: other * x, data * other, np.array(other)),
        (lambda x: x * tuple(other), data * other, np.array(other)),
        (lambda x: x.maximum(other), np.maximum(data, other), np.array([0.0, 1.0])),
        (lambda x: where([True, False], x, other), np.array([0.5, 2.0]), np.array([1.0, 0.0])),
    ]
    for fn, value, gradient in checks:
        x = Tensor(data.copy(), requires_grad=True)
        out = fn(x)
        np.testing.assert_array_equal(out.data, value)
        out.sum().backward()
        np.testing.assert_array_equal(x.grad, gradient)


# -- numerically stable ops at |x| = 1e4 ----------------------------------------------------------------

@contextmanager
def _strict_floats() -> Iterator[None]:
    """Every warning and every overflow, invalid operation or division by zero is an error.

    NOTE: underflow stays allowed: exp(-2e4) rounding to 0 is the correct float64 answer, not a failure.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            yield


_HUGE = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1.0], [-1e4, -1e4, -1e4 + 2.0]])


def test_softmax_is_stable_at_1e4() -> None:
    x = Tensor(_HUGE.copy(), requires_grad=True)
    u = np.array([[1.0, -2.0, 0.5], [0.25, 3.0, -1.0], [2.0, 1.0, -0.5]])
    with _strict_floats():
        s = x.softmax(axis=1)
        s.backward(gradient=u)
    e2 = np.exp(-2.0)
    last = 2 * e2 + 1
    expected = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [e2 / last, e2 / last, 1 / last]])
    np.testing.assert_allclose(s.data, expected, rtol=1e-13, atol=1e-300)
    assert np.isfinite(x.grad).all()
    np.testing.assert_allclose(x.grad, expected * (u - (u * expected).sum(axis=1, keepdims=True)), atol=1e-13)


def test_log_softmax_is_stable_at_1e4() -> None:
    x = Tensor(_HUGE.copy(), requires_grad=True)
    u = np.array([[1.0, -2.0, 0.5], [0.25, 3.0, -1.0], [2.0, 1.0, -0.5]])
    with _strict_floats():
        out = x.log_softmax(axis=-1)
        out.backward(gradient=u)
    lse_last = np.log(2 * np.exp(-2.0) + 1)  # the last row, shifted by its max (-1e4 + 2)
    expected = np.array([[0.0, -1e4, -2e4], [-np.log(2), -np.log(2), 1.0 - 1e4 - np.log(2)],
                         [-2.0 - lse_last, -2.0 - lse_last, -lse_last]])
    np.testing.assert_allclose(out.data, expected, rtol=1e-13, atol=1e-12)
    soft = np.exp(expected)
    assert np.isfinite(x.grad).all()
    np.testing.assert_allclose(x.grad, u - soft * u.sum(axis=-1, keepdims=True), atol=1e-12)


def test_logsumexp_is_stable_at_1e4() -> None:
    x = Tensor(_HUGE.copy(), requires_grad=True)
    with _strict_floats():
        out = x.logsumexp(axis=1)
        out.backward(gradient=np.array([1.0, 2.0, 3.0]))
        total = x.logsumexp()
        (g_total,) = grad(total, x)
    e2 = np.exp(-2.0)
    np.testing.assert_allclose(out.data, [1e4, 1e4 + np.log(2), -1e4 + 2.0 + np.log(2 * e2 + 1)], rtol=1e-15)
    np.testing.assert_allclose(total.data, 1e4 + np.log(3), rtol=1e-15)
    expected = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0],
                         [3 * e2 / (2 * e2 + 1), 3 * e2 / (2 * e2 + 1), 3 / (2 * e2 + 1)]])
    # NOTE: the rule is exp(x - logsumexp): at |x| = 1e4 the subtraction loses about ulp(1e4) = 2e-12.
    np.testing.assert_allclose(x.grad, expected, rtol=1e-11, atol=1e-300)
    np.testing.assert_allclose(g_total, np.where(_HUGE == 1e4, 1 / 3, 0.0), rtol=1e-11, atol=1e-300)


def test_large_shift_changes_nothing() -> None:
    # softmax(c + d) = softmax(d): compare the shifted engine result with the naive formula on small d.
    d = np.random.default_rng(3).uniform(-2, 2, size=(4, 5))
    naive = np.exp(d) / np.exp(d).sum(axis=1, keepdims=True)
    for c in (1e4, -1e4):
        x = Tensor(d + c, requires_grad=True)
        with _strict_floats():
            s = x.softmax(axis=1)
            ls = x.log_softmax(axis=1)
            lse = x.logsumexp(axis=1)
        np.testing.assert_allclose(s.data, naive, rtol=1e-9)
        np.testing.assert_allclose(ls.data, np.log(naive), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(lse.data - c, np.log(np.exp(d).sum(axis=1)), rtol=1e-9, atol=1e-9)


def test_sigmoid_and_log_sigmoid_are_finite_at_1e4() -> None:
    x = Tensor(np.array([-1e4, -50.0, 0.0, 50.0, 1e4]), requires_grad=True)
    with _strict_floats():
        s = x.sigmoid()
        ls = x.log_sigmoid()
        (gs,) = grad(s, x, grad_outputs=np.ones(5))
        (gls,) = grad(ls, x, grad_outputs=np.ones(5))
    assert np.isfinite(s.data).all() and np.isfinite(gs).all() and np.isfinite(gls).all()
    np.testing.assert_allclose(s.data[1:], [np.exp(-50.0) / (1 + np.exp(-50.0)), 0.5, 1.0, 1.0], rtol=1e-15)
    assert 0.0 <= s.data[0] < 1e-300
    np.testing.assert_allclose(ls.data, [-1e4, -50.0 - np.log1p(np.exp(-50.0)), -np.log(2), -np.exp(-50.0), 0.0],
                               rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(gls, [1.0, 1 / (1 + np.exp(-50.0)), 0.5, np.exp(-50.0) / (1 + np.exp(-50.0)), 0.0],
                               rtol=1e-14, atol=1e-300)


# -- reflected operators, constants and comparisons ------------------------------------------------------

def test_reflected_operators_values_and_gradients() -> None:
    rng = np.random.default_rng(5)
    x_data = rng.uniform(0.5, 2.0, size=(2, 3))
    u = rng.standard_normal((2, 3))
    matrix = rng.standard_normal((4, 2))
    row = rng.standard_normal(3)
    checks: list[tuple[str, Callable[[Tensor], Any], np.ndarray, np.ndarray]] = [
        ("2 - x", lambda x: 2 - x, 2 - x_data, -u),
        ("1 / x", lambda x: 1 / x, 1 / x_data, -u / x_data ** 2),
        ("2 ** x", lambda x: 2 ** x, 2 ** x_data, u * 2 ** x_data * np.log(2)),
        ("3 + x", lambda x: 3 + x, 3 + x_data, u),
        ("0.5 * x", lambda x: 0.5 * x, 0.5 * x_data, 0.5 * u),
        ("ndarray * x", lambda x: row * x, row * x_data, row * u),
        ("ndarray + x", lambda x: row + x, row + x_data, u),
        ("ndarray - x", lambda x: row - x, row - x_data, -u),
        ("ndarray / x", lambda x: row / x, row / x_data, -u * row / x_data ** 2),
    ]
    for label, fn, value, expected_grad in checks:
        x = Tensor(x_data.copy(), requires_grad=True)
        out = fn(x)
        assert isinstance(out, Tensor), label
        np.testing.assert_allclose(out.data, value, rtol=1e-15, err_msg=label)
        out.backward(gradient=u)
        np.testing.assert_allclose(x.grad, expected_grad, rtol=1e-14, err_msg=label)
    x = Tensor(x_data.copy(), requires_grad=True)
    out = matrix @ x
    assert isinstance(out, Tensor) and out.requires_grad
    np.testing.assert_allclose(out.data, matrix @ x_data, rtol=1e-15)
    v = rng.standard_normal((4, 3))
    out.backward(gradient=v)
    np.testing.assert_allclose(x.grad, matrix.T @ v, rtol=1e-14)


@pytest.mark.filterwarnings("ignore::tinygrad_edu.LearnerWarning")  # the mistake is made on purpose here
def test_constant_zero_keeps_its_sign() -> None:
    # Python-number constants are cached, and 0.0 == -0.0 with equal hashes: the cache must tell them apart.
    t = Tensor(np.array([1.0]))
    assert not np.signbit((t * 0.0).data).any()
    negative = t * -0.0
    assert np.signbit(negative.data).all() == np.signbit(np.array([1.0]) * -0.0).all()
    with np.errstate(divide="ignore"):
        assert (1 / (t * -0.0)).data[0] == -np.inf
    assert not np.signbit((t * 0.0).data).any()


_Compare = tuple[Callable[[Any, Any], Any], Any]  # (Python's operator, numpy's function)
_COMPARISONS: dict[str, _Compare] = {"<": (operator.lt, np.less), "<=": (operator.le, np.less_equal),
                                     ">": (operator.gt, np.greater), ">=": (operator.ge, np.greater_equal),
                                     "==": (operator.eq, np.equal), "!=": (operator.ne, np.not_equal)}


@pytest.mark.parametrize("op", list(_COMPARISONS))
def test_comparisons_are_boolean_tensors_without_grad(op: str) -> None:
    a_data = np.array([1.0, 2.0, 3.0])
    b_data = np.array([2.0, 2.0, 1.0])
    python_op, compare = _COMPARISONS[op]
    a = Tensor(a_data, requires_grad=True)
    b = Tensor(b_data, requires_grad=True)
    for other, raw in [(b, b_data), (2.0, 2.0), (b_data, b_data)]:
        out = python_op(a, other)
        assert isinstance(out, Tensor)
        assert out.dtype == np.bool_ and not out.requires_grad
        assert out.parents == () and out.op is None
        np.testing.assert_array_equal(out.data, compare(a_data, raw))


# -- hypothesis: random shapes and broadcast pairs ---------------------------------------------------------

_BINARY: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "truediv": lambda a, b: a / b, "pow": lambda a, b: a ** b, "maximum": maximum, "minimum": minimum,
    "where": lambda a, b: where(a > b, a, b),
}


_BINARY_NUMPY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.divide, "pow": np.power,
    "maximum": np.maximum, "minimum": np.minimum, "where": lambda a, b: np.where(a > b, a, b),
}


def _binary_inputs(name: str, shapes: tuple[Shape, Shape], rng: np.random.Generator) -> list[np.ndarray]:
    a_shape, b_shape = shapes
    if name in ("maximum", "minimum", "where"):
        # Odd and even multiples of 0.1: never within 0.08 of each other, so no tie during the differences.
        a = (2 * rng.integers(-5, 5, size=a_shape) + 1) * 0.1 + rng.uniform(-0.01, 0.01, size=a_shape)
        b = 2 * rng.integers(-5, 5, size=b_shape) * 0.1 + rng.uniform(-0.01, 0.01, size=b_shape)
        return [a, b]
    if name == "pow":
        return [rng.uniform(0.5, 2.0, size=a_shape), rng.uniform(-1.5, 1.5, size=b_shape)]
    if name == "truediv":
        return [rng.uniform(-1.5, 1.5, size=a_shape),
                rng.choice([-1.0, 1.0], size=b_shape) * rng.uniform(0.5, 1.5, size=b_shape)]
    return [rng.uniform(-1.5, 1.5, size=a_shape), rng.uniform(-1.5, 1.5, size=b_shape)]


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       name=st.sampled_from(sorted(_BINARY)), seed=st.integers(0, 2**31 - 1))
def test_hypothesis_binary_broadcasting(shapes: Any, name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    arrays = _binary_inputs(name, shapes.input_shapes, rng)
    leaves = [Tensor(x, requires_grad=True) for x in arrays]
    out = _BINARY[name](*leaves)
    assert out.shape == shapes.result_shape
    np.testing.assert_allclose(out.data, _BINARY_NUMPY[name](*arrays), rtol=1e-15, atol=0)
    single = _BINARY[name](*[Tensor(x.astype(np.float32)) for x in arrays])
    assert single.dtype == np.float32
    np.testing.assert_allclose(single.data, _BINARY_NUMPY[name](*arrays), rtol=2e-6, atol=1e-6)
    assert gradcheck(_BINARY[name], leaves, seed=seed)


_REDUCTIONS: dict[str, Callable[..., Tensor]] = {
    "sum": Tensor.sum, "mean": Tensor.mean, "max": Tensor.max, "min": Tensor.min, "var": Tensor.var,
    "logsumexp": Tensor.logsumexp,
}


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(data=st.data(), shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4),
       name=st.sampled_from(sorted(_REDUCTIONS)), keepdims=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_hypothesis_reductions(data: Any, shape: Shape, name: str, keepdims: bool, seed: int) -> None:
    ndim = len(shape)
    axis_choices: list[st.SearchStrategy[Any]] = [st.none()]
    if ndim:
        axis_choices += [st.integers(-ndim, ndim - 1), hnp.valid_tuple_axes(ndim, min_size=1)]
    axis = data.draw(st.one_of(*axis_choices), label="axis")
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    # Distinct values 0.1 apart (max/min never tie), shuffled.
    x = Tensor(((rng.permutation(size) - size / 2) * 0.1 + rng.uniform(-0.01, 0.01, size)).reshape(shape),
               requires_grad=True)

    def fn(t: Tensor) -> Tensor:
        return _REDUCTIONS[name](t, axis, keepdims)

    expected = getattr(np, name if name != "logsumexp" else "sum")(
        x.data if name != "logsumexp" else np.exp(x.data), axis=axis, keepdims=keepdims)
    if name == "logsumexp":
        expected = np.log(expected)
    np.testing.assert_allclose(fn(x).data, expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(fn, [x], seed=seed)


def test_tensor_exponent_zero_gives_a_constant_even_at_zero_base() -> None:
    a = Tensor(np.array([0.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([0.0, 0.0]), requires_grad=True)
    with _strict_floats():
        (a ** b).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 0.0])
    np.testing.assert_allclose(b.grad, [0.0, np.log(2.0)], rtol=1e-15)


# Unary ops: (engine, numpy reference, input range). Ranges keep away from kinks and from a <= 0 for log/sqrt.
_UNARY: dict[str, tuple[Callable[[Tensor], Tensor], Callable[[np.ndarray], np.ndarray], tuple[float, float]]] = {
    "neg": (lambda t: -t, np.negative, (-2.0, 2.0)),
    "exp": (Tensor.exp, np.exp, (-2.0, 2.0)),
    "log": (Tensor.log, np.log, (0.2, 3.0)),
    "sqrt": (Tensor.sqrt, np.sqrt, (0.2, 3.0)),
    "abs": (Tensor.abs, np.abs, (0.1, 2.0)),
    "sigmoid": (Tensor.sigmoid, lambda x: 1 / (1 + np.exp(-x)), (-4.0, 4.0)),
    "log_sigmoid": (Tensor.log_sigmoid, lambda x: -np.log1p(np.exp(-x)), (-4.0, 4.0)),
    "tanh": (Tensor.tanh, np.tanh, (-2.0, 2.0)),
    "relu": (Tensor.relu, lambda x: np.maximum(x, 0), (0.1, 2.0)),
    "leaky_relu": (lambda t: t.leaky_relu(0.1), lambda x: np.where(x > 0, x, 0.1 * x), (0.1, 2.0)),
    "clip": (lambda t: t.clip(-0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5), (-0.45, 0.45)),
    "pow": (lambda t: t ** 3, lambda x: x ** 3, (-2.0, 2.0)),
}


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4), name=st.sampled_from(sorted(_UNARY)),
       negate=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_hypothesis_unary(shape: Shape, name: str, negate: bool, seed: int) -> None:
    """Forward against numpy in float64 and float32 (dtype kept), gradient against central differences."""
    fn, reference, (low, high) = _UNARY[name]
    rng = np.random.default_rng(seed)
    data = rng.uniform(low, high, size=shape)
    if negate and name in ("abs", "relu", "leaky_relu"):  # the other side of the kink
        data = -data
    x = Tensor(data, requires_grad=True)
    np.testing.assert_allclose(fn(x).data, reference(data), rtol=1e-13, atol=1e-15)
    single = fn(Tensor(data.astype(np.float32)))
    assert single.dtype == np.float32
    np.testing.assert_allclose(single.data, reference(data), rtol=1e-5, atol=1e-6)
    assert gradcheck(fn, [x], seed=seed)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
       log=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_hypothesis_softmax_and_log_softmax(data: Any, shape: Shape, log: bool, seed: int) -> None:
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    x = Tensor(np.random.default_rng(seed).uniform(-3, 3, size=shape), requires_grad=True)

    def fn(t: Tensor) -> Tensor:
        return t.log_softmax(axis) if log else t.softmax(axis)

    shifted = np.exp(x.data - x.data.max(axis=axis, keepdims=True))
    expected = shifted / shifted.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(fn(x).data, np.log(expected) if log else expected, rtol=1e-12, atol=1e-14)
    assert gradcheck(fn, [x], seed=seed)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(batch=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3),
       n=st.integers(1, 3), k=st.integers(1, 3), m=st.integers(1, 3), vector_a=st.booleans(),
       vector_b=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_hypothesis_matmul(batch: Any, n: int, k: int, m: int, vector_a: bool, vector_b: bool, seed: int) -> None:
    """Every rank: 1-D operands, 2-D, and batches whose leading axes broadcast."""
    rng = np.random.default_rng(seed)
    a_shape = (k,) if vector_a else batch.input_shapes[0] + (n, k)
    b_shape = (k,) if vector_b else batch.input_shapes[1] + (k, m)
    a = Tensor(rng.uniform(-1, 1, size=a_shape), requires_grad=True)
    b = Tensor(rng.uniform(-1, 1, size=b_shape), requires_grad=True)
    np.testing.assert_allclose((a @ b).data, a.data @ b.data, rtol=1e-14, atol=1e-15)
    assert gradcheck(lambda p, q: p @ q, [a, b], seed=seed)


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
       seed=st.integers(0, 2**31 - 1))
def test_hypothesis_shape_ops(data: Any, shape: Shape, seed: int) -> None:
    """reshape, transpose, squeeze/unsqueeze, broadcast_to, getitem with repeated indices, concatenate, stack."""
    rng = np.random.default_rng(seed)
    x = Tensor(rng.uniform(-1, 1, size=shape), requires_grad=True)
    ndim = len(shape)
    order = tuple(data.draw(st.permutations(range(ndim)), label="axes"))
    new_axis = data.draw(st.integers(-ndim - 1, ndim), label="new axis")
    axis = data.draw(st.integers(-ndim, ndim - 1), label="axis")
    index = rng.integers(0, shape[0], size=data.draw(st.integers(1, 5), label="index count"))
    target = data.draw(hnp.broadcastable_shapes(shape, min_dims=ndim, max_dims=ndim + 1, max_side=3).filter(
        lambda s: np.broadcast_shapes(s, shape) == s), label="broadcast target")
    copies = data.draw(st.integers(1, 3), label="copies")
    programs: list[tuple[Callable[[Tensor], Tensor], np.ndarray]] = [
        (lambda t: t.reshape(-1), x.data.reshape(-1)),
        (lambda t: t.transpose(order), x.data.transpose(order)),
        (lambda t: t.unsqueeze(new_axis).squeeze(new_axis), x.data),
        (lambda t: t.unsqueeze(new_axis), np.expand_dims(x.data, new_axis)),
        (lambda t: t.broadcast_to(target), np.broadcast_to(x.data, target)),
        (lambda t: t[index], x.data[index]),
        (lambda t: concatenate([t * (i + 1) for i in range(copies)], axis=axis),
         np.concatenate([x.data * (i + 1) for i in range(copies)], axis=axis)),
        (lambda t: stack([t * (i + 1) for i in range(copies)], axis=axis),
         np.stack([x.data * (i + 1) for i in range(copies)], axis=axis)),
    ]
    for fn, expected in programs:
        np.testing.assert_array_equal(fn(x).data, expected)
        assert gradcheck(fn, [x], seed=seed)


# -- high-precision references: the naive formulas in numpy's extended precision, where exp(1e4) is finite ----

_LONG = np.longdouble
_EXTENDED = np.finfo(_LONG).maxexp > 10_000  # x86-64's 80-bit long double; elsewhere it may be plain double
_GRID = np.array([-1e4, -1e3, -745.0, -700.0, -40.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 40.0, 700.0, 745.0, 1e3, 1e4])


@pytest.mark.skipif(not _EXTENDED, reason="numpy's long double is not wider than float64 here")
def test_stable_ops_against_extended_precision_references() -> None:
    wide = _GRID.astype(_LONG)
    s_wide = 1 / (1 + np.exp(-wide))
    x = Tensor(_GRID.copy(), requires_grad=True)
    s = x.sigmoid()
    # sigmoid(-1e4) = e^-1e4 is below float64's range; the engine answers 1e-308 (see ops.Sigmoid), hence atol
    np.testing.assert_allclose(s.data, s_wide.astype(np.float64), rtol=1e-15, atol=1e-300)
    s.backward(gradient=np.ones_like(_GRID))
    # NOTE: the rule s (1 - s) (the tutorials', and PyTorch's) is exact to 1e-17 absolute, but 1 - s rounds to 0
    # for x > 37, so there the gradient is 0 instead of about e^-x
    np.testing.assert_allclose(x.grad, (s_wide * (1 - s_wide)).astype(np.float64), rtol=1e-14, atol=1e-17)
    small = np.abs(_GRID) < 37
    np.testing.assert_allclose(x.grad[small], (s_wide * (1 - s_wide)).astype(np.float64)[small], rtol=1e-14,
                               atol=1e-300)

    x = Tensor(_GRID.copy(), requires_grad=True)
    log_s = x.log_sigmoid()
    np.testing.assert_allclose(log_s.data, (-np.log1p(np.exp(-wide))).astype(np.float64), rtol=1e-15, atol=0)
    log_s.backward(gradient=np.ones_like(_GRID))
    np.testing.assert_allclose(x.grad, (1 / (1 + np.exp(wide))).astype(np.float64), rtol=1e-14, atol=1e-300)

    rows = np.stack([_GRID, _GRID[::-1] * 0.5, np.linspace(-3.0, 3.0, _GRID.size)])
    wide_rows = rows.astype(_LONG)
    exp_rows = np.exp(wide_rows)
    lse_wide = np.log(exp_rows.sum(axis=1))
    np.testing.assert_allclose(Tensor(rows).logsumexp(axis=1).data, lse_wide.astype(np.float64), rtol=1e-15)
    softmax_wide = exp_rows / exp_rows.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(Tensor(rows).softmax(axis=1).data, softmax_wide.astype(np.float64),
                               rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(Tensor(rows).log_softmax(axis=1).data,
                               (wide_rows - lse_wide[:, None]).astype(np.float64), rtol=1e-15)

    from tinygrad_edu.losses import binary_cross_entropy_with_logits

    z = _GRID.reshape(-1, 1)
    y = (np.arange(_GRID.size) % 2).astype(np.float64).reshape(-1, 1)
    wide_z, wide_y = z.astype(_LONG), y.astype(_LONG)
    per_sample = wide_y * np.log1p(np.exp(-wide_z)) + (1 - wide_y) * np.log1p(np.exp(wide_z))
    np.testing.assert_allclose(binary_cross_entropy_with_logits(Tensor(z), y).item(),
                               float(per_sample.mean()), rtol=1e-15)


@pytest.mark.parametrize("other", [np.ones(3), np.float64(2.0), np.arange(3), np.array([True, False, True])])
def test_numpy_operands_take_the_float32_tensors_dtype(other: Any) -> None:
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    for out in (x * other, other * x, x + other, x - other, other - x):
        assert out.dtype == np.float32
    (x * other).sum().backward()
    assert x.grad.dtype == np.float32
