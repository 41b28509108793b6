"""Edge cases where the engine once disagreed with PyTorch (issue 15), and the family around each.

* every reduction over an empty axis: the value numpy defines (sum 0, mean and var nan, logsumexp -inf,
  softmax and log_softmax an empty result), and a clear error for max and min (which have no value there);
* every loss with -inf and huge (1e308) logits or predictions: the mathematical limit, never a nan made by
  ``-inf * 0``;
* var with ddof so large that n - ddof <= 0: a nan (or inf) value and gradient, not a ZeroDivisionError.

The last tests check the same cases against PyTorch and skip without it.
"""

import warnings

import numpy as np
import pytest

from tinygrad_edu import Tensor, gradcheck, losses

EMPTY = np.zeros((0, 3))
INF = np.inf


def _leaf(array):
    return Tensor(np.array(array, dtype=np.float64), requires_grad=True)


def _value_and_grad(fn, *arrays):
    """Call ``fn`` on leaves made from ``arrays``, backpropagate the sum of its output, return both."""
    leaves = [_leaf(a) for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "mean of empty slice", "degrees of freedom"
        out = fn(*leaves)
        out.sum().backward()
    return out.data, [leaf.grad for leaf in leaves]


def _same(actual, expected):
    """Bitwise-equal values, nan where nan, and the same shape."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_array_equal(actual, expected)


# -- reductions over an empty axis --------------------------------------------------------------------------

def _numpy_logsumexp(a, axis):
    return np.logaddexp.reduce(a, axis=axis)  # the identity of logaddexp is -inf: the log of an empty sum


@pytest.mark.parametrize("name, reference", [
    ("sum", lambda a, axis: a.sum(axis=axis)),
    ("mean", lambda a, axis: np.full(np.delete(a.shape, axis), np.nan)),
    ("var", lambda a, axis: np.full(np.delete(a.shape, axis), np.nan)),
    ("logsumexp", _numpy_logsumexp),
])
def test_a_reduction_over_an_empty_axis_has_numpys_value_and_an_empty_gradient(name, reference):
    value, (grad,) = _value_and_grad(lambda x: getattr(x, name)(axis=0), EMPTY)
    _same(value, reference(EMPTY, 0))
    assert grad.shape == EMPTY.shape


@pytest.mark.parametrize("name, expected", [("sum", 0.0), ("mean", np.nan), ("var", np.nan), ("logsumexp", -INF)])
def test_a_reduction_of_all_of_an_empty_tensor(name, expected):
    value, (grad,) = _value_and_grad(lambda x: getattr(x, name)(), EMPTY)
    _same(value, expected)
    assert grad.shape == EMPTY.shape
    value, _ = _value_and_grad(lambda x: getattr(x, name)(axis=0, keepdims=True), EMPTY)
    assert value.shape == (1, 3)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_over_an_empty_axis_is_empty(name):
    value, (grad,) = _value_and_grad(lambda x: getattr(x, name)(axis=0), EMPTY)
    assert value.shape == grad.shape == EMPTY.shape


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp", "sum", "mean", "var", "max", "min"])
def test_reducing_a_full_axis_of_an_empty_tensor_gives_an_empty_result(name):
    # a (0, 3) tensor reduced along axis 1: every one of the 0 rows is a full row, so nothing is undefined
    value, (grad,) = _value_and_grad(lambda x: getattr(x, name)(axis=1), EMPTY)
    assert value.shape == ((0, 3) if "softmax" in name else (0,))
    assert grad.shape == EMPTY.shape


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("axis", [0, None, (0, 1)])
def test_max_and_min_of_nothing_are_refused_with_a_message(name, axis):
    with pytest.raises(ValueError, match="empty axis") as info:
        getattr(Tensor(EMPTY), name)(axis=axis)
    assert "numpy and PyTorch refuse it too" in str(info.value)
    with pytest.raises(ValueError):  # numpy refuses the same reduction
        getattr(EMPTY, name)(axis=axis)


def test_logsumexp_softmax_and_log_softmax_keep_their_values_on_ordinary_and_extreme_rows():
    rows = np.array([[0.0, -INF, 1.0], [1e308, -1e308, 0.0], [-INF, -INF, -INF], [3.0, 3.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the extreme rows are handled, not warned about
        lse = Tensor(rows[:2]).logsumexp(axis=1).data
        soft = Tensor(rows[:2]).softmax(axis=1).data
        log_soft = Tensor(rows[:2]).log_softmax(axis=1).data
    np.testing.assert_allclose(lse, [np.log(1 + np.e), 1e308], rtol=1e-15)
    np.testing.assert_allclose(soft, [[1 / (1 + np.e), 0.0, np.e / (1 + np.e)], [1.0, 0.0, 0.0]], rtol=1e-15)
    _same(log_soft[1], [0.0, -INF, -1e308])
    _same(Tensor(rows[2:]).logsumexp(axis=1).data, [-INF, 3.0 + np.log(3.0)])


# -- var with no degrees of freedom left --------------------------------------------------------------------

def test_var_of_one_element_with_ddof_1_is_nan_with_a_nan_gradient():
    value, (grad,) = _value_and_grad(lambda x: x.var(ddof=1), [2.0])
    _same(value, np.nan)
    _same(grad, [np.nan])


def test_var_with_ddof_past_the_sample_size_follows_the_division_by_zero():
    # numpy divides by max(n - ddof, 0): (0.25 + 0.25) / 0 = inf; the gradient 2 (x - mean) / 0 is -inf, inf
    value, (grad,) = _value_and_grad(lambda x: x.var(ddof=2), [2.0, 3.0])
    _same(value, INF)
    _same(grad, [-INF, INF])
    value, (grad,) = _value_and_grad(lambda x: x.var(axis=1, ddof=3), [[1.0, 1.0], [0.0, 2.0]])
    _same(grad, [[np.nan, np.nan], [-INF, INF]])


@pytest.mark.parametrize("ddof", [0, 1, 2])
def test_var_gradient_still_matches_central_differences(ddof):
    x = _leaf(np.random.default_rng(ddof).standard_normal((3, 4)))
    gradcheck(lambda t: t.var(axis=1, ddof=ddof), [x])


# -- losses with -inf and huge logits -----------------------------------------------------------------------

def _log_softmax(z):
    z = np.asarray(z, dtype=np.float64)
    finite_top = np.max(z[np.isfinite(z)])
    return z - finite_top - np.log(np.sum(np.exp(z - finite_top)))


@pytest.mark.parametrize("target", [np.array([0]), np.array([[1.0, 0.0, 0.0]])], ids=["labels", "one-hot"])
@pytest.mark.parametrize("fn", [losses.softmax_cross_entropy, losses.SoftmaxCrossEntropy()], ids=["fn", "module"])
def test_softmax_cross_entropy_with_a_minus_inf_logit_elsewhere_is_finite(fn, target):
    z = [[0.0, -INF, 1.0]]
    value, (grad,) = _value_and_grad(lambda t: fn(t, target), z)
    assert value == -_log_softmax(z[0])[0]  # log(1 + e): 1.3133, as PyTorch
    softmax = np.exp(_log_softmax(z[0]))
    np.testing.assert_allclose(grad, [softmax - [1.0, 0.0, 0.0]], rtol=1e-15, atol=0)


def test_softmax_cross_entropy_of_the_class_ruled_out_is_inf_with_a_finite_gradient():
    value, (grad,) = _value_and_grad(lambda t: losses.softmax_cross_entropy(t, np.array([1])), [[0.0, -INF, 1.0]])
    assert value == INF
    np.testing.assert_allclose(grad, [np.exp(_log_softmax([0.0, -INF, 1.0])) - [0.0, 1.0, 0.0]], rtol=1e-15)


@pytest.mark.parametrize("target", [np.array([0]), np.array([[1.0, 0.0, 0.0]])], ids=["labels", "one-hot"])
def test_softmax_cross_entropy_with_huge_logits_is_exact(target):
    value, (grad,) = _value_and_grad(lambda t: losses.softmax_cross_entropy(t, target), [[1e308, -1e308, 0.0]])
    _same(value, 0.0)
    _same(grad, [[0.0, 0.0, 0.0]])
    value, _ = _value_and_grad(lambda t: losses.softmax_cross_entropy(t, np.array([2])), [[1e308, -1e308, 0.0]])
    _same(value, 1e308)


@pytest.mark.parametrize("reduction", ["mean", "sum", "per_sample"])
def test_nll_loss_of_a_zero_probability_class_that_is_not_the_target(reduction):
    with np.errstate(divide="ignore"):
        log_probs = np.log([[0.6, 0.0, 0.4], [0.5, 0.5, 0.0]])
    labels = np.array([0, 1])
    for target in (labels, np.eye(3)[labels]):
        value, (grad,) = _value_and_grad(
            lambda t: losses.nll_loss(t, target, reduction=reduction), log_probs)  # noqa: B023 (called at once)
        per_sample = -np.log([0.6, 0.5])
        expected = {"mean": per_sample.mean(), "sum": per_sample.sum(), "per_sample": per_sample}[reduction]
        np.testing.assert_allclose(value, expected, rtol=1e-15)
        scale = 0.5 if reduction == "mean" else 1.0
        _same(grad, -np.eye(3)[labels] * scale)
    value, _ = _value_and_grad(lambda t: losses.nll_loss(t, np.array([1, 2]), reduction=reduction), log_probs)
    assert np.all(value == INF)


def test_nll_loss_with_soft_targets_leaves_out_only_the_zero_weight_terms():
    with np.errstate(divide="ignore"):
        log_probs = np.log([[0.6, 0.0, 0.4]])
    value, (grad,) = _value_and_grad(lambda t: losses.nll_loss(t, np.array([[0.25, 0.0, 0.75]])), log_probs)
    assert value == pytest.approx(-(0.25 * np.log(0.6) + 0.75 * np.log(0.4)), rel=1e-15)
    _same(grad, [[-0.25, -0.0, -0.75]])


def test_binary_cross_entropy_with_infinite_logits_gives_the_limits():
    z = [[-INF, INF, INF, -INF]]
    y = [[0.0, 1.0, 0.0, 1.0]]
    value, (grad,) = _value_and_grad(
        lambda t: losses.binary_cross_entropy_with_logits(t, y, reduction="per_sample"), z)
    _same(value, [INF])  # right answers cost 0, wrong ones inf: 0 + 0 + inf + inf
    value, (grad,) = _value_and_grad(lambda t: losses.binary_cross_entropy_with_logits(t, y[0][:2]), z[0][:2])
    _same(value, 0.0)  # only right answers: exactly 0, not nan
    _same(grad, [0.0, 0.0])  # sigmoid(z) - y


def test_binary_cross_entropy_with_huge_logits_is_exact():
    z = [[-1e308, 1e308, 1e308, -1e308]]
    y = [[0.0, 1.0, 0.0, 1.0]]
    value, (grad,) = _value_and_grad(
        lambda t: losses.binary_cross_entropy_with_logits(t, y, reduction="sum"), z)
    _same(value, INF)  # 1e308 + 1e308 overflows
    _same(grad, [[0.0, 0.0, 1.0, -1.0]])  # sigmoid(z) - y
    value, _ = _value_and_grad(lambda t: losses.binary_cross_entropy_with_logits(t, y[0][:3], reduction="sum"),
                               z[0][:3])
    _same(value, 1e308)


@pytest.mark.filterwarnings("ignore::tinygrad_edu.LearnerWarning")  # the mistake is made on purpose here
@pytest.mark.parametrize("fn", [losses.sigmoid_cross_entropy, losses.binary_cross_entropy])
def test_probability_losses_after_a_sigmoid_of_infinite_and_huge_logits(fn):
    z = np.array([[-INF, INF, -1e308, 1e308]])
    y = [[0.0, 1.0, 0.0, 1.0]]  # all right answers
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, _ = _value_and_grad(lambda t: fn(t.sigmoid(), y), z)
    assert 0.0 <= value < 1e-300  # the sigmoid rounds to 1.0 or to 1e-308: essentially free
    value, _ = _value_and_grad(lambda t: fn(t.sigmoid(), [[1.0, 0.0, 1.0, 0.0]]), z)
    assert value == INF  # a sigmoid of exactly 1.0 on a wrong answer: log(0)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        fn(_leaf(z), y)  # logits are not probabilities


@pytest.mark.parametrize("fn", [losses.quadratic_cost, losses.sum_squared_error, losses.mse])
def test_regression_losses_with_infinite_and_huge_predictions_are_inf_not_nan(fn):
    for prediction in ([[-INF, 0.0]], [[1e308, 0.0]]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # 1e308 squared overflows
            value, (grad,) = _value_and_grad(lambda t: fn(t, [[0.0, 0.0]]), prediction)
        assert value == INF
        assert np.sign(grad[0, 0]) == np.sign(prediction[0][0]) and not np.isnan(grad).any()
        assert grad[0, 1] == 0.0


# -- against PyTorch ----------------------------------------------------------------------------------------

def _torch_value_and_grad(torch, fn, *arrays):
    leaves = [torch.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = fn(*leaves)
    out.sum().backward()
    return out.detach().numpy(), [leaf.grad.numpy() for leaf in leaves]


def _torch_cases(torch):
    functional = torch.nn.functional
    with np.errstate(divide="ignore"):
        log_probs = np.log([[0.6, 0.0, 0.4]])
    zero_index, one_index = torch.tensor([0]), torch.tensor([1])
    return [
        ("logsumexp of an empty axis", EMPTY, lambda x: x.logsumexp(axis=0), lambda x: x.logsumexp(0)),
        ("softmax of an empty axis", EMPTY, lambda x: x.softmax(axis=0), lambda x: x.softmax(0)),
        ("log_softmax of an empty axis", EMPTY, lambda x: x.log_softmax(axis=0), lambda x: x.log_softmax(0)),
        ("sum of an empty axis", EMPTY, lambda x: x.sum(axis=0), lambda x: x.sum(0)),
        ("mean of an empty axis", EMPTY, lambda x: x.mean(axis=0), lambda x: x.mean(0)),
        ("var of an empty axis", EMPTY, lambda x: x.var(axis=0), lambda x: x.var(0, correction=0)),
        ("cross-entropy with a -inf logit", [[0.0, -INF, 1.0]],
         lambda z: losses.softmax_cross_entropy(z, np.array([0])), lambda z: functional.cross_entropy(z, zero_index)),
        ("cross-entropy of the -inf class", [[0.0, -INF, 1.0]],
         lambda z: losses.softmax_cross_entropy(z, np.array([1])), lambda z: functional.cross_entropy(z, one_index)),
        ("cross-entropy with huge logits", [[1e308, -1e308, 0.0]],
         lambda z: losses.softmax_cross_entropy(z, np.array([0])), lambda z: functional.cross_entropy(z, zero_index)),
        ("nll_loss with a log(0) entry", log_probs,
         lambda lp: losses.nll_loss(lp, np.array([0])), lambda lp: functional.nll_loss(lp, zero_index)),
        ("var of one element with ddof=1", [2.0], lambda x: x.var(ddof=1), lambda x: x.var(correction=1)),
        ("var of equal elements with ddof=n", [2.0, 2.0], lambda x: x.var(ddof=2), lambda x: x.var(correction=2)),
        ("bce with huge logits", [-1e308, 1e308, 1e308, -1e308],
         lambda z: losses.binary_cross_entropy_with_logits(z, [0.0, 1.0, 0.0, 1.0], reduction="per_sample"),
         lambda z: functional.binary_cross_entropy_with_logits(
             z, torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64), reduction="none")),
    ]


def test_the_edge_cases_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    for label, data, ours, theirs in _torch_cases(torch):
        value, grads = _value_and_grad(ours, data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch_value, torch_grads = _torch_value_and_grad(torch, theirs, data)
        np.testing.assert_allclose(value, torch_value, rtol=1e-12, atol=0, err_msg=label)
        np.testing.assert_allclose(grads[0], torch_grads[0], rtol=1e-12, atol=0, err_msg=label)


@pytest.mark.parametrize("name", ["amax", "amin"])
def test_pytorch_refuses_max_and_min_of_an_empty_axis_too(name):
    torch = pytest.importorskip("torch")
    with pytest.raises((IndexError, RuntimeError)):
        getattr(torch.zeros((0, 3)), name)(0)
