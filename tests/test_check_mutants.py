"""Tests that pin mutants of tinygrad_edu/check.py which the other check tests let survive (.ci/mutation.md).

Each test names the mutants it pins (mutmut's numbers, ``mutmut show NAME`` in a run's folder); the rerun of
run 6's survivors with this file showed each of them killed.
"""

from __future__ import annotations

import functools

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tinygrad_edu import Tensor, check_backprop, nn
from tinygrad_edu.check import _centred_parent, _conv_slips, _Graph, _offset_words
from tinygrad_edu.manual import batchnorm as mb


def _engine_of(params: dict[str, np.ndarray], loss_fn: Callable[[Any], Tensor]) -> dict[str, np.ndarray]:
    t = {k: Tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    loss_fn(t).backward()
    return {k: np.asarray(v.grad).copy() for k, v in t.items()}


# -- run 5's two survivors left for later ------------------------------------------------------------------------

@pytest.mark.parametrize("size", [1e-3, 1e3])
def test_an_extra_multiple_of_w_is_judged_relative_to_the_gradient_whatever_the_units_of_w(size: float) -> None:
    # data_and_l2 14 (the parameter's scale floored at 1.0): W's coefficient is measured in units of the gradient
    # (so that it reads like the data term's), and a term a ten-millionth of the gradient is too small to name an
    # L2 term at any size of W, small entries included.
    rng = np.random.default_rng(7)
    x, params = rng.standard_normal((3, 10)), {"W": rng.standard_normal((4, 3)) * size}
    loss_fn = lambda t: ((t["W"] @ x / size).tanh() ** 2).sum()

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        g = _engine_of(p, loss_fn)["W"]
        return {"W": g + 1e-7 * np.max(np.abs(g)) * p["W"] / np.max(np.abs(p["W"]))}

    report = check_backprop(manual, loss_fn, params)
    assert not report.ok and report.rows[0].diagnosis.startswith("no simple pattern"), report.rows[0].diagnosis


def test_a_missing_l2_term_with_an_inexact_coefficient_on_large_weights_is_named_with_it() -> None:
    # _Graph.penalty_story 26 (the fit's tolerance divided by the penalty's size, not multiplied): λ = 0.1/7 is
    # not a binary fraction, so λ·2W and the fitted κ·W differ by rounding, which grows with W's entries.
    rng = np.random.default_rng(7)
    x, params = rng.standard_normal((3, 10)), {"W": rng.standard_normal((4, 3)) * 1e5}
    data = lambda t: ((t["W"] @ x * 1e-5).tanh() ** 2).sum()
    report = check_backprop(lambda p: {"W": _engine_of(p, data)["W"]},
                            lambda t: data(t) + 0.1 / 7 * (t["W"] ** 2).sum(), params)
    assert report.rows[0].diagnosis == ("L2 term missing: yours lacks 0.02857·W, the gradient of loss(t)'s "
                                        "0.01429·ΣW²")


# -- the batch-norm diagnosis (issue 23): mutation run 6 -----------------------------------------------------------

def _statistics(x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    mean = x.mean(axis=0, keepdims=True)
    return x - mean, (((x - mean) ** 2).mean(axis=0, keepdims=True) + eps)


def test_a_batch_norm_written_inv_std_first_without_a_scale_is_found() -> None:
    # _BatchNorm.d_x_hat 2, 4 (no gamma: d_x_hat is d_out itself); _centred_parent 16, 18-20 (a product searched
    # for x - mean in its second factor too), 22 (x - mean is a sub, not any node with two parents)
    rng = np.random.default_rng(11)
    params = {"x": rng.standard_normal((6, 3)) * 2 + 1.5, "beta": rng.standard_normal(3)}
    d_out = rng.standard_normal((6, 3))

    def loss(t: dict[str, Tensor]) -> Tensor:
        centred, var_eps = _statistics(t["x"], 1e-5)
        return (((1 / var_eps.sqrt()) * centred + t["beta"]) * d_out).sum()

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        grads = mb.SLIPS["no_mean"].backward(d_out, mb.forward(p["x"], np.ones(3), p["beta"])[1])
        return {"x": grads["x"], "beta": grads["beta"]}

    report = check_backprop(manual, loss, params)
    assert [row.name for row in report.rows if not row.ok] == ["x"], report
    assert report.rows[0].diagnosis.startswith("a batch-norm slip: dx misses its path through the mean"), report


def test_the_slips_extras_go_to_the_parameters_each_slip_changes_alone() -> None:
    # _no_eps_in_backward 22-25, _no_eps_anywhere 26-27: a slip that changes dx alone gives gamma and beta no
    # extra gradient (not d_beta, nor 0/d where d_out is 0: a relu above the batch norm makes such zeros)
    rng = np.random.default_rng(0)
    t = {"x": Tensor(rng.standard_normal((6, 4)) * 2 + 1.5, requires_grad=True),
         "gamma": Tensor(rng.random(4) + 0.5, requires_grad=True),
         "beta": Tensor(rng.standard_normal(4), requires_grad=True)}
    out = (nn.batch_norm(t["x"], t["gamma"], t["beta"]).relu() * rng.standard_normal((6, 4))).sum()
    out.backward()
    graph = _Graph(out, t, {name: np.asarray(v.grad) for name, v in t.items()})
    assert np.any(graph.walk[0][graph.batchnorms[0].top] == 0)   # the relu's zeros reach d_out
    changed = [sorted(name for name, extra in extras.items() if np.any(extra))
               for _, extras in graph.batchnorm_alternatives]
    assert changed == [["x"]] * 7 + [["gamma", "x"], ["gamma"], ["beta"]]
    assert all(np.all(np.isfinite(extra)) for _, extras in graph.batchnorm_alternatives for extra in extras.values())


def test_a_batch_norm_with_fixed_gamma_and_beta_is_placed_by_its_number() -> None:
    # _Graph._batchnorm_place 13, 14, 18-21: two batch norms whose gamma and beta are constants, not parameters:
    # the place is "batch norm k of 2", counted from the input
    rng = np.random.default_rng(3)
    x, fixed = rng.standard_normal((7, 3)) + 0.5, [(rng.random(3) + 0.5, rng.standard_normal(3)) for _ in range(2)]
    params = {"w1": rng.standard_normal((3, 3)), "w2": rng.standard_normal((3, 3)), "v": rng.standard_normal(3)}

    def loss(t: dict[str, Tensor]) -> Tensor:
        a: Any = x
        for i, (gamma, beta) in enumerate(fixed, start=1):
            a = nn.batch_norm(a @ t[f"w{i}"], Tensor(gamma), Tensor(beta)).tanh()
        return (a @ t["v"]).sum()

    def manual(p: dict[str, np.ndarray], slip_in: int) -> dict[str, np.ndarray]:
        saved, a = [], x
        for i, (gamma, beta) in enumerate(fixed, start=1):
            out, cache = mb.forward(a @ p[f"w{i}"], gamma, beta)
            saved.append((a, cache, np.tanh(out)))
            a = np.tanh(out)
        grads, d_a = {"v": a.sum(axis=0)}, np.outer(np.ones(len(x)), p["v"])
        for i in (2, 1):
            a_in, cache, a_out = saved[i - 1]
            backward = mb.SLIPS["no_mean"].backward if i == slip_in else mb.backward_closed
            d_x = backward(d_a * (1 - a_out ** 2), cache)["x"]
            grads[f"w{i}"], d_a = a_in.T @ d_x, d_x @ p[f"w{i}"].T
        return grads

    assert check_backprop(lambda p: manual(p, 0), loss, params).ok
    for slip_in in (1, 2):
        report = check_backprop(functools.partial(manual, slip_in=slip_in), loss, params)
        text = report.row("w1").diagnosis
        assert text.startswith(f"a batch-norm slip in batch norm {slip_in} of 2 (counted from the input): dx "
                               "misses its path through the mean"), text


def test_x_minus_mean_is_found_as_the_numerator_or_a_factor_only() -> None:
    # _centred_parent 3 (a node other than * and / is not x_hat), 17 and 21 (in a division only the numerator is
    # centred): the helper that finds x_hat by its place in the graph
    x = Tensor(np.array([[1.0, 2.0], [2.0, 7.0], [4.0, 3.0], [8.0, 5.0]]), requires_grad=True)
    centred, var_eps = _statistics(x, 1e-5)
    std = var_eps.sqrt()
    found = [_centred_parent(node) for node in (centred / std, std * centred, centred * std)]
    assert all(len(f) == 1 and f[0] is centred for f in found)
    assert _centred_parent(centred + std) == [] and _centred_parent(centred - std) == []
    assert _centred_parent(std / centred) == []


# -- the convolution diagnosis (issue 24): mutation run 6 ----------------------------------------------------------

def _conv_dx(g: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...], pad: int) -> np.ndarray:
    """The input gradient of a stride-1 conv2d, window by window (the course's loop, every window at once)."""
    n, _, ho, wo = g.shape
    dxp = np.zeros((n, w.shape[1], x_shape[2] + 2 * pad, x_shape[3] + 2 * pad))
    for i in range(w.shape[2]):
        for j in range(w.shape[3]):
            dxp[:, :, i:i + ho, j:j + wo] += np.einsum("nohw,oc->nchw", g, w[:, :, i, j])
    return dxp[:, :, pad:pad + x_shape[2], pad:pad + x_shape[3]]


def _one_conv(kernel: tuple[int, int], stride: Any = 1, image: tuple[int, int] = (5, 6), flat: bool = False,
              channels: int = 3) -> tuple[dict[str, np.ndarray], Callable[[dict[str, Tensor]], Tensor], np.ndarray]:
    """One conv2d (3 channels out, padding 1) with its input a parameter too: an input slip shows in x."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, channels, *kernel))
    params = {"x": rng.standard_normal((2, channels, *image)), "W": w.reshape(3, -1) if flat else w}
    out = Tensor(params["x"]).conv2d(Tensor(w), stride=stride, padding=1)
    d_out = rng.standard_normal(out.shape)

    def loss(t: dict[str, Tensor]) -> Tensor:
        weight = t["W"].reshape(w.shape) if flat else t["W"]
        return (t["x"].conv2d(weight, stride=stride, padding=1) * d_out).sum()

    return params, loss, d_out


@pytest.mark.parametrize("kernel", [(3, 3), (2, 1)])
def test_the_kernel_neither_rotated_nor_swapped_is_named(kernel: tuple[int, int]) -> None:
    # _conv_slips 105, 107-109 (that input slip, for square and two-pixel kernels alike)
    params, loss, d_out = _one_conv(kernel)
    right = _engine_of(params, loss)
    as_is = params["W"][:, :, ::-1, ::-1].transpose(1, 0, 2, 3)   # the full convolution with W itself, as a loop
    report = check_backprop(lambda p: {**right, "x": _conv_dx(d_out, as_is, p["x"].shape, 1)}, loss, params)
    assert [row.name for row in report.rows if not row.ok] == ["x"]
    assert report.row("x").diagnosis.startswith("the input gradient (dA_prev) of the conv2d with W uses the kernel "
                                                "neither rotated nor with its channel axes swapped"), report


@pytest.mark.parametrize("kernel, change, words", [
    ((2, 1), lambda g: g[:, :, ::-1, ::-1], "is rotated by 180°"),              # _conv_slips 49 (a two-pixel kernel)
    ((3, 3), lambda g: g.transpose(1, 0, 2, 3), "has its channel axes swapped"),  # 134, 135, 138, 139 (in = out)
])
def test_a_weight_slip_of_a_small_or_square_kernel_is_named(kernel: tuple[int, int], change: Any, words: str) -> None:
    params, loss, _ = _one_conv(kernel)
    right = _engine_of(params, loss)
    report = check_backprop(lambda p: {**right, "W": change(right["W"])}, loss, params)
    assert report.row("W").diagnosis.startswith(f"the weight gradient of the conv2d with W {words}"), report


def test_a_weight_kept_flat_and_reshaped_into_conv2d_is_named_by_its_parameter() -> None:
    # _Graph._source 6, 7: the conv2d's weight is a reshape of the parameter W
    params, loss, _ = _one_conv((3, 3), flat=True)
    right = _engine_of(params, loss)
    report = check_backprop(lambda p: {**right, "W": right["W"].reshape(3, 3, 3, 3)[:, :, ::-1, ::-1].reshape(3, -1)},
                            loss, params)
    assert report.row("W").diagnosis.startswith("the weight gradient of the conv2d with W is rotated by 180°"), report


def test_an_input_with_its_first_two_axes_swapped_is_not_named_a_weight_layout() -> None:
    # _Graph.is_conv_weight 3: x is the conv2d's input (its first parent), not its weight
    params, loss, _ = _one_conv((3, 3))
    params["x"] = np.random.default_rng(2).standard_normal((2, 3, 5, 6))
    right = _engine_of(params, loss)
    report = check_backprop(lambda p: {**right, "x": right["x"].transpose(1, 0, 2, 3)}, loss, params)
    assert "in_channels" not in report.row("x").diagnosis, report


@pytest.mark.parametrize("image, stride", [((7, 13), (2, 3)), ((13, 7), (3, 2))])
def test_windows_at_another_stride_that_leave_the_input_on_one_side_only_are_skipped(
        image: tuple[int, int], stride: tuple[int, int]) -> None:
    # _conv_grads 30-42 (the guard, a side at a time, tight by less than a stride) and 102 (the crop of a
    # non-square input): every slip of this conv2d is computed before the one that names W's row
    params, loss, _ = _one_conv((3, 3), stride, image)
    right = _engine_of(params, loss)
    report = check_backprop(lambda p: {**right, "W": right["W"][:, :, ::-1, ::-1]}, loss, params)
    assert report.row("W").diagnosis.startswith("the weight gradient of the conv2d with W is rotated by 180°"), report


@pytest.mark.parametrize("padding, reach", [(0, 1), (1, 1), (2, 2)])
def test_window_offsets_are_tried_up_to_the_padding_and_told_in_words(padding: int, reach: int) -> None:
    # _conv_slips 155, 157, 164, 171, 174, 175 (the offsets: every one up to max(1, padding) but (0, 0));
    # _offset_words 3-28 (plurals, right and left)
    rng = np.random.default_rng(4)
    node = Tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True).conv2d(
        Tensor(rng.standard_normal((2, 2, 3, 3)), requires_grad=True), padding=padding)
    stories = [story for story, _, _ in _conv_slips(node, rng.standard_normal(node.shape), "the conv2d")
               if "reads windows" in story]
    assert len(stories) == 2 * ((2 * reach + 1) ** 2 - 1)   # an input and a weight story for each offset
    for words in ("1 row lower and 1 column to the right", "1 column to the right", "1 row higher"):
        assert any(f"reads windows {words} than" in story for story in stories), words
    assert _offset_words(2, 1) == "2 rows lower and 1 column to the right"
    assert _offset_words(-1, -2) == "1 row higher and 2 columns to the left"
    assert _offset_words(0, 2) == "2 columns to the right"


def test_windows_at_every_other_stride_up_to_one_more_are_tried() -> None:
    # _conv_slips 213 (the steps tried: 1 to stride + 1), 230, 233, 237, 238 (each one's two stories, in words):
    # stride 3 on 8 pixels: two windows a row, and steps 1, 2 and 4 (and 5) all fit
    rng = np.random.default_rng(4)
    node = Tensor(rng.standard_normal((1, 2, 8, 8)), requires_grad=True).conv2d(
        Tensor(rng.standard_normal((2, 2, 3, 3)), requires_grad=True), stride=3)
    stories = [story for story, _, _ in _conv_slips(node, rng.standard_normal(node.shape), "the conv2d")
               if "places its windows" in story]
    places = ["at every pixel", "every 2 pixels", "every 4 pixels"]
    assert stories == [f"the {which} of the conv2d places its windows {where} where the forward pass's stride is "
                       f"(3, 3)" for where in places for which in ("input gradient (dA_prev)", "weight gradient")]


def _pooled(kind: str, size: int, stride: int) -> tuple[dict[str, np.ndarray], Callable[[Any], Tensor], np.ndarray]:
    rng = np.random.default_rng(6)
    params = {"A": rng.standard_normal((1, 2, 5, 5))}   # 5 pixels: windows of 2 at stride 2 leave the last one out
    pool = (lambda a: a.max_pool2d(size, stride)) if kind == "max" else (lambda a: a.avg_pool2d(size, stride))
    d_out = rng.standard_normal(pool(Tensor(params["A"])).shape)
    return params, lambda t: (pool(t["A"]) * d_out).sum(), d_out


def _spread(a: np.ndarray, d_out: np.ndarray, size: int, stride: int, share: str) -> np.ndarray:
    """A pool's backward by hand, window by window: its gradient to every entry, a share of it, or the first max."""
    out = np.zeros_like(a)
    for n, c, h, w in np.ndindex(d_out.shape):
        window = (n, c, slice(h * stride, h * stride + size), slice(w * stride, w * stride + size))
        if share == "first max":
            mask = np.zeros((size, size))
            mask[np.unravel_index(np.argmax(a[window]), mask.shape)] = 1.0
        else:
            mask = np.full((size, size), 1.0 if share == "every" else 1 / size ** 2)
        out[window] += d_out[n, c, h, w] * mask
    return out


@pytest.mark.parametrize("stride", [1, 2])   # overlapping windows; windows that leave a row and a column out
@pytest.mark.parametrize("kind, share, story", [
    ("max", "every", "max_pool2d's gradient goes to every entry of its window: the mask (create_mask_from_window) "
                     "left out"),
    ("max", "even", "max_pool2d's gradient is shared evenly over its window (distribute_value, the average pool's "
                    "rule); a max pool's goes to the window's maximum alone"),
    ("avg", "first max", "avg_pool2d's gradient goes to the window's maximum: the max pool's mask in an average pool"),
])
def test_a_pool_slip_is_named_whatever_the_windows_cover(stride: int, kind: str, share: str, story: str) -> None:
    # _pool_slips 13-35 (the windows' rows and columns), 44 (overlapping windows add up), 78-80, 106, 107
    params, loss, d_out = _pooled(kind, 2, stride)
    report = check_backprop(lambda p: {"A": _spread(p["A"], d_out, 2, stride, share)}, loss, params)
    assert report.row("A").diagnosis == story, report


@pytest.mark.parametrize("channels, axes, lead, layout", [
    (2, (1, 0, 2, 3), "has shape (2, 3, 3, 3)", "its channel axes swapped: yours is (in_channels, out_channels, kh, "
                                               "kw), conv2d's weight (out_channels, in_channels, kh, kw): "
                                               "transpose(1, 0, 2, 3)"),
    (3, (2, 3, 1, 0), "has the shape (3, 3, 3, 3) of the parameter", "the course's layout (f, f, n_C_prev, n_C), "
                                                                     "where conv2d's weight is (out_channels, "
                                                                     "in_channels, kh, kw): transpose(3, 2, 0, 1)"),
])
def test_a_conv_weights_gradient_in_another_axis_order_is_told_in_full(channels: int, axes: tuple[int, ...],
                                                                        lead: str, layout: str) -> None:
    # conv_slip 23, 24, 32, 33 (the layouts' words), 42, 43 (the lead when the shape is the parameter's)
    params, loss, _ = _one_conv((3, 3), channels=channels)
    right = _engine_of(params, loss)
    text = check_backprop(lambda p: {**right, "W": right["W"].transpose(axes)}, loss, params).row("W").diagnosis
    assert text.startswith(lead) and text.endswith(f"; its values are the right gradient in {layout}"), text


def test_a_conv_weights_gradient_of_the_swapped_shape_with_other_values_is_not_called_swapped() -> None:
    # conv_slip 36: the shape of the transpose is not enough, the values must be its values
    params, loss, _ = _one_conv((3, 3), channels=2)
    right = _engine_of(params, loss)
    wrong_values = np.random.default_rng(3).standard_normal((2, 3, 3, 3))
    text = check_backprop(lambda p: {**right, "W": wrong_values}, loss, params).row("W").diagnosis
    assert "its values are the right gradient" not in text, text


@pytest.mark.parametrize("rows, eps, dtype, centre", [
    (6, 0.0, np.float64, False),   # _find_batchnorm 23: eps may be 0
    (2, 1e-5, np.float64, False),  # 76: a batch of two
    (6, 1e-5, np.float32, True),   # 84: float32 data whose batch mean is about 0 (rounding, not the mean, differs)
])
def test_a_batch_norm_is_found_with_eps_zero_a_batch_of_two_or_a_mean_of_zero(rows: int, eps: float, dtype: Any,
                                                                              centre: bool) -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((rows, 3)) * 2 + 1.5
    params = {"x": (x - x.mean(axis=0) if centre else x).astype(dtype)}
    d_out = rng.standard_normal((rows, 3)).astype(dtype)

    def loss(t: dict[str, Tensor]) -> Tensor:
        centred, var_eps = _statistics(t["x"], eps)
        return (centred / var_eps.sqrt() * d_out).sum()

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"x": mb.SLIPS["n_minus_1"].backward(d_out, mb.forward(p["x"], np.ones(3, dtype), np.zeros(3, dtype),
                                                                      eps)[1])["x"]}

    text = check_backprop(manual, loss, params).row("x").diagnosis
    assert text.startswith(f"a batch-norm slip: 1/(N - 1) where the batch variance has 1/N (N = {rows})"), text


def test_a_batch_norm_of_a_vector_is_found() -> None:
    # _find_batchnorm 49: x of one dimension, the batch its only axis
    rng = np.random.default_rng(9)
    params, d_out = {"x": rng.standard_normal(6) * 2 + 1.5}, rng.standard_normal(6)

    def loss(t: dict[str, Tensor]) -> Tensor:
        centred, var_eps = _statistics(t["x"], 1e-5)
        return (centred / var_eps.sqrt() * d_out).sum()

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cache = mb.forward(p["x"][:, None], np.ones(1), np.zeros(1))[1]
        return {"x": mb.SLIPS["no_mean"].backward(d_out[:, None], cache)["x"][:, 0]}

    text = check_backprop(manual, loss, params).row("x").diagnosis
    assert text.startswith("a batch-norm slip: dx misses its path through the mean"), text


@pytest.mark.parametrize("loss", [
    lambda t: ((t["w"] + 1.0) ** 2).sum(),                          # _find_batchnorm 35, 37: w + 1.0 looks like
    lambda t: ((t["w"] + np.array([1.0, 2.0, 3.0])) ** 2).sum(),   # var + eps, the output 2 steps on; 15: w + array
])
def test_an_add_that_is_no_variance_plus_eps_is_passed_over(loss: Callable[[Any], Tensor]) -> None:
    params = {"w": np.array([0.5, -1.0, 2.0])}
    text = check_backprop(lambda p: {"w": 2 * _engine_of(p, loss)["w"]}, loss, params).row("w").diagnosis
    assert text.startswith("off by a constant factor: yours is 2.00 times the right gradient"), text


def test_statistics_that_are_constants_make_no_train_mode_batch_norm() -> None:
    # _find_batchnorm 45, 47: a mean that needs no gradient (computed in numpy) is not the batch's statistic
    x = Tensor(np.random.default_rng(10).standard_normal((6, 3)) + 1.0, requires_grad=True)
    centred = x - Tensor(x.data.mean(axis=0, keepdims=True))
    out = (centred / ((centred ** 2).mean(axis=0, keepdims=True) + 1e-5).sqrt()).sum()
    out.backward()
    assert _Graph(out, {"x": x}, {"x": np.asarray(x.grad)}).batchnorms == []


def _standardised(kind: str) -> tuple[Tensor, dict[str, Tensor]]:
    """(x - c) / sqrt(v + eps) with c and v learned, where one of mean, variance or x_hat is not the batch's."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((6, 3)) * 2 + 1.0
    c = x.mean(axis=0, keepdims=True) + (0.5 if kind == "mean" else 0.0)
    v = ((x - c) ** 2).mean(axis=0, keepdims=True) * (2.0 if kind == "variance" else 1.0)
    t = {"x": Tensor(x, requires_grad=True), "c": Tensor(c, requires_grad=True), "v": Tensor(v, requires_grad=True)}
    inv_std = (t["v"] + 1e-5).sqrt() * (2.0 / 3.0 if kind == "x_hat" else 1.0)
    out = ((t["x"] - t["c"]) / inv_std * rng.standard_normal((6, 3))).sum()
    out.backward()
    return out, t


@pytest.mark.parametrize("kind", ["mean", "variance", "x_hat", "none"])
def test_a_standardisation_is_a_batch_norm_only_with_the_batchs_own_statistics(kind: str) -> None:
    # _find_batchnorm 103-105, 119, 121, 137, 139, 153, 155: the nodes found by their place are checked by value
    out, t = _standardised(kind)
    found = _Graph(out, t, {name: np.asarray(v.grad) for name, v in t.items()}).batchnorms
    assert len(found) == (1 if kind == "none" else 0)

