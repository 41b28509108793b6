"""The engine: graph recording, backward, grad(), higher-order gradients, memory, and gradcheck itself."""

from __future__ import annotations

import gc
import re
import time
import weakref
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from tinygrad_edu import (
    GradcheckError, Tensor, enable_grad, grad, gradcheck, is_grad_enabled, maximum, no_grad, where,
)
from tinygrad_edu.ops import OPS, Op
from tinygrad_edu.autograd import toposort
from tinygrad_edu.tensor import apply_op


@pytest.fixture
def restore_ops() -> Iterator[None]:
    """Ops defined inside a test register themselves in OPS; take them out again afterwards."""
    saved = dict(OPS)
    try:
        yield
    finally:
        OPS.clear()
        OPS.update(saved)


@pytest.fixture
def restore_grad_mode() -> Iterator[None]:
    """A test of a broken mode switch must not leave recording off for the tests after it."""
    try:
        yield
    finally:
        enable_grad().__enter__()  # recording on again, whatever the broken switch left


# -- graph shape: fan-out and repeated edges ------------------------------------------------------------

def test_fan_out_ten_uses_sum_their_gradients() -> None:
    a = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    total = a * 1.0
    for k in range(2, 11):
        total = total + a * float(k)
    total.sum().backward()
    np.testing.assert_array_equal(a.grad, [55.0, 55.0])
    uses = sum(p is a for node in toposort([total]) for p in node.parents)
    assert uses == 10


def test_a_plus_a_records_two_edges_and_gradient_two() -> None:
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = a + a
    assert len(y.parents) == 2 and y.parents[0] is a and y.parents[1] is a
    y.backward(gradient=np.array([1.0, 10.0, 100.0]))
    np.testing.assert_array_equal(a.grad, [2.0, 20.0, 200.0])


def test_a_times_a_gives_two_a() -> None:
    a = Tensor(np.array([1.5, -2.0, 0.25]), requires_grad=True)
    y = a * a
    assert y.parents[0] is a and y.parents[1] is a
    y.sum().backward()
    np.testing.assert_array_equal(a.grad, [3.0, -4.0, 0.5])


def test_diamond_with_shared_intermediate() -> None:
    x = Tensor(np.array(0.5), requires_grad=True)
    h = x.tanh()
    y = h * h + h.exp() + h  # h used four times
    y.backward()
    t = np.tanh(0.5)
    np.testing.assert_allclose(x.grad, (2 * t + np.exp(t) + 1) * (1 - t ** 2), rtol=1e-15)


# -- deep graphs ---------------------------------------------------------------------------------------

def _chain(n: int, factor: float) -> tuple[Tensor, Tensor]:
    x = Tensor(np.array([0.5, 2.0]), requires_grad=True)
    y = x
    for _ in range(n):
        y = y * factor
    return x, y.sum()


@pytest.mark.filterwarnings("ignore::tinygrad_edu.LearnerWarning")  # the mistake is made on purpose here
def test_100k_op_chain_backward_without_recursion_error_and_in_linear_time() -> None:
    timings = {}
    for n in (20_000, 100_000):
        x, loss = _chain(n, 1.00001)
        runs = []
        for _ in range(2):  # the better of two passes: CPU time, so other processes add little noise
            start = time.process_time()
            loss.backward()
            runs.append(time.process_time() - start)
        timings[n] = min(runs)
        np.testing.assert_allclose(x.grad, [2 * 1.00001 ** n] * 2, rtol=1e-9)  # two passes accumulated
        (g,) = grad(loss, x)
        np.testing.assert_allclose(g, [1.00001 ** n] * 2, rtol=1e-9)
        del loss  # freeing a 100k-deep graph must not overflow the C stack either
    # Linear: 5x the ops costs about 5x the time; quadratic would cost 25x.
    assert timings[100_000] < 12 * timings[20_000] + 0.05, timings


# -- topological order ---------------------------------------------------------------------------------

def _names(root: Tensor) -> list[str]:
    return [node.op.name if node.op is not None else str(node.name) for node in toposort([root])]


def _build_graph(seed: int) -> Tensor:
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True, name="x")
    w = Tensor(rng.standard_normal((3, 2)), requires_grad=True, name="w")
    b = Tensor(rng.standard_normal(2), requires_grad=True, name="b")
    h = (x @ w + b).tanh()
    z = h * x.sum() + h.softmax(axis=1) - maximum(h, b)
    return (z.max(axis=1) + z.mean() + where(h > 0, h, b).var()).sum()


def test_toposort_puts_parents_first_in_argument_order() -> None:
    a = Tensor(np.array(1.0), requires_grad=True, name="a")
    b = Tensor(np.array(2.0), requires_grad=True, name="b")
    c = a * b
    d = c + a
    e = d.tanh()
    constant = Tensor(np.array(3.0), name="constant")
    f = e * constant
    assert [id(n) for n in toposort([f])] == [id(t) for t in (a, b, c, d, e, f)]  # by identity: == is elementwise
    order = toposort([_build_graph(0)])
    position = {id(node): i for i, node in enumerate(order)}
    assert len(position) == len(order)
    for node in order:
        for p in node.parents:
            if p.requires_grad:
                assert position[id(p)] < position[id(node)]


def test_toposort_is_deterministic() -> None:
    first = _build_graph(0)
    assert toposort([first]) == toposort([first])
    padding = [object() for _ in range(1000)]  # shift the ids (and so any id-keyed set order) of the rebuild
    second = _build_graph(1)
    assert _names(first) == _names(second)
    del padding
    assert len(toposort([first])) == len(_names(first)) > 15


# -- recording switches ------------------------------------------------------------------------------

def test_no_grad_context_manager_records_nothing_and_restores() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2 + 1
        assert not y.requires_grad and y.parents == () and y.is_leaf
        with enable_grad():
            z = x * 3
            assert z.requires_grad and z.parents[0] is x
        assert not is_grad_enabled()
    assert is_grad_enabled()
    np.testing.assert_array_equal(y.data, [3.0, 5.0])
    assert (x * 2).requires_grad


def test_no_grad_decorator_records_nothing_and_restores() -> None:
    @no_grad()
    def step(t: Tensor) -> Tensor:
        assert not is_grad_enabled()
        return t.exp()

    x = Tensor(np.array([0.0]), requires_grad=True)
    for _ in range(2):  # a decorator's instance is reused
        y = step(x)
        assert not y.requires_grad and y.parents == ()
        assert is_grad_enabled()


def test_no_grad_restores_after_an_exception() -> None:
    with pytest.raises(ValueError, match="inside"), no_grad():
        raise ValueError("inside")
    assert is_grad_enabled()

    @no_grad()
    def broken() -> None:
        raise KeyError("decorated")

    with pytest.raises(KeyError):
        broken()
    assert is_grad_enabled()
    with no_grad():
        with pytest.raises(ZeroDivisionError), enable_grad():
            _ = 1 / 0
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_recursive_no_grad_decorator_restores_grad_mode(restore_grad_mode: None) -> None:
    @no_grad()
    def depth(n: int) -> int:
        assert not is_grad_enabled()
        return depth(n - 1) + 1 if n else 0

    assert depth(3) == 3
    assert is_grad_enabled()
    guard = no_grad()
    with guard:
        with guard:
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_detach_shares_data_and_stops_the_gradient() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3
    d = h.detach()
    assert np.shares_memory(d.data, h.data)
    assert not d.requires_grad and d.parents == () and d.op is None and d.is_leaf
    (d * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 6.0])  # d counted as a constant


def test_requires_grad_() -> None:
    w = Tensor(np.array([1.0, 2.0]))
    assert w.requires_grad_() is w and w.requires_grad
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad, [2.0, 4.0])
    assert w.requires_grad_(False) is w and not w.requires_grad
    assert not (w * 2).requires_grad
    h = Tensor(np.ones(2), requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="detach"):
        h.requires_grad_(False)
    assert h.requires_grad


@pytest.mark.parametrize("array", [np.arange(3), np.arange(3, dtype=np.int32), np.array([True, False])],
                         ids=["int64", "int32", "bool"])
def test_integer_tensors_cannot_require_grad(array: np.ndarray) -> None:
    with pytest.raises(TypeError, match=str(array.dtype)):
        Tensor(array, requires_grad=True)
    t = Tensor(array)
    with pytest.raises(TypeError, match=str(array.dtype)) as info:
        t.requires_grad_()
    assert "float" in str(info.value)
    assert not t.requires_grad


def test_python_numbers_and_lists_become_float64_and_arrays_keep_their_dtype() -> None:
    for data in ([1, 2, 3], [[1, 2], [3, 4]], 5, 2.5, [1.5, 2]):
        t = Tensor(data)
        assert t.dtype == np.float64
        np.testing.assert_array_equal(t.data, np.asarray(data, dtype=np.float64))
    source = np.array([1.0, 2.0], dtype=np.float32)
    t = Tensor(source)
    assert t.dtype == np.float32 and np.shares_memory(t.data, source)
    assert Tensor(np.arange(3)).dtype == np.int64  # arrays are the user's explicit choice
    assert Tensor([1, 2], dtype=np.float32).dtype == np.float32


# -- backward() -----------------------------------------------------------------------------------------

def test_backward_on_a_non_scalar_needs_gradient() -> None:
    y = Tensor(np.ones((2, 3)), requires_grad=True) * 2
    with pytest.raises(RuntimeError) as info:
        y.backward()
    message = str(info.value)
    assert ".sum()" in message and "gradient=" in message and "(2, 3)" in message
    y.backward(gradient=np.full((2, 3), 0.5))  # the suggested fix works


def test_backward_with_a_wrong_shape_gradient_raises() -> None:
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    for wrong in (np.ones((3, 2)), np.ones(3), np.ones((1, 2, 3)), np.ones(())):
        with pytest.raises(ValueError) as info:
            y.backward(gradient=wrong)
        assert str(wrong.shape) in str(info.value) and "(2, 3)" in str(info.value)
    assert x.grad is None


@pytest.mark.filterwarnings("ignore::tinygrad_edu.LearnerWarning")  # the mistake is made on purpose here
def test_leaves_accumulate_and_intermediates_are_overwritten() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * x
    loss = (h * 3).sum()
    loss.backward()
    np.testing.assert_array_equal(x.grad, [6.0, 12.0])
    np.testing.assert_array_equal(h.grad, [3.0, 3.0])
    loss.backward()
    np.testing.assert_array_equal(x.grad, [12.0, 24.0])  # leaves: sum over passes
    np.testing.assert_array_equal(h.grad, [3.0, 3.0])  # intermediates: this pass only
    np.testing.assert_array_equal(loss.grad, 1.0)
    x.zero_grad()
    assert x.grad is None
    (h * 5).sum().backward()
    np.testing.assert_array_equal(x.grad, [10.0, 20.0])
    np.testing.assert_array_equal(h.grad, [5.0, 5.0])


def test_copied_and_unpickled_tensors_work_with_their_originals() -> None:
    import copy
    import pickle

    w = Tensor(np.ones(3), requires_grad=True)
    for twin in (copy.deepcopy(w), copy.copy(w), pickle.loads(pickle.dumps(w))):
        assert twin._creation_number > w._creation_number and twin._data_replaced_at == -1
        w.zero_grad()
        twin.zero_grad()
        ((w * twin) * 2).sum().backward()  # two leaves with the same creation number used to crash the heap
        np.testing.assert_array_equal(w.grad, [2.0, 2.0, 2.0])
        np.testing.assert_array_equal(twin.grad, [2.0, 2.0, 2.0])
    y = (w * 2 + w * 3).sum()
    graph_copy = copy.deepcopy(y)
    (g,) = grad(graph_copy, graph_copy.parents[0].parents[0].parents[0])
    np.testing.assert_array_equal(g, [5.0, 5.0, 5.0])


@pytest.mark.filterwarnings("ignore::tinygrad_edu.LearnerWarning")  # the mistake is made on purpose here
def test_leaf_gradients_accumulate_in_place_and_keep_the_leafs_dtype() -> None:
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    w = Tensor(np.array([0.5, 3.0]))  # float64: x * w is float64, by numpy's promotion of two tensors
    (x * w).sum().backward()
    assert x.grad.dtype == np.float32  # the gradient of a leaf has the leaf's dtype, as in PyTorch
    first = x.grad
    (x * w).sum().backward()
    assert x.grad is first  # the second pass was added into the same array
    np.testing.assert_array_equal(first, np.array([1.0, 6.0], dtype=np.float32))


@pytest.mark.filterwarnings("ignore::tinygrad_edu.LearnerWarning")  # the mistake is made on purpose here
def test_a_grad_set_by_hand_is_added_to_and_a_wrong_one_is_refused_where_it_is_set() -> None:
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True, name="x")
    read_only = np.array([1.0, -1.0], dtype=np.float32)
    read_only.flags.writeable = False
    for start in (read_only, np.array([1.0, -1.0]), Tensor([1.0, -1.0]), [1.0, -1.0]):
        x.grad = start
        (x * np.array([3.0, 5.0])).sum().backward()
        np.testing.assert_array_equal(x.grad, np.array([4.0, 4.0], dtype=np.float32))
        assert type(x.grad) is np.ndarray and x.grad.dtype == np.float32
    np.testing.assert_array_equal(read_only, [1.0, -1.0])  # a new array, the read-only one is untouched
    b = Tensor(np.array([1.0, 1.0]), requires_grad=True)
    x.grad = b.data  # copied: accumulating into it must not change b
    (x * b).sum().backward()
    np.testing.assert_array_equal(b.data, [1.0, 1.0])
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])
    x.grad = x
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.data, [1.0, 2.0])
    np.testing.assert_array_equal(x.grad, [4.0, 5.0])
    before = x.grad
    for wrong in (np.ones((2, 2)), 1.0, np.array([1, 2]), np.array([1j, 2j]), np.array(["a", "b"])):
        with pytest.raises(ValueError, match=r"'x' .*its own shape, \(2,\), with real floating-point"):
            x.grad = wrong
    assert x.grad is before
    with pytest.raises(ValueError, match="only a floating-point tensor has one"):
        Tensor(np.array([1, 2])).grad = np.zeros(2)
    x.grad = None
    assert x.grad is None
    x.grad = np.zeros(2, dtype=np.float32)
    x.data = np.ones(3, dtype=np.float32)  # the leaf changed shape after its .grad was set
    with pytest.raises(RuntimeError, match=r"'x' .*\.grad of shape \(2,\) from before its data changed shape"):
        (x * 3).sum().backward()


@pytest.mark.filterwarnings("ignore::tinygrad_edu.LearnerWarning")  # the mistake is made on purpose here
def test_leaf_gradients_do_not_alias_each_other_or_the_callers_gradient() -> None:
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    (a + b).sum().backward()
    a.grad *= 0.5
    np.testing.assert_array_equal(b.grad, [1.0, 1.0, 1.0])
    upstream = np.ones(3)
    x = Tensor(np.zeros(3), requires_grad=True)
    y = x + 1.0
    y.backward(gradient=upstream)
    x.grad *= 4
    np.testing.assert_array_equal(upstream, [1.0, 1.0, 1.0])
    upstream *= 0  # the caller reuses its buffer: the gradients of the pass stay as they were
    np.testing.assert_array_equal(y.grad, [1.0, 1.0, 1.0])
    # add hands its upstream array on as it is: the leaf must not share it with the intermediates' .grad
    w = Tensor(np.ones(3), requires_grad=True)
    h = x * 2
    y = h + w
    z = y * 3
    z.sum().backward()
    assert w.grad is not y.grad and w.grad is not h.grad
    w.grad *= 0  # e.g. clipping in place
    np.testing.assert_array_equal(y.grad, [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(h.grad, [3.0, 3.0, 3.0])


def test_every_dot_grad_is_an_ndarray() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x.sum()
    z = y * 2
    z.backward()
    for t in (x, y, z):
        assert type(t.grad) is np.ndarray, type(t.grad)
    np.testing.assert_array_equal(y.grad, 2.0)


def test_grad_leaves_every_dot_grad_untouched() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    x.grad = np.array([7.0, 8.0])
    before = x.grad
    h = (x * w).tanh()
    loss = (h * h).sum()
    for create_graph in (False, True):
        gx, gw = grad(loss, [x, w], create_graph=create_graph)
        assert x.grad is before
        np.testing.assert_array_equal(x.grad, [7.0, 8.0])
        assert w.grad is None and h.grad is None and loss.grad is None
        t = np.tanh(x.data * w.data)
        dh = 2 * t * (1 - t ** 2)
        np.testing.assert_allclose(np.asarray(getattr(gx, "data", gx)), dh * w.data, rtol=1e-14)
        np.testing.assert_allclose(np.asarray(getattr(gw, "data", gw)), dh * x.data, rtol=1e-14)


def test_grad_returns_fresh_arrays() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x + 0.0
    upstream = np.array([3.0, 4.0])
    (g,) = grad(y, x, grad_outputs=upstream)
    g *= 10
    np.testing.assert_array_equal(upstream, [3.0, 4.0])


# -- higher-order gradients ----------------------------------------------------------------------------

_SECOND_DERIVATIVES: dict[str, tuple[Callable[[Tensor], Tensor], Callable[[np.ndarray], np.ndarray]]] = {
    "tanh": (Tensor.tanh, lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
    "x**3": (lambda t: t ** 3, lambda x: 6 * x),
    "exp": (Tensor.exp, np.exp),
    "sigmoid": (Tensor.sigmoid,
                lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s)),
    "log": (Tensor.log, lambda x: -1 / x ** 2),
    "log_sigmoid": (Tensor.log_sigmoid, lambda x: -(s := 1 / (1 + np.exp(-x))) * (1 - s)),
    "sqrt": (Tensor.sqrt, lambda x: -0.25 * x ** -1.5),
    "1/x": (lambda t: 1 / t, lambda x: 2 / x ** 3),
    "2**x": (lambda t: 2 ** t, lambda x: 2 ** x * np.log(2) ** 2),
}


@pytest.mark.parametrize("name", list(_SECOND_DERIVATIVES))
def test_second_derivative_closed_form(name: str) -> None:
    f, second = _SECOND_DERIVATIVES[name]
    values = np.array([0.3, 0.9, 1.7])
    x = Tensor(values.copy(), requires_grad=True)
    (dy,) = grad(f(x).sum(), x, create_graph=True)
    assert isinstance(dy, Tensor) and dy.requires_grad
    (d2y,) = grad(dy.sum(), x)
    np.testing.assert_allclose(d2y, second(values), rtol=1e-12)
    assert x.grad is None


def test_third_derivative_of_a_cube() -> None:
    x = Tensor(np.array(1.5), requires_grad=True)
    (d1,) = grad(x ** 3, x, create_graph=True)
    (d2,) = grad(d1, x, create_graph=True)
    (d3,) = grad(d2, x)
    assert (float(d1.data), float(d2.data), float(d3)) == (3 * 1.5 ** 2, 6 * 1.5, 6.0)


def test_mixed_partial_derivative() -> None:
    x = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    y = Tensor(np.array([2.0, 0.25]), requires_grad=True)
    (dx,) = grad((x * x * y).sum(), x, create_graph=True)  # 2 x y
    (dxy,) = grad(dx.sum(), y)  # 2 x
    np.testing.assert_array_equal(dxy, 2 * x.data)


def _mlp_loss(params: list[Tensor], data: np.ndarray, target: np.ndarray) -> Tensor:
    w1, b1, w2, b2 = params
    hidden = (Tensor(data) @ w1 + b1).tanh()
    return ((hidden @ w2 + b2 - Tensor(target)) ** 2).mean()


def test_hessian_vector_product_of_a_tanh_mlp_matches_finite_differences() -> None:
    rng = np.random.default_rng(7)
    data, target = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    shapes = [(3, 4), (4,), (4, 2), (2,)]
    values = [rng.standard_normal(s) * 0.7 for s in shapes]
    direction = [rng.standard_normal(s) for s in shapes]
    params = [Tensor(v.copy(), requires_grad=True) for v in values]
    grads = grad(_mlp_loss(params, data, target), params, create_graph=True)
    dot = grads[0] * Tensor(direction[0])
    total = dot.sum()
    for g, v in zip(grads[1:], direction[1:], strict=True):
        total = total + (g * Tensor(v)).sum()
    hvp = grad(total, params)

    def gradient_at(step: float) -> list[np.ndarray]:
        moved = [Tensor(v + step * d, requires_grad=True) for v, d in zip(values, direction, strict=True)]
        return list(grad(_mlp_loss(moved, data, target), moved))

    eps = 1e-5
    plus, minus = gradient_at(eps), gradient_at(-eps)
    for h, p, m in zip(hvp, plus, minus, strict=True):
        np.testing.assert_allclose(h, (p - m) / (2 * eps), rtol=1e-6, atol=1e-8)
    assert all(p.grad is None for p in params)


_FIRST_DERIVATIVES: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh-mul": lambda x: (x.tanh() * x).sum(),
    "softmax-log": lambda x: (x.softmax(axis=1) * Tensor(np.arange(6.0).reshape(2, 3))).sum(),
    "logsumexp": lambda x: x.logsumexp(axis=0).sum(),
    "log_softmax": lambda x: x.log_softmax(axis=0)[0].sum(),
    "sigmoid-matmul": lambda x: (x @ x.T).sigmoid().sum(),
    "var-mean": lambda x: x.var(axis=1).sum() * x.mean(),
    "pow-div": lambda x: ((x * x + 1.0) ** x / (x * x + 2.0)).sum(),
    "getitem-repeat": lambda x: (x[[0, 0, 1]] ** 3).sum(),
    "max-where": lambda x: (x.max(axis=1) ** 2).sum() + where(x.data > 0, x * x, -x).sum(),
    "log_sigmoid-sqrt": lambda x: (x.log_sigmoid() * (x * x + 1.0).sqrt()).sum(),
}


@pytest.mark.parametrize("name", list(_FIRST_DERIVATIVES))
def test_gradcheck_of_the_first_derivative(name: str) -> None:
    f = _FIRST_DERIVATIVES[name]
    x = Tensor(np.array([[0.3, -0.8, 1.1], [0.5, 0.9, -1.4]]), requires_grad=True)
    assert gradcheck(lambda t: grad(f(t), t, create_graph=True)[0], [x])


# -- memory --------------------------------------------------------------------------------------------

def _training_step(rng: np.random.Generator, hessian: bool) -> list[weakref.ref[Tensor]]:
    data = Tensor(rng.standard_normal((8, 3)))
    labels = rng.integers(0, 2, size=8)
    w1 = Tensor(rng.standard_normal((3, 5)) * 0.5, requires_grad=True, name="w1")
    b1 = Tensor(np.zeros(5), requires_grad=True, name="b1")
    w2 = Tensor(rng.standard_normal((5, 2)) * 0.5, requires_grad=True, name="w2")
    params = [w1, b1, w2]
    logits = (data @ w1 + b1).tanh() @ w2
    loss = -logits.log_softmax(axis=1)[np.arange(8), labels].mean()
    nodes = toposort([loss])
    if hessian:
        grads = grad(loss, params, create_graph=True)
        total = (grads[0] * grads[0]).sum() + (grads[2] * grads[2]).sum()
        nodes += toposort([total])
        total.backward()
    else:
        loss.backward()
    with no_grad():
        for p in params:
            p.data = p.data - 0.1 * p.grad
            p.zero_grad()
    return [weakref.ref(node) for node in nodes]


@pytest.mark.parametrize("hessian", [False, True], ids=["backward", "create_graph"])
def test_graph_has_no_reference_cycles(hessian: bool) -> None:
    gc.collect()
    gc.disable()
    try:
        refs = _training_step(np.random.default_rng(0), hessian)
        assert len(refs) > 10
        alive = [r() for r in refs if r() is not None]
        assert not alive, f"{len(alive)} of {len(refs)} graph nodes outlive the step: {alive[:3]}"
    finally:
        gc.enable()


# -- repr ----------------------------------------------------------------------------------------------

def test_repr_shows_values_op_and_requires_grad() -> None:
    w = Tensor(np.array([[1.5, -2.0]]), requires_grad=True, name="w")
    text = repr(w)
    assert "1.5" in text and "-2." in text and "requires_grad=True" in text and "'w'" in text
    assert "op=" not in text
    y = w * 2
    text = repr(y)
    assert "3." in text and "-4." in text and "op=mul" in text and "requires_grad=True" in text
    plain = repr(Tensor(np.array([0.25])))
    assert "0.25" in plain and "requires_grad" not in plain and "op=" not in plain
    assert "float32" in repr(Tensor(np.ones(2, dtype=np.float32)))
    with no_grad():
        assert "op=exp" in repr(w.exp()) and "requires_grad" not in repr(w.exp())


# -- gradcheck itself ----------------------------------------------------------------------------------

def _sine(factor: float) -> type[Op]:
    """A sine op whose rule multiplies the true derivative by ``factor`` (2: a deliberately wrong rule)."""

    class Sine(Op):
        """d sin(a) = cos(a) da"""

        @staticmethod
        def forward(a: np.ndarray) -> np.ndarray:  # type: ignore[override]  # an op names its own inputs
            return np.sin(a)

        @staticmethod
        def backward(g: np.ndarray, out: np.ndarray, a: np.ndarray) -> tuple[np.ndarray]:
            return (g * factor * np.cos(a),)

    return Sine


def _wrong_sine() -> type[Op]:
    return _sine(2.0)


def _right_sine() -> type[Op]:
    return _sine(1.0)


def test_gradcheck_reports_a_wrong_rule_with_a_table(restore_ops: None) -> None:
    wrong = _wrong_sine()
    x = Tensor(np.array([[0.1, 0.7], [1.2, -0.4]]), requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda t: apply_op(wrong, t), [x])
    message = str(info.value)
    for word in ("input", "index", "analytic", "numeric"):
        assert word in message
    assert re.search(r"[1-4] of 4 checks disagree", message)
    assert re.search(r"\(\d, \d\)", message)  # the rows name element indices
    assert x.grad is None
    np.testing.assert_array_equal(x.data, [[0.1, 0.7], [1.2, -0.4]])  # the probes are undone
    right = _right_sine()
    assert gradcheck(lambda t: apply_op(right, t), [x])


def test_gradcheck_names_the_input_that_is_wrong(restore_ops: None) -> None:
    wrong = _wrong_sine()
    a = Tensor(np.array([0.2, 0.4]), requires_grad=True)
    b = Tensor(np.array([0.3, 0.6]), requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda p, q: p * 2 + apply_op(wrong, q), [a, b])
    rows = str(info.value).splitlines()[2:]
    assert rows and all(row.split()[0] == "1" for row in rows)


def test_gradcheck_registered_ops_are_removed_again() -> None:
    assert "Sine" not in OPS


def test_gradcheck_warns_for_float32() -> None:
    x = Tensor(np.array([0.5, 1.5], dtype=np.float32), requires_grad=True)
    with pytest.warns(UserWarning, match="float64"):
        assert gradcheck(lambda t: t * 3, [x], eps=1e-2, atol=1e-3, rtol=1e-3)


def test_gradcheck_projection_path_for_large_inputs(restore_ops: None) -> None:
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal(300), requires_grad=True)
    assert gradcheck(lambda t: (t.tanh() * t).sum(axis=0, keepdims=True) * t[:3], [x], max_elements=100)
    wrong = _wrong_sine()
    with pytest.raises(GradcheckError, match="<u, J v"):
        gradcheck(lambda t: apply_op(wrong, t), [x], max_elements=100)
    # The default threshold: 2001 elements take the projection path too.
    big = Tensor(rng.standard_normal(2001), requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda t: apply_op(wrong, t), [big])
    assert "of 4 checks" in str(info.value)


def test_gradcheck_needs_an_input_that_requires_grad() -> None:
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda t: t * 2, [Tensor(np.ones(2))])


def test_no_grad_works_as_a_bare_decorator_too() -> None:
    from tinygrad_edu import no_grad

    w = Tensor(np.ones(2), requires_grad=True)

    @no_grad
    def bare(t: Tensor) -> Tensor:
        return t * 2

    @no_grad()
    def called(t: Tensor) -> Tensor:
        return t * 2

    assert not bare(w).requires_grad and not called(w).requires_grad  # type: ignore[type-var]  # @no_grad returns bare
    assert (w * 2).requires_grad  # and the mode came back


@pytest.mark.filterwarnings("ignore::tinygrad_edu.LearnerWarning")  # the mistake is made on purpose here
@pytest.mark.parametrize("order", ["C", "F"])
def test_a_leafs_grad_is_laid_out_like_its_data_also_through_a_transpose(order: str) -> None:
    rng = np.random.default_rng(0)
    data = rng.standard_normal((3, 5))  # (out, in), as the tutorials
    w = Tensor(np.asfortranarray(data) if order == "F" else data, requires_grad=True)
    b = Tensor(np.zeros(3), requires_grad=True)
    x = rng.standard_normal((4, 5))
    g = rng.standard_normal((4, 3))
    out = Tensor(x) @ w.T + b
    out.backward(gradient=g)
    assert w.grad is not None and w.grad.strides == w.data.strides  # PyTorch's gradient layout contract
    np.testing.assert_allclose(w.grad, g.T @ x, rtol=1e-13)  # the same numbers, however they are laid out
    before = w.grad.copy()
    out.backward(gradient=g)  # accumulating keeps the layout
    assert w.grad.strides == w.data.strides
    np.testing.assert_allclose(w.grad, 2 * before, rtol=1e-13)
    for a in (x, x.T.copy().T):  # a row-major and a column-major data operand: the same gradient
        x_t = Tensor(a, requires_grad=True)
        (x_t @ w.T).backward(gradient=g)
        assert x_t.grad is not None and x_t.grad.strides == a.strides
        np.testing.assert_allclose(x_t.grad, g @ w.data, rtol=1e-13)


@pytest.mark.filterwarnings("ignore::tinygrad_edu.LearnerWarning")  # the mistake is made on purpose here
def test_two_leaves_never_share_a_grad_also_through_views() -> None:
    # add hands one array to both sides, and unsqueeze's rule returns a view of it: each leaf must own its .grad
    x = Tensor(np.ones(3), requires_grad=True)
    y = Tensor(np.ones(3), requires_grad=True)
    for _ in range(2):
        (x.unsqueeze(0) + y.unsqueeze(0)).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(y.grad, [2.0, 2.0, 2.0])
    assert x.grad is not None and y.grad is not None and not np.shares_memory(x.grad, y.grad)


@pytest.mark.filterwarnings("ignore::tinygrad_edu.LearnerWarning")  # the second pass is on purpose here
def test_a_leaf_never_takes_memory_that_another_tensors_grad_holds(restore_ops: None) -> None:
    class Symmetric(Op):
        """d (a + b)^2 = 2 (a + b) (da + db)"""

        @staticmethod
        def forward(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # type: ignore[override]  # its own inputs
            return (a + b) ** 2

        @staticmethod
        def backward(g: np.ndarray, out: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
            both = 2 * g * (a + b)
            return both, both  # one array for both inputs, as a learner may well write it

    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = Tensor(np.array([0.5, 0.5]), requires_grad=True)
    for _ in range(2):
        apply_op(Symmetric, x, y).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 10.0])  # twice 2 (x + y)
    np.testing.assert_array_equal(y.grad, [6.0, 10.0])
    # add passes its upstream array on as it is, and unsqueeze's rule a view of it: the leaf copies
    w = Tensor(np.ones(3), requires_grad=True)
    total = w.unsqueeze(0) + Tensor(np.ones((1, 3)))
    (total * 2).sum().backward()
    assert w.grad is not None and total.grad is not None and not np.shares_memory(w.grad, total.grad)


def test_in_place_operators_update_outside_a_graph_and_are_refused_inside_one() -> None:
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (w * w).sum().backward()
    with no_grad():
        w -= 0.5 * w.grad  # what PyTorch users write; it used to rebind the name and change nothing
    np.testing.assert_array_equal(w.data, [0.0, 0.0])
    t = Tensor(np.array([1.0, 2.0]))
    t += 1.0
    t *= Tensor(np.array([2.0, 3.0]))
    t /= 2.0
    np.testing.assert_array_equal(t.data, [2.0, 4.5])
    with pytest.raises(RuntimeError, match=r"^w -= \.\.\.: update a tensor that requires grad inside no_grad\(\)"):
        w -= 1.0


def test_grad_with_create_graph_checks_the_shape_of_a_tensor_gradient() -> None:
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    with pytest.raises(ValueError, match=r"the gradient has shape \(3, 1\).*exactly the output's shape, \(3,\)"):
        grad(x * x, x, grad_outputs=Tensor(np.ones((3, 1))), create_graph=True)
    (g,) = grad(x * x, x, grad_outputs=Tensor(np.array([1.0, 0.0, 2.0])), create_graph=True)
    np.testing.assert_array_equal(g.data, [2.0, 0.0, 12.0])


def test_a_list_index_changed_after_the_forward_pass_does_not_move_the_gradient() -> None:
    x = Tensor(np.arange(4.0), requires_grad=True)
    index = [0, 1]
    loss = (x[index] * Tensor(np.array([1.0, 2.0]))).sum()
    index[0] = 3  # the op kept its own copy of the index
    loss.backward()
    np.testing.assert_array_equal(x.grad, [1.0, 2.0, 0.0, 0.0])
