"""The next chapters by hand (tinygrad_edu.manual): Nielsen's network2 and the course's second course.

Each reference is checked against float64 central differences and against the figures its source prints: the
course's printed costs and accuracies (its data and random draws are reproduced exactly, so they match digit for
digit where the run is short enough for CI) and its graded test cases.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.test_manual import check_gradients
from tinygrad_edu import datasets
from tinygrad_edu.manual import gradient_checking, initialization, network2, nielsen, optimization, regularization

Params = dict[str, np.ndarray]


def _columns(points: datasets.Points, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    x, y = getattr(points, f"{split}_x"), getattr(points, f"{split}_y")
    return x.T.copy(), y.reshape(1, -1).astype(np.float64)


def _small_net(rng: np.random.Generator, sizes: tuple[int, ...] = (2, 4, 3, 1)) -> Params:
    return {name: rng.standard_normal((sizes[i // 2 + 1], sizes[i // 2]) if name[0] == "W" else (sizes[i // 2 + 1], 1))
            for i, name in enumerate(["W1", "b1", "W2", "b2", "W3", "b3"])}


# -- the data -----------------------------------------------------------------------------------------------

def test_circles_and_moons_are_the_bundled_course_data() -> None:
    circles, moons = datasets.load_circles(), datasets.load_moons()
    assert circles.train_x.shape == (300, 2) and circles.test_x.shape == (100, 2) and moons.train_x.shape == (300, 2)
    assert circles.train_x.dtype == np.float64 and circles.train_y.dtype == np.int64
    assert set(np.unique(circles.train_y)) == {0, 1} and int(moons.train_y.sum()) == 150
    # the inner circle (label 1) has radius 0.8, the outer 1, with noise 0.05
    radius = np.hypot(*circles.train_x.T)
    assert abs(radius[circles.train_y == 1].mean() - 0.8) < 0.02 and abs(radius[circles.train_y == 0].mean() - 1) < 0.02
    assert datasets.load_circles().train_x is not circles.train_x  # fresh arrays every time
    for name in ("circles.npz", "moons.npz"):
        datasets.verify_file(datasets.DATA_DIR / name)


# -- initialization -----------------------------------------------------------------------------------------

# the course's printed costs for the He start (every 1000 iterations) and its first W1 for [2, 4, 1]
HE_COSTS = [0.8830537463419761, 0.6879825919728063, 0.6751286264523371, 0.6526117768893807, 0.6082958970572938,
            0.5304944491717495, 0.4138645817071794, 0.3117803464844441, 0.23696215330322562, 0.18597287209206836,
            0.1501555628037182, 0.12325079292273548, 0.09917746546525937, 0.0845705595402428, 0.07357895962677366]


def test_initializers_draw_the_courses_numbers() -> None:
    he = initialization.initialize_parameters_he([2, 4, 1])
    np.testing.assert_allclose(he["W1"], [[1.78862847, 0.43650985], [0.09649747, -1.8634927],
                                          [-0.2773882, -0.35475898], [-0.08274148, -0.62700068]], atol=5e-9)
    np.testing.assert_allclose(he["W2"], [[-0.03098412, -0.33744411, -0.92904268, 0.62552248]], atol=5e-9)
    large = initialization.initialize_parameters_random([3, 2, 1])
    np.testing.assert_allclose(large["W1"], [[17.88628473, 4.36509851, 0.96497468],
                                             [-18.63492703, -2.77388203, -3.54758979]], atol=5e-8)
    np.testing.assert_allclose(large["W2"], [[-0.82741481, -6.27000677]], atol=5e-8)
    zeros = initialization.initialize_parameters_zeros([2, 10, 5, 1])
    assert all(not v.any() for v in zeros.values()) and zeros["W2"].shape == (5, 10) and zeros["b3"].shape == (1, 1)
    with pytest.raises(ValueError, match="one of"):
        initialization.initialize([2, 1], "xavier")


def test_he_start_reproduces_the_courses_costs_and_accuracies() -> None:
    X, Y = _columns(datasets.load_circles())
    Xt, Yt = _columns(datasets.load_circles(), "test")
    params, costs = initialization.model(X, Y, initialization="he")
    assert costs[:2] == HE_COSTS[:2]  # the same bits: the course's data and draws
    np.testing.assert_allclose(costs, HE_COSTS, rtol=1e-12)  # 15,000 iterations of rounding later
    assert initialization.accuracy(X, Y, params) == pytest.approx(298 / 300)   # published 0.993333333333
    assert initialization.accuracy(Xt, Yt, params) == pytest.approx(0.96)


def test_zero_and_large_starts_fail_as_the_course_says() -> None:
    X, Y = _columns(datasets.load_circles())
    params, costs = initialization.model(X, Y, initialization="zeros", num_iterations=1001)
    assert costs == [math.log(2), math.log(2)]           # never moves: symmetry is not broken
    assert initialization.accuracy(X, Y, params) == 0.5 and not initialization.predict(X, params).any()
    assert not params["W1"].any() and not params["W2"].any()
    _, costs = initialization.model(X, Y, initialization="random", num_iterations=1)
    assert costs == [math.inf]                            # an output saturated on the wrong side: log(0)


# -- regularization -----------------------------------------------------------------------------------------

def _course_case() -> tuple[np.ndarray, np.ndarray, Params]:
    draw = np.random.RandomState(1)  # the course's forward/backward test cases
    X = draw.randn(3, 5)
    shapes = {"W1": (2, 3), "b1": (2, 1), "W2": (3, 2), "b2": (3, 1), "W3": (1, 3), "b3": (1, 1)}
    params = {name: draw.randn(*shape) for name, shape in shapes.items()}
    return X, np.array([[1.0, 1.0, 0.0, 1.0, 0.0]]), params


def test_regularization_matches_the_courses_graded_cases() -> None:
    draw = np.random.RandomState(1)
    shapes = {"W1": (2, 3), "b1": (2, 1), "W2": (3, 2), "b2": (3, 1), "W3": (1, 3), "b3": (1, 1)}
    params = {name: draw.randn(*shape) for name, shape in shapes.items()}
    a3 = np.array([[0.40682402, 0.01629284, 0.16722898, 0.10118111, 0.40682402]])
    cost = regularization.compute_cost_with_regularization(a3, np.array([[1, 1, 0, 1, 0]]), params, lambd=0.1)
    assert cost == pytest.approx(1.78648594516, abs=1e-10)
    X, Y, params = _course_case()
    _, cache = regularization.forward_propagation(X, params)
    grads = regularization.backward_propagation_with_regularization(X, Y, cache, lambd=0.7)
    np.testing.assert_allclose(grads["dW1"], [[-0.25604646, 0.12298827, -0.28297129],
                                              [-0.17706303, 0.34536094, -0.4410571]], atol=1e-7)
    np.testing.assert_allclose(grads["dW2"], [[0.79276486, 0.85133918], [-0.0957219, -0.01720463],
                                              [-0.13100772, -0.03750433]], atol=1e-7)
    np.testing.assert_allclose(grads["dW3"], [[-1.77691347, -0.11832879, -0.09397446]], atol=1e-7)
    a3, _ = regularization.forward_propagation_with_dropout(X, params, keep_prob=0.7)  # the course's seed-1 masks
    np.testing.assert_allclose(a3, [[0.36974721, 0.00305176, 0.04565099, 0.49683389, 0.36974721]], atol=1e-8)


def test_l2_and_dropout_gradients_match_central_differences() -> None:
    rng = np.random.default_rng(20)
    params = _small_net(rng)
    X, Y = rng.standard_normal((2, 7)), (rng.random((1, 7)) > 0.5).astype(np.float64)
    _, grads = regularization.gradients_l2(params, X, Y, lambd=0.7)
    check_gradients(lambda p: regularization.gradients_l2(p, X, Y, 0.7)[0], params, grads, rng)
    masks = regularization.dropout_masks([(4, 7), (3, 7)], keep_prob=0.6, rng=rng)
    assert 0 < masks[0].mean() < 1 and set(np.unique(masks[1])) <= {0.0, 1.0}
    _, grads = regularization.gradients_dropout(params, X, Y, masks, 0.6)
    check_gradients(lambda p: regularization.gradients_dropout(p, X, Y, masks, 0.6)[0], params, grads, rng)
    # a unit dropped in every column gets no gradient through the mask at all
    dead = [m.copy() for m in masks]
    dead[0][1, :] = 0
    _, grads = regularization.gradients_dropout(params, X, Y, dead, 0.6)
    assert not grads["W1"][1].any() and not grads["b1"][1].any()


def test_inverted_dropout_keeps_the_expected_activation() -> None:
    X = np.ones((2, 20_000))
    params = {"W1": np.ones((1, 2)), "b1": np.zeros((1, 1)), "W2": np.ones((1, 1)), "b2": np.zeros((1, 1)),
              "W3": np.ones((1, 1)), "b3": np.zeros((1, 1))}
    _, cache = regularization.forward_propagation_with_dropout(X, params, 0.8, rng=np.random.default_rng(0))
    assert cache[2].mean() == pytest.approx(2.0, rel=0.02)        # E[A1 D1 / keep_prob] = A1 = 2
    assert set(np.unique(cache[2])) == {0.0, 2.5}                 # dropped, or scaled by 1 / 0.8
    with pytest.raises(ValueError, match=r"keep_prob must lie in \(0, 1\]"):
        regularization.dropout_masks([(2, 2)], 0.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="lambd"):
        regularization.compute_cost_with_regularization(np.full((1, 1), 0.5), np.ones((1, 1)), params, -1.0)


def test_regularization_model_runs_each_mode_and_the_course_dropout_repeats_its_masks() -> None:
    circles = datasets.load_circles()
    X, Y = _columns(circles)
    plain, _ = regularization.model(X, Y, num_iterations=300)
    l2, costs = regularization.model(X, Y, num_iterations=300, lambd=0.7)
    assert len(costs) == 1 and costs[0] > 0.69
    assert sum(float(np.sum(l2[k] ** 2)) for k in ("W1", "W2", "W3")) < \
        sum(float(np.sum(plain[k] ** 2)) for k in ("W1", "W2", "W3"))   # L2 keeps the weights smaller
    course, _ = regularization.model(X, Y, num_iterations=50, keep_prob=0.86)
    again, _ = regularization.model(X, Y, num_iterations=50, keep_prob=0.86)
    fresh, _ = regularization.model(X, Y, num_iterations=50, keep_prob=0.86, rng=np.random.default_rng(0))
    assert all(np.array_equal(course[k], again[k]) for k in course)     # reproducible
    assert not np.array_equal(course["W1"], fresh["W1"])                # new masks every step differ
    with pytest.raises(ValueError, match="not both"):
        regularization.model(X, Y, num_iterations=1, lambd=0.1, keep_prob=0.5)


# -- gradient checking --------------------------------------------------------------------------------------

def test_gradient_checking_reproduces_the_courses_differences() -> None:
    assert gradient_checking.gradient_check(2, 4) == 2.919335883291695e-10   # the course's grader value
    X, Y, params = gradient_checking.gradient_check_n_test_case()
    _, cache = gradient_checking.forward_propagation_n(X, Y, params)
    planted = gradient_checking.backward_propagation_n_with_mistakes(X, Y, cache)
    difference, gradapprox, grad = gradient_checking.gradient_check_n(params, planted, X, Y)
    # published: 0.2850931567761624 (later edition), 0.285093156781 (first; other numpy, last digits differ)
    assert difference == pytest.approx(0.2850931567761624, rel=1e-13)
    assert difference == pytest.approx(0.285093156781, abs=1e-11)
    correct = gradient_checking.backward_propagation_n(X, Y, cache)
    fixed, approx_again, _ = gradient_checking.gradient_check_n(params, correct, X, Y)
    assert fixed < 2e-7 and np.array_equal(gradapprox, approx_again)
    # the two planted mistakes are exactly where the vectors disagree: dW2 (entries 25-39) and db1 (20-24)
    _, keys = gradient_checking.dictionary_to_vector(params)
    wrong = {keys[i] for i in np.flatnonzero(np.abs(grad - gradapprox)[:, 0] > 1e-6)}
    assert wrong <= {"W2", "b1"} and "b1" in wrong
    np.testing.assert_allclose(planted["dW2"], 2 * correct["dW2"], rtol=1e-15)
    np.testing.assert_allclose(planted["db1"], 4 * correct["db1"], rtol=1e-15)


def test_vector_helpers_round_trip_and_name_the_entries() -> None:
    _, _, params = gradient_checking.gradient_check_n_test_case()
    theta, keys = gradient_checking.dictionary_to_vector(params)
    assert theta.shape == (47, 1) and keys[:20] == ["W1"] * 20 and keys[-1] == "b3"
    back = gradient_checking.vector_to_dictionary(theta)
    assert all(np.array_equal(back[k], params[k]) for k in params)
    grads = {"d" + k: v * 2 for k, v in params.items()}
    np.testing.assert_array_equal(gradient_checking.gradients_to_vector(grads), 2 * theta)
    assert gradient_checking.relative_difference(np.zeros(3), np.zeros(3)) == 0.0
    assert gradient_checking.relative_difference(np.ones(3), -np.ones(3)) == 1.0
    with pytest.raises(ValueError, match="47"):
        gradient_checking.vector_to_dictionary(np.zeros((46, 1)))
    with pytest.raises(KeyError, match="W3"):
        gradient_checking.dictionary_to_vector({k: v for k, v in params.items() if k != "W3"})


# -- optimization -------------------------------------------------------------------------------------------

def test_random_mini_batches_follow_the_courses_order() -> None:
    X = np.arange(148.0).reshape(2, 74)
    Y = (np.arange(74) % 2).reshape(1, 74).astype(np.float64)
    batches = optimization.random_mini_batches(X, Y, 64, seed=0)
    assert [b[0].shape for b in batches] == [(2, 64), (2, 10)]
    order = np.random.RandomState(0).permutation(74)
    np.testing.assert_array_equal(np.hstack([b[0] for b in batches]), X[:, order])
    np.testing.assert_array_equal(np.hstack([b[1] for b in batches]), Y[:, order])


def test_momentum_and_adam_updates_by_the_formula() -> None:
    rng = np.random.default_rng(21)
    params = {"W1": rng.standard_normal((2, 3)), "b1": rng.standard_normal((2, 1))}
    grads = {"dW1": rng.standard_normal((2, 3)), "db1": rng.standard_normal((2, 1))}
    v = optimization.initialize_velocity(params)
    new, v = optimization.update_parameters_with_momentum(params, grads, v, beta=0.9, learning_rate=0.01)
    np.testing.assert_allclose(v["dW1"], 0.1 * grads["dW1"], rtol=1e-15)         # v starts at 0
    np.testing.assert_allclose(new["W1"], params["W1"] - 0.001 * grads["dW1"], rtol=1e-14)
    v, s = optimization.initialize_adam(params)
    new, v, s = optimization.update_parameters_with_adam(params, grads, v, s, t=1, learning_rate=0.01)
    # step 1: v_hat = g, s_hat = g^2, so each entry moves by lr * sign(g) (up to epsilon)
    np.testing.assert_allclose(params["W1"] - new["W1"], 0.01 * np.sign(grads["dW1"]), rtol=1e-6)
    np.testing.assert_allclose(s["db1"], 0.001 * grads["db1"] ** 2, rtol=1e-15)
    with pytest.raises(ValueError, match="from 1"):
        optimization.update_parameters_with_adam(params, grads, v, s, t=0)
    assert optimization.update_lr(0.5, 2, 1) == pytest.approx(0.5 / 3)
    assert optimization.schedule_lr_decay(0.5, 10, 0.3, 100) == 0.5
    assert optimization.schedule_lr_decay(0.5, 100, 0.3, 100) == pytest.approx(0.3846153846153846)  # published


@pytest.mark.parametrize(("optimizer", "epochs", "published"), [
    ("gd", 1, ["0.702405"]), ("momentum", 1, ["0.702413"]), ("adam", 1001, ["0.702166", "0.167845"]),
])
def test_optimizers_reproduce_the_courses_printed_costs(optimizer: str, epochs: int, published: list[str]) -> None:
    X, Y = _columns(datasets.load_moons())
    _, costs = optimization.model(X, Y, [2, 5, 2, 1], optimizer, num_epochs=epochs)
    assert [f"{c:f}" for c in costs[::10]] == published   # the later edition prints the epoch's mean, "%f"


def test_optimization_gradients_match_central_differences() -> None:
    rng = np.random.default_rng(22)
    params = _small_net(rng, (2, 5, 2, 1))
    X, Y = rng.standard_normal((2, 9)), (rng.random((1, 9)) > 0.5).astype(np.float64)
    _, grads = optimization.gradients(params, X, Y)
    check_gradients(lambda p: optimization.gradients(p, X, Y)[0], params, grads, rng)
    _, same = initialization.gradients(params, X, Y)
    assert all(np.array_equal(grads[k], same[k]) for k in grads)


# -- network2 -----------------------------------------------------------------------------------------------

def test_network2_gradients_match_central_differences_with_l2() -> None:
    rng = np.random.default_rng(23)
    params = network2.params_of(network2.Network([6, 4, 3], rng=rng))
    x = rng.random((6, 5))
    y = datasets.one_hot(rng.integers(0, 3, 5), num_classes=3).T
    value, grads = network2.gradients(params, x, y, lmbda=5.0, n=50)
    assert value == pytest.approx(network2.loss(params, x, y, lmbda=5.0, n=50), rel=1e-14)
    check_gradients(lambda p: network2.loss(p, x, y, lmbda=5.0, n=50), params, grads, rng)
    plain_value, plain = nielsen.gradients(params, x, y, cost="cross_entropy")
    np.testing.assert_allclose(grads["w0"] - plain["w0"], 0.1 * params["w0"], rtol=1e-12)
    assert np.array_equal(grads["b1"], plain["b1"])                  # biases are not decayed
    squares = sum(float(np.sum(params[k] ** 2)) for k in ("w0", "w1"))
    assert value == pytest.approx(plain_value + 5.0 / 100 * squares, rel=1e-13)


def test_network2_weight_decay_step_is_a_gradient_step_on_the_regularized_cost() -> None:
    data = datasets.load_mnist()
    x, labels = data.train_x[:10].T, data.train_y[:10]
    y = datasets.one_hot(labels).T
    net = network2.Network([784, 30, 10], rng=0)
    params = network2.params_of(net)
    _, grads = network2.gradients(params, x, y, lmbda=5.0, n=50_000)
    net.update_mini_batch_l2(x, y, eta=0.5, lmbda=5.0, n=50_000)
    for i in range(2):
        np.testing.assert_allclose(net.weights[i], params[f"w{i}"] - 0.5 * grads[f"w{i}"], rtol=0, atol=1e-14)
        np.testing.assert_allclose(net.biases[i], params[f"b{i}"] - 0.5 * grads[f"b{i}"], rtol=0, atol=1e-14)


def test_network2_starts_small_or_large_and_trains() -> None:
    default, large = network2.Network([784, 30, 10], rng=0), network2.Network([784, 30, 10], rng=0, init="large")
    np.testing.assert_allclose(default.weights[0] * np.sqrt(784), large.weights[0], rtol=1e-15)  # same draws
    np.testing.assert_array_equal(default.biases[1], large.biases[1])
    data = datasets.load_mnist()
    history = default.SGD(data.train_x[:2000], data.train_y[:2000], 2, 10, 0.5, lmbda=0.1,
                          evaluation=(data.test_x[:1000], data.test_y[:1000]), rng=0, monitor_training=True)
    assert history["evaluation_accuracy"][-1] > 0.8 and len(history["training_cost"]) == 2
    assert history["training_cost"][1] < history["training_cost"][0]
    with pytest.raises(ValueError, match="init must be one of"):
        network2.Network([2, 1], rng=0, init="xavier")
    with pytest.raises(ValueError, match="lmbda"):
        default.SGD(data.train_x[:10], data.train_y[:10], 1, 10, 0.5, lmbda=-1.0, rng=0)
    with pytest.raises(ValueError, match="evaluation"):
        default.SGD(data.train_x[:10], data.train_y[:10], 1, 10, 0.5, early_stopping_n=2, rng=0)


def test_network2_early_stopping_and_halving_schedule() -> None:
    data = datasets.load_mnist()
    evaluation = (data.val_x[:200], data.val_y[:200])
    net = network2.Network([784, 10, 10], rng=1)
    history = net.SGD(data.train_x[:200], data.train_y[:200], 60, 10, 3.0, evaluation=evaluation, rng=1,
                      early_stopping_n=3)
    accuracy = history["evaluation_accuracy"]
    best = int(np.argmax(accuracy))
    assert len(accuracy) == best + 4 < 60 and max(accuracy[best + 1:]) <= accuracy[best]
    net = network2.Network([784, 10, 10], rng=1)
    history = net.SGD(data.train_x[:200], data.train_y[:200], 300, 10, 3.0, evaluation=evaluation, rng=1,
                      halve_after=2)
    assert len(history["eta"]) < 300 and min(history["eta"]) == 3.0 / 128   # stops once eta fell below 3/128
    assert all(b in (a, a / 2) for a, b in zip(history["eta"], history["eta"][1:]))


def test_new_manual_modules_do_not_import_the_engine() -> None:
    for module in (network2, initialization, regularization, gradient_checking, optimization):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
        with open(module.__file__, encoding="utf-8") as stream:
            imports = {line.split()[1] for line in stream if line.startswith(("import ", "from "))}
        assert imports <= {"__future__", "numpy", "numpy.typing", "collections.abc", "math", ".", "._common",
                           "._three_layer", ".nielsen", ".initialization"}, imports


def test_the_bundled_points_are_what_the_script_makes() -> None:
    """examples/make_course_data.py --check: scikit-learn (the `data` extra) remakes the same bytes."""
    pytest.importorskip("sklearn")
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "examples" / "make_course_data.py"
    spec = importlib.util.spec_from_file_location("make_course_data", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0


def test_the_chapter_3_script_stops_early_when_asked_and_says_so(tmp_path, capsys, monkeypatch) -> None:
    """examples/nielsen_chapter3.py --epochs N: a first look at a run, marked as stopped early in the summary."""
    import importlib.util
    import json
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "examples" / "nielsen_chapter3.py"
    spec = importlib.util.spec_from_file_location("nielsen_chapter3", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    out = tmp_path / "ch3.jsonl"
    assert module.main(["--runs", "overfit1000", "--epochs", "2", "--out", str(out)]) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["epochs"] == 2 and len(row["accuracy"]) == 2 and row["last"] == row["accuracy"][-1]
    assert "overfit1000 seed 0, 2 epochs: last" in capsys.readouterr().out
    assert module.main(["--summary", str(out)]) == 0
    assert "(stopped early: 2 epochs)" in capsys.readouterr().out
