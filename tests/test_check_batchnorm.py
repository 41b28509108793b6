"""check_backprop names the usual slips of a hand-derived batch-norm backward (issue 23).

The slips are ``manual.batchnorm.SLIPS``, each a complete wrong backward; the check sees only its gradients and
loss(t)'s graph. Three ways in: one layer checked alone (x, gamma and beta as the "parameters"), a batch-norm MLP
whose backprop makes the slip in every layer (or in one), and the course's layout (features in rows, examples in
columns, x_hat written as a division), where the statistics run along axis 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_edu import Tensor, check_backprop, nn
from tinygrad_edu.manual import batchnorm as mb

# the words each slip's diagnosis must hold, and the rows of the one-layer check that disagree
NAMED = {
    "mean_path": ("path through the mean", "-2·mean·dL/dvariance", "one-pass"),
    "no_mean": ("dx misses its path through the mean", "dL/dmean / N"),
    "n_minus_1": ("1/(N - 1)", "N = 6", "biased"),
    "no_eps": ("eps forgotten", "eps = 1e-05"),
    "swapped": ("d_beta and d_gamma swapped",),
    "gamma_without_x_hat": ("d_gamma without x_hat",),
    "mean_not_divided": ("dL/dmean not divided by N", "N = 6"),
    "mean_sign": ("dL/dmean with the wrong sign", "-Σ dL/dcentred"),
    "square_without_2": ("the 2 of d(centred²)/dcentred dropped", "N = 6"),
}
ROWS = {"mean_path": {"x"}, "no_mean": {"x"}, "n_minus_1": {"x"}, "no_eps": {"x"}, "swapped": {"gamma", "beta"},
        "gamma_without_x_hat": {"gamma"}, "mean_not_divided": {"x"}, "mean_sign": {"x"}, "square_without_2": {"x"}}


def one_layer(offset: float = 1.5, rows: int = 6) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 4)) * 2 + offset
    params = {"x": x, "gamma": rng.random(4) + 0.5, "beta": rng.standard_normal(4)}
    return params, rng.standard_normal((rows, 4))   # d_out: a non-uniform gradient from above


def check_layer(slip: str | None, params: dict[str, np.ndarray], d_out: np.ndarray) -> Any:
    backward = mb.backward_closed if slip is None else mb.SLIPS[slip].backward

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return backward(d_out, mb.forward(p["x"], p["gamma"], p["beta"])[1])

    return check_backprop(manual, lambda t: (nn.batch_norm(t["x"], t["gamma"], t["beta"]) * d_out).sum(), params)


def wrong(report: Any) -> dict[str, str]:
    return {row.name: row.diagnosis for row in report.rows if not row.ok}


def test_the_right_backward_agrees() -> None:
    assert check_layer(None, *one_layer()).ok


@pytest.mark.parametrize("slip", sorted(mb.SLIPS))
def test_each_slip_in_one_layer_is_named(slip: str) -> None:
    found = wrong(check_layer(slip, *one_layer()))
    assert set(found) == ROWS[slip]
    for name, text in found.items():
        assert text.startswith("a batch-norm slip: "), text
        # a swap makes gamma's gradient Σ d_out, as the slip "d_gamma without x_hat" does: beta's row tells them apart
        words = NAMED["gamma_without_x_hat"] if (slip, name) == ("swapped", "gamma") else NAMED[slip]
        assert all(word in text for word in words), (name, text)


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(3, 9), features=st.integers(1, 4), seed=st.integers(0, 2**16),
       spread=st.floats(0.1, 10.0), slip=st.sampled_from(sorted(mb.SLIPS)))
def test_each_slip_is_named_for_any_shape(rows: int, features: int, seed: int, spread: float, slip: str) -> None:
    rng = np.random.default_rng(seed)
    params = {"x": rng.standard_normal((rows, features)) * spread + rng.uniform(0.5, 3.0, features),
              "gamma": rng.uniform(0.5, 1.5, features), "beta": rng.standard_normal(features)}
    found = wrong(check_layer(slip, params, rng.standard_normal((rows, features))))
    assert set(found) == ROWS[slip]
    for name, text in found.items():
        words = NAMED["gamma_without_x_hat"] if (slip, name) == ("swapped", "gamma") else NAMED[slip]
        assert all(word.replace("N = 6", f"N = {rows}") in text for word in words), (name, text)


def test_the_swap_is_told_apart_from_another_parameters_gradient() -> None:
    # before the batch-norm diagnosis, the generic one would call it "the gradient of 'gamma'": true, but not why
    found = wrong(check_layer("swapped", *one_layer()))
    assert "Σ d_out·x_hat, which is d_gamma" in found["beta"]
    assert "when beta's row says d_beta and d_gamma are swapped, they are" in found["gamma"]


def test_the_path_through_the_mean_matters_only_when_the_batch_mean_is_not_zero() -> None:
    params, d_out = one_layer()
    params["x"] = params["x"] - params["x"].mean(axis=0)       # each feature's batch mean is 0
    assert check_layer("mean_path", params, d_out).ok            # the forgotten term is 0 here: nothing to name
    assert not check_layer("mean_path", *one_layer(offset=1.5)).ok


def test_a_forgotten_eps_matters_most_for_a_nearly_constant_feature() -> None:
    params, d_out = one_layer()
    params["x"][:, 0] = 3.0 + 1e-3 * params["x"][:, 0]           # variance ~ 1e-6, eps 1e-5: a factor of ~3
    found = wrong(check_layer("no_eps", params, d_out))
    assert "eps forgotten" in found["x"]
    layer = check_layer("no_eps", params, d_out).rows[0]
    assert layer.rel_error > 0.5


def test_the_slips_are_not_named_where_the_graph_has_no_batch_norm() -> None:
    # the same wrong numbers, but loss(t) is a plain weighted sum: none of the batch-norm stories may appear
    params, d_out = one_layer()
    report = check_backprop(lambda p: {"x": 2 * d_out + 1e-3, "gamma": 0 * p["gamma"] + 1.0,
                                       "beta": 0 * p["beta"] + 1.0},
                            lambda t: (t["x"] * d_out).sum() + t["gamma"].sum() + t["beta"].sum(), params)
    assert all("batch-norm" not in text for text in wrong(report).values())


# -- a batch-norm MLP: the slip made in the backprop of every batch norm, or of one ---------------------------------

SIZES = (5, 4, 4, 2)
N = 7


def mlp() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    params = mb.init_params(rng, SIZES)
    for name in params:   # gamma and beta away from 1 and 0, so that a slip cannot hide behind them
        params[name] = params[name] + 0.3 * rng.standard_normal(params[name].shape)
    x = rng.standard_normal((N, SIZES[0])) + 0.5
    y = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], N)]
    return params, x, y


def mlp_gradients(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray,
                  backward: Callable[[int], Callable[..., dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
    """manual.batchnorm.gradients with the batch-norm backward of layer i chosen by ``backward(i)``."""
    z, saved = mb.mlp_forward(params, x)
    layers = len(SIZES) - 1
    grads: dict[str, np.ndarray] = {}
    delta = (1 / (1 + np.exp(-z)) - y) / x.shape[0]
    grads[f"w{layers}"], grads[f"b{layers}"] = saved[-1][2].T @ delta, delta.sum(axis=0)
    d_a = delta @ params[f"w{layers}"].T
    for i in range(layers - 1, 0, -1):
        a_in, cache, a = saved[i - 1]
        bn = backward(i)(d_a * a * (1 - a), cache)
        grads[f"gamma{i}"], grads[f"beta{i}"] = bn["gamma"], bn["beta"]
        grads[f"w{i}"] = a_in.T @ bn["x"]
        d_a = bn["x"] @ params[f"w{i}"].T
    return grads


def mlp_loss(x: np.ndarray, y: np.ndarray) -> Callable[[dict[str, Tensor]], Tensor]:
    def loss(t: dict[str, Tensor]) -> Tensor:
        a: Any = x
        layers = len(SIZES) - 1
        for i in range(1, layers):
            a = nn.batch_norm(a @ t[f"w{i}"], t[f"gamma{i}"], t[f"beta{i}"]).sigmoid()
        z = a @ t[f"w{layers}"] + t[f"b{layers}"]
        return ((z.exp() + 1).log() - z * y).sum() / x.shape[0]   # softplus(z) - y z, the seed's cost
    return loss


def test_the_mlp_agrees_when_right() -> None:
    params, x, y = mlp()
    assert check_backprop(lambda p: mlp_gradients(p, x, y, lambda i: mb.backward_closed), mlp_loss(x, y), params).ok


@pytest.mark.parametrize("slip, dtype", [("mean_path", np.float64), ("n_minus_1", np.float64),
                                         ("mean_not_divided", np.float64), ("mean_sign", np.float64),
                                         ("square_without_2", np.float64),
                                         ("no_eps", np.float64), ("no_mean", np.float64), ("no_eps", np.float32),
                                         ("mean_path", np.float32), ("no_mean", np.float32)])
def test_a_slip_in_every_batch_norm_of_an_mlp_is_named_below_it(slip: str, dtype: Any) -> None:
    params, x, y = mlp()
    params, x = {name: value.astype(dtype) for name, value in params.items()}, x.astype(dtype)
    report = check_backprop(lambda p: mlp_gradients(p, x, y, lambda i: mb.SLIPS[slip].backward), mlp_loss(x, y),
                            params)
    found = wrong(report)
    # dx is wrong from the upper batch norm down: the weights below it, and everything of the layer below
    assert {"w1", "w2"} <= set(found) and not {"w3", "b3", "gamma2", "beta2"} & set(found)
    for name in ("w1", "w2"):
        assert found[name].startswith("a batch-norm slip in every batch norm: "), found[name]
        assert NAMED[slip][0] in found[name]


def test_a_slip_in_one_batch_norm_names_that_one() -> None:
    params, x, y = mlp()
    report = check_backprop(lambda p: mlp_gradients(p, x, y, lambda i: mb.SLIPS["no_mean"].backward if i == 1
                                                    else mb.backward_closed), mlp_loss(x, y), params)
    found = wrong(report)
    assert set(found) == {"w1"}   # the lower batch norm's dx reaches w1 only
    assert found["w1"].startswith("a batch-norm slip in the batch norm of gamma1: dx misses its path"), found["w1"]


def test_gamma_without_x_hat_in_one_layer_of_an_mlp() -> None:
    params, x, y = mlp()

    def backward(i: int) -> Callable[..., dict[str, np.ndarray]]:
        return mb.SLIPS["gamma_without_x_hat"].backward if i == 2 else mb.backward_closed

    found = wrong(check_backprop(lambda p: mlp_gradients(p, x, y, backward), mlp_loss(x, y), params))
    assert set(found) == {"gamma2"}
    assert found["gamma2"].startswith("a batch-norm slip in the batch norm of gamma2: d_gamma without x_hat")


# -- the course's layout: (features, examples), x_hat as a division, gamma and beta of shape (n, 1) ---------------

def test_the_course_layout_with_a_division_is_found_along_axis_1() -> None:
    rng = np.random.default_rng(5)
    Z = rng.standard_normal((3, 8)) + 1.0
    params = {"Z": Z, "gamma": rng.random((3, 1)) + 0.5, "beta": rng.standard_normal((3, 1))}
    d_out = rng.standard_normal((3, 8))
    eps = 1e-8

    def manual(p: dict[str, np.ndarray], forget_eps: bool) -> dict[str, np.ndarray]:
        m = p["Z"].shape[1]
        mu = p["Z"].mean(axis=1, keepdims=True)
        var = ((p["Z"] - mu) ** 2).mean(axis=1, keepdims=True)
        inv = 1 / np.sqrt(var + (0 if forget_eps else eps))
        z_hat = (p["Z"] - mu) * inv
        dz_hat = d_out * p["gamma"]
        dZ = inv / m * (m * dz_hat - dz_hat.sum(axis=1, keepdims=True)
                        - z_hat * (dz_hat * z_hat).sum(axis=1, keepdims=True))
        return {"dZ": dZ, "dgamma": (d_out * z_hat).sum(axis=1, keepdims=True),
                "dbeta": d_out.sum(axis=1, keepdims=True)}

    def loss(t: dict[str, Tensor]) -> Tensor:
        mu = t["Z"].mean(axis=1, keepdims=True)
        var = ((t["Z"] - mu) ** 2).mean(axis=1, keepdims=True)
        z_hat = (t["Z"] - mu) / (var + eps).sqrt()
        return ((t["gamma"] * z_hat + t["beta"]) * d_out).sum()

    assert check_backprop(lambda p: manual(p, False), loss, params).ok
    params["Z"][0] = 2.0 + 1e-4 * params["Z"][0]   # a nearly constant feature, where eps shows in float64
    assert check_backprop(lambda p: manual(p, False), loss, params).ok
    found = wrong(check_backprop(lambda p: manual(p, True), loss, params))
    assert set(found) == {"Z", "gamma"}
    for text in found.values():
        assert text.startswith("a batch-norm slip: eps forgotten: x_hat = (x - mean)/sqrt(variance + eps)"), text


def test_eval_mode_has_no_batch_statistics_to_slip_on() -> None:
    # the running statistics are constants: the graph holds no train-mode batch norm, and nothing is named as one
    params, d_out = one_layer()
    running = (np.zeros(4), np.ones(4))
    report = check_backprop(lambda p: {"x": d_out * p["gamma"], "gamma": d_out.sum(axis=0) * 0 + 1.0,
                                       "beta": d_out.sum(axis=0)},
                            lambda t: (nn.batch_norm(t["x"], t["gamma"], t["beta"], 1e-5, *running) * d_out).sum(),
                            params)
    assert set(wrong(report)) == {"x", "gamma"}
    assert all("batch-norm" not in text for text in wrong(report).values())
