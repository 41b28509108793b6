"""Batch normalisation by hand, in numpy: the layer, its backward pass derived twice, and a small MLP with it.

The layer (Ioffe and Szegedy, 2015, Algorithm 1) normalises each feature (column) of a mini-batch ``x`` of
shape (N, C) with that column's own batch statistics, then lets the network scale and shift it back. Written
as a graph, one node per line, in the order the engine's ``nn.BatchNorm1d`` builds it::

    mean     = (1/N) sum_n x                  mean          (C,)
    centred  = x - mean                       centre        (N, C)
    squared  = centred^2                                    (N, C)
    variance = (1/N) sum_n squared            variance      (C,)   biased: 1/N, as the paper and PyTorch
    var_eps  = variance + eps                               (C,)
    inv_std  = var_eps^(-1/2)                 inverse standard deviation
    x_hat    = centred * inv_std              normalise     (N, C)
    scaled   = x_hat * gamma                  scale
    out      = scaled + beta                  shift

The staged backward walks the same nodes newest first, one line per node, each line the node's local
derivative times the gradient arriving from above (``d_out`` is dL/d out, given)::

    d_beta     = sum_n d_out                              out = scaled + beta
    d_gamma    = sum_n d_out * x_hat                      scaled = x_hat * gamma
    d_x_hat    = d_out * gamma
    d_inv_std  = sum_n d_x_hat * centred                  x_hat = centred * inv_std
    d_centred  = d_x_hat * inv_std                          (centred's first path)
    d_var_eps  = d_inv_std * (-1/2) var_eps^(-3/2)        inv_std = var_eps^(-1/2)
    d_variance = d_var_eps                                var_eps = variance + eps
    d_squared  = d_variance / N                           variance = mean of squared
    d_centred += d_squared * 2 centred                      (centred's second path, through the variance)
    d_mean     = -sum_n d_centred                         centred = x - mean
    d_x        = d_centred + d_mean / N                   mean = mean of x

Collecting the terms (with sum_n x_hat = 0) gives the closed form the course asks for::

    d_x = (1/N) gamma inv_std (N d_out - sum_n d_out - x_hat sum_n (d_out * x_hat))

NOTE: the paper's own equations write dL/dmean with a second term, dL/dvariance * (-2/N) sum_n (x - mean):
the variance's path through the mean. It is zero because the centred values sum to zero, so forgetting it
costs nothing in the form above. It is not zero when the variance is written the one-pass way,
``mean(x^2) - mean^2``: there the same path carries ``-2 mean dL/dvariance``, which vanishes only when the
batch mean is 0 (``backward_one_pass``; ``SLIPS["mean_path"]`` is that mistake).

In eval mode the layer uses its running statistics instead of the batch's (``forward_eval``); they are
updated in train mode as PyTorch's ``BatchNorm1d`` does: ``running = (1 - momentum) running + momentum
batch``, with the UNBIASED batch variance (1/(N - 1)) for ``running_var`` although the batch is normalised
with the biased one (``update_running``).

The second half is a batch-norm MLP on MNIST-shaped data, hidden layers ``linear (no bias) -> batch norm ->
sigmoid`` and a sigmoid output layer with a bias, with the MNIST seed's cross-entropy on the sigmoid outputs:
the hand-derived twin of ``nn.MLP(..., batchnorm=True)`` in the compare table (key ``batchnorm``).

>>> rng = np.random.default_rng(0)
>>> x, gamma, beta = rng.standard_normal((5, 3)), rng.random(3) + 0.5, rng.standard_normal(3)
>>> out, cache = forward(x, gamma, beta)
>>> out.mean(axis=0).round(12).tolist() == beta.round(12).tolist()
True
>>> d_out = rng.standard_normal((5, 3))
>>> staged, closed = backward_staged(d_out, cache), backward_closed(d_out, cache)
>>> all(bool(np.allclose(staged[k], closed[k], rtol=0, atol=1e-14)) for k in ("x", "gamma", "beta"))
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import DTypeLike

from ._common import generator, softplus, stable_sigmoid

__all__ = [
    "Cache", "Slip", "SLIPS", "forward", "forward_eval", "update_running",
    "backward_nodes", "backward_staged", "backward_closed", "backward_one_pass", "backward_eval",
    "init_params", "init_running", "mlp_forward", "loss", "gradients", "sgd_step", "running_after", "predict",
]

Grads = dict[str, np.ndarray]
Params = dict[str, np.ndarray]


class Cache(NamedTuple):
    """What the forward pass keeps for the backward: the graph's nodes (the module docstring names them)."""

    x: np.ndarray
    mean: np.ndarray
    centred: np.ndarray
    variance: np.ndarray
    inv_std: np.ndarray
    x_hat: np.ndarray
    gamma: np.ndarray
    eps: float


def _check(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, caller: str, train: bool = True) -> None:
    if x.ndim != 2:
        raise ValueError(f"batchnorm.{caller}: x must be (N, C), one sample per row, got shape {x.shape}.")
    if gamma.shape != (x.shape[1],) or beta.shape != (x.shape[1],):
        raise ValueError(f"batchnorm.{caller}: gamma and beta must be ({x.shape[1]},), one per feature of x "
                         f"{x.shape}; got {gamma.shape} and {beta.shape}.")
    if train and x.shape[0] < 2:
        raise ValueError(f"batchnorm.{caller}: a batch of {x.shape[0]} has no spread to normalise by (its "
                         f"variance is 0); train mode needs more than one sample per feature.")


def forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, Cache]:
    """Train mode: normalise with the batch's mean and biased variance; returns ``(out, cache)``."""
    x, gamma, beta = np.asarray(x), np.asarray(gamma), np.asarray(beta)
    _check(x, gamma, beta, "forward")
    n = x.shape[0]
    mean = x.sum(axis=0) / n
    centred = x - mean
    variance = (centred ** 2).sum(axis=0) / n
    inv_std = (variance + eps) ** -0.5
    x_hat = centred * inv_std
    return x_hat * gamma + beta, Cache(x, mean, centred, variance, inv_std, x_hat, gamma, eps)


def forward_eval(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, running_mean: np.ndarray,
                 running_var: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, Cache]:
    """Eval mode: normalise with the running statistics (any batch size, one sample too)."""
    x, gamma, beta = np.asarray(x), np.asarray(gamma), np.asarray(beta)
    _check(x, gamma, beta, "forward_eval", train=False)
    centred = x - running_mean
    inv_std = (running_var + eps) ** -0.5
    x_hat = centred * inv_std
    return x_hat * gamma + beta, Cache(x, running_mean, centred, running_var, inv_std, x_hat, gamma, eps)


def update_running(running_mean: np.ndarray, running_var: np.ndarray, cache: Cache,
                   momentum: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's running statistics after one train-mode batch; returns new arrays.

    ``momentum`` is the weight of the NEW batch (PyTorch's convention; an optimizer's momentum weighs the old).
    The variance kept is the unbiased one, ``variance * N / (N - 1)``.
    """
    n = cache.x.shape[0]
    unbiased = cache.variance * n / (n - 1)
    return ((1 - momentum) * running_mean + momentum * cache.mean,
            (1 - momentum) * running_var + momentum * unbiased)


def backward_nodes(d_out: np.ndarray, cache: Cache) -> Grads:
    """The staged backward: dL/d(node) for every node of the graph, one line per node, newest first.

    The keys are the nodes' names (the module docstring; the engine's ``nn.BatchNorm1d`` gives its tensors the
    same names), plus ``gamma`` and ``beta``.
    """
    x, _, centred, variance, inv_std, x_hat, gamma, eps = cache
    n = x.shape[0]
    d: Grads = {"out": d_out}
    d["beta"] = d["out"].sum(axis=0)                                      # out = scaled + beta
    d["scaled"] = d["out"]
    d["gamma"] = (d["scaled"] * x_hat).sum(axis=0)                        # scaled = x_hat * gamma
    d["x_hat"] = d["scaled"] * gamma
    d["inv_std"] = (d["x_hat"] * centred).sum(axis=0)                     # x_hat = centred * inv_std
    d["centred"] = d["x_hat"] * inv_std                                   # (centred's first path)
    d["var_eps"] = d["inv_std"] * -0.5 * (variance + eps) ** -1.5        # inv_std = var_eps^(-1/2)
    d["variance"] = d["var_eps"]                                          # var_eps = variance + eps
    d["squared"] = np.broadcast_to(d["variance"] / n, x.shape)            # variance = (1/N) sum squared
    d["centred"] = d["centred"] + d["squared"] * 2 * centred              # squared = centred^2
    d["mean"] = -d["centred"].sum(axis=0)                                 # centred = x - mean
    d["x"] = d["centred"] + d["mean"] / n                                 # mean = (1/N) sum x
    return d


def backward_staged(d_out: np.ndarray, cache: Cache) -> Grads:
    """dL/dx, dL/dgamma and dL/dbeta of the staged backward (``backward_nodes``)."""
    d = backward_nodes(d_out, cache)
    return {"x": d["x"], "gamma": d["gamma"], "beta": d["beta"]}


def backward_closed(d_out: np.ndarray, cache: Cache) -> Grads:
    """The same gradients in closed form: d_x = (1/N) gamma inv_std (N d_out - sum d_out - x_hat sum d_out x_hat)."""
    n = cache.x.shape[0]
    d_beta = d_out.sum(axis=0)
    d_gamma = (d_out * cache.x_hat).sum(axis=0)
    d_x = cache.gamma * cache.inv_std / n * (n * d_out - d_beta - cache.x_hat * d_gamma)
    return {"x": d_x, "gamma": d_gamma, "beta": d_beta}


def backward_one_pass(d_out: np.ndarray, cache: Cache) -> Grads:
    """The staged backward for the variance written one-pass, ``variance = mean(x^2) - mean^2``.

    Same function, other graph: x reaches the variance directly (through mean(x^2)) and through the mean, and
    the second path is no longer zero: ``d_mean`` gets ``-2 mean d_variance`` (the line marked below).
    """
    x, mean, centred, variance, inv_std, x_hat, gamma, eps = cache
    n = x.shape[0]
    d_beta = d_out.sum(axis=0)
    d_gamma = (d_out * x_hat).sum(axis=0)
    d_x_hat = d_out * gamma
    d_inv_std = (d_x_hat * centred).sum(axis=0)                  # x_hat = centred * inv_std
    d_variance = d_inv_std * -0.5 * (variance + eps) ** -1.5    # inv_std = (variance + eps)^(-1/2)
    d_mean_sq = d_variance                                       # variance = mean_sq - mean^2
    d_mean = -(d_x_hat * inv_std).sum(axis=0)                    # centred = x - mean
    d_mean = d_mean - 2 * mean * d_variance                      # variance = mean_sq - mean^2: the mean's path
    d_x = d_x_hat * inv_std + d_mean_sq * 2 * x / n + d_mean / n  # centred, mean_sq = mean(x^2), mean
    return {"x": d_x, "gamma": d_gamma, "beta": d_beta}


def backward_eval(d_out: np.ndarray, cache: Cache) -> Grads:
    """Eval mode: the statistics are constants, so x_hat is x shifted and scaled, and d_x = d_out gamma inv_std."""
    return {"x": d_out * cache.gamma * cache.inv_std, "gamma": (d_out * cache.x_hat).sum(axis=0),
            "beta": d_out.sum(axis=0)}


# -- the usual slips ----------------------------------------------------------------------------------------

class Slip(NamedTuple):
    """A mistake learners make deriving the backward pass, and the (wrong) gradients it gives."""

    name: str
    what: str                                              # the slip in words, for a diagnosis
    backward: Callable[[np.ndarray, Cache], Grads]


def _d_variance(d_out: np.ndarray, cache: Cache) -> np.ndarray:
    return (d_out * cache.gamma * cache.centred).sum(axis=0) * -0.5 * (cache.variance + cache.eps) ** -1.5


def _misses_mean_path(d_out: np.ndarray, cache: Cache) -> Grads:
    # backward_one_pass without the line "d_mean = d_mean - 2 * mean * d_variance"
    grads = backward_one_pass(d_out, cache)
    return {**grads, "x": grads["x"] + 2 * cache.mean * _d_variance(d_out, cache) / cache.x.shape[0]}


def _n_minus_1(d_out: np.ndarray, cache: Cache) -> Grads:
    # the variance node's local derivative with 1/(N - 1): d_squared = d_variance / (N - 1)
    n = cache.x.shape[0]
    grads = backward_staged(d_out, cache)
    extra = 2 * cache.centred * _d_variance(d_out, cache) * (1 / (n - 1) - 1 / n)  # sums to 0: d_mean unchanged
    return {**grads, "x": grads["x"] + extra}


def _no_eps(d_out: np.ndarray, cache: Cache) -> Grads:
    return backward_closed(d_out, cache._replace(inv_std=cache.variance ** -0.5))


def _swapped(d_out: np.ndarray, cache: Cache) -> Grads:
    grads = backward_closed(d_out, cache)
    return {**grads, "gamma": grads["beta"], "beta": grads["gamma"]}


def _gamma_without_x_hat(d_out: np.ndarray, cache: Cache) -> Grads:
    grads = backward_closed(d_out, cache)
    return {**grads, "gamma": d_out.sum(axis=0)}


def _no_mean(d_out: np.ndarray, cache: Cache) -> Grads:
    # the last line without "+ d_mean / N": x reaches the output through the mean too
    n = cache.x.shape[0]
    grads = backward_staged(d_out, cache)
    d_mean = -(d_out * cache.gamma * cache.inv_std).sum(axis=0)  # the variance's share sums to 0
    return {**grads, "x": grads["x"] - d_mean / n}


def _mean_not_divided(d_out: np.ndarray, cache: Cache) -> Grads:
    # the last line with "+ d_mean" where it needs "+ d_mean / N"
    n = cache.x.shape[0]
    grads = backward_staged(d_out, cache)
    d_mean = -(d_out * cache.gamma * cache.inv_std).sum(axis=0)
    return {**grads, "x": grads["x"] + d_mean * (1 - 1 / n)}


def _mean_sign(d_out: np.ndarray, cache: Cache) -> Grads:
    # d_mean = +sum d_centred, where centred = x - mean makes it minus that
    n = cache.x.shape[0]
    grads = backward_staged(d_out, cache)
    d_mean = -(d_out * cache.gamma * cache.inv_std).sum(axis=0)
    return {**grads, "x": grads["x"] - 2 * d_mean / n}


def _square_without_2(d_out: np.ndarray, cache: Cache) -> Grads:
    # squared = centred^2 with the local derivative centred where it is 2 centred
    grads = backward_staged(d_out, cache)
    return {**grads, "x": grads["x"] - cache.centred * _d_variance(d_out, cache) / cache.x.shape[0]}


SLIPS: dict[str, Slip] = {slip.name: slip for slip in (
    Slip("mean_path", "the variance's gradient misses its path through the mean: with variance = mean(x^2) - "
                      "mean^2, d_mean needs -2 mean d_variance (zero only when the batch mean is 0)",
         _misses_mean_path),
    Slip("n_minus_1", "1/(N - 1) where the batch variance has 1/N: the batch is normalised with the biased "
                      "variance; only running_var keeps the unbiased one", _n_minus_1),
    Slip("no_eps", "eps forgotten: inv_std = (variance + eps)^(-1/2), not variance^(-1/2)", _no_eps),
    Slip("swapped", "d_gamma and d_beta swapped: d_gamma = sum d_out x_hat, d_beta = sum d_out", _swapped),
    Slip("gamma_without_x_hat", "d_gamma without x_hat: d_gamma = sum d_out x_hat (sum d_out alone is d_beta)",
         _gamma_without_x_hat),
    Slip("no_mean", "d_x misses its path through the mean: add d_mean / N, d_mean = -sum_n d_centred",
         _no_mean),
    Slip("mean_not_divided", "d_mean not divided by N: mean = (1/N) sum x, so d_x gets d_mean / N",
         _mean_not_divided),
    Slip("mean_sign", "d_mean with the wrong sign: centred = x - mean, so d_mean = -sum_n d_centred",
         _mean_sign),
    Slip("square_without_2", "the 2 of d(centred^2) dropped: d_centred gets 2 centred d_variance / N",
         _square_without_2),
)}
"""The usual slips by name, each a complete (wrong) backward: planted mistakes for the tests and the check."""


# -- a batch-norm MLP ---------------------------------------------------------------------------------------

def init_params(rng: np.random.Generator | int, sizes: Sequence[int] = (784, 64, 64, 10), *,
                dtype: DTypeLike = np.float64) -> Params:
    """``w1, gamma1, beta1, ..., w{L}, b{L}``: weights N(0, 1/fan_in) of shape (in, out), gamma 1, beta 0.

    Hidden layers have no bias (beta does its job: a bias before batch norm is subtracted again with the
    mean, so its gradient is exactly zero); the output layer has one.

    >>> {k: v.shape for k, v in init_params(0, (4, 3, 2)).items()}
    {'w1': (4, 3), 'gamma1': (3,), 'beta1': (3,), 'w2': (3, 2), 'b2': (2,)}
    """
    rng = generator(rng, "batchnorm.init_params")
    sizes = list(sizes)
    if len(sizes) < 3 or min(sizes) < 1:
        raise ValueError(f"batchnorm.init_params: sizes must list the input, at least one hidden layer and the "
                         f"output, all positive, e.g. (784, 64, 10); got {sizes}.")
    params: Params = {}
    layers = len(sizes) - 1
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"w{i}"] = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype, copy=False)
        if i < layers:
            params[f"gamma{i}"] = np.ones(n_out, dtype)
            params[f"beta{i}"] = np.zeros(n_out, dtype)
        else:
            params[f"b{i}"] = np.zeros(n_out, dtype)
    return params


def init_running(params: Params) -> Params:
    """Running statistics for every batch-norm layer: ``mean{i}`` zeros and ``var{i}`` ones (PyTorch's start)."""
    running: Params = {}
    for name, gamma in params.items():
        if name.startswith("gamma"):
            running[f"mean{name[5:]}"] = np.zeros_like(gamma)
            running[f"var{name[5:]}"] = np.ones_like(gamma)
    return running


def _layers(params: Params) -> int:
    return sum(name.startswith("w") for name in params)


def _dtype(x: np.ndarray, params: Params) -> np.dtype:
    return np.result_type(x, *params.values(), np.float16)  # at least a float; float32 stays float32


def mlp_forward(params: Params, x: np.ndarray, running: Params | None = None, eps: float = 1e-5
                ) -> tuple[np.ndarray, list[tuple[np.ndarray, Cache, np.ndarray]]]:
    """The output pre-activation ``z`` and, per hidden layer, ``(input, batch-norm cache, activation)``.

    Train mode (batch statistics) without ``running``; eval mode with it (``init_running``'s names).
    """
    x = np.asarray(x)
    x = x.astype(_dtype(x, params), copy=False)
    layers = _layers(params)
    if x.ndim != 2 or x.shape[1] != params["w1"].shape[0]:
        raise ValueError(f"batchnorm.mlp_forward: x must be (n, {params['w1'].shape[0]}), one sample per row; "
                         f"got {x.shape}.")
    saved, a = [], x
    for i in range(1, layers):
        z = a @ params[f"w{i}"]
        if running is None:
            normed, cache = forward(z, params[f"gamma{i}"], params[f"beta{i}"], eps)
        else:
            normed, cache = forward_eval(z, params[f"gamma{i}"], params[f"beta{i}"], running[f"mean{i}"],
                                         running[f"var{i}"], eps)
        saved.append((a, cache, stable_sigmoid(normed)))
        a = saved[-1][2]
    return a @ params[f"w{layers}"] + params[f"b{layers}"], saved


def _loss_from_logits(z: np.ndarray, y: np.ndarray) -> float:
    # NOTE: -[y log sig(z) + (1-y) log(1-sig(z))] = softplus(z) - y z: the MNIST seed's cost, kept finite
    return float(np.sum(softplus(z) - y * z) / z.shape[0])


def loss(params: Params, x: np.ndarray, y: np.ndarray) -> float:
    """Cross-entropy on the sigmoid outputs, summed over the outputs, averaged over the n rows (train mode)."""
    return gradients(params, x, y)[0]


def gradients(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
    """The train-mode loss and dL/dparam for every parameter, through each batch-norm layer's closed form."""
    z, saved = mlp_forward(params, x)
    y = np.asarray(y, dtype=z.dtype)
    if y.shape != z.shape:
        raise ValueError(f"batchnorm.gradients: y must be one-hot rows {z.shape}, got {y.shape}.")
    layers = _layers(params)
    grads: Params = {}
    delta = (stable_sigmoid(z) - y) / x.shape[0]                  # dL/dz at the output: (a - y) / n
    grads[f"w{layers}"], grads[f"b{layers}"] = saved[-1][2].T @ delta, delta.sum(axis=0)
    d_a = delta @ params[f"w{layers}"].T
    for i in range(layers - 1, 0, -1):
        a_in, cache, a = saved[i - 1]
        d_normed = d_a * a * (1 - a)                              # a = sigmoid(normed)
        bn = backward_closed(d_normed, cache)
        grads[f"gamma{i}"], grads[f"beta{i}"] = bn["gamma"], bn["beta"]
        grads[f"w{i}"] = a_in.T @ bn["x"]                         # z = a_in @ w
        d_a = bn["x"] @ params[f"w{i}"].T
    return _loss_from_logits(z, y), {name: grads[name] for name in params}


def sgd_step(params: Params, grads: Params, lr: float) -> Params:
    """``p - lr * dL/dp`` for every parameter; new arrays, the inputs unchanged."""
    if set(params) != set(grads):
        raise KeyError(f"batchnorm.sgd_step: params and grads must have the same keys; mismatched: "
                       f"{sorted(set(params) ^ set(grads))}.")
    return {k: params[k] - lr * grads[k] for k in params}


def running_after(params: Params, running: Params, x: np.ndarray, momentum: float = 0.1,
                  eps: float = 1e-5) -> Params:
    """The running statistics after one train-mode forward pass on ``x``; new arrays."""
    _, saved = mlp_forward(params, x, eps=eps)
    new: Params = {}
    for i, (_, cache, _) in enumerate(saved, start=1):
        new[f"mean{i}"], new[f"var{i}"] = update_running(running[f"mean{i}"], running[f"var{i}"], cache, momentum)
    return new


def predict(params: Params, running: Params, x: np.ndarray) -> np.ndarray:
    """The predicted digit of each row, in eval mode (the running statistics)."""
    return np.argmax(mlp_forward(params, x, running)[0], axis=1)
