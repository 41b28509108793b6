"""tinygrad_edu.manual.batchnorm: the hand-derived layer and MLP, against central differences and PyTorch.

The planted slips (``SLIPS``) are checked to be wrong where they should be, and the one slip that costs nothing
in the centred form (the variance's path through the mean) is shown to cost nothing there and to matter in
the one-pass form as soon as the batch mean is not zero.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tinygrad_edu import datasets
from tinygrad_edu.manual import batchnorm as bn

Arrays = dict[str, np.ndarray]
BACKWARDS = {"staged": bn.backward_staged, "closed": bn.backward_closed, "one_pass": bn.backward_one_pass}


def central_differences(f: Callable[[Arrays], float], arrays: Arrays, h: float = 1e-6) -> Arrays:
    """df/da for every entry of every array, by (f(a + h) - f(a - h)) / 2h in float64."""
    found = {}
    for name, value in arrays.items():
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            shifted = {k: v.copy() for k, v in arrays.items()}
            shifted[name][index] += h
            up = f(shifted)
            shifted[name][index] -= 2 * h
            grad[index] = (up - f(shifted)) / (2 * h)
        found[name] = grad
    return found


def layer_case(rng: np.random.Generator, n: int = 6, c: int = 4, offset: float = 3.0) -> tuple[Arrays, np.ndarray]:
    """x with column means far from zero and different spreads, gamma != 1, beta != 0, a non-uniform d_out."""
    x = rng.standard_normal((n, c)) * rng.uniform(0.5, 2.0, c) + offset * rng.standard_normal(c)
    arrays = {"x": x, "gamma": rng.uniform(0.5, 1.5, c), "beta": rng.standard_normal(c)}
    return arrays, rng.standard_normal((n, c))


def assert_close(ours: Arrays, expected: Arrays, rtol: float, what: str = "") -> None:
    for name in ("x", "gamma", "beta"):
        scale = float(np.max(np.abs(expected[name])))
        np.testing.assert_allclose(ours[name], expected[name], rtol=0, atol=rtol * scale, err_msg=f"{what} {name}")


# -- the layer ----------------------------------------------------------------------------------------------

def test_forward_normalises_each_column_and_keeps_the_graphs_nodes() -> None:
    arrays, _ = layer_case(np.random.default_rng(0))
    out, cache = bn.forward(arrays["x"], arrays["gamma"], arrays["beta"])
    np.testing.assert_allclose(out.mean(axis=0), arrays["beta"], rtol=0, atol=1e-13)
    # biased variance (1/N); the output's spread is gamma shrunk a little by eps
    variance = arrays["x"].var(axis=0)
    np.testing.assert_allclose(out.std(axis=0), arrays["gamma"] * np.sqrt(variance / (variance + 1e-5)),
                               rtol=1e-13)
    np.testing.assert_allclose(cache.variance, variance, rtol=1e-13)
    np.testing.assert_allclose(cache.x_hat, cache.centred * cache.inv_std, rtol=1e-15)


@pytest.mark.parametrize("form", sorted(BACKWARDS))
@pytest.mark.parametrize("eps", [1e-5, 0.3])
def test_backward_forms_match_central_differences(form: str, eps: float) -> None:
    rng = np.random.default_rng(1)
    arrays, d_out = layer_case(rng)

    def cost(a: Arrays) -> float:  # L = sum(out * d_out), so dL/dout is d_out
        return float(np.sum(bn.forward(a["x"], a["gamma"], a["beta"], eps)[0] * d_out))

    _, cache = bn.forward(arrays["x"], arrays["gamma"], arrays["beta"], eps)
    assert_close(BACKWARDS[form](d_out, cache), central_differences(cost, arrays), 1e-7, form)


def test_the_three_forms_agree_to_rounding() -> None:
    rng = np.random.default_rng(2)
    arrays, d_out = layer_case(rng, n=32, c=7)
    _, cache = bn.forward(arrays["x"], arrays["gamma"], arrays["beta"])
    staged = bn.backward_staged(d_out, cache)
    for form in ("closed", "one_pass"):
        assert_close(BACKWARDS[form](d_out, cache), staged, 1e-12, form)
    # a uniform d_out moves every output of a column alike: batch norm undoes that, so d_x is 0
    assert np.max(np.abs(bn.backward_closed(np.ones_like(d_out), cache)["x"])) < 1e-12


def test_eval_mode_and_running_statistics() -> None:
    rng = np.random.default_rng(3)
    arrays, d_out = layer_case(rng, n=5, c=3)
    _, cache = bn.forward(arrays["x"], arrays["gamma"], arrays["beta"])
    mean, var = bn.update_running(np.zeros(3), np.ones(3), cache, momentum=0.25)
    np.testing.assert_allclose(mean, 0.25 * arrays["x"].mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(var, 0.75 + 0.25 * arrays["x"].var(axis=0, ddof=1), rtol=1e-14)  # unbiased

    def cost(a: Arrays) -> float:
        return float(np.sum(bn.forward_eval(a["x"], a["gamma"], a["beta"], mean, var)[0] * d_out))

    out, eval_cache = bn.forward_eval(arrays["x"], arrays["gamma"], arrays["beta"], mean, var)
    np.testing.assert_allclose(out, (arrays["x"] - mean) / np.sqrt(var + 1e-5) * arrays["gamma"] + arrays["beta"])
    assert_close(bn.backward_eval(d_out, eval_cache), central_differences(cost, arrays), 1e-7, "eval")
    one, _ = bn.forward_eval(arrays["x"][:1], arrays["gamma"], arrays["beta"], mean, var)  # one sample is fine
    np.testing.assert_allclose(one, out[:1])


def test_bad_input_is_refused_with_the_shapes() -> None:
    gamma, beta = np.ones(3), np.zeros(3)
    with pytest.raises(ValueError, match=r"a batch of 1 has no spread.*more than one sample"):
        bn.forward(np.ones((1, 3)), gamma, beta)
    with pytest.raises(ValueError, match=r"gamma and beta must be \(4,\).*got \(3,\) and \(3,\)"):
        bn.forward(np.ones((5, 4)), gamma, beta)
    with pytest.raises(ValueError, match=r"x must be \(N, C\).*\(5,\)"):
        bn.forward(np.ones(5), gamma, beta)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_layer_equals_pytorch(mode: str) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    arrays, d_out = layer_case(rng, n=9, c=5)
    start_mean, start_var = rng.standard_normal(5), rng.uniform(0.5, 2.0, 5)
    layer = torch.nn.BatchNorm1d(5, eps=1e-5, momentum=0.1, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(arrays["gamma"]))
        layer.bias.copy_(torch.from_numpy(arrays["beta"]))
        layer.running_mean.copy_(torch.from_numpy(start_mean))
        layer.running_var.copy_(torch.from_numpy(start_var))
    layer.train(mode == "train")
    x = torch.from_numpy(arrays["x"].copy()).requires_grad_(True)
    out = layer(x)
    out.backward(torch.from_numpy(d_out))
    if mode == "train":
        ours, cache = bn.forward(arrays["x"], arrays["gamma"], arrays["beta"])
        grads = bn.backward_closed(d_out, cache)
        mean, var = bn.update_running(start_mean, start_var, cache, momentum=0.1)
    else:
        ours, cache = bn.forward_eval(arrays["x"], arrays["gamma"], arrays["beta"], start_mean, start_var)
        grads = bn.backward_eval(d_out, cache)
        mean, var = start_mean, start_var
    theirs = {"x": x.grad.numpy(), "gamma": layer.weight.grad.numpy(), "beta": layer.bias.grad.numpy()}
    np.testing.assert_allclose(ours, out.detach().numpy(), rtol=0, atol=1e-10)
    assert_close(grads, theirs, 1e-10, mode)
    np.testing.assert_allclose(mean, layer.running_mean.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(var, layer.running_var.numpy(), rtol=0, atol=1e-10)


# -- the slips ----------------------------------------------------------------------------------------------

def largest_error(slipped: Arrays, right: Arrays) -> dict[str, float]:
    return {k: float(np.max(np.abs(slipped[k] - right[k])) / np.max(np.abs(right[k]))) for k in right}


@pytest.mark.parametrize("name", sorted(bn.SLIPS))
def test_every_slip_is_wrong_where_it_says(name: str) -> None:
    rng = np.random.default_rng(5)
    arrays, d_out = layer_case(rng, n=8, c=4)
    _, cache = bn.forward(arrays["x"], arrays["gamma"], arrays["beta"])
    errors = largest_error(bn.SLIPS[name].backward(d_out, cache), bn.backward_staged(d_out, cache))
    wrong = {k for k, e in errors.items() if e > 1e-6}
    expected = {"swapped": {"gamma", "beta"}, "gamma_without_x_hat": {"gamma"}}.get(name, {"x"})
    assert wrong == expected, errors
    assert all(errors[k] < 1e-13 for k in errors if k not in expected), errors


def test_the_mean_path_of_the_variance_vanishes_in_the_centred_form() -> None:
    # the staged backward with d_mean taken from the x_hat path only: the variance's path through the mean
    # is (2/N) d_variance sum_n centred, and the centred values sum to 0
    rng = np.random.default_rng(6)
    arrays, d_out = layer_case(rng, n=16, c=5, offset=50.0)
    _, cache = bn.forward(arrays["x"], arrays["gamma"], arrays["beta"])
    n = cache.x.shape[0]
    d_centred_x_hat = d_out * cache.gamma * cache.inv_std
    d_variance = np.sum(d_out * cache.gamma * cache.centred, axis=0) * -0.5 * (cache.variance + cache.eps) ** -1.5
    d_centred = d_centred_x_hat + 2 * cache.centred * d_variance / n
    slipped = d_centred - d_centred_x_hat.sum(axis=0) / n        # d_mean without the variance's share
    right = bn.backward_staged(d_out, cache)["x"]
    assert np.max(np.abs(slipped - right)) / np.max(np.abs(right)) < 1e-12
    assert np.max(np.abs(cache.centred.sum(axis=0))) < 1e-11 * np.max(np.abs(cache.x))


@pytest.mark.parametrize("offset", [0.0, 1e-3, 1.0, 5.0])
def test_the_mean_path_matters_in_the_one_pass_form_unless_the_mean_is_zero(offset: float) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((10, 3))
    x = x - x.mean(axis=0) + offset                       # every column's batch mean is exactly `offset`
    gamma, beta, d_out = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3), rng.standard_normal((10, 3))
    _, cache = bn.forward(x, gamma, beta)
    right = bn.backward_one_pass(d_out, cache)["x"]
    error = np.max(np.abs(bn.SLIPS["mean_path"].backward(d_out, cache)["x"] - right)) / np.max(np.abs(right))
    if offset == 0.0:
        assert error < 1e-13
    else:  # the missing term is 2 mean d_variance / N: it grows with the mean
        assert error > offset * 1e-2, error


def test_forgotten_eps_matters_most_for_a_nearly_constant_feature() -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((12, 3)) * np.array([1.0, 1e-2, 1e-3])   # variances 1, 1e-4, 1e-6 against eps 1e-5
    gamma, beta, d_out = np.ones(3), np.zeros(3), rng.standard_normal((12, 3))
    _, cache = bn.forward(x, gamma, beta)
    right, slipped = bn.backward_closed(d_out, cache)["x"], bn.SLIPS["no_eps"].backward(d_out, cache)["x"]
    per_column = np.max(np.abs(slipped - right), axis=0) / np.max(np.abs(right), axis=0)
    assert 1e-7 < per_column[0] < 1e-4 < per_column[1] < 0.1 < per_column[2]   # about eps / (2 variance)
    with np.errstate(divide="ignore", invalid="ignore"):  # a constant feature (an MNIST border pixel): 0 / 0
        _, constant = bn.forward(np.ones((4, 1)), np.ones(1), np.zeros(1))
        assert not np.isfinite(bn.SLIPS["no_eps"].backward(np.ones((4, 1)), constant)["x"]).all()
    assert np.isfinite(bn.backward_closed(np.ones((4, 1)), constant)["x"]).all()


# -- the batch-norm MLP -------------------------------------------------------------------------------------

def test_mlp_gradients_match_central_differences() -> None:
    rng = np.random.default_rng(9)
    params = bn.init_params(rng, (6, 5, 4, 3))
    params = {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in params.items()}  # gamma != 1, beta != 0
    x, y = rng.random((7, 6)), datasets.one_hot(rng.integers(0, 3, 7), num_classes=3)
    value, grads = bn.gradients(params, x, y)
    assert list(grads) == ["w1", "gamma1", "beta1", "w2", "gamma2", "beta2", "w3", "b3"]
    assert value == pytest.approx(bn.loss(params, x, y), rel=1e-15)
    numeric = central_differences(lambda p: bn.loss(p, x, y), params)
    for name in params:
        scale = float(np.max(np.abs(numeric[name])))
        np.testing.assert_allclose(grads[name], numeric[name], rtol=0, atol=1e-7 * scale, err_msg=name)


def test_mlp_learns_mnist_and_keeps_running_statistics() -> None:
    data = datasets.load_mnist()
    x, labels = data.train_x[:500], data.train_y[:500]
    y = datasets.one_hot(labels)
    params = bn.init_params(0, (784, 32, 10))
    running = bn.init_running(params)
    assert set(running) == {"mean1", "var1"}
    first = bn.loss(params, x, y)
    rng = np.random.default_rng(0)
    for _ in range(3):
        for batch in np.array_split(rng.permutation(500), 10):
            running = bn.running_after(params, running, x[batch])
            params = bn.sgd_step(params, bn.gradients(params, x[batch], y[batch])[1], lr=1.0)
    assert bn.loss(params, x, y) < 0.5 * first
    assert np.mean(bn.predict(params, running, x) == labels) > 0.8
    # the running mean follows the batch means of the first layer's pre-activations
    z = x @ params["w1"]
    assert np.max(np.abs(running["mean1"] - z.mean(axis=0))) < 0.5 * np.max(np.abs(z.mean(axis=0)))


def test_mlp_errors_and_float32() -> None:
    params = bn.init_params(np.random.default_rng(10), (4, 3, 2), dtype=np.float32)
    x, y = (np.ones((5, 4)) + np.arange(5)[:, None]).astype(np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 0]]
    _, grads = bn.gradients(params, x, y)
    assert all(g.dtype == np.float32 for g in grads.values())
    with pytest.raises(ValueError, match=r"x must be \(n, 4\)"):
        bn.gradients(params, x[:, :3], y)
    with pytest.raises(ValueError, match="at least one hidden layer"):
        bn.init_params(0, (4, 2))
    with pytest.raises(KeyError, match="mismatched"):
        bn.sgd_step(params, {"w1": grads["w1"]}, 0.1)
    with pytest.raises(ValueError, match="y must be one-hot rows"):
        bn.gradients(params, x, y[:, :1])


def test_the_module_is_pure_numpy() -> None:
    for name in bn.__all__:
        assert hasattr(bn, name), name
    with open(bn.__file__, encoding="utf-8") as stream:
        imports = {line.split()[1] for line in stream if line.startswith(("import ", "from "))}
    assert imports <= {"__future__", "numpy", "numpy.typing", "collections.abc", "typing", "._common"}, imports
