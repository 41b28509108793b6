"""tinygrad_edu.manual: the hand-derived tutorial networks, checked against finite differences and real data."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tinygrad_edu import datasets
from tinygrad_edu.manual import lnet, logreg, mnist3, nielsen, xor

Params = dict[str, np.ndarray]


def numeric_gradient(loss: Callable[[Params], float], params: Params, name: str, index: tuple[int, ...],
                     eps: float = 1e-6) -> float:
    """Central difference of ``loss`` in one entry of ``params[name]`` (float64)."""
    shifted = {k: v.copy() for k, v in params.items()}
    shifted[name][index] += eps
    up = loss(shifted)
    shifted[name][index] -= 2 * eps
    down = loss(shifted)
    return (up - down) / (2 * eps)


def check_gradients(loss: Callable[[Params], float], params: Params, grads: Params,
                    rng: np.random.Generator, *, entries: int = 30, rtol: float = 1e-6) -> None:
    """Every entry of small parameters, ``entries`` random entries of big ones, against central differences."""
    assert set(grads) == set(params)
    for name, value in params.items():
        assert grads[name].shape == value.shape, name
        if value.size <= entries:
            indices = list(np.ndindex(value.shape))
        else:
            flat = rng.choice(value.size, size=entries, replace=False)
            indices = [np.unravel_index(i, value.shape) for i in flat]
        numeric = np.array([numeric_gradient(loss, params, name, i) for i in indices])
        analytic = np.array([grads[name][i] for i in indices])
        scale = max(float(np.max(np.abs(grads[name]))), 1e-12)
        np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=rtol * scale, err_msg=name)


# -- mnist3 (file 000) ---------------------------------------------------------------------------------------

def test_mnist3_gradients_match_central_differences() -> None:
    rng = np.random.default_rng(0)
    params = mnist3.init_params(rng, hidden=5)
    assert {k: v.shape for k, v in params.items()} == {"w1": (784, 5), "w2": (5, 5), "w3": (5, 10)}
    x = rng.random((3, 784)) * 0.1  # keeps the first layer out of saturation, so no gradient is ~0
    y = datasets.one_hot(np.array([3, 1, 4]))
    value, grads = mnist3.gradients(params, x, y)
    assert value == pytest.approx(mnist3.loss(params, x, y), rel=1e-14)
    check_gradients(lambda p: mnist3.loss(p, x, y), params, grads, rng)


def test_mnist3_loss_is_the_tutorials_formula_and_output_delta() -> None:
    rng = np.random.default_rng(1)
    params = mnist3.init_params(rng, hidden=4)
    x, y = rng.random((6, 784)) * 0.05, datasets.one_hot(rng.integers(0, 10, 6))
    _, a2, a3 = mnist3.forward(params, x)
    n = len(x)
    expected = -np.sum(y * np.log(a3) + (1 - y) * np.log(1 - a3)) / n
    assert mnist3.loss(params, x, y) == pytest.approx(expected, rel=1e-12)
    # dL/dw3 = a2^T (a3 - y) / n: the tutorial's output delta
    np.testing.assert_allclose(mnist3.gradients(params, x, y)[1]["w3"], a2.T @ (a3 - y) / n, rtol=1e-12)


def test_mnist3_loss_stays_finite_when_saturated() -> None:
    rng = np.random.default_rng(2)
    params = mnist3.init_params(rng)
    x, y = np.ones((2, 784)) * 50, datasets.one_hot(np.array([0, 1]))
    value, grads = mnist3.gradients(params, x, y)
    assert np.isfinite(value) and all(np.isfinite(g).all() for g in grads.values())


def test_mnist3_sgd_step_and_train_lower_the_loss() -> None:
    rng = np.random.default_rng(3)
    data = datasets.load_mnist()
    x, y = data.train_x[:64], datasets.one_hot(data.train_y[:64])
    params = mnist3.init_params(rng, hidden=16)
    value, grads = mnist3.gradients(params, x, y)
    stepped = mnist3.sgd_step(params, grads, 0.1)
    assert mnist3.loss(stepped, x, y) < value
    assert stepped["w1"] is not params["w1"]  # a new dict of new arrays
    _, history = mnist3.train(params, x, y, epochs=30, lr=1.0)
    assert history[-1] < history[0]
    assert mnist3.predict(params, x).shape == (64,)
    with pytest.raises(ValueError, match=r"mnist3.gradients: x must be \(n, 784\)"):
        mnist3.gradients(params, x[:, :100], y)
    with pytest.raises(TypeError, match=r"rng must be a np\.random\.Generator or an int seed"):
        mnist3.init_params(None)


# -- nielsen (file 001) --------------------------------------------------------------------------------------

@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
def test_nielsen_gradients_match_central_differences(cost: str) -> None:
    rng = np.random.default_rng(4)
    params = nielsen.params_of(nielsen.Network([6, 4, 3], rng=rng))
    x = rng.random((6, 5))
    y = datasets.one_hot(rng.integers(0, 3, 5), num_classes=3).T
    value, grads = nielsen.gradients(params, x, y, cost=cost)
    assert value == pytest.approx(nielsen.loss(params, x, y, cost=cost), rel=1e-14)
    check_gradients(lambda p: nielsen.loss(p, x, y, cost=cost), params, grads, rng)


def test_nielsen_quadratic_cost_value() -> None:
    rng = np.random.default_rng(5)
    net = nielsen.Network([4, 3, 2], rng=rng)
    x, y = rng.random((4, 7)), rng.random((2, 7))
    a = net.feedforward(x)
    assert nielsen.loss(nielsen.params_of(net), x, y) == pytest.approx(np.sum((y - a) ** 2) / (2 * 7), rel=1e-14)


@pytest.fixture(scope="module")
def mnist_small() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    data = datasets.load_mnist()
    return data.train_x[:2000], data.train_y[:2000], data.test_x[:1000], data.test_y[:1000]


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
def test_nielsen_per_sample_backprop_averages_to_the_matrix_form(mnist_small: tuple, cost: str) -> None:
    train_x, train_y = mnist_small[0][:10], mnist_small[1][:10]
    net = nielsen.Network([784, 30, 10], rng=6, cost=cost)
    pairs = nielsen.training_pairs(train_x, train_y)
    sums_b = [np.zeros_like(b) for b in net.biases]
    sums_w = [np.zeros_like(w) for w in net.weights]
    for x, y in pairs:
        nabla_b, nabla_w = net.backprop(x, y)
        sums_b = [s + n for s, n in zip(sums_b, nabla_b)]
        sums_w = [s + n for s, n in zip(sums_w, nabla_w)]
    X, Y = train_x.T, datasets.one_hot(train_y).T
    batch_b, batch_w = net.backprop_batch(X, Y)
    for mean, batch in zip(sums_b + sums_w, batch_b + batch_w):
        np.testing.assert_allclose(mean / len(pairs), batch, rtol=0, atol=1e-12)
    # the module-level form gives the same numbers for the quadratic cost
    if cost == "quadratic":
        _, grads = nielsen.gradients(nielsen.params_of(net), X, Y)
        for i in range(2):
            np.testing.assert_allclose(grads[f"w{i}"], batch_w[i], rtol=0, atol=1e-12)
            np.testing.assert_allclose(grads[f"b{i}"], batch_b[i], rtol=0, atol=1e-12)


def test_nielsen_update_mini_batch_equals_the_matrix_update(mnist_small: tuple) -> None:
    train_x, train_y = mnist_small[0][:10], mnist_small[1][:10]
    loop, matrix = nielsen.Network([784, 30, 10], rng=7), nielsen.Network([784, 30, 10], rng=7)
    loop.update_mini_batch(nielsen.training_pairs(train_x, train_y), 3.0)
    matrix.update_mini_batch_matrix(train_x.T, datasets.one_hot(train_y).T, 3.0)
    for a, b in zip(loop.weights + loop.biases, matrix.weights + matrix.biases):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_nielsen_sgd_learns_mnist_in_one_epoch(mnist_small: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    train_x, train_y, test_x, test_y = mnist_small
    net = nielsen.Network([784, 30, 10], rng=0, cost="cross_entropy")
    training, test = nielsen.training_pairs(train_x, train_y), nielsen.test_pairs(test_x, test_y)
    before = net.evaluate(test)
    accuracies = net.SGD(training, 1, 10, 0.5, test_data=test, rng=0)
    correct = net.evaluate(test)
    assert accuracies == [correct / 1000]
    assert correct > 500, f"{correct} / 1000 after one epoch (was {before} / 1000 untrained)"
    assert capsys.readouterr().out == f"Epoch 0: {correct} / 1000\n"


def test_nielsen_sgd_per_sample_and_matrix_runs_agree(mnist_small: tuple) -> None:
    train_x, train_y, test_x, test_y = mnist_small
    training = nielsen.training_pairs(train_x[:500], train_y[:500])
    test = nielsen.test_pairs(test_x[:200], test_y[:200])
    loop, matrix = nielsen.Network([784, 30, 10], rng=8), nielsen.Network([784, 30, 10], rng=8)
    assert loop.SGD(training, 1, 10, 3.0, test, rng=1, matrix=False, verbose=False) == \
        matrix.SGD(training, 1, 10, 3.0, test, rng=1, verbose=False)
    np.testing.assert_allclose(loop.weights[0], matrix.weights[0], rtol=0, atol=1e-10)


def test_nielsen_network_layout_and_errors() -> None:
    net = nielsen.Network([784, 30, 10], rng=0)
    assert [w.shape for w in net.weights] == [(30, 784), (10, 30)]
    assert [b.shape for b in net.biases] == [(30, 1), (10, 1)]
    assert set(nielsen.params_of(net)) == {"w0", "b0", "w1", "b1"}
    same = nielsen.Network([784, 30, 10], rng=np.random.default_rng(0))
    np.testing.assert_array_equal(net.weights[1], same.weights[1])
    with pytest.raises(ValueError, match=r"Network.backprop: expected x \(784, m\)"):
        net.backprop(np.zeros((784,)), np.zeros((10, 1)))
    with pytest.raises(ValueError, match="one sample at a time"):
        net.backprop(np.zeros((784, 2)), np.zeros((10, 2)))
    with pytest.raises(ValueError, match="cost must be one of"):
        nielsen.Network([2, 1], rng=0, cost="hinge")
    with pytest.raises(KeyError, match="w0, b0, w1, b1"):
        nielsen.gradients({"w0": np.zeros((1, 2)), "bias": np.zeros((1, 1))}, np.zeros((2, 1)), np.zeros((1, 1)))


# -- xor (file 002) ------------------------------------------------------------------------------------------

def test_xor_gradients_match_central_differences_and_the_tutorials_sign() -> None:
    rng = np.random.default_rng(9)
    params = xor.init_params(rng)
    assert params["weights1"].shape == (3, 4) and params["weights2"].shape == (4, 1)
    assert params["weights1"].min() >= 0 and params["weights1"].max() < 1
    x, y = datasets.xor()
    value, grads = xor.gradients(params, x, y)
    assert value == pytest.approx(float(np.sum((y - xor.forward(params, x)[1]) ** 2)), rel=1e-14)
    check_gradients(lambda p: xor.loss(p, x, y), params, grads, rng)
    direction = xor.backpropagation(params, x, y)  # the tutorial's d_weights: the NEGATIVE gradient
    for name in params:
        np.testing.assert_array_equal(direction[name], -grads[name])


def test_xor_train_learns_xor() -> None:
    x, y = datasets.xor()
    params, output = xor.train(x, y, epochs=1000, rng=np.random.default_rng(0))
    np.testing.assert_allclose(output, y, atol=0.05)
    assert xor.loss(params, x, y) < 0.01


def test_xor_train_with_typo_does_not_learn() -> None:
    x, y = datasets.xor()
    start = xor.init_params(np.random.default_rng(0))
    _, output = xor.train_with_typo(x, y, epochs=1000, rng=0, params=start)
    assert np.max(np.abs(output - y)) > 0.5
    # the literal line replaces the weights by 1 + d_weights: after one step they are exactly that
    one_step, _ = xor.train_with_typo(x, y, epochs=1, rng=0, params=start)
    direction = xor.backpropagation(start, x, y)
    for name in start:
        np.testing.assert_array_equal(one_step[name], direction[name] + 1)
    # and it ends at the same place whatever the starting weights were
    _, other = xor.train_with_typo(x, y, epochs=1000, rng=123)
    np.testing.assert_allclose(other, output, atol=1e-9)


# -- lnet (file 003) -----------------------------------------------------------------------------------------

def test_lnet_gradients_match_central_differences() -> None:
    rng = np.random.default_rng(10)
    params = lnet.init_params([5, 4, 3, 1], rng, scale=1.0)
    X = rng.standard_normal((5, 8))
    Y = (rng.random((1, 8)) > 0.5).astype(np.float64)
    value, grads = lnet.gradients(params, X, Y)
    assert value == pytest.approx(lnet.cost_function(lnet.forward_prop(X, params)[0], Y), rel=1e-14)
    check_gradients(lambda p: lnet.cost_function(lnet.forward_prop(X, p)[0], Y), params, grads, rng)


def test_lnet_pieces() -> None:
    params = lnet.init_params([12288, 20, 7, 5, 1], 0)
    assert params["W1"].shape == (20, 12288) and params["b4"].shape == (1, 1)
    assert np.all(params["b2"] == 0) and 0.005 < params["W1"].std() < 0.015  # randn * 0.01
    A, Z = lnet.sigmoid(np.array([[0.0, 2.0]]))
    np.testing.assert_allclose(A, [[0.5, 1 / (1 + np.exp(-2.0))]])
    assert Z.tolist() == [[0.0, 2.0]]
    X, Y = np.random.default_rng(0).random((12288, 3)), np.array([[1.0, 0.0, 1.0]])
    AL, caches = lnet.forward_prop(X, params)
    assert AL.shape == (1, 3) and len(caches) == 4
    grads = lnet.backprop(AL, Y, caches)
    assert set(grads) == {f"d{p}{i}" for i in range(1, 5) for p in "Wb"}
    updated = lnet.update_parameters(params, grads, 0.1)
    np.testing.assert_allclose(updated["W2"], params["W2"] - 0.1 * grads["dW2"])
    assert lnet.predict(X, params).shape == (1, 3)
    with pytest.raises(ValueError, match=r"lnet.forward_prop: X must be \(12288, m\)"):
        lnet.forward_prop(X.T, params)


def test_lnet_model_fits_a_small_problem() -> None:
    rng = np.random.default_rng(11)
    X = rng.standard_normal((2, 200))
    Y = (X[0:1] * X[1:2] > 0).astype(np.float64)  # XOR-like quadrants: needs the hidden layer
    params, costs = lnet.model(X, Y, [2, 8, 1], epochs=3000, lr=2.0, rng=rng, scale=1.0)
    assert costs[-1] < 0.5 * costs[0]
    assert np.mean(lnet.predict(X, params) == Y) > 0.9


# -- logreg (file 004) ---------------------------------------------------------------------------------------

def test_logreg_gradients_match_central_differences() -> None:
    rng = np.random.default_rng(12)
    params = {"w": rng.standard_normal((6, 1)), "b": np.array([[0.3]])}
    X, Y = rng.standard_normal((6, 9)), (rng.random((1, 9)) > 0.5).astype(np.float64)
    value, grads = logreg.gradients(params, X, Y)
    assert grads["b"].shape == (1, 1)

    def cost(p: Params) -> float:
        A = 1 / (1 + np.exp(-(p["w"].T @ X + p["b"])))
        return float(-np.mean(Y * np.log(A) + (1 - Y) * np.log(1 - A)))  # eqs (3) and (4) as written

    assert value == pytest.approx(cost(params), rel=1e-12)
    check_gradients(cost, params, grads, rng)


def test_logreg_on_the_cats_matches_the_published_accuracies() -> None:
    cats = datasets.load_catvnoncat()
    result = logreg.model(cats.train_x.T, cats.train_y.reshape(1, -1), cats.test_x.T, cats.test_y.reshape(1, -1),
                          num_iterations=2000, learning_rate=0.005)
    assert int(np.sum(result["train_predictions"] == cats.train_y)) == 207   # 99.04 %
    assert int(np.sum(result["test_predictions"] == cats.test_y)) == 35      # 70.0 %
    assert round(100 * result["train_accuracy"], 2) == 99.04
    assert round(100 * result["test_accuracy"], 2) == 70.0
    assert len(result["costs"]) == 20 and result["costs"][0] == pytest.approx(np.log(2))
    assert result["costs"][-1] == pytest.approx(0.1409, abs=1e-4)


# -- all five -----------------------------------------------------------------------------------------------

def test_float32_stays_float32() -> None:
    rng = np.random.default_rng(13)
    f32 = np.float32
    p = mnist3.init_params(rng, hidden=3, dtype=f32)
    _, g = mnist3.gradients(p, rng.random((2, 784)).astype(f32), np.eye(10, dtype=f32)[:2])
    assert all(v.dtype == f32 for v in g.values())
    p = nielsen.params_of(nielsen.Network([4, 3, 2], rng=0, dtype=f32))
    _, g = nielsen.gradients(p, np.ones((4, 2), f32), np.zeros((2, 2), f32))
    assert all(v.dtype == f32 for v in g.values())
    x, y = datasets.xor()
    _, g = xor.gradients(xor.init_params(rng, dtype=f32), x.astype(f32), y.astype(f32))
    assert all(v.dtype == f32 for v in g.values())
    _, g = lnet.gradients(lnet.init_params([3, 2, 1], rng, dtype=f32), np.ones((3, 4), f32), np.ones((1, 4), f32))
    assert all(v.dtype == f32 for v in g.values())
    w, b = logreg.initialize_with_zeros(3, dtype=f32)
    _, g = logreg.gradients({"w": w, "b": b}, np.ones((3, 4), f32), np.ones((1, 4), f32))
    assert all(v.dtype == f32 for v in g.values())


def test_manual_modules_do_not_import_the_engine() -> None:
    import tinygrad_edu.manual as manual

    for module in (mnist3, nielsen, xor, lnet, logreg):
        key = module.__name__.rsplit(".", 1)[-1]
        assert module.__doc__ and module.__doc__.lstrip().startswith(f"The {key} tutorial (``00"), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
        with open(module.__file__, encoding="utf-8") as stream:
            imports = {line.split()[1] for line in stream if line.startswith(("import ", "from "))}
        # pure numpy: nothing from the engine, no pickle
        assert imports <= {"__future__", "numpy", "numpy.typing", "collections.abc", "._common"}, imports
    assert {"lnet", "logreg", "mnist3", "nielsen", "xor"} <= set(manual.__all__)  # the next chapters: test_manual_ch3
