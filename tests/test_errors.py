"""The engine's error catalogue, in-place safety and the NaN/Inf detective: each message is checked on the
parts that make it teach (the op, the tensors' names and shapes, the fix)."""

from __future__ import annotations

import contextlib
import gc
import re
import warnings
from typing import Any

import numpy as np
import pytest

from tinygrad_edu import Tensor, concatenate, detect_anomaly, enable_grad, gradcheck, grad, no_grad, stack, where


def test_matmul_shape_mismatch_names_both_shapes_and_the_fix() -> None:
    a = Tensor(np.ones((3, 4)), name="x")
    b = Tensor(np.ones((3, 2)), requires_grad=True, name="w")
    with pytest.raises(ValueError) as info:
        _ = a @ b
    message = str(info.value)
    assert message.startswith("matmul:")
    assert "x (3, 4)" in message and "w (3, 2)" in message
    assert "last axis of a (4)" in message and "axis of b (3)" in message
    assert "a @ b.T" in message


def test_broadcast_mismatch_names_shapes_and_suggests_reshape() -> None:
    a = Tensor(np.ones((3, 4)), name="a")
    b = Tensor(np.ones((3,)), name="b")
    with pytest.raises(ValueError) as info:
        _ = a + b
    message = str(info.value)
    assert message.startswith("add:") and "a (3, 4)" in message and "b (3,)" in message
    assert "from the right" in message and "reshape(-1, 1)" in message
    assert "axis -1 clashes: 4 vs 3" in message


def test_broadcast_mismatch_names_the_first_clashing_axis_from_the_right() -> None:
    with pytest.raises(ValueError, match="axis -2 clashes: 2 vs 3"):
        _ = Tensor(np.ones((2, 1))) * Tensor(np.ones((3, 5)))


def test_concatenate_and_stack_mismatches_explain_their_own_rule_not_broadcasting() -> None:
    a, b = Tensor(np.ones((2, 3)), name="a"), Tensor(np.ones((2, 4)), name="b")
    with pytest.raises(ValueError) as info:
        concatenate([a, b], axis=0)
    message = str(info.value)
    assert message.startswith("concatenate:") and "a (2, 3)" in message and "b (2, 4)" in message
    assert "every axis except axis 0" in message and "Broadcasting" not in message
    assert concatenate([a, b], axis=1).shape == (2, 7)  # the axis where they differ is the one to join along
    with pytest.raises(ValueError) as info:
        stack([a, b])
    message = str(info.value)
    assert message.startswith("stack:") and "exactly the same shape" in message and "Broadcasting" not in message


@pytest.mark.parametrize("switch", [no_grad, enable_grad, detect_anomaly])
def test_grad_switches_refuse_an_argument_that_is_not_a_function(switch: Any) -> None:
    with pytest.raises(TypeError, match=rf"{switch.__name__}\(\) takes no arguments.*with {switch.__name__}\(\)"):
        switch(3)


def test_backward_on_non_scalar_suggests_sum_or_gradient() -> None:
    y = Tensor(np.ones((2, 3)), requires_grad=True, name="y") * 2
    with pytest.raises(RuntimeError) as info:
        y.backward()
    message = str(info.value)
    assert "not a scalar" in message and "(2, 3)" in message
    assert "y.sum()" in message and "gradient=np.ones((2, 3))" in message


def test_backward_when_nothing_requires_grad_says_which_tensor_and_why() -> None:
    w = Tensor(np.ones(3), name="w")  # forgot requires_grad=True
    loss = (w * w).sum()
    with pytest.raises(RuntimeError) as info:
        loss.backward()
    message = str(info.value)
    assert "does not require grad" in message and "made by sum" in message
    assert "none of the inputs of sum required grad" in message and "requires_grad=True" in message


def test_backward_on_a_tensor_computed_under_no_grad_says_so() -> None:
    w = Tensor(np.ones(3), requires_grad=True, name="w")
    with no_grad():
        loss = (w * w).sum()
    with pytest.raises(RuntimeError, match=r"no_grad\(\)"):
        loss.backward()


def test_integer_tensor_cannot_require_grad() -> None:
    with pytest.raises(TypeError) as info:
        Tensor(np.arange(3), requires_grad=True, name="labels")
    message = str(info.value)
    assert "'labels'" in message and "int64" in message and "astype(np.float64)" in message


def test_gradient_of_the_wrong_shape() -> None:
    y = Tensor(np.ones((2, 3)), requires_grad=True) * 2
    with pytest.raises(ValueError, match=re.escape("gradient has shape (3, 2)")):
        y.backward(gradient=np.ones((3, 2)))


def test_float32_gradcheck_warns() -> None:
    x = Tensor(np.linspace(0.1, 1, 4, dtype=np.float32), requires_grad=True)
    with pytest.warns(UserWarning, match="float64"), contextlib.suppress(AssertionError):
        gradcheck(lambda t: t.tanh(), [x], atol=1e-2, rtol=1e-2, eps=1e-3)


def test_grad_of_unused_input_is_an_error_unless_allowed() -> None:
    x = Tensor(1.0, requires_grad=True, name="x")
    unused = Tensor(2.0, requires_grad=True, name="unused")
    with pytest.raises(RuntimeError, match=r"'unused'.*allow_unused=True"):
        grad(x * 3, [x, unused])
    assert grad(x * 3, [x, unused], allow_unused=True)[1] is None


# -- in-place safety ----------------------------------------------------------------------------------------

def test_changing_data_after_it_was_saved_is_caught_at_backward() -> None:
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True, name="w")
    loss = (w * w).sum()
    w.data -= 0.1 * np.ones(2)  # an SGD step at the wrong moment: before backward
    with pytest.raises(RuntimeError) as info:
        loss.backward()
    message = str(info.value)
    assert "'w'" in message and "modified in place after mul saved it" in message
    assert "Run the forward pass again" in message
    loss = (w * w).sum()  # a forward pass after the change saves the new values
    loss.backward()
    np.testing.assert_allclose(w.grad, 2 * w.data)
    w.data = w.data * 2  # another array through the setter, as well as in place
    with pytest.raises(RuntimeError, match=r"'w'.*was given new data \(t.data = ...\) after mul saved it"):
        loss.backward()


def test_setitem_after_saving_is_caught() -> None:
    x = Tensor(np.array([1.0, 2.0, 3.0]), name="x")
    w = Tensor(np.ones(3), requires_grad=True, name="w")
    loss = (x * w).sum()
    x[0] = 10.0
    with pytest.raises(RuntimeError, match=r"'x'.*modified in place after mul"):
        loss.backward()


def test_changing_an_output_is_caught_only_where_the_rule_reads_it() -> None:
    x = Tensor(np.array([0.5, -1.0]), requires_grad=True, name="x")
    y = x.tanh()
    with no_grad():
        y[0] = 0.0  # tanh's rule reads its output: 1 - y^2 would use the changed value
    with pytest.raises(RuntimeError, match=r"made by tanh.*changed after tanh computed it"):
        y.backward(gradient=np.ones(2))
    with pytest.raises(RuntimeError, match=r"^grad\(\): .*made by tanh"):
        grad(y, x, grad_outputs=np.ones(2))
    assert x.grad is None
    # matmul's rule does not read its output: masking logits in place is fine, as in PyTorch
    w = Tensor(np.arange(9.0).reshape(3, 3) / 9, requires_grad=True)
    inputs = np.array([[1.0, 2.0, -3.0]])
    logits = Tensor(inputs) @ w
    with no_grad():
        logits[:, 0] = -1e9  # class 0 masked out
    logits.log_softmax(axis=1)[:, 1].sum().backward()
    kept = (inputs @ w.data)[0, 1:]
    p = np.exp(kept - kept.max()) / np.exp(kept - kept.max()).sum()
    np.testing.assert_allclose(w.grad, np.outer(inputs, [0.0, 1 - p[0], -p[1]]), atol=1e-12)
    y = x * 2
    with no_grad():
        y[1] = 7.0
    y.backward(gradient=np.array([1.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 6.0])


def test_a_write_through_a_tensor_that_shares_the_memory_is_caught() -> None:
    def writes() -> list:
        def through_detach(x: Tensor) -> None:
            x.detach()[0] = 5.0

        def through_a_view(x: Tensor) -> None:
            with no_grad():
                view = x[:]
            view.data -= 1.0

        def through_a_second_tensor(x: Tensor) -> None:
            Tensor(x.data)[1] = 0.0

        return [through_detach, through_a_view, through_a_second_tensor]

    for write in writes():
        x = Tensor(np.array([1.0, 2.0]), requires_grad=True, name="x")
        loss = (x * x).sum()
        write(x)
        with pytest.raises(RuntimeError, match=r"'x'.*modified in place after mul"):
            loss.backward()
        (x * x).sum().backward()  # a forward pass after the write is fine
        np.testing.assert_array_equal(x.grad, 2 * x.data)


def test_a_write_anywhere_in_an_array_is_a_change_of_all_its_views() -> None:
    # NOTE: the version belongs to the owning array, as in PyTorch: other rows of the same array count as a
    # change too (conservative: an error, never a wrong gradient). The fix the message gives works.
    rng = np.random.default_rng(0)
    data = rng.standard_normal((100, 3))
    w = Tensor(rng.standard_normal((3, 1)), requires_grad=True)
    first = Tensor(data[0:10])
    loss_first = ((first @ w) ** 2).mean()
    second = Tensor(data[10:20])
    second[...] = second.data * 0.5  # rows 10-19 only, but of the same array as `first`
    with pytest.raises(RuntimeError, match="modified in place after matmul saved it"):
        (loss_first + ((second @ w) ** 2).mean()).backward()
    first = Tensor(data[0:10].copy())  # "give a tensor that will be changed its own copy of the data"
    loss_first = ((first @ w) ** 2).mean()
    second[...] = second.data * 0.5
    (loss_first + ((second @ w) ** 2).mean()).backward()
    expected = 2 * first.data.T @ (first.data @ w.data) / 10 + 2 * second.data.T @ (second.data @ w.data) / 10
    np.testing.assert_allclose(w.grad, expected, rtol=1e-12)
    # parameters cut from one flat vector share its version: an update of one counts as a change of the other
    theta = rng.standard_normal(9)
    w1 = Tensor(theta[:6].reshape(2, 3), requires_grad=True)
    w2 = Tensor(theta[6:], requires_grad=True)
    x = Tensor(rng.standard_normal((4, 2)))
    product = (x @ w1).data
    loss_b = (Tensor(product) * w2).sum()  # mul reads w2's values
    with no_grad():
        w1.data -= 0.1  # writes theta[:6]
    with pytest.raises(RuntimeError, match="modified in place after mul saved it"):
        loss_b.backward()


def test_writes_through_strided_views_and_into_masks_or_indices_are_caught() -> None:
    from numpy.lib.stride_tricks import as_strided

    base = np.arange(6.0)
    w = Tensor(np.ones(3), requires_grad=True, name="w")
    loss = (w * Tensor(as_strided(base, (3,), (8,)))).sum()
    Tensor(base)[...] = 0.0
    with pytest.raises(RuntimeError, match="modified in place after mul"):
        loss.backward()
    x = Tensor(np.arange(4.0), requires_grad=True)
    mask = Tensor(np.array([True, True, False, False]))
    loss = where(mask, x, 0.0).sum()
    mask[...] = False
    with pytest.raises(RuntimeError, match="the condition array that where kept was modified in place"):
        loss.backward()
    index = Tensor(np.array([0, 1]), dtype=np.int64)
    loss = (x[index] * Tensor([1.0, 10.0])).sum()
    index[...] = [2, 3]
    with pytest.raises(RuntimeError, match="the index array that getitem kept was modified in place"):
        loss.backward()


def test_the_record_of_writes_goes_with_the_arrays() -> None:
    from tinygrad_edu import inplace

    versions = inplace.LOG.versions  # the engine's own record, read here only to see that it does not grow
    before = len(versions)
    params = [Tensor(np.zeros(2), requires_grad=True) for _ in range(3000)]
    with no_grad():
        for p in params:
            p.data -= 1.0  # in place: one record per array
    assert len(versions) == before + 3000
    del params, p
    gc.collect()
    assert len(versions) <= before  # (an array recorded before this test may have gone too)


def test_a_change_is_refused_only_where_a_rule_reads_the_changed_values() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.zeros(3))
    loss = (x + b).sum()  # add's rule needs no values: changing b before backward is harmless
    with no_grad():
        b[...] = 1.0
    loss.backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0, 1.0])
    w = Tensor(np.zeros((2, 3)), requires_grad=True)
    e = w.exp()
    loss = e.sum()
    e.detach().reshape(6)[0] = 9.0  # sum does not care, but exp's rule reads its output
    with pytest.raises(RuntimeError, match=r"made by exp.*changed after exp computed it"):
        loss.backward()


def test_new_data_of_another_shape_is_refused_even_where_a_rule_reads_only_shapes() -> None:
    a = Tensor(np.ones(2), requires_grad=True, name="a")
    b = Tensor(np.ones(3), requires_grad=True)
    y = concatenate([a, b])
    a.data = np.ones(1)  # concatenate's rule splits the gradient by the inputs' sizes: they must not change
    with pytest.raises(RuntimeError, match=r"'a'.*given new data \(t.data = ...\) after concatenate"):
        (y * Tensor(np.arange(5.0))).sum().backward()
    with pytest.raises(TypeError, match="requires grad, so its data must be floating-point"):
        a.data = [1, 2]


def test_slice_element_and_true_index_writes_through_the_whole_tensor_are_caught() -> None:
    rng = np.random.default_rng(1)
    data = Tensor(rng.standard_normal((100, 3)))
    w = Tensor(rng.standard_normal((3, 1)), requires_grad=True)
    first = data[0:10]
    loss = ((first @ w) ** 2).mean()
    data[5] = 0.0  # a row that `first` read
    with pytest.raises(RuntimeError, match="modified in place after matmul"):
        loss.backward()
    x = Tensor(np.array([0.1, 0.2, 0.3]), requires_grad=True)
    y = x.exp()
    with no_grad():
        y[True] = 5.0  # numpy reads a Python True as a mask over everything, not as the index 1
    with pytest.raises(RuntimeError, match=r"made by exp.*changed after exp computed it"):
        y.sum().backward()
    data = Tensor(np.arange(24.0).reshape(8, 3))
    batch = data[0:4]
    loss = (batch @ w).sum()
    data[2, 1] = 0.0  # one element
    with pytest.raises(RuntimeError, match="modified in place after matmul"):
        loss.backward()


def test_a_graph_that_would_read_changed_values_cannot_be_copied() -> None:
    import copy
    import pickle

    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x.exp()
    with no_grad():
        y[0] = 100.0
    for make_copy in (copy.copy, copy.deepcopy, lambda t: pickle.loads(pickle.dumps(t))):
        with pytest.raises(RuntimeError, match=r"^copy/pickle: .*made by exp"):
            make_copy(y)
    for make_copy in (copy.deepcopy, lambda t: pickle.loads(pickle.dumps(t))):  # they copy y too
        with pytest.raises(RuntimeError, match=r"^copy/pickle: .*made by exp"):
            make_copy(y.sum())
    fresh = x.exp().sum()
    twin = copy.deepcopy(fresh)  # an unchanged graph copies, and its copy backpropagates
    twin.backward()
    np.testing.assert_allclose(twin.parents[0].parents[0].grad, np.exp([1.0, 2.0]))


def test_rebinding_a_cached_constant_does_not_change_later_ops() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    constant = (x * 2).parents[1]
    constant.data = np.array(3.0)
    np.testing.assert_array_equal((x * 2).data, [2.0, 4.0])
    other = (x * 7).parents[1]
    other.requires_grad_(True)
    assert (x * 7).parents[1] is not other  # it would collect gradients from every later `* 7`
    assert not (Tensor(np.ones(2)) * 7).requires_grad


def test_a_rule_that_reads_only_its_output_lets_its_input_change() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x.exp()
    with no_grad():
        x[...] = 0.0  # exp's rule reads exp(x), which it kept, not x
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.exp([1.0, 2.0]))


def test_rebinding_data_to_another_tensors_array_does_not_change_that_tensor() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    loss = (a * a).sum()
    with no_grad():
        b.data = a.data  # b now shares a's memory, but a's values did not change
    loss.backward()
    np.testing.assert_array_equal(a.grad, [2.0, 4.0])


def test_setitem_on_a_tensor_that_requires_grad_is_refused() -> None:
    w = Tensor(np.ones(3), requires_grad=True, name="w")
    with pytest.raises(RuntimeError, match=r"'w' .*would not be recorded"):
        w[0] = 2.0
    with no_grad():
        w[0] = 2.0  # allowed outside training
    assert w.data[0] == 2.0


def test_hand_written_sgd_between_steps_stays_legal() -> None:
    w = Tensor(np.array([3.0]), requires_grad=True, name="w")
    for _ in range(3):
        loss = (w * w).sum()
        loss.backward()
        w.data -= 0.25 * w.grad  # after backward, before the next forward: fine
        w.zero_grad()
    np.testing.assert_allclose(w.data, [3.0 * 0.5**3])


# -- the NaN / Inf detective --------------------------------------------------------------------------------

def test_detect_anomaly_stops_at_the_first_non_finite_forward_value() -> None:
    x = Tensor(np.array([1.0, 0.0, -1.0]), requires_grad=True, name="x")
    with detect_anomaly():
        y = x * 2
        with pytest.raises(FloatingPointError) as info, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (y - 2).log()  # log(0) and log(-4)
    message = str(info.value)
    assert message.startswith("detect_anomaly: log produced a non-finite value")
    assert "NaN: 2" in message and "Inf: 1" in message
    assert "test_errors.py:" in message  # the learner's file:line
    assert "input 0:" in message and "finite min -4" in message


def test_detect_anomaly_checks_gradients() -> None:
    x = Tensor(np.array([0.0, 1.0]), requires_grad=True, name="x")
    with detect_anomaly():
        y = x.sqrt().sum()  # finite forward, but d sqrt/dx = inf at 0
        with pytest.raises(FloatingPointError) as info, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y.backward()
    message = str(info.value)
    assert "backward of sqrt" in message and "'x'" in message and "Inf: 1" in message


def test_detect_anomaly_is_off_by_default_and_restored() -> None:
    x = Tensor(np.array([0.0]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isinf(x.log().data).all()  # no exception when off
        with pytest.raises(ValueError), detect_anomaly():
            raise ValueError("inside")
        assert np.isinf(x.log().data).all()  # restored after an exception


def test_graph_is_freed_without_the_garbage_collector() -> None:
    import weakref

    from tinygrad_edu.autograd import toposort

    gc.disable()
    try:
        w = Tensor(np.ones((3, 2)), requires_grad=True)
        loss = ((Tensor(np.ones((4, 3))) @ w).sigmoid() ** 2).mean()
        loss.backward()
        refs = [weakref.ref(t) for t in toposort([loss]) if t is not w]
        del loss
        assert all(r() is None for r in refs)
    finally:
        gc.enable()
