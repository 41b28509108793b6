"""check_backprop on a hand-derived conv net: a correct derivation agrees, each convolution or pooling slip is named.

The network, NCHW as the engine keeps it: conv 3x3 (stride 1, padding 1), tanh, conv 3x3 (stride 2, padding 1,
three channels in and out, so a swap of its channel axes keeps the shape), tanh, 2x2 max-pool, flatten, a dense
layer and a quadratic cost. The backprop by hand writes the input gradient as the full convolution of dZ with the
kernel rotated by 180° and its channel axes swapped, the weight gradient as the correlation of the padded input
with dZ; ``slip`` plants one mistake.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tinygrad_edu import Tensor, check_backprop

rng = np.random.default_rng(7)
X = rng.standard_normal((2, 2, 7, 7))
Y = rng.standard_normal((2, 2))
PARAMS = {"W1": rng.standard_normal((3, 2, 3, 3)) * 0.5, "b1": rng.standard_normal(3) * 0.5,
          "W2": rng.standard_normal((3, 3, 3, 3)) * 0.5, "b2": rng.standard_normal(3) * 0.5,
          "V": rng.standard_normal((12, 2))}


def windows(a: np.ndarray, k: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(a, (k, k), axis=(2, 3))   # (N, C, H', W', k, k)


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, s: int, p: int) -> np.ndarray:
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    return np.einsum("nchwij,ocij->nohw", windows(xp, w.shape[2])[:, :, ::s, ::s], w) + b.reshape(1, -1, 1, 1)


def conv_backward(dz: np.ndarray, x: np.ndarray, w: np.ndarray, s: int, p: int,
                  slip: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, o, ho, wo = dz.shape
    k, size = w.shape[2], x.shape[2] + 2 * p
    spread = np.zeros((n, o, (ho - 1) * s + 1, (wo - 1) * s + 1))
    spread[:, :, ::s, ::s] = dz                                               # dZ spread out to the stride
    kernel = w if slip == "unrotated" else w[:, :, ::-1, ::-1]
    kernel = kernel if slip == "unswapped" else kernel.transpose(1, 0, 2, 3)  # (in, out, k, k)
    full = np.pad(spread, ((0, 0), (0, 0), (k - 1, k - 1), (k - 1, k - 1)))
    dxp = np.einsum("nohwij,coij->nchw", windows(full, k), kernel)
    dxp = np.pad(dxp, ((0, 0), (0, 0), (0, size - dxp.shape[2]), (0, size - dxp.shape[3])))
    c0 = p + 1 if slip == "crop" else p
    dx = dxp[:, :, c0:c0 + x.shape[2], c0:c0 + x.shape[3]]                     # dA_prev_pad[pad:-pad]
    step = 1 if slip == "stride" else s
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dw = np.einsum("nohw,nchwij->ocij", dz, windows(xp, k)[:, :, ::step, ::step][:, :, :ho, :wo])
    if slip == "flipped":
        dw = dw[:, :, ::-1, ::-1]
    return dx, dw, dz.sum(axis=(0, 2, 3))


def pool_backward(d: np.ndarray, a: np.ndarray, slip: str = "") -> np.ndarray:
    """2x2 max-pool's backward: the first maximum of each window (PyTorch's rule), or a slip's mask."""
    corners = [(i, j) for i in range(2) for j in range(2)]
    top = np.maximum.reduce([a[:, :, i::2, j::2] for i, j in corners])
    out, taken = np.zeros_like(a), np.zeros(top.shape, dtype=bool)
    for i, j in (corners[::-1] if slip == "last" else corners):
        hit = a[:, :, i::2, j::2] == top
        share = {"every": hit, "nomask": 1.0, "even": 0.25}.get(slip, hit & ~taken)
        taken |= hit
        out[:, :, i::2, j::2] = d * share
    return out


def backprop(p: dict[str, np.ndarray], slips: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """The derivation by hand; ``slips`` plants a mistake in one step: "conv1", "conv2", "pool"."""
    slips = slips or {}
    a1 = np.tanh(conv_forward(X, p["W1"], p["b1"], 1, 1))
    a2 = np.tanh(conv_forward(a1, p["W2"], p["b2"], 2, 1))
    pooled = np.maximum.reduce([a2[:, :, i::2, j::2] for i in range(2) for j in range(2)])
    flat = pooled.reshape(2, 12)
    d_out = (flat @ p["V"] - Y) / 2                                           # cost = sum((F V - Y)^2) / (2 m)
    grads = {"V": flat.T @ d_out}
    d_pooled = (d_out @ p["V"].T).reshape(pooled.shape)
    dz2 = pool_backward(d_pooled, a2, slips.get("pool", "")) * (1 - a2 ** 2)
    da1, grads["W2"], grads["b2"] = conv_backward(dz2, a1, p["W2"], 2, 1, slips.get("conv2", ""))
    _, grads["W1"], grads["b1"] = conv_backward(da1 * (1 - a1 ** 2), X, p["W1"], 1, 1, slips.get("conv1", ""))
    return grads


def loss(t: dict[str, Tensor]) -> Tensor:
    a1 = Tensor(X).conv2d(t["W1"], t["b1"], stride=1, padding=1).tanh()
    a2 = a1.conv2d(t["W2"], t["b2"], stride=2, padding=1).tanh()
    return ((a2.max_pool2d(2).flatten() @ t["V"] - Y) ** 2).sum() / 4


def check(slips: dict[str, str] | None = None, change: Any = None) -> Any:
    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        grads = backprop(p, slips)
        return change(grads) if change else grads
    return check_backprop(manual, loss, PARAMS)


def test_the_hand_derived_conv_net_agrees() -> None:
    report = check()
    assert report.ok and report.worst < 1e-12, report


@pytest.mark.parametrize("slip, words", [
    ("unrotated", "uses the kernel unrotated (or rotated twice): the input gradient is the full convolution of dZ "
                  "with every filter rotated by 180°"),
    ("unswapped", "leaves the kernel's channel axes unswapped (out and in)"),
    ("crop", "reads windows 1 row higher and 1 column to the left than the forward pass (padding (1, 1), "
             "stride (2, 2)"),
])
def test_a_slip_in_the_input_gradient_is_named_where_it_enters(slip: str, words: str) -> None:
    report = check({"conv2": slip})
    assert {r.name for r in report.rows if not r.ok} == {"W1", "b1"}, report
    for name in ("W1", "b1"):
        diagnosis = report.row(name).diagnosis
        assert diagnosis.startswith(f"the input gradient (dA_prev) of the conv2d with W2 {words}"), diagnosis
        assert "layer 2 agrees, layer 1 and below do not" in diagnosis, diagnosis


@pytest.mark.parametrize("slip, words", [
    ("flipped", "is rotated by 180°: it is the correlation of the input with dZ"),
    ("stride", "places its windows at every pixel where the forward pass's stride is (2, 2)"),
])
def test_a_slip_in_the_weight_gradient_is_named(slip: str, words: str) -> None:
    report = check({"conv2": slip})
    assert [r.name for r in report.rows if not r.ok] == ["W2"], report
    assert report.row("W2").diagnosis == f"the weight gradient of the conv2d with W2 {words}" + \
        report.row("W2").diagnosis.split(words, 1)[1]


def test_a_padding_offset_in_a_weight_gradient_says_which_way() -> None:
    report = check(change=lambda g: {**g, "W1": _shift_dw()})
    assert [r.name for r in report.rows if not r.ok] == ["W1"], report
    assert report.row("W1").diagnosis.startswith("the weight gradient of the conv2d with W1 reads windows 1 row "
                                                 "lower than the forward pass (padding (1, 1), stride (1, 1)"), report


def _shift_dw() -> np.ndarray:
    """W1's gradient with the padded input's windows taken one row lower (vert_start = h * stride + 1)."""
    a1 = np.tanh(conv_forward(X, PARAMS["W1"], PARAMS["b1"], 1, 1))
    a2 = np.tanh(conv_forward(a1, PARAMS["W2"], PARAMS["b2"], 2, 1))
    pooled = np.maximum.reduce([a2[:, :, i::2, j::2] for i in range(2) for j in range(2)])
    d_out = (pooled.reshape(2, 12) @ PARAMS["V"] - Y) / 2
    dz2 = pool_backward((d_out @ PARAMS["V"].T).reshape(pooled.shape), a2) * (1 - a2 ** 2)
    dz1 = conv_backward(dz2, a1, PARAMS["W2"], 2, 1)[0] * (1 - a1 ** 2)
    xp = np.pad(X, ((0, 0), (0, 0), (2, 2), (1, 1)))                         # one more row of zeros at each end
    return np.einsum("nohw,nchwij->ocij", dz1, windows(xp, 3)[:, :, 2:9, 0:7])


@pytest.mark.parametrize("axes, words", [((1, 0, 2, 3), "its channel axes swapped: yours is (in_channels, "
                                                       "out_channels, kh, kw)"),
                                         ((2, 3, 1, 0), "the course's layout (f, f, n_C_prev, n_C)")])
def test_a_weight_gradient_in_another_axis_order_is_named(axes: tuple[int, ...], words: str) -> None:
    report = check(change=lambda g: {**g, "W1": g["W1"].transpose(axes)})
    diagnosis = report.row("W1").diagnosis
    assert diagnosis.startswith("has shape ") and f"its values are the right gradient in {words}" in diagnosis, \
        diagnosis


# -- pooling masks: a conv whose blank pixels give relu(bias) in every entry of a window: ties ---------------------

IMAGE = np.zeros((1, 1, 6, 6))
IMAGE[0, 0, 1:4, 2:5] = rng.standard_normal((3, 3))
POOL_PARAMS = {"W": rng.standard_normal((2, 1, 3, 3)), "b": np.array([0.3, 0.2]), "v": rng.standard_normal(18)}


def pool_manual(slip: str, kind: str = "max") -> Any:
    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        z = conv_forward(IMAGE, p["W"], p["b"], 1, 1)
        a = np.maximum(z, 0)
        pooled = (np.maximum.reduce if kind == "max" else sum)([a[:, :, i::2, j::2] for i in range(2)
                                                                  for j in range(2)])
        if kind == "avg":
            pooled = pooled / 4
        d = p["v"].reshape(pooled.shape) * 1.0
        if kind == "max":
            da = pool_backward(d, a, slip)
        else:
            da = np.repeat(np.repeat(d, 2, axis=2), 2, axis=3) / (1 if slip == "whole" else 4)
        dz = da * (z > 0)
        _, dw, db = conv_backward(dz, IMAGE, p["W"], 1, 1)
        return {"W": dw, "b": db, "v": pooled.reshape(18)}
    return manual


def pool_loss(kind: str) -> Any:
    def loss_(t: dict[str, Tensor]) -> Tensor:
        a = Tensor(IMAGE).conv2d(t["W"], t["b"], padding=1).relu()
        pooled = a.max_pool2d(2) if kind == "max" else a.avg_pool2d(2)
        return (pooled.flatten(0) * t["v"]).sum()
    return loss_


TIED = {"A": rng.integers(0, 3, (1, 2, 4, 4)).astype(float), "v": rng.standard_normal(8)}   # many tied windows
_CORNERS = np.stack([TIED["A"][:, :, i::2, j::2] for i in range(2) for j in range(2)])
TIES = int(np.count_nonzero((_CORNERS.max(axis=0) == _CORNERS).sum(axis=0) > 1))   # windows with a tie


@pytest.mark.parametrize("slip, start", [
    ("every", "max_pool2d's gradient goes to every tied maximum of a window (the course's mask, x == np.max(x)); "
              f"the engine, as PyTorch, sends it to the first only: in the {TIES} windows with a tie"),
    ("last", f"right except at a kink: {TIES} max_pool2d windows hold a tied maximum, and there yours sends the "
             "gradient to the last one"),
    ("nomask", "max_pool2d's gradient goes to every entry of its window: the mask (create_mask_from_window) left out"),
    ("even", "max_pool2d's gradient is shared evenly over its window (distribute_value, the average pool's rule)"),
])
def test_a_wrong_max_pool_mask_is_named(slip: str, start: str) -> None:
    assert TIES > 1
    def manual(p: dict[str, np.ndarray], slip: str = slip) -> dict[str, np.ndarray]:
        pooled = np.maximum.reduce([p["A"][:, :, i::2, j::2] for i in range(2) for j in range(2)])
        return {"A": pool_backward(p["v"].reshape(pooled.shape), p["A"], slip), "v": pooled.reshape(8)}

    def loss_(t: dict[str, Tensor]) -> Tensor:
        return (t["A"].max_pool2d(2).flatten(0) * t["v"]).sum()

    assert check_backprop(lambda p: manual(p, ""), loss_, TIED).ok
    report = check_backprop(manual, loss_, TIED)
    assert [r.name for r in report.rows if not r.ok] == ["A"]
    assert report.row("A").diagnosis.startswith(start), report.row("A").diagnosis


def test_the_courses_mask_on_blank_windows_reaches_the_bias() -> None:
    """Over blank pixels every entry of a window is relu(bias): the course's mask sends the gradient back four
    times, to the bias only (the weights see zeros there)."""
    assert check_backprop(pool_manual(""), pool_loss("max"), POOL_PARAMS).ok
    report = check_backprop(pool_manual("every"), pool_loss("max"), POOL_PARAMS)
    assert [r.name for r in report.rows if not r.ok] == ["b"]
    assert report.row("b").diagnosis.startswith("max_pool2d's gradient goes to every tied maximum of a window"), \
        report.row("b").diagnosis


def test_an_average_pool_that_does_not_divide_is_named() -> None:
    assert check_backprop(pool_manual("", "avg"), pool_loss("avg"), POOL_PARAMS).ok
    report = check_backprop(pool_manual("whole", "avg"), pool_loss("avg"), POOL_PARAMS)
    assert report.row("W").diagnosis.startswith("avg_pool2d's gradient goes whole to every entry of its window: "
                                                "distribute_value divides it by the window's 4 entries")


def test_the_courses_conv_net_on_mnist_with_its_own_mask_is_told_where() -> None:
    """The course's network by hand (manual.conv_loops, channels-last, W1 (f, f, n_C_prev, n_C)) with the
    course's pool mask, against its engine twin written in the course's layout: the bias of the conv is named."""
    from tinygrad_edu import datasets
    from tinygrad_edu.manual import conv_loops

    params = conv_loops.init_params(np.random.default_rng(0), f=5, n_C=2)
    params["b1"] = np.full((1, 1, 1, 2), 0.1)   # above 0: MNIST's blank windows pass the ReLU, four equal entries
    mnist = datasets.load_mnist()
    x, y = mnist.train_x[:2].reshape(-1, 28, 28, 1), np.eye(10)[mnist.train_y[:2]]

    def twin(t: dict[str, Tensor]) -> Tensor:
        z1 = Tensor(x.transpose(0, 3, 1, 2)).conv2d(t["W1"].transpose(3, 2, 0, 1), t["b1"].reshape(2))
        flat = z1.relu().max_pool2d(2).transpose(0, 2, 3, 1).reshape(2, -1)   # the course flattens channels-last
        return -((flat @ t["W2"] + t["b2"]).log_softmax(axis=1) * y).sum() / 2

    assert check_backprop(lambda p: conv_loops.gradients(p, x, y), twin, params).ok
    report = check_backprop(lambda p: conv_loops.gradients(p, x, y, ties="every"), twin, params)
    assert [r.name for r in report.rows if not r.ok] == ["b1"], report
    assert report.row("b1").diagnosis.startswith("max_pool2d's gradient goes to every tied maximum of a window (the "
                                                 "course's mask, x == np.max(x))"), report.row("b1").diagnosis

    def turned(p: dict[str, np.ndarray]) -> Any:   # the filters' gradient as a convolution: rotated by 180°
        cost, grads = conv_loops.gradients(p, x, y)
        return cost, {**grads, "W1": grads["W1"][::-1, ::-1]}

    report = check_backprop(turned, twin, params)   # W1 named through its transpose into conv2d's layout
    assert [r.name for r in report.rows if not r.ok] == ["W1"], report
    assert report.row("W1").diagnosis.startswith("the weight gradient of the conv2d with W1 is rotated by 180°"), \
        report.row("W1").diagnosis


def test_an_input_gradient_that_keeps_the_padding_says_crop_it() -> None:
    x, w, b = X[:, :, :5, :5], PARAMS["W1"], PARAMS["b1"]
    u = np.random.default_rng(3).standard_normal((2, 3, 5, 5))

    def padded_dx(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        dxp = np.zeros((2, 2, 7, 7))                                  # the gradient of the padded input
        for i in range(5):
            for j in range(5):
                dxp[:, :, i:i + 3, j:j + 3] += np.einsum("no,ocij->ncij", u[:, :, i, j], p["w"])
        dw = np.einsum("nohw,nchwij->ocij", u, windows(np.pad(p["x"], ((0, 0), (0, 0), (1, 1), (1, 1))), 3))
        return {"x": dxp, "w": dw, "b": u.sum(axis=(0, 2, 3))}

    def conv_loss(t: dict[str, Tensor]) -> Tensor:
        return (t["x"].conv2d(t["w"], t["b"], padding=1) * u).sum()

    report = check_backprop(padded_dx, conv_loss, {"x": x, "w": w, "b": b})
    assert [r.name for r in report.rows if not r.ok] == ["x"], report
    assert report.row("x").diagnosis.startswith(
        "has shape (2, 2, 7, 7), the zero-padded input's, and its middle is the right gradient: the padding was "
        "kept. Crop it off: yours[:, :, 1:-1, 1:-1]"), report.row("x").diagnosis
    fixed = check_backprop(lambda p: {**padded_dx(p), "x": padded_dx(p)["x"][:, :, 1:-1, 1:-1]}, conv_loss,
                           {"x": x, "w": w, "b": b})
    assert fixed.ok, fixed
