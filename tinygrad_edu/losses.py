"""Loss functions, each as a function and as a ``Module`` class, built from engine ops (so ``backward`` works).

Every loss takes ``(prediction, target)``: the prediction a Tensor (an array is wrapped), the target a Tensor
or an array, cast to the prediction's dtype. Shapes must match exactly; an ``(n, 1)`` prediction is never
silently broadcast against an ``(n,)`` target. ``n`` is the number of samples: the length of the first axis.

Each docstring gives the formula and its gradient with respect to the prediction.

>>> import numpy as np
>>> from tinygrad_edu import Tensor
>>> a = Tensor([[0.8], [0.3]], requires_grad=True)
>>> loss = quadratic_cost(a, np.array([[1.0], [0.0]]))
>>> round(loss.item(), 4)
0.0325
>>> loss.backward()
>>> a.grad.round(4).tolist()
[[-0.1], [0.15]]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .nn import Module, named_items
from .tensor import Tensor, where

__all__ = [
    "quadratic_cost", "sum_squared_error", "mse", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "sigmoid_cross_entropy", "softmax_cross_entropy", "nll_loss", "l2_penalty",
    "QuadraticCost", "SumSquaredError", "MSELoss", "BCELoss", "BCEWithLogitsLoss", "SigmoidCrossEntropy",
    "SoftmaxCrossEntropy", "CrossEntropyLoss", "NLLLoss",
]

_REDUCTIONS = ("mean", "sum", "per_sample")


# -- helpers ------------------------------------------------------------------------------------------------

def _prediction(x: Any, loss: str) -> Tensor:
    t = x if isinstance(x, Tensor) else Tensor(x)
    if t.dtype.kind != "f":
        raise TypeError(f"{loss}: the prediction must hold floats, got dtype {t.dtype}.")
    return t


def _target(y: Any, prediction: Tensor, loss: str) -> Tensor:
    """The target as a Tensor of the prediction's shape and dtype; a target that requires grad is kept as is."""
    if isinstance(y, Tensor):
        target = y if y.requires_grad or y.dtype == prediction.dtype else Tensor(y.data.astype(prediction.dtype))
    else:
        target = Tensor(np.asarray(y, dtype=prediction.dtype))
    if target.shape != prediction.shape:
        if target.ndim == 1 and prediction.ndim == 2 and len(target) == len(prediction) and prediction.shape[1] > 1:
            raise ValueError(
                f"{loss}: the target has shape {target.shape}, one class label per sample, but this loss compares "
                f"the prediction of shape {prediction.shape} with one-hot targets of the same shape. Convert the "
                f"labels with datasets.one_hot(y) (or use losses.softmax_cross_entropy, which takes labels).")
        hint = ""
        if target.size == prediction.size:
            hint = f" Reshape one of them, e.g. target.reshape({prediction.shape})."
        raise ValueError(f"{loss}: the prediction has shape {prediction.shape} but the target has shape "
                         f"{target.shape}; they must be equal (a loss does not broadcast one against the "
                         f"other, which would silently compare every sample with every target).{hint}")
    return target


def _samples(t: Tensor) -> int:
    return t.shape[0] if t.ndim else 1


def _check_reduction(reduction: str, loss: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{loss}: reduction must be one of {_REDUCTIONS}, got {reduction!r}.")


def _reduce(terms: Tensor, reduction: str) -> Tensor:
    """Sum ``terms`` over each sample's outputs, then over samples ("sum"), or average over samples ("mean")."""
    if reduction == "sum":
        return terms.sum()
    if reduction == "mean":
        return terms.sum() / _samples(terms)
    return terms.sum(axis=tuple(range(1, terms.ndim))) if terms.ndim > 1 else terms


def _check_range(t: Tensor, what: str, loss: str, hint: str) -> tuple[float, float]:
    """Refuse values outside [0, 1]; return the smallest and largest value."""
    data = t.data
    if not data.size:
        return 0.0, 1.0
    low, high = float(data.min()), float(data.max())
    if low < 0 or high > 1:
        raise ValueError(f"{loss}: the {what} must lie in [0, 1], but it ranges from {low:.4g} to {high:.4g}. "
                         f"{hint}")
    return low, high


# -- regression losses --------------------------------------------------------------------------------------

def quadratic_cost(a: Any, y: Any) -> Tensor:
    """Nielsen's quadratic cost C = 1/(2n) sum_i ||y_i - a_i||^2;  dC/da = (a - y) / n.

    >>> round(quadratic_cost(Tensor([[1.0, 2.0]]), [[0.0, 0.0]]).item(), 6)
    2.5
    """
    a = _prediction(a, "quadratic_cost")
    diff = a - _target(y, a, "quadratic_cost")
    return (diff * diff).sum() / (2 * _samples(a))


def sum_squared_error(a: Any, y: Any) -> Tensor:
    """The XOR tutorial's loss L = sum (y - a)^2 over every element;  dL/da = 2 (a - y).

    >>> sum_squared_error(Tensor([1.0, 2.0]), [0.0, 0.0]).item()
    5.0
    """
    a = _prediction(a, "sum_squared_error")
    diff = a - _target(y, a, "sum_squared_error")
    return (diff * diff).sum()


def mse(a: Any, y: Any) -> Tensor:
    """Mean squared error L = mean over all N elements of (a - y)^2;  dL/da = 2 (a - y) / N.

    >>> mse(Tensor([[1.0, 2.0]]), [[0.0, 0.0]]).item()
    2.5
    """
    a = _prediction(a, "mse")
    diff = a - _target(y, a, "mse")
    return (diff * diff).mean()


# -- binary classification ----------------------------------------------------------------------------------

def _bce(p: Tensor, y: Tensor, reduction: str, loss: str) -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) per element, reduced, with 0 log 0 = 0."""
    _check_range(y, "target", loss, "Targets are probabilities: 0 or 1 for hard labels.")
    low, high = _check_range(p, "prediction", loss,
                             "It takes probabilities (e.g. a Sigmoid's output); for raw scores (logits) use "
                             "binary_cross_entropy_with_logits.")
    labels = y.data
    # NOTE: where p is exactly 0 or 1, a term whose coefficient is 0 is left out by taking the log of 1
    # instead (``where`` before ``log``): a saturated output that is right (p == 1.0 with y == 1) then costs 0
    # with gradient 0, not 0 * inf = nan forward and 0 / 0 backward. Only those elements: elsewhere the log is
    # kept, as a learned target's gradient log p - log(1 - p) needs it. Inside (0, 1) no guard is needed.
    data = p.data
    log_p = (p if low > 0 else where((labels > 0) | (data > 0), p, 1.0)).log()
    log_not_p = ((1 - p) if high < 1 else where((labels < 1) | (data < 1), 1 - p, 1.0)).log()
    not_y = (1 - y) if y.requires_grad else Tensor(1 - labels)
    return -_reduce(y * log_p + not_y * log_not_p, reduction)


def binary_cross_entropy(p: Any, y: Any, eps: float = 0.0, reduction: str = "mean") -> Tensor:
    """Cross-entropy of probabilities p against targets y in [0, 1].

    L = -(1/n) sum_i sum_k [y log p + (1 - y) log(1 - p)]: summed over each sample's outputs and averaged over
    the n samples (``reduction="mean"``, the MNIST tutorial's convention); ``"sum"`` drops the 1/n and
    ``"per_sample"`` returns the n per-sample sums. PyTorch's ``BCELoss`` averages over all elements instead,
    so for k outputs per sample it is this value divided by k. It is Nielsen's chapter-3 cross-entropy cost
    (``manual.network2``, cost="cross_entropy"); ``sigmoid_cross_entropy`` is the same value under the MNIST
    tutorial's name.

    dL/dp = (p - y) / (p (1 - p)) / n; after a Sigmoid (p = sigmoid(z)) that becomes dL/dz = (p - y) / n.
    With ``eps > 0``, p is clipped into [eps, 1 - eps] first (no gradient flows where it was clipped).
    Saturated outputs make it infinite (p == 1.0 with y < 1): prefer ``binary_cross_entropy_with_logits``.

    >>> round(binary_cross_entropy(Tensor([[0.9], [0.2]]), [[1.0], [0.0]]).item(), 4)
    0.1643
    """
    _check_reduction(reduction, "binary_cross_entropy")
    p = _prediction(p, "binary_cross_entropy")
    y = _target(y, p, "binary_cross_entropy")
    if eps:
        p = p.clip(eps, 1 - eps)
    return _bce(p, y, reduction, "binary_cross_entropy")


def sigmoid_cross_entropy(a: Any, y: Any, reduction: str = "mean") -> Tensor:
    """The 3-layer MNIST tutorial's loss, given the network's sigmoid OUTPUT a = sigmoid(z).

    L = -(1/n) sum_i sum_k [y log a + (1 - y) log(1 - a)], whose gradient at the pre-activation is the tutorial's
    output delta: dL/dz = dL/da * a (1 - a) = (a - y) / n, which ``backward`` reproduces through the Sigmoid
    node. Its limit: once the sigmoid rounds to exactly 1.0 (z > about 37 in float64, 17 in float32) a wrong
    answer costs log(0) = inf; ``binary_cross_entropy_with_logits(z, y)`` takes z itself and stays finite.
    The value is ``binary_cross_entropy``'s (Nielsen's chapter-3 cost), under the tutorial's name.

    >>> z = Tensor([[0.0, 2.0]], requires_grad=True)
    >>> sigmoid_cross_entropy(z.sigmoid(), [[1.0, 0.0]]).backward()
    >>> z.grad.round(4).tolist()  # sigmoid(z) - y
    [[-0.5, 0.8808]]
    """
    _check_reduction(reduction, "sigmoid_cross_entropy")
    a = _prediction(a, "sigmoid_cross_entropy")
    return _bce(a, _target(y, a, "sigmoid_cross_entropy"), reduction, "sigmoid_cross_entropy")


def binary_cross_entropy_with_logits(z: Any, y: Any, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of sigmoid(z) computed from the logits z, stable for any z.

    Per element: -[y log sigmoid(z) + (1 - y) log sigmoid(-z)], equal to -[y log s + (1 - y) log(1 - s)] with
    s = sigmoid(z); reduced as ``binary_cross_entropy`` (default: summed per sample, averaged over samples).
    dL/dz = (sigmoid(z) - y) / n.

    NOTE: the ``log_sigmoid`` op is finite for every z and exact where sigmoid(z) rounds to 1 (its value
    is then -exp(-z), which 1 - sigmoid(z) or a softplus minus z would cancel away); and it is one smooth op,
    unlike relu(z) - z y + log(1 + exp(-|z|)), whose kinks give -y instead of 1/2 - y at z = 0, exactly
    where a zero-initialised model starts.

    >>> z = Tensor([-1e4, 0.0, 30.0, 1e4], requires_grad=True)
    >>> loss = binary_cross_entropy_with_logits(z, [1.0, 1.0, 1.0, 1.0], reduction="sum")
    >>> loss.item() == float(1e4 + np.log(2) + np.log1p(np.exp(-30.0)))
    True
    >>> loss.backward()
    >>> z.grad.round(6).tolist()
    [-1.0, -0.5, -0.0, 0.0]
    """
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    z = _prediction(z, "binary_cross_entropy_with_logits")
    y = _target(y, z, "binary_cross_entropy_with_logits")
    _check_range(y, "target", "binary_cross_entropy_with_logits",
                 "Targets are probabilities: 0 or 1 for hard labels.")
    z_for_y, z_for_not_y = z, z
    finite = np.isfinite(z.data)
    if not finite.all():
        # NOTE: an infinite logit whose term has coefficient 0 (z = -inf with y = 0: a right answer) would give
        # 0 * -inf = nan. There the logit is replaced by 0 before log_sigmoid, so the term is 0 * finite = 0
        # with gradient 0: the loss is the limit (0 for a right answer, inf for a wrong one), not nan.
        labels = y.data
        z_for_y = where(finite | (labels != 0), z, 0.0)
        z_for_not_y = where(finite | (labels != 1), z, 0.0)
    return _reduce(-(y * z_for_y.log_sigmoid() + (1 - y) * (-z_for_not_y).log_sigmoid()), reduction)


# -- multi-class classification -----------------------------------------------------------------------------

def _class_targets(target: Any, scores: Tensor, loss: str) -> np.ndarray | Tensor:
    """Integer labels (n,) are returned checked; (n, C) float rows must be distributions (one-hot or soft)."""
    if scores.ndim != 2:
        raise ValueError(f"{loss}: expected scores of shape (n_samples, n_classes), got {scores.shape}; "
                         f"for one sample use x.reshape(1, -1).")
    n, classes = scores.shape
    if isinstance(target, Tensor):
        if target.requires_grad and target.shape == scores.shape:
            return target  # a soft target that is itself being learned: keep it in the graph
        target = target.data
    t = np.asarray(target)
    if t.dtype.kind in "iu":
        if t.shape != (n,):
            extra = " Flatten it with labels.reshape(-1)." if t.size == n else ""
            raise ValueError(f"{loss}: integer labels must have shape ({n},), one per sample of the scores "
                             f"{scores.shape}; got {t.shape}.{extra}")
        if t.size and (t.min() < 0 or t.max() >= classes):
            raise ValueError(f"{loss}: labels must lie in [0, {classes - 1}] for {classes} classes, but they "
                             f"range from {t.min()} to {t.max()}.")
        return t
    if t.dtype.kind == "f":
        if t.shape != scores.shape:
            hint = (" Integer labels must have an integer dtype: labels.astype(np.int64)."
                    if t.shape == (n,) else "")
            raise ValueError(f"{loss}: the target has shape {t.shape} and dtype {t.dtype}, but it must be either "
                             f"integer labels of shape ({n},) or one-hot rows of shape {scores.shape}.{hint}")
        sums = t.sum(axis=1)
        if t.size and (t.min() < 0 or not np.allclose(sums, 1.0, rtol=0, atol=1e-4)):
            raise ValueError(f"{loss}: each target row must be a probability distribution (one-hot, or soft "
                             f"labels that are >= 0 and sum to 1); row sums range from {sums.min():.4g} to "
                             f"{sums.max():.4g} and the smallest entry is {t.min():.4g}.")
        return Tensor(t.astype(scores.dtype, copy=False))
    raise TypeError(f"{loss}: the target must be integer labels of shape ({n},) or float one-hot rows of shape "
                    f"{scores.shape}; got dtype {t.dtype} with shape {t.shape}.")


def _log_likelihood(log_probs: Tensor, target: np.ndarray | Tensor) -> Tensor:
    """Each sample's log-likelihood: ``log_probs[i, label_i]`` (n,), or the terms ``t * log_probs`` (n, C).

    NOTE: for labels the target's entry is picked, not multiplied by a one-hot row: a class the model rules out
    (log_probs = -inf, e.g. a logit of -inf) would otherwise give -inf * 0 = nan for a label it does not
    concern. For probability rows an entry of weight 0 is left out the same way (0 log 0 = 0).
    """
    if isinstance(target, np.ndarray):
        return log_probs[np.arange(len(target)), target]
    finite = np.isfinite(log_probs.data)
    if finite.all():
        return log_probs * target
    return where(finite | (target.data != 0), log_probs, 0.0) * target


def nll_loss(log_probs: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities (n, C), e.g. a LogSoftmax's output.

    L = -(1/n) sum_i log_probs[i, label_i]: the mean over samples of the picked entries; for one-hot or soft
    rows t, L = -(1/n) sum_i sum_c t_ic log_probs_ic.  dL/dlog_probs = -t / n (t: the labels' one-hot rows).
    A log-probability of -inf (probability 0) costs nothing where the target is 0, and inf where it is not.

    >>> round(nll_loss(Tensor(np.log([[0.5, 0.5], [0.1, 0.9]])), np.array([0, 1])).item(), 4)
    0.3993
    """
    _check_reduction(reduction, "nll_loss")
    log_probs = _prediction(log_probs, "nll_loss")
    t = _class_targets(target, log_probs, "nll_loss")
    return _reduce(-_log_likelihood(log_probs, t), reduction)


def softmax_cross_entropy(logits: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Cross-entropy of softmax(logits) (n, C) against labels (n,) or one-hot rows (n, C).

    L = -(1/n) sum_i sum_c t_ic log softmax(z_i)_c, computed as ``nll_loss(log_softmax(z))`` so large logits
    cannot overflow, and a logit of -inf (a class ruled out) is fine unless it is the target's.
    dL/dz = (softmax(z) - t) / n.

    >>> logits = Tensor([[2.0, 0.0, 0.0]], requires_grad=True)
    >>> softmax_cross_entropy(logits, np.array([0])).backward()
    >>> logits.grad.round(4).tolist()  # softmax([2, 0, 0]) - [1, 0, 0]
    [[-0.213, 0.1065, 0.1065]]
    """
    _check_reduction(reduction, "softmax_cross_entropy")
    logits = _prediction(logits, "softmax_cross_entropy")
    t = _class_targets(target, logits, "softmax_cross_entropy")
    return _reduce(-_log_likelihood(logits.log_softmax(axis=-1), t), reduction)


# -- the L2 penalty -----------------------------------------------------------------------------------------

def _is_weight_name(name: str) -> bool:
    return name == "weight" or (name[:1] in ("W", "w") and name[1:].isdigit())


def l2_penalty(params: Any, lmbda: float, n: int) -> Tensor:
    """The L2 penalty lmbda / (2 n) * sum w^2 over the **weights** (not the biases), to add to a loss.

    ``params`` is a model, its ``named_parameters()``, or a dict of tensors; the weights are the parameters whose
    name ends in ``weight`` (every ``Linear``'s) or is W or w and a number (the course's ``W1``, Nielsen's ``w0``
    in ``manual``, as in a ``check_backprop`` loss), or, for unnamed tensors, those with two or more axes. Its
    gradient is (lmbda / n) w for each weight and 0 for the rest. The two sources write it with different n:

    - Nielsen (chapter 3): C = C_0 + lmbda / (2n) sum w^2 with n the size of the **whole training set**, the
      same n for every mini-batch (``--lmbda`` on the command line); a step of gradient descent is then his
      weight decay, w <- (1 - lr lmbda / n) w - lr dC_0/dw.
    - The deep-learning course: J = cross-entropy + lmbda / (2m) sum ||W_l||^2 with m the examples the
      cross-entropy averages over, the batch (its assignment trains on the whole set at once, so m is both).

    An optimizer's ``weight_decay`` adds ``weight_decay * p`` to the gradient of **every** parameter it holds, so
    plain SGD takes the same steps with ``weight_decay = lmbda / n`` given the weights alone (the biases in a
    second optimizer without decay). With momentum, RMSprop or Adam the decay also goes through the running
    averages, exactly as the penalty's gradient would.

    >>> from tinygrad_edu import nn
    >>> layer = nn.Linear(2, 1, init="zeros")
    >>> layer.weight.data[...] = [[3.0], [4.0]]
    >>> l2_penalty(layer, lmbda=2.0, n=5).item()  # 2 / 10 * (9 + 16); the bias is left out
    5.0
    """
    if isinstance(lmbda, bool) or not isinstance(lmbda, (int, float, np.integer, np.floating)) or not lmbda >= 0:
        raise ValueError(f"l2_penalty: lmbda (the regularisation strength lambda) must be a number >= 0, got "
                         f"{lmbda!r}; 0 turns the penalty off.")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"l2_penalty: n must be a positive count of examples (Nielsen's training-set size, or "
                         f"the course's m), got {n!r}.")
    items = named_items(params, "l2_penalty")
    weights = [t for name, t in items if isinstance(t, Tensor)
               and (_is_weight_name(name.rsplit(".", 1)[-1]) if name else t.ndim >= 2)]
    if not weights:
        raise ValueError(f"l2_penalty: found no weights among {[name for name, _ in items] or 'the parameters'}; "
                         f"it sums the parameters named 'weight', W1, W2, ... or w0, w1, ... (or unnamed ones with "
                         f"two or more axes).")
    total = (weights[0] * weights[0]).sum()
    for w in weights[1:]:
        total = total + (w * w).sum()
    return total * (float(lmbda) / (2 * int(n)))


# -- the same losses as Modules -----------------------------------------------------------------------------

class _Loss(Module):
    """Base of the loss Modules: ``loss(prediction, target)`` calls the function of the same name."""


class _ReducedLoss(_Loss):
    def __init__(self, reduction: str = "mean") -> None:
        _check_reduction(reduction, type(self).__name__)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class QuadraticCost(_Loss):
    """``quadratic_cost`` as a Module: 1/(2n) sum ||y - a||^2."""

    def forward(self, prediction: Any, target: Any) -> Tensor:
        return quadratic_cost(prediction, target)


class SumSquaredError(_Loss):
    """``sum_squared_error`` as a Module: sum (y - a)^2."""

    def forward(self, prediction: Any, target: Any) -> Tensor:
        return sum_squared_error(prediction, target)


class MSELoss(_Loss):
    """``mse`` as a Module: the mean of (a - y)^2 over all elements."""

    def forward(self, prediction: Any, target: Any) -> Tensor:
        return mse(prediction, target)


class BCELoss(_ReducedLoss):
    """``binary_cross_entropy`` as a Module (on probabilities)."""

    def __init__(self, eps: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.eps = eps

    def forward(self, prediction: Any, target: Any) -> Tensor:
        return binary_cross_entropy(prediction, target, eps=self.eps, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, {super().extra_repr()}"


class BCEWithLogitsLoss(_ReducedLoss):
    """``binary_cross_entropy_with_logits`` as a Module (on raw scores)."""

    def forward(self, prediction: Any, target: Any) -> Tensor:
        return binary_cross_entropy_with_logits(prediction, target, reduction=self.reduction)


class SigmoidCrossEntropy(_ReducedLoss):
    """``sigmoid_cross_entropy`` as a Module (on a sigmoid's output)."""

    def forward(self, prediction: Any, target: Any) -> Tensor:
        return sigmoid_cross_entropy(prediction, target, reduction=self.reduction)


class SoftmaxCrossEntropy(_ReducedLoss):
    """``softmax_cross_entropy`` as a Module (on logits; labels or one-hot targets)."""

    def forward(self, prediction: Any, target: Any) -> Tensor:
        return softmax_cross_entropy(prediction, target, reduction=self.reduction)


CrossEntropyLoss = SoftmaxCrossEntropy  # PyTorch's name for the same loss


class NLLLoss(_ReducedLoss):
    """``nll_loss`` as a Module (on log-probabilities)."""

    def forward(self, prediction: Any, target: Any) -> Tensor:
        return nll_loss(prediction, target, reduction=self.reduction)
