"""Nielsen's chapter-6 networks (convnet): network3.py's layers, initialisation, forward pass and L2 term."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_edu import Tensor, convnet

SHAPES = {
    "conv": [(20, 1, 5, 5), (20,), (2880, 100), (100,), (100, 10), (10,)],
    "conv2": [(20, 1, 5, 5), (20,), (40, 20, 5, 5), (40,), (640, 100), (100,), (100, 10), (10,)],
}
SHAPES["conv2_relu"] = SHAPES["conv2"]


@pytest.mark.parametrize("layout", convnet.LAYOUTS)
def test_each_layout_has_network3s_layers(layout: str) -> None:
    assert [p.shape for p in convnet.build(layout).parameters()] == SHAPES[layout]


def _reference(layout: str, params: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """network3.py's forward pass in plain numpy: conv (valid, correlation), 2x2 max-pool, activation, ..."""
    act = (lambda z: np.maximum(z, 0.0)) if layout == "conv2_relu" else (lambda z: 1 / (1 + np.exp(-z)))
    a, rest = x, list(params)
    for _ in range(1 if layout == "conv" else 2):
        w, b = rest.pop(0), rest.pop(0)
        windows = np.lib.stride_tricks.sliding_window_view(a, w.shape[2:], axis=(2, 3))
        z = np.einsum("nchwij,ocij->nohw", windows, w)
        n, o, h, wd = z.shape
        pooled = z.reshape(n, o, h // 2, 2, wd // 2, 2).max(axis=(3, 5))
        a = act(pooled + b.reshape(1, -1, 1, 1))   # the bias after the pool: the same numbers (max is increasing)
    a = a.reshape(len(x), -1)
    w, b, w_out, b_out = rest
    return act(a @ w + b) @ w_out + b_out


@pytest.mark.parametrize("layout", convnet.LAYOUTS)
def test_the_forward_pass_is_network3s(layout: str) -> None:
    model = convnet.build(layout, rng=1)
    rng = np.random.default_rng(2)
    for p in model.parameters()[-2:]:   # the softmax layer starts at zero: give it numbers to compare
        p.data = rng.standard_normal(p.shape)
    x = rng.random((3, 1, 28, 28))
    expected = _reference(layout, [p.data for p in model.parameters()], x)
    np.testing.assert_allclose(model(Tensor(x)).data, expected, rtol=1e-12, atol=1e-12)


def test_the_start_is_network3s() -> None:
    params = convnet.build("conv2", rng=0).parameters()
    assert not np.any(params[-2].data) and not np.any(params[-1].data)   # the softmax layer at zero
    for weight, n_out in ((params[0], 20 * 25 / 4), (params[2], 40 * 25 / 4), (params[4], 100)):
        assert abs(weight.data.std() / np.sqrt(1 / n_out) - 1) < 0.1
    assert abs(params[1].data.std() - 1) < 0.5 and abs(params[5].data.std() - 1) < 0.2   # biases N(0, 1)


def test_the_l2_term_is_half_lambda_times_every_squared_weight_over_the_batches() -> None:
    model = convnet.build("conv2_relu", rng=0)
    weights = [p.data for name, p in model.named_parameters() if name.endswith("weight")]
    expected = 0.5 * 0.1 * sum(float((w ** 2).sum()) for w in weights) / 7
    assert len(weights) == 4
    assert convnet.l2_penalty(model, 0.1, 7).item() == pytest.approx(expected, rel=1e-12)


def test_a_short_run_is_repeatable_and_uses_the_l2_term() -> None:
    def run(lmbda: float | None = None) -> dict:
        return convnet.train("conv2_relu", epochs=1, limit=40, evaluate_on=50, seed=3, lmbda=lmbda, progress=False,
                             report=None)
    first, again, without = run(), run(), run(lmbda=0.0)
    assert first["loss"] == again["loss"] and first["best_epoch"] == 0
    weights = [p.data for p in first["model"].parameters()]
    assert all(np.array_equal(a, p.data) for a, p in zip(weights, again["model"].parameters()))
    assert not np.array_equal(weights[0], without["model"].parameters()[0].data)
