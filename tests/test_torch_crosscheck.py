"""The whole op table against PyTorch (CPU, float64): values, gradients and second-order gradients.

Skips cleanly when torch is not installed (``pip install torch==2.13.0``). Each case pairs an engine program
with the same program in torch; both get the same float64 inputs and the same random upstream gradient.
Unlike the finite-difference checks, these cases include the kinks and ties, where the two libraries must
agree on the convention:

* max/min reductions split the gradient evenly among ties: torch.amax/amin (not torch.max, which picks one);
* maximum/minimum at a tie give each side half (torch does the same);
* clip passes the gradient at its boundaries (torch.clamp's inclusive rule);
* relu and abs give 0 at 0, leaky_relu gives the slope at 0 (as torch);
* var is the population variance by default (torch's correction=0), ddof maps to correction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
functional = pytest.importorskip("torch.nn.functional")

from tinygrad_edu import Tensor, concatenate, grad, maximum, minimum, stack, where  # noqa: E402
from tinygrad_edu.ops import OPS  # noqa: E402
from tinygrad_edu.autograd import toposort  # noqa: E402
from tinygrad_edu.tensor import apply_op  # noqa: E402

TOL = 1e-10
_RNG = np.random.default_rng(424242)

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Pair:
    op: str
    label: str
    ours: Callable[..., Tensor]
    theirs: Callable[..., Any]
    inputs: tuple[np.ndarray, ...]
    bug: str | None = None  # a known engine bug: xfail(strict=True) until it is fixed
    torch_second: str | None = None  # why torch's second derivative is not the reference for this case


PAIRS: dict[str, list[Pair]] = {}


def _pair(op: str, label: str, ours: Callable[..., Tensor], theirs: Callable[..., Any], *inputs: Any,
          bug: str | None = None, torch_second: str | None = None) -> None:
    arrays = tuple(np.asarray(x, dtype=np.float64) for x in inputs)
    PAIRS.setdefault(op, []).append(Pair(op, label, ours, theirs, arrays, bug, torch_second))


def _u(shape: Shape, low: float = -1.5, high: float = 1.5) -> np.ndarray:
    return _RNG.uniform(low, high, size=shape)


def _ties(shape: Shape) -> np.ndarray:
    """Small integers: many exact ties and zeros."""
    return _RNG.integers(-2, 3, size=shape).astype(np.float64)


def _t(x: Any) -> Any:
    return torch.from_numpy(np.asarray(x))


def _dims(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    return (axis,) if isinstance(axis, int) else tuple(axis)


_BROADCAST: list[tuple[Shape, Shape]] = [((2, 3), (2, 3)), ((3, 1), (1, 4)), ((2, 3), (3,)), ((), (2, 2)),
                                         ((2, 2), ()), ((2, 1, 3), (4, 1))]
for _a, _b in _BROADCAST:
    _label = f"{_a}&{_b}"
    _pair("Add", _label, lambda a, b: a + b, lambda a, b: a + b, _u(_a), _u(_b))
    _pair("Sub", _label, lambda a, b: a - b, lambda a, b: a - b, _u(_a), _u(_b))
    _pair("Mul", _label, lambda a, b: a * b, lambda a, b: a * b, _u(_a), _u(_b))
    _pair("TrueDiv", _label, lambda a, b: a / b, lambda a, b: a / b, _u(_a), _u(_b, 0.5, 2.0))
    _pair("PowTensor", _label, lambda a, b: a ** b, torch.pow, _u(_a, 0.5, 2.0), _u(_b))
    _pair("Maximum", _label, maximum, torch.maximum, _u(_a), _u(_b))
    _pair("Minimum", _label, minimum, torch.minimum, _u(_a), _u(_b))
    _pair("Maximum", "ties-" + _label, lambda a, b: a.maximum(b), torch.maximum, _ties(_a), _ties(_b))
    _pair("Minimum", "ties-" + _label, lambda a, b: a.minimum(b), torch.minimum, _ties(_a), _ties(_b))
_pair("Sub", "1-x", lambda x: 1 - x, lambda x: 1 - x, _u((2, 3)))
_pair("TrueDiv", "1/x", lambda x: 1 / x, lambda x: 1 / x, _u((2, 3), 0.5, 2.0))
_pair("PowTensor", "2**x", lambda x: 2 ** x, lambda x: 2 ** x, _u((2, 3)))
_pair("Mul", "a*a", lambda a: a * a, lambda a: a * a, _u((3,)))

_UNARY_VALUES = np.array([[-2.5, -1.0, -0.3, 0.0], [0.4, 1.0, 1.7, 3.0]])
_pair("Neg", "", lambda x: -x, lambda x: -x, _UNARY_VALUES)
_pair("Exp", "", Tensor.exp, torch.exp, _UNARY_VALUES)
_pair("Log", "", Tensor.log, torch.log, _u((2, 4), 0.1, 3.0))
_pair("Sqrt", "", Tensor.sqrt, torch.sqrt, _u((2, 4), 0.1, 3.0))
_pair("Abs", "with-zero", Tensor.abs, torch.abs, _UNARY_VALUES)
_pair("Sigmoid", "", Tensor.sigmoid, torch.sigmoid, _UNARY_VALUES * 4)
_pair("Sigmoid", "huge", Tensor.sigmoid, torch.sigmoid, np.array([-1e4, -700.0, -30.0, 30.0, 1e4]))
_pair("LogSigmoid", "", Tensor.log_sigmoid, functional.logsigmoid, _UNARY_VALUES * 4)
_pair("LogSigmoid", "huge", Tensor.log_sigmoid, functional.logsigmoid, np.array([-1e4, -50.0, 50.0, 1e4]))
_pair("Tanh", "", Tensor.tanh, torch.tanh, _UNARY_VALUES)
_pair("Relu", "with-zero", Tensor.relu, torch.relu, _UNARY_VALUES)
_pair("LeakyRelu", "default-with-zero", Tensor.leaky_relu, functional.leaky_relu, _UNARY_VALUES)
_pair("LeakyRelu", "0.2-with-zero", lambda x: x.leaky_relu(0.2),
      lambda x: functional.leaky_relu(x, negative_slope=0.2), _UNARY_VALUES)
_pair("Clip", "boundaries", lambda x: x.clip(-1.0, 1.0), lambda x: torch.clamp(x, -1.0, 1.0), _UNARY_VALUES)
_pair("Clip", "low-only", lambda x: x.clip(low=0.0), lambda x: torch.clamp(x, min=0.0), _UNARY_VALUES)
_pair("Clip", "high-only", lambda x: x.clip(high=0.4), lambda x: torch.clamp(x, max=0.4), _UNARY_VALUES)
for _e in (2, 3, -1, 0.5, -1.5):
    _pair("Pow", f"**{_e}", lambda x, e=_e: x ** e, lambda x, e=_e: x ** e, _u((2, 3), 0.3, 2.0))
_pair("Pow", "**2-negative", lambda x: x ** 2, lambda x: x ** 2, _UNARY_VALUES)
_pair("Pow", "**0-with-zero", lambda x: x ** 0, lambda x: x ** 0, _UNARY_VALUES)
# NOTE: a = 0, b = 0.5 is a true infinity of d/da (both give inf). At a = 0, b = 2 torch's double backward
# computes 0 * log(0) = nan for d2/da db, whose limit is 0: the closed-form test in test_ops checks ours there.
_pair("PowTensor", "zero-base", lambda a, b: a ** b, torch.pow,
      np.array([0.0, 0.0, 2.0]), np.array([2.0, 0.5, 1.5]),
      torch_second="torch's second derivative is nan at a = 0 where the limit is finite "
                   "(test_ops.test_tensor_exponent_second_derivatives_at_zero_base)")

_COND = np.array([[True, False, True], [False, True, True]])
_pair("Where", "same", lambda a, b: where(_COND, a, b), lambda a, b: torch.where(_t(_COND), a, b),
      _u((2, 3)), _u((2, 3)))
_pair("Where", "broadcast", lambda a, b: where(_COND, a, b), lambda a, b: torch.where(_t(_COND), a, b),
      _u((3,)), _u(()))

_axis: int | tuple[int, ...] | None  # one name for the axis of every case below
for _axis in (0, 1, -1):
    _pair("Softmax", f"axis={_axis}", lambda x, a=_axis: x.softmax(a), lambda x, a=_axis: torch.softmax(x, a),
          _u((2, 3, 4)))
    _pair("LogSoftmax", f"axis={_axis}", lambda x, a=_axis: x.log_softmax(a),
          lambda x, a=_axis: torch.log_softmax(x, a), _u((2, 3, 4)))
_pair("Softmax", "huge", lambda x: x.softmax(1), lambda x: torch.softmax(x, 1),
      np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1.0]]))
_pair("LogSoftmax", "huge", lambda x: x.log_softmax(1), lambda x: torch.log_softmax(x, 1),
      np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1.0]]))

for _axis in (None, 0, 1, -1, (0, 2), (-1, 0)):
    for _keep in (False, True):
        _label = f"axis={_axis}-keepdims={_keep}"

        def _torch_reduce(name: str, axis: Any = _axis, keep: bool = _keep, **kw: Any) -> Callable[[Any], Any]:
            return lambda x: getattr(torch, name)(x, dim=_dims(axis, x.ndim), keepdim=keep, **kw)

        _pair("Sum", _label, lambda x, a=_axis, k=_keep: x.sum(a, k), _torch_reduce("sum"), _u((2, 3, 4)))
        _pair("Mean", _label, lambda x, a=_axis, k=_keep: x.mean(a, k), _torch_reduce("mean"), _u((2, 3, 4)))
        _pair("Max", _label, lambda x, a=_axis, k=_keep: x.max(a, k), _torch_reduce("amax"), _u((2, 3, 4)))
        _pair("Min", _label, lambda x, a=_axis, k=_keep: x.min(a, k), _torch_reduce("amin"), _u((2, 3, 4)))
        _pair("Max", "ties-" + _label, lambda x, a=_axis, k=_keep: x.max(a, k), _torch_reduce("amax"),
              _ties((2, 3, 4)))
        _pair("Min", "ties-" + _label, lambda x, a=_axis, k=_keep: x.min(a, k), _torch_reduce("amin"),
              _ties((2, 3, 4)))
        _pair("LogSumExp", _label, lambda x, a=_axis, k=_keep: x.logsumexp(a, k), _torch_reduce("logsumexp"),
              _u((2, 3, 4)))
        for _ddof in (0, 1):
            _pair("Var", f"ddof={_ddof}-{_label}", lambda x, a=_axis, k=_keep, d=_ddof: x.var(a, k, ddof=d),
                  _torch_reduce("var", correction=_ddof), _u((2, 3, 4)))
_pair("LogSumExp", "huge", lambda x: x.logsumexp(1), lambda x: torch.logsumexp(x, 1),
      np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1.0]]))

for _a, _b in [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((2, 3, 4), (4, 5)),
               ((2, 1, 3, 4), (5, 4, 2)), ((3,), (2, 3, 4)), ((2, 3, 4), (4,))]:
    _pair("MatMul", f"{_a}@{_b}", lambda a, b: a @ b, torch.matmul, _u(_a), _u(_b))

_pair("Reshape", "(4,-1,2)", lambda x: x.reshape(4, -1, 2), lambda x: x.reshape(4, -1, 2), _u((2, 3, 4)))
_pair("Reshape", "0-d", lambda x: x.reshape(1, 1), lambda x: x.reshape(1, 1), _u(()))
_pair("Transpose", "(1,2,0)", lambda x: x.transpose(1, 2, 0), lambda x: x.permute(1, 2, 0), _u((2, 3, 4)))
_pair("Transpose", ".T", lambda x: x.T, lambda x: x.permute(2, 1, 0), _u((2, 3, 4)))
_pair("Transpose", ".mT", lambda x: x.mT, lambda x: x.mT, _u((2, 3, 4)))
_pair("Transpose", "negative-axes", lambda x: x.transpose(1, -1, 0), lambda x: x.permute(1, -1, 0), _u((3, 3, 3)))
_pair("Squeeze", "None", lambda x: x.squeeze(), lambda x: x.squeeze(), _u((1, 3, 1)))
_pair("Squeeze", "(0,2)", lambda x: x.squeeze((0, 2)), lambda x: x.squeeze((0, 2)), _u((1, 3, 1)))
_pair("Unsqueeze", "-1", lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(-1), _u((2, 3)))
_pair("BroadcastTo", "(3,1)->(2,3,4)", lambda x: x.broadcast_to((2, 3, 4)),
      lambda x: torch.broadcast_to(x, (2, 3, 4)), _u((3, 1)))

_MASK = np.array([[True, False, True], [False, False, False], [True, True, False], [False, True, True]])
_GETITEMS: list[tuple[str, Any, Callable[[Any], Any]]] = [
    ("slice", lambda x: x[1:3], lambda x: x[1:3]),
    ("reverse", lambda x: x[::-1], lambda x: torch.flip(x, (0,))),
    ("int-int", lambda x: x[-1, 0], lambda x: x[-1, 0]),
    ("repeated", lambda x: x[[0, 0, 2, 0]], lambda x: x[_t(np.array([0, 0, 2, 0]))]),
    ("repeated-2d", lambda x: x[np.array([[1, 1], [3, 1]])], lambda x: x[_t(np.array([[1, 1], [3, 1]]))]),
    ("mask", lambda x: x[_MASK], lambda x: x[_t(_MASK)]),
    ("slice-array", lambda x: x[:, [2, 2, 0]], lambda x: x[:, _t(np.array([2, 2, 0]))]),
    ("arrays-repeated", lambda x: x[[0, 0, 3], [1, 1, 2]],
     lambda x: x[_t(np.array([0, 0, 3])), _t(np.array([1, 1, 2]))]),
    ("none-ellipsis", lambda x: x[None, ..., 1], lambda x: x[None, ..., 1]),
]
for _label, _ours, _theirs in _GETITEMS:
    _pair("GetItem", _label, _ours, _theirs, _u((4, 3)))


def _torch_scatter(index: tuple[np.ndarray, ...], shape: Shape) -> Callable[[Any], Any]:
    return lambda a: torch.zeros(shape, dtype=a.dtype).index_put(tuple(_t(i) for i in index), a, accumulate=True)


_pair("ScatterAdd", "repeated", lambda a: a.scatter_add([0, 2, 0], (4,)),
      _torch_scatter((np.array([0, 2, 0]),), (4,)), _u((3,)))
_pair("ScatterAdd", "tuple", lambda a: a.scatter_add(([0, 0, 1], [2, 2, 0]), (2, 3)),
      _torch_scatter((np.array([0, 0, 1]), np.array([2, 2, 0])), (2, 3)), _u((3,)))
_pair("ScatterAdd", "rows", lambda a: a.scatter_add(np.array([1, 1]), (4, 3)),
      _torch_scatter((np.array([1, 1]),), (4, 3)), _u((2, 3)))
_pair("ScatterAdd", "mask", lambda a: a.scatter_add(_MASK, (4, 3)), _torch_scatter((_MASK,), (4, 3)),
      _u((int(_MASK.sum()),)))

_pair("Concatenate", "axis1", lambda a, b, c: concatenate([a, b, c], axis=1),
      lambda a, b, c: torch.cat([a, b, c], dim=1), _u((2, 1)), _u((2, 3)), _u((2, 2)))
_pair("Concatenate", "axis-1", lambda a, b: concatenate([a, b], axis=-1), lambda a, b: torch.cat([a, b], -1),
      _u((2, 3, 1)), _u((2, 3, 2)))
_pair("Stack", "axis0", lambda a, b: stack([a, b]), lambda a, b: torch.stack([a, b]), _u((2, 3)), _u((2, 3)))
_pair("Stack", "axis-1", lambda a, b: stack([a, b], axis=-1), lambda a, b: torch.stack([a, b], -1),
      _u((2, 3)), _u((2, 3)))

# Convolution and pooling; tests/test_conv.py draws random geometries against torch as well.
_pair("Conv2d", "bias-stride-padding",
      lambda x, w, b: x.conv2d(w, b, stride=(2, 1), padding=(1, 0)),
      lambda x, w, b: functional.conv2d(x, w, b, stride=(2, 1), padding=(1, 0)),
      _u((2, 2, 4, 5)), _u((3, 2, 2, 3)), _u((3,)))
_pair("Conv2d", "no-bias", lambda x, w: x.conv2d(w, padding=2),
      lambda x, w: functional.conv2d(x, w, padding=2), _u((1, 3, 4, 4)), _u((2, 3, 3, 3)))
for _label, _x in (("", _u((2, 2, 5, 5))), ("ties-", _ties((2, 2, 5, 5)))):
    _pair("MaxPool2d", _label + "2x2", lambda x: x.max_pool2d(2),
          lambda x: functional.max_pool2d(x, 2), _x)
    _pair("MaxPool2d", _label + "overlapping", lambda x: x.max_pool2d((3, 2), (1, 2)),
          lambda x: functional.max_pool2d(x, (3, 2), (1, 2)), _x)
    _pair("AvgPool2d", _label + "overlapping", lambda x: x.avg_pool2d((3, 2), (1, 2)),
          lambda x: functional.avg_pool2d(x, (3, 2), (1, 2)), _x)
_pair("Flatten", "start1", lambda x: x.flatten(), lambda x: torch.flatten(x, 1),
      _u((2, 3, 2, 2)))
_GEOMETRY = {"kernel": (2, 3), "stride": (2, 1), "padding": (1, 0)}
_pair("Im2Col", "geometry", lambda x: apply_op(OPS["Im2Col"], x, **_GEOMETRY),
      lambda x: functional.unfold(x, (2, 3), stride=(2, 1), padding=(1, 0)), _u((2, 2, 4, 5)))
_pair("Col2Im", "geometry", lambda c: apply_op(OPS["Col2Im"], c, size=(4, 5), **_GEOMETRY),
      lambda c: functional.fold(c, (4, 5), (2, 3), stride=(2, 1), padding=(1, 0)), _u((2, 12, 9)))


def _params(second: bool = False) -> list[Any]:
    params = []
    for op, pairs in PAIRS.items():
        for p in pairs:
            marks = [pytest.mark.xfail(strict=True, reason=p.bug)] if p.bug else []
            if second and p.torch_second:
                marks.append(pytest.mark.skip(reason=p.torch_second))
            if p.bug or p.label == "zero-base":  # 0 ** -0.5: a real infinity, and numpy says so
                marks.append(pytest.mark.filterwarnings("ignore::RuntimeWarning"))
            params.append(pytest.param(p, id=f"{op}-{p.label}", marks=marks))
    return params


def _both(pair: Pair) -> tuple[list[Tensor], list[Any]]:
    ours = [Tensor(x.copy(), requires_grad=True) for x in pair.inputs]
    theirs = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in pair.inputs]
    return ours, theirs


def _numpy(value: Any, like: np.ndarray) -> np.ndarray:
    if value is None:
        return np.zeros_like(like)
    if isinstance(value, torch.Tensor):
        return value.detach().numpy(force=True)  # force: torch may answer with a ZeroTensor
    return np.asarray(getattr(value, "data", value))


def test_every_op_is_cross_checked() -> None:
    missing = sorted(set(OPS) - set(PAIRS))
    assert not missing, f"ops without a torch cross-check in tests/test_torch_crosscheck.py: {missing}"


@pytest.mark.parametrize("pair", _params())
def test_forward_and_backward_match_torch(pair: Pair) -> None:
    ours, theirs = _both(pair)
    out = pair.ours(*ours)
    expected = pair.theirs(*theirs)
    assert OPS[pair.op] in {node.op for node in toposort([out])}
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=TOL, atol=TOL)
    u = np.random.default_rng(len(pair.label)).standard_normal(out.shape) + 0.5
    out.backward(gradient=u)
    expected.backward(_t(u))
    for i, (x, y) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(x.grad, _numpy(y.grad, x.data), rtol=TOL, atol=TOL, err_msg=f"input {i}")


@pytest.mark.parametrize("pair", _params(second=True))
def test_double_backward_matches_torch(pair: Pair) -> None:
    """d/dx <v, J(x)^T u> for every case: the rules themselves, differentiated (create_graph=True)."""
    ours, theirs = _both(pair)
    rng = np.random.default_rng(len(pair.label) + 1)
    out, expected = pair.ours(*ours), pair.theirs(*theirs)
    u = rng.standard_normal(out.shape) + 0.5
    directions = [rng.standard_normal(x.shape) for x in pair.inputs]
    first = grad(out, ours, grad_outputs=u, create_graph=True)
    first_torch = torch.autograd.grad(expected, theirs, grad_outputs=_t(u), create_graph=True, allow_unused=True)
    for i, (g, h) in enumerate(zip(first, first_torch, strict=True)):
        np.testing.assert_allclose(_numpy(g, pair.inputs[i]), _numpy(h, pair.inputs[i]), rtol=TOL, atol=TOL)
    total = sum((g * Tensor(v)).sum() for g, v in zip(first, directions, strict=True))
    total_torch = sum((h * _t(v)).sum() for h, v in zip(first_torch, directions, strict=True) if h is not None)
    if isinstance(total, Tensor) and total.requires_grad:
        second = grad(total, ours, allow_unused=True)
    else:
        second = (None,) * len(ours)
    if isinstance(total_torch, torch.Tensor) and total_torch.requires_grad:
        second_torch = torch.autograd.grad(total_torch, theirs, allow_unused=True)
    else:
        second_torch = (None,) * len(theirs)
    for i, (g, h) in enumerate(zip(second, second_torch, strict=True)):
        np.testing.assert_allclose(_numpy(g, pair.inputs[i]), _numpy(h, pair.inputs[i]), rtol=TOL, atol=TOL,
                                   err_msg=f"second derivative, input {i}")


def test_hessian_vector_product_of_an_mlp_matches_torch() -> None:
    rng = np.random.default_rng(11)
    data, labels = rng.standard_normal((6, 3)), rng.integers(0, 3, size=6)
    shapes = [(3, 5), (5,), (5, 3), (3,)]
    values = [rng.standard_normal(s) * 0.6 for s in shapes]
    direction = [rng.standard_normal(s) for s in shapes]

    def loss_ours(w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
        hidden = (Tensor(data) @ w1 + b1).tanh()
        logits = hidden @ w2 + b2
        nll = -logits.log_softmax(axis=1)[np.arange(6), labels].mean()
        return nll + 0.1 * (w1 * w1).sum() + hidden.sigmoid().var()

    def loss_torch(w1: Any, b1: Any, w2: Any, b2: Any) -> Any:
        hidden = torch.tanh(_t(data) @ w1 + b1)
        logits = hidden @ w2 + b2
        nll = -torch.log_softmax(logits, 1)[torch.arange(6), _t(labels)].mean()
        return nll + 0.1 * (w1 * w1).sum() + torch.sigmoid(hidden).var(correction=0)

    ours = [Tensor(v.copy(), requires_grad=True) for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    loss, expected = loss_ours(*ours), loss_torch(*theirs)
    np.testing.assert_allclose(loss.data, expected.item(), rtol=TOL)
    grads = grad(loss, ours, create_graph=True)
    grads_torch = torch.autograd.grad(expected, theirs, create_graph=True)
    dot = sum((g * Tensor(v)).sum() for g, v in zip(grads, direction, strict=True))
    dot_torch = sum((g * _t(v)).sum() for g, v in zip(grads_torch, direction, strict=True))
    hvp = grad(dot, ours)
    hvp_torch = torch.autograd.grad(dot_torch, theirs)
    for g, h in zip(grads, grads_torch, strict=True):
        np.testing.assert_allclose(g.data, h.detach().numpy(), rtol=TOL, atol=TOL)
    for g, h in zip(hvp, hvp_torch, strict=True):
        np.testing.assert_allclose(g, h.numpy(), rtol=TOL, atol=TOL)
