"""Loss values against numpy closed forms, gradients by gradcheck and by formula, and the error messages."""

import warnings

import numpy as np
import pytest

from tinygrad_edu import Tensor, gradcheck
from tinygrad_edu.losses import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss, QuadraticCost, SigmoidCrossEntropy,
    SoftmaxCrossEntropy, SumSquaredError, binary_cross_entropy, binary_cross_entropy_with_logits, mse,
    l2_penalty, nll_loss, quadratic_cost, sigmoid_cross_entropy, softmax_cross_entropy, sum_squared_error,
)
from tinygrad_edu.nn import LogSoftmax

RNG = np.random.default_rng(1234)
N, K = 5, 3
A = RNG.uniform(0.05, 0.95, (N, K))  # probabilities, away from 0 and 1 for the central differences
Y = RNG.uniform(0.0, 1.0, (N, K))
HARD = (RNG.uniform(size=(N, K)) > 0.5).astype(np.float64)
Z = RNG.standard_normal((N, K)) * 3
LABELS = np.array([0, 2, 1, 2, 0])
ONE_HOT = np.eye(K)[LABELS]


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _leaf(array):
    return Tensor(np.array(array, dtype=np.float64), requires_grad=True)


def _value_and_grad(fn, prediction, target):
    x = _leaf(prediction)
    loss = fn(x, target)
    loss.backward()
    return loss.item(), x.grad


# -- regression losses --------------------------------------------------------------------------------------

@pytest.mark.parametrize("fn, value, gradient", [
    (quadratic_cost, lambda a, y: np.sum((y - a) ** 2) / (2 * len(a)), lambda a, y: (a - y) / len(a)),
    (sum_squared_error, lambda a, y: np.sum((y - a) ** 2), lambda a, y: 2 * (a - y)),
    (mse, lambda a, y: np.mean((a - y) ** 2), lambda a, y: 2 * (a - y) / a.size),
])
def test_squared_losses_match_their_closed_forms(fn, value, gradient):
    loss, grad = _value_and_grad(fn, A, Y)
    assert loss == pytest.approx(value(A, Y), rel=1e-13)
    np.testing.assert_allclose(grad, gradient(A, Y), rtol=1e-12)
    assert gradcheck(lambda a: fn(a, Y), [_leaf(A)])


def test_loss_modules_equal_their_functions():
    pairs = [
        (QuadraticCost(), quadratic_cost, A, Y), (SumSquaredError(), sum_squared_error, A, Y),
        (MSELoss(), mse, A, Y), (BCELoss(), binary_cross_entropy, A, HARD),
        (SigmoidCrossEntropy(), sigmoid_cross_entropy, A, HARD),
        (BCEWithLogitsLoss(), binary_cross_entropy_with_logits, Z, HARD),
        (SoftmaxCrossEntropy(), softmax_cross_entropy, Z, LABELS), (NLLLoss(), nll_loss, np.log(A), ONE_HOT),
    ]
    for module, fn, prediction, target in pairs:
        assert module(Tensor(prediction), target).item() == fn(Tensor(prediction), target).item(), repr(module)
    assert CrossEntropyLoss is SoftmaxCrossEntropy
    assert repr(BCELoss(eps=1e-7, reduction="sum")) == "BCELoss(eps=1e-07, reduction='sum')"
    with pytest.raises(ValueError, match="reduction must be one of"):
        BCEWithLogitsLoss(reduction="average")


@pytest.mark.parametrize("fn", [quadratic_cost, sum_squared_error, mse, binary_cross_entropy,
                                sigmoid_cross_entropy, binary_cross_entropy_with_logits])
def test_mismatched_shapes_are_refused_not_broadcast(fn):
    prediction = Tensor(np.full((4, 1), 0.5))
    with pytest.raises(ValueError, match=r"prediction has shape \(4, 1\) but the target has shape \(4,\)"):
        fn(prediction, np.ones(4))
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(4, 2\)"):
        fn(prediction, np.ones((4, 2)))


def test_targets_may_be_tensors_and_float32_stays_float32():
    prediction = Tensor(A.astype(np.float32), requires_grad=True)
    for fn, target in [(quadratic_cost, Y), (mse, Tensor(Y)), (binary_cross_entropy, HARD),
                       (binary_cross_entropy_with_logits, Tensor(HARD)), (softmax_cross_entropy, LABELS)]:
        prediction.zero_grad()
        loss = fn(prediction, target)
        loss.backward()
        assert loss.dtype == np.float32 and prediction.grad.dtype == np.float32, fn.__name__
    assert quadratic_cost(Tensor(A), Tensor(Y)).item() == pytest.approx(quadratic_cost(Tensor(A), Y).item())


def test_a_target_that_requires_grad_gets_a_gradient():
    a, y = _leaf(A), _leaf(Y)
    quadratic_cost(a, y).backward()
    np.testing.assert_allclose(y.grad, (Y - A) / N, rtol=1e-12)


# -- binary cross-entropy on probabilities ------------------------------------------------------------------

def _bce(p, y):
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


@pytest.mark.parametrize("fn", [binary_cross_entropy, sigmoid_cross_entropy])
@pytest.mark.parametrize("target", [Y, HARD], ids=["soft", "hard"])
def test_bce_value_reductions_and_gradient(fn, target):
    per_element = _bce(A, target)
    loss, grad = _value_and_grad(fn, A, target)
    assert loss == pytest.approx(per_element.sum(axis=1).mean(), rel=1e-13)  # per-sample sum, sample mean
    np.testing.assert_allclose(grad, (A - target) / (A * (1 - A)) / N, rtol=1e-10)
    assert fn(Tensor(A), target, reduction="sum").item() == pytest.approx(per_element.sum(), rel=1e-13)
    np.testing.assert_allclose(fn(Tensor(A), target, reduction="per_sample").data, per_element.sum(axis=1),
                               rtol=1e-13)
    assert gradcheck(lambda a: fn(a, target), [_leaf(A)])


def test_sigmoid_cross_entropy_gives_the_tutorials_output_delta():
    z = _leaf(Z)
    sigmoid_cross_entropy(z.sigmoid(), HARD).backward()
    np.testing.assert_allclose(z.grad, (_sigmoid(Z) - HARD) / N, rtol=1e-10, atol=1e-15)
    assert gradcheck(lambda t: sigmoid_cross_entropy(t.sigmoid(), Y), [_leaf(Z)])


def test_saturated_but_right_outputs_cost_nothing_and_give_zero_gradient():
    z = _leaf([[40.0, -40.0], [0.0, 1.0]])  # sigmoid(40) rounds to exactly 1.0 in float64
    y = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert _sigmoid(40.0) == 1.0
    loss = sigmoid_cross_entropy(z.sigmoid(), y)
    loss.backward()
    expected = (np.log(2) + np.log(1 + np.e)) / 2  # only the second row costs anything
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert np.all(np.isfinite(z.grad))
    np.testing.assert_allclose(z.grad, (_sigmoid(z.data) - y) / 2, atol=1e-17)


def test_exact_zero_and_one_probabilities_that_are_right_cost_nothing():
    p = _leaf([[0.0, 1.0]])
    loss = binary_cross_entropy(p, [[0.0, 1.0]])
    loss.backward()
    assert loss.item() == 0.0
    np.testing.assert_array_equal(p.grad, [[1.0, -1.0]])  # d/dp of -log(1 - p) and of -log(p)


@pytest.mark.filterwarnings("ignore::tinygrad_edu.LearnerWarning")  # the mistake is made on purpose here
def test_saturated_and_wrong_is_infinite_as_documented():
    with np.errstate(divide="ignore"):
        loss = sigmoid_cross_entropy(Tensor([[1.0]]), [[0.0]])
    assert loss.item() == np.inf


def test_bce_eps_clips_probabilities():
    eps = 1e-7
    loss = binary_cross_entropy(Tensor([[0.0], [1.0]]), [[1.0], [0.0]], eps=eps)
    assert loss.item() == pytest.approx(-np.log(eps), rel=1e-9)


def test_bce_refuses_values_outside_zero_one():
    with pytest.raises(ValueError, match=r"prediction must lie in \[0, 1\].*binary_cross_entropy_with_logits"):
        binary_cross_entropy(Tensor(Z), HARD)
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\]"):
        sigmoid_cross_entropy(Tensor(A), HARD * 2)
    with pytest.raises(ValueError, match="reduction must be one of"):
        binary_cross_entropy(Tensor(A), HARD, reduction="elementwise")


# -- binary cross-entropy on logits -------------------------------------------------------------------------

@pytest.mark.parametrize("target", [Y, HARD], ids=["soft", "hard"])
def test_bce_with_logits_value_and_gradient(target):
    loss, grad = _value_and_grad(binary_cross_entropy_with_logits, Z, target)
    expected = (np.logaddexp(0, Z) - Z * target).sum(axis=1).mean()
    assert loss == pytest.approx(expected, rel=1e-13)
    assert loss == pytest.approx(_bce(_sigmoid(Z), target).sum(axis=1).mean(), rel=1e-9)
    np.testing.assert_allclose(grad, (_sigmoid(Z) - target) / N, rtol=1e-12, atol=1e-16)
    assert gradcheck(lambda z: binary_cross_entropy_with_logits(z, target), [_leaf(Z)])


def test_bce_with_logits_is_finite_with_the_right_limits_at_huge_logits():
    z = _leaf([[1e4, 1e4, -1e4, -1e4, 0.0, 0.0]])
    y = np.array([[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # no overflow anywhere on the way
        loss = binary_cross_entropy_with_logits(z, y, reduction="sum")
        loss.backward()
    per_element = [0.0, 1e4, 1e4, 0.0, np.log(2), np.log(2)]
    assert loss.item() == pytest.approx(sum(per_element), rel=1e-15)
    np.testing.assert_array_equal(z.grad, [[0.0, 1.0, -1.0, 0.0, -0.5, 0.5]])  # sigmoid(z) - y


def test_bce_with_logits_at_zero_logits_gives_half_minus_y():
    """A zero-initialised logistic regression (the cat seed) starts exactly at z = 0."""
    z = _leaf(np.zeros((4, 1)))
    y = np.array([[1.0], [0.0], [1.0], [1.0]])
    binary_cross_entropy_with_logits(z, y).backward()
    np.testing.assert_array_equal(z.grad, (0.5 - y) / 4)


# -- multi-class --------------------------------------------------------------------------------------------

def _log_softmax(z):
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def test_softmax_cross_entropy_value_and_gradient():
    loss, grad = _value_and_grad(softmax_cross_entropy, Z, LABELS)
    expected = np.mean(np.log(np.exp(Z).sum(axis=1)) - Z[np.arange(N), LABELS])
    assert loss == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(grad, (np.exp(_log_softmax(Z)) - ONE_HOT) / N, rtol=1e-12, atol=1e-16)
    assert gradcheck(lambda z: softmax_cross_entropy(z, LABELS), [_leaf(Z)])
    soft = RNG.dirichlet(np.ones(K), size=N)
    assert gradcheck(lambda z: softmax_cross_entropy(z, soft), [_leaf(Z)])
    assert softmax_cross_entropy(Tensor(Z), LABELS, reduction="sum").item() == pytest.approx(expected * N)


def test_labels_and_one_hot_give_the_same_value_and_gradient():
    from_labels = _value_and_grad(softmax_cross_entropy, Z, LABELS)
    from_one_hot = _value_and_grad(softmax_cross_entropy, Z, ONE_HOT)
    assert from_labels[0] == from_one_hot[0]
    np.testing.assert_array_equal(from_labels[1], from_one_hot[1])
    as_int32 = _value_and_grad(softmax_cross_entropy, Z, LABELS.astype(np.uint8))
    assert as_int32[0] == from_labels[0]


def test_softmax_cross_entropy_is_finite_for_huge_logits():
    z = _leaf([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss = softmax_cross_entropy(z, np.array([1, 1]))
        loss.backward()
    assert loss.item() == pytest.approx(1e4 / 2)  # the first sample is wrong by 1e4, the second right
    np.testing.assert_allclose(z.grad, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-300)


def test_nll_loss_on_log_probabilities():
    log_probs = _log_softmax(Z)
    loss, grad = _value_and_grad(nll_loss, log_probs, LABELS)
    assert loss == pytest.approx(-np.mean(log_probs[np.arange(N), LABELS]), rel=1e-13)
    np.testing.assert_array_equal(grad, -ONE_HOT / N)
    assert gradcheck(lambda lp: nll_loss(lp, LABELS), [_leaf(log_probs)])
    chained = nll_loss(LogSoftmax()(Tensor(Z)), ONE_HOT).item()
    assert chained == pytest.approx(softmax_cross_entropy(Tensor(Z), LABELS).item(), rel=1e-14)
    np.testing.assert_allclose(nll_loss(Tensor(log_probs), LABELS, reduction="per_sample").data,
                               -log_probs[np.arange(N), LABELS], rtol=1e-15)


@pytest.mark.parametrize("fn", [softmax_cross_entropy, nll_loss])
def test_class_target_errors_explain(fn):
    scores = Tensor(Z)
    with pytest.raises(ValueError, match=r"labels.astype\(np.int64\)"):
        fn(scores, LABELS.astype(np.float64))
    with pytest.raises(ValueError, match=r"reshape\(-1\)"):
        fn(scores, LABELS.reshape(-1, 1))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\] for 3 classes"):
        fn(scores, np.array([0, 1, 2, 3, 0]))
    with pytest.raises(ValueError, match="probability distribution"):
        fn(scores, ONE_HOT * 2)
    with pytest.raises(TypeError, match="dtype bool"):
        fn(scores, ONE_HOT.astype(bool))
    with pytest.raises(ValueError, match=r"\(n_samples, n_classes\).*reshape\(1, -1\)"):
        fn(Tensor(Z[0]), LABELS[:1])


# -- what every loss reports, word for word (each line here was a surviving mutant of a mutation run) ---------

ELEMENTWISE = [quadratic_cost, sum_squared_error, mse, binary_cross_entropy, sigmoid_cross_entropy,
               binary_cross_entropy_with_logits]
BROADCAST = ("they must be equal (a loss does not broadcast one against the other, which would silently compare "
             "every sample with every target).")


@pytest.mark.parametrize("fn", ELEMENTWISE + [softmax_cross_entropy, nll_loss])
def test_an_integer_prediction_is_refused_in_the_losss_own_name(fn):
    with pytest.raises(TypeError) as error:
        fn(Tensor(np.array([[1, 0]])), np.array([[0.0, 1.0]]))
    assert str(error.value) == f"{fn.__name__}: the prediction must hold floats, got dtype int64."


@pytest.mark.parametrize("fn", ELEMENTWISE)
def test_shape_mismatches_are_explained_in_the_losss_own_name(fn):
    name = fn.__name__

    def message(prediction_shape, target_shape):
        with pytest.raises(ValueError) as error:
            fn(Tensor(np.full(prediction_shape, 0.5)), np.ones(target_shape))
        return str(error.value)

    assert message((4, 1), (4,)) == (f"{name}: the prediction has shape (4, 1) but the target has shape (4,); "
                                     f"{BROADCAST} Reshape one of them, e.g. target.reshape((4, 1)).")
    assert message((4, 1), (4, 2)) == (f"{name}: the prediction has shape (4, 1) but the target has shape "
                                       f"(4, 2); {BROADCAST}")  # no hint: the sizes differ
    labels = (f"{name}: the target has shape (4,), one class label per sample, but this loss compares the "
              f"prediction of shape (4, 2) with one-hot targets of the same shape. Convert the labels with "
              f"datasets.one_hot(y) (or use losses.softmax_cross_entropy, which takes labels).")
    assert message((4, 2), (4,)) == labels  # two outputs already look like one-hot columns
    for prediction_shape, target_shape in [((4, 3), (5,)), ((8,), (4, 2)), ((4, 3, 1), (4,)), ((4, 1), (4,))]:
        assert "one class label per sample" not in message(prediction_shape, target_shape)


@pytest.mark.parametrize("fn", [binary_cross_entropy, sigmoid_cross_entropy, binary_cross_entropy_with_logits,
                                softmax_cross_entropy, nll_loss])
def test_an_unknown_reduction_is_refused_in_the_losss_own_name(fn):
    with pytest.raises(ValueError) as error:
        fn(Tensor(np.full((2, 2), 0.5)), np.array([0, 1]) if fn in (softmax_cross_entropy, nll_loss) else HARD[:2, :2],
           reduction="average")
    assert str(error.value) == (f"{fn.__name__}: reduction must be one of ('mean', 'sum', 'per_sample'), got "
                                f"'average'.")


def test_an_array_prediction_works_as_a_tensor_does():
    for fn, prediction, target in [(quadratic_cost, A, Y), (binary_cross_entropy, A, HARD),
                                   (binary_cross_entropy_with_logits, Z, HARD), (softmax_cross_entropy, Z, LABELS)]:
        assert fn(prediction, target).item() == fn(Tensor(prediction), target).item(), fn.__name__
    assert binary_cross_entropy(A, HARD, eps=1e-3).item() == binary_cross_entropy(Tensor(A), HARD, eps=1e-3).item()


def test_one_sample_without_a_batch_axis_is_one_sample():
    # a 0-d prediction counts as n = 1 sample
    assert quadratic_cost(Tensor(3.0), 1.0).item() == 2.0
    assert binary_cross_entropy(Tensor(0.25), 0.0, reduction="per_sample").item() == pytest.approx(-np.log(0.75))


def test_bce_of_an_empty_batch_sums_to_zero_and_averages_to_nan_as_pytorch():
    p, y = Tensor(np.zeros((0, 1))), np.zeros((0, 1))
    assert binary_cross_entropy(p, y, reduction="sum").item() == 0.0
    assert binary_cross_entropy(p, y, reduction="per_sample").shape == (0,)
    assert binary_cross_entropy_with_logits(p, y, reduction="sum").item() == 0.0
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore")  # the engine's NaN note, when it can tell the learner's line (not under mutmut)
        assert np.isnan(binary_cross_entropy(p, y).item())  # 0 / 0 samples, as PyTorch's BCELoss gives


def test_sum_squared_error_of_a_float32_prediction_stays_float32_and_an_integer_one_is_refused():
    loss = sum_squared_error(Tensor(np.array([1.0, 2.0], dtype=np.float32)), [0.0, 0.0])
    assert loss.dtype == np.float32 and loss.item() == 5.0
    with pytest.raises(TypeError, match=r"^sum_squared_error: the prediction must hold floats, got dtype int64"):
        sum_squared_error(Tensor(np.array([1, 2])), [0.0, 0.0])


@pytest.mark.filterwarnings("ignore::tinygrad_edu.LearnerWarning")  # float32 targets meet float64 predictions
def test_a_learned_target_gets_its_gradient_in_every_loss():
    """A target that requires grad (a learned soft label, or a teacher's output) is kept in the graph."""
    p = Tensor(A)
    for fn, target, expected in [
        (binary_cross_entropy, Y, -(np.log(A) - np.log(1 - A)) / N),
        (sigmoid_cross_entropy, Y, -(np.log(A) - np.log(1 - A)) / N),
        (binary_cross_entropy_with_logits, Y, -Z / N),
        (quadratic_cost, Y, (Y - A) / N),
    ]:
        y = Tensor(target.astype(np.float32), requires_grad=True)  # another dtype: kept anyway, not copied
        fn(Tensor(Z) if fn is binary_cross_entropy_with_logits else p, y).backward()
        assert y.grad is not None, fn.__name__
        np.testing.assert_allclose(y.grad, expected, rtol=1e-6, err_msg=fn.__name__)
    soft = RNG.dirichlet(np.ones(K), size=N)
    for fn, scores, expected in [(softmax_cross_entropy, Z, -_log_softmax(Z) / N),
                                 (nll_loss, _log_softmax(Z), -_log_softmax(Z) / N)]:
        y = Tensor(soft, requires_grad=True)
        fn(Tensor(scores), y).backward()
        np.testing.assert_allclose(y.grad, expected, rtol=1e-12, err_msg=fn.__name__)


def test_a_class_target_tensor_is_read_and_checked_like_an_array():
    scores = Tensor(Z)
    assert softmax_cross_entropy(scores, Tensor(ONE_HOT)).item() == softmax_cross_entropy(scores, ONE_HOT).item()
    with pytest.raises(ValueError, match="probability distribution"):
        softmax_cross_entropy(scores, Tensor(ONE_HOT * 2))  # a constant Tensor is checked as an array is
    with pytest.raises(ValueError, match=r"target has shape \(5, 4\).*must be either integer labels"):
        softmax_cross_entropy(scores, Tensor(np.full((N, K + 1), 0.25), requires_grad=True))  # kept only if it fits


def test_class_target_messages_word_for_word():
    scores = Tensor(Z)

    def message(target):
        with pytest.raises(ValueError) as error:
            softmax_cross_entropy(scores, target)
        return str(error.value)

    assert message(LABELS.reshape(-1, 1)) == ("softmax_cross_entropy: integer labels must have shape (5,), one "
                                              "per sample of the scores (5, 3); got (5, 1). Flatten it with "
                                              "labels.reshape(-1).")
    assert message(LABELS[:4]) == ("softmax_cross_entropy: integer labels must have shape (5,), one per sample "
                                   "of the scores (5, 3); got (4,).")
    assert message(LABELS.astype(np.float64)) == (
        "softmax_cross_entropy: the target has shape (5,) and dtype float64, but it must be either integer labels "
        "of shape (5,) or one-hot rows of shape (5, 3). Integer labels must have an integer dtype: "
        "labels.astype(np.int64).")
    assert message(np.ones((5, 2))) == ("softmax_cross_entropy: the target has shape (5, 2) and dtype float64, "
                                        "but it must be either integer labels of shape (5,) or one-hot rows of "
                                        "shape (5, 3).")
    assert message(np.array([0, 1, 2, 3, -1])) == ("softmax_cross_entropy: labels must lie in [0, 2] for 3 classes, "
                                                   "but they range from -1 to 3.")
    assert message(ONE_HOT * 2) == ("softmax_cross_entropy: each target row must be a probability distribution "
                                    "(one-hot, or soft labels that are >= 0 and sum to 1); row sums range from 2 to "
                                    "2 and the smallest entry is 0.")
    with pytest.raises(TypeError) as error:
        nll_loss(scores, ONE_HOT.astype(bool))
    assert str(error.value) == ("nll_loss: the target must be integer labels of shape (5,) or float one-hot rows "
                                "of shape (5, 3); got dtype bool with shape (5, 3).")
    with pytest.raises(ValueError) as error:
        nll_loss(Tensor(Z[0]), LABELS[:1])
    assert str(error.value) == ("nll_loss: expected scores of shape (n_samples, n_classes), got (3,); for one "
                                "sample use x.reshape(1, -1).")


def test_soft_label_rows_must_sum_to_one_within_1e_4():
    scores = Tensor(np.zeros((1, 2)))
    softmax_cross_entropy(scores, np.array([[0.5, 0.5 + 0.99e-4]]))  # within the tolerance
    with pytest.raises(ValueError, match="row sums range from 1 to 1"):
        softmax_cross_entropy(scores, np.array([[0.5, 0.5 + 1.05e-4]]))
    with pytest.raises(ValueError, match=r"smallest entry is -0\.1"):
        softmax_cross_entropy(scores, np.array([[-0.1, 1.1]]))


def test_float32_scores_keep_one_hot_targets_in_float32():
    loss = softmax_cross_entropy(Tensor(Z.astype(np.float32)), ONE_HOT)
    assert loss.dtype == np.float32


def test_a_ruled_out_class_costs_nothing_unless_it_is_the_target():
    log_probs = _leaf([[0.0, -np.inf], [np.log(0.5), np.log(0.5)]])
    loss = nll_loss(log_probs, np.array([[1.0, 0.0], [0.5, 0.5]]), reduction="sum")
    loss.backward()
    assert loss.item() == pytest.approx(np.log(2))
    np.testing.assert_array_equal(log_probs.grad, [[-1.0, 0.0], [-0.5, -0.5]])
    assert nll_loss(Tensor([[0.0, -np.inf]]), np.array([[0.0, 1.0]])).item() == np.inf


@pytest.mark.parametrize("z, y, value, gradient", [
    (np.inf, 1.0, 0.0, 0.0), (-np.inf, 0.0, 0.0, 0.0),         # right: costs nothing, no gradient
    (np.inf, 0.0, np.inf, 1.0), (-np.inf, 1.0, np.inf, -1.0),  # wrong: infinite, with PyTorch's gradient
    (np.inf, 0.5, np.inf, 0.5), (-np.inf, 0.5, np.inf, -0.5),  # a soft label: half wrong either way
])
def test_bce_with_logits_at_infinite_logits_gives_the_limits_and_pytorchs_gradient(z, y, value, gradient):
    logits = _leaf([[z, 0.0]])
    with np.errstate(all="raise"):  # no nan, no warning on the way
        loss = binary_cross_entropy_with_logits(logits, np.array([[y, 1.0]]), reduction="sum")
        loss.backward()
    assert loss.item() == value + np.log(2)
    np.testing.assert_array_equal(logits.grad, [[gradient, -0.5]])


def test_bce_with_logits_at_infinite_logits_matches_pytorch():
    torch = pytest.importorskip("torch")
    z = np.array([[np.inf, -np.inf, np.inf, -np.inf, 2.0]])
    y = np.array([[0.0, 1.0, 1.0, 0.0, 0.3]])
    ours = _leaf(z)
    binary_cross_entropy_with_logits(ours, y, reduction="sum").backward()
    theirs = torch.tensor(z, requires_grad=True)
    torch.nn.functional.binary_cross_entropy_with_logits(theirs, torch.tensor(y), reduction="sum").backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-15)


def test_bce_with_logits_refuses_targets_outside_zero_one_word_for_word():
    for target, low, high in [(HARD * 2, 0, 2), (HARD - 1, -1, 0)]:
        with pytest.raises(ValueError) as error:
            binary_cross_entropy_with_logits(Tensor(Z), target)
        assert str(error.value) == (f"binary_cross_entropy_with_logits: the target must lie in [0, 1], but it "
                                    f"ranges from {low} to {high}. Targets are probabilities: 0 or 1 for hard "
                                    f"labels.")
    binary_cross_entropy_with_logits(Tensor(Z[:, :2]), np.array([[0.0, 1.0]] * N))  # the edges are inside


def test_bce_messages_word_for_word():
    with pytest.raises(ValueError) as error:
        binary_cross_entropy(Tensor([[1.5, 0.5]]), [[1.0, 0.0]])
    assert str(error.value) == ("binary_cross_entropy: the prediction must lie in [0, 1], but it ranges from 0.5 to "
                                "1.5. It takes probabilities (e.g. a Sigmoid's output); for raw scores (logits) "
                                "use binary_cross_entropy_with_logits.")
    with pytest.raises(ValueError) as error:
        sigmoid_cross_entropy(Tensor([[0.5]]), [[-0.5]])
    assert str(error.value) == ("sigmoid_cross_entropy: the target must lie in [0, 1], but it ranges from -0.5 to "
                                "-0.5. Targets are probabilities: 0 or 1 for hard labels.")


def test_loss_modules_pass_on_their_settings():
    for module, fn, prediction, target in [
        (BCELoss(reduction="sum"), binary_cross_entropy, A, HARD),
        (SigmoidCrossEntropy(reduction="per_sample"), sigmoid_cross_entropy, A, HARD),
        (BCEWithLogitsLoss(reduction="sum"), binary_cross_entropy_with_logits, Z, HARD),
        (SoftmaxCrossEntropy(reduction="sum"), softmax_cross_entropy, Z, LABELS),
        (NLLLoss(reduction="per_sample"), nll_loss, np.log(A), LABELS),
    ]:
        np.testing.assert_array_equal(module(Tensor(prediction), target).data,
                                      fn(Tensor(prediction), target, reduction=module.reduction).data)
        assert not np.array_equal(module(Tensor(prediction), target).data, fn(Tensor(prediction), target).data)
    clipped = BCELoss(eps=1e-3)(Tensor([[0.0]]), [[1.0]]).item()
    assert clipped == pytest.approx(-np.log(1e-3))


def test_a_learned_bce_target_gets_log_p_minus_log_not_p_even_beside_a_saturated_prediction():
    """dL/dy = -(log p - log(1 - p)) per element; where p is exactly 0 or 1 and the term's coefficient is 0, the
    term is left out (0 log 0 = 0), and only there: a saturated neighbour changes nothing elsewhere."""
    p = Tensor(np.array([[0.0, 0.3, 1.0, 0.6]]))
    y = Tensor(np.array([[0.0, 0.0, 1.0, 1.0]]), requires_grad=True)
    loss = binary_cross_entropy(p, y, reduction="sum")
    loss.backward()
    assert y.grad is not None
    np.testing.assert_allclose(y.grad, [[0.0, -(np.log(0.3) - np.log(0.7)), 0.0, -(np.log(0.6) - np.log(0.4))]],
                               rtol=1e-14)
    fixed = binary_cross_entropy(p, y.data, reduction="sum")
    assert loss.item() == pytest.approx(fixed.item(), rel=1e-15) == -np.log(0.7) - np.log(0.6)


def test_what_the_mutation_run_found_in_l2_penalty_and_the_loss_classes():
    weight = Tensor(np.ones((2, 2)), requires_grad=True)
    for bad, says in [({"lmbda": True, "n": 1}, "l2_penalty: lmbda (the regularisation strength lambda) must be a "
                                                 "number >= 0, got True; 0 turns the penalty off."),
                      ({"lmbda": 1.0, "n": True}, "l2_penalty: n must be a positive count of examples (Nielsen's "
                                                  "training-set size, or the course's m), got True.")]:
        with pytest.raises(ValueError) as error:
            l2_penalty([weight], **bad)
        assert str(error.value) == says
    with pytest.raises(TypeError, match=r"^l2_penalty: params must be a model"):
        l2_penalty(42, 1.0, 1)
    for params, among in [([], "the parameters"), ({"bias": Tensor(np.ones(2), requires_grad=True)}, "['bias']"),
                          ({"scale": weight}, "['scale']")]:  # by name, a 2-D tensor not named weight is not one
        with pytest.raises(ValueError) as error:
            l2_penalty(params, 1.0, 1)
        assert str(error.value) == (f"l2_penalty: found no weights among {among}; it sums the parameters named "
                                    f"'weight', W1, W2, ... or w0, w1, ... (or unnamed ones with two or more axes).")
    assert l2_penalty({"norm.weight": Tensor(np.full(3, 2.0), requires_grad=True)}, 1.0, 1).item() == 6.0
    # the course's names, as a check_backprop loss gets them: W and a number; its (n, 1) biases are left out
    course = {"W1": weight, "b1": Tensor(np.ones((2, 1))), "W10": Tensor(np.full((1, 2), 3.0)),
              "Wx": Tensor(np.ones((2, 2))), "W": Tensor(np.ones((2, 2)))}
    assert l2_penalty(course, 1.0, 1).item() == (4 + 18) / 2
    nielsen = {"w0": Tensor(np.full((3, 2), 2.0)), "b0": Tensor(np.ones((3, 1))), "w": Tensor(np.ones((2, 2)))}
    assert l2_penalty(nielsen, 1.0, 1).item() == 6 * 4 / 2   # manual.network2 names: w0, w1, ...; not b0, w
    with pytest.raises(ValueError) as error:
        BCELoss(reduction="avg")
    assert str(error.value) == "BCELoss: reduction must be one of ('mean', 'sum', 'per_sample'), got 'avg'."


def test_a_saturated_prediction_that_is_wrong_costs_infinity():
    """p exactly 0 against a target 1 (or a soft 0.5): log 0 is kept there, so the loss is inf, not left out."""
    with warnings.catch_warnings(), np.errstate(divide="ignore"):
        warnings.simplefilter("ignore")  # the engine's note about an infinite loss
        for target in (1.0, 0.5):
            assert binary_cross_entropy(Tensor(np.array([[0.0], [0.5]])), [[target], [0.5]]).item() == np.inf
