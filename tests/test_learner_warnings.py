"""Mistakes that speak: learner warnings (once per place in the learner's code) and the messages for ragged
lists and integer labels given where one-hot targets are expected."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from tinygrad_edu import LearnerWarning, Tensor, grad, losses, nn, no_grad, optim
from tinygrad_edu.train import fit


def _caught(run: object) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()  # type: ignore[operator]
    return [str(w.message) for w in caught if issubclass(w.category, LearnerWarning)]


def test_a_learner_warning_is_a_user_warning_that_the_standard_filters_silence() -> None:
    assert issubclass(LearnerWarning, UserWarning)
    w = Tensor(np.ones(3), requires_grad=True)

    def twice() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LearnerWarning)
            for _ in range(2):
                (w * 2).sum().backward()

    assert _caught(twice) == []


def test_a_second_backward_without_zero_grad_warns_once_per_place_and_names_zero_grad() -> None:
    model = nn.MLP([3, 2], activation="sigmoid", rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    x = np.ones((4, 3))

    def forgetting() -> None:
        for _ in range(3):
            model(x).sum().backward()  # one place: one warning, for three passes
            opt.step()

    messages = _caught(forgetting)
    assert len(messages) == 1 and "already had a .grad" in messages[0] and "zero_grad()" in messages[0]

    def remembering() -> None:
        for _ in range(3):
            opt.zero_grad()
            model(x).sum().backward()
            opt.step()

    assert _caught(remembering) == []
    t = Tensor(np.ones(2), requires_grad=True)
    assert _caught(lambda: [grad((t * t).sum(), t) for _ in range(2)]) == []  # grad() touches no .grad


def test_float32_meeting_float64_warns_but_constants_and_equal_dtypes_do_not() -> None:
    a32 = Tensor(np.ones(3, dtype=np.float32), name="a")
    b64 = Tensor(np.ones(3), name="b")
    messages = _caught(lambda: a32 * b64)
    assert len(messages) == 1 and "float32 tensor met a float64 one (a float32, b float64)" in messages[0]
    assert _caught(lambda: b64 + a32) and _caught(lambda: (a32 * 2.0, a32 + a32, b64 - 1, a32 * np.ones(3))) == []


def test_log_or_division_making_inf_or_nan_warns_with_the_way_out() -> None:
    zero = Tensor(np.array([0.0, 1.0]))
    messages = _caught(lambda: [zero.log() for _ in range(3)])
    assert len(messages) == 1
    assert "log produced Inf or NaN from finite inputs" in messages[0]
    assert "detect_anomaly()" in messages[0] and "binary_cross_entropy_with_logits" in messages[0]
    assert len(_caught(lambda: Tensor([1.0]) / Tensor([0.0]))) == 1
    assert len(_caught(lambda: 1.0 / zero)) == 1
    assert _caught(lambda: (Tensor([2.0]).log(), Tensor([1.0]) / 2, Tensor([np.inf]).log())) == []


def test_log_of_zero_warns_once_at_the_learners_line_not_also_from_inside_the_engine() -> None:
    # a fresh interpreter: the warning filters as a learner's script has them (pytest resets them per test)
    script = ("import numpy as np\nfrom tinygrad_edu import Tensor\n"
              "Tensor(np.array([0.0, 1.0])).log()\nTensor(np.array([1.0])) / Tensor(np.array([0.0]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    lines = [line for line in done.stderr.splitlines() if "Warning" in line]
    assert len(lines) == 2 and all(line.startswith("<string>:") and "LearnerWarning" in line for line in lines), \
        done.stderr


def _train(t: Tensor, activation: str, times: int = 40, hidden: bool = True) -> None:
    """``times`` steps of fit, which looks for saturated hidden layers on one step in 32; ``t`` feeds the layer."""
    w = Tensor(np.ones((t.shape[1], 2)))

    class Step:  # fit's optimizer: the gradient is what matters here, nothing needs to move
        def zero_grad(self) -> None:
            t.zero_grad()

        def step(self) -> None:
            pass

    def model(xb: Tensor) -> Tensor:
        a = getattr(t, activation)()
        return a @ w if hidden else a

    fit(model, lambda prediction, _: prediction.sum(), Step(), (np.zeros((times, 1)), np.zeros((times, 1))),
        epochs=1, batch_size=1, progress=False)


def _backward_only(t: Tensor, activation: str) -> None:
    for _ in range(40):  # gradients without fit: nobody is watching the training
        t.zero_grad()
        (getattr(t, activation)() @ Tensor(np.ones((t.shape[1], 2)))).sum().backward()


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_a_saturated_layer_in_training_warns(activation: str) -> None:
    # each kind warns once per place: the cases that must stay silent run first, so that they can fail
    rng = np.random.default_rng(0)
    big = Tensor(rng.choice([-1.0, 1.0], (20, 30)) * rng.uniform(10, 100, (20, 30)), requires_grad=True)
    small = Tensor(rng.standard_normal((20, 30)), requires_grad=True)
    assert _caught(lambda: _train(small, activation)) == []
    confident = big.data.copy()
    confident[0, :30] = 0.0  # 95% saturated: a trained output layer is rightly this confident
    mostly = Tensor(confident, requires_grad=True)
    assert _caught(lambda: _train(mostly, activation)) == []
    assert _caught(lambda: [getattr(big, activation)() for _ in range(40)]) == []  # no backward(): no training
    assert _caught(lambda: _backward_only(big, activation)) == []  # the watch is fit's, not backward()'s
    # an output layer near its limits is a confident classifier, not a layer that cannot learn
    assert _caught(lambda: _train(big, activation, hidden=False)) == []
    messages = _caught(lambda: _train(big, activation))
    assert len(messages) == 1 and f"{activation}: " in messages[0] and "saturated" in messages[0]
    assert "init='nielsen'" in messages[0] and "Scale the inputs" in messages[0]


@pytest.mark.parametrize(("data", "says"), [
    ([[1, 2], [3]], "row [1] has length 1, where the other rows at that depth have length 2"),
    ([[[1, 2], [3, 4]], [[1, 2], [3]]], "row [1][1] has length 1, where the other rows at that depth have length 2"),
    ([[1, 2], 3], "row [1] has a number, where the other rows at that depth have length 2"),
])
def test_ragged_lists_say_which_rows_have_which_lengths(data: list, says: str) -> None:
    with pytest.raises(ValueError, match="ragged") as info:
        Tensor(data)
    assert says in str(info.value) and "inhomogeneous" not in str(info.value)


@pytest.mark.parametrize("loss", [losses.quadratic_cost, losses.sum_squared_error])
def test_integer_labels_where_one_hot_targets_are_expected_name_one_hot(loss: object) -> None:
    prediction = Tensor(np.full((4, 10), 0.1), requires_grad=True)
    with pytest.raises(ValueError, match=r"one class label per sample.*datasets\.one_hot\(y\)"):
        loss(prediction, np.array([1, 2, 3, 4]))  # type: ignore[operator]
    loss(prediction, np.eye(10)[[1, 2, 3, 4]])  # type: ignore[operator]


def test_a_learners_module_named_like_the_package_is_still_the_learners_code(tmp_path: object,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    from pathlib import Path

    folder = Path(str(tmp_path))
    (folder / "tinygrad_edu_homework.py").write_text(
        "import numpy as np\nfrom tinygrad_edu import Tensor\n\n\ndef run():\n    return Tensor(np.zeros(2)).log()\n")
    monkeypatch.syspath_prepend(str(folder))
    homework = importlib.import_module("tinygrad_edu_homework")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        homework.run()
    found = [w for w in caught if issubclass(w.category, LearnerWarning)]
    assert len(found) == 1 and found[0].filename.endswith("tinygrad_edu_homework.py") and found[0].lineno == 6


# -- updating weights by hand: the two messages a new user met ----------------------------------------------------

def _regression() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((20, 3)), rng.standard_normal(20)


def test_a_parameter_rebuilt_from_itself_warns_at_the_first_step_with_the_right_fix() -> None:
    x, y = _regression()
    steps: list[Tensor] = []

    def by_hand() -> None:
        w = Tensor(np.zeros(3), requires_grad=True, name="w")
        for _ in range(4):
            ((x @ w - y) ** 2).mean().backward()
            w = w - 0.1 * w.grad   # a new tensor built from w: the graph behind w grows every step
            steps.append(w)

    messages = _caught(by_hand)
    assert len(messages) == 1, messages   # and not the second pass's "call zero_grad()", the wrong fix here
    assert messages[0].startswith("w - lr * w.grad: tensor 'w' of shape (3,) and dtype float64 (created from data) "
                                  "is rebuilt from itself with gradient recording on, so the new w is not a leaf")
    assert "`with no_grad(): w -= lr * w.grad`, then `w.grad = None`" in messages[0]
    assert "optim.SGD([w], lr=lr)" in messages[0]
    depth, node = 0, steps[-1]
    while node.parents:
        node, depth = node.parents[0], depth + 1
    assert depth == 4   # what the warning is about: four steps, four nodes between the last w and the first


def test_updates_that_do_not_rebuild_a_parameter_from_its_gradient_stay_silent() -> None:
    x, y = _regression()

    def fine() -> None:
        w = Tensor(np.zeros(3), requires_grad=True, name="w")
        ((x @ w - y) ** 2).mean().backward()
        with no_grad():
            w -= 0.1 * w.grad
            v = w - 0.1 * w.grad   # no graph recorded: a plain new tensor
        w.grad = None
        ((x @ w - y) ** 2).mean().backward()
        shifted = w - np.ones(3)   # a parameter with a .grad minus something else: an ordinary forward op
        moved = w - Tensor(0.1 * w.grad, requires_grad=True)   # a step that is itself differentiated
        assert v.is_leaf and shifted.requires_grad and moved.requires_grad

    assert _caught(fine) == []


@pytest.mark.parametrize("symbol", ["-=", "+=", "*=", "/="])
def test_an_in_place_update_outside_no_grad_names_the_operator_and_leads_with_no_grad(symbol: str) -> None:
    w = Tensor(np.ones(3), requires_grad=True, name="w")
    (w * w).sum().backward()
    with pytest.raises(RuntimeError) as info:
        exec(f"w {symbol} 0.1 * w.grad", {"w": w})
    assert str(info.value).startswith(f"w {symbol} ...: update a tensor that requires grad inside no_grad(): "
                                      f"`with no_grad(): w -= lr * w.grad`, then `w.grad = None`")
    assert "optim.SGD(params, lr=lr).step()" in str(info.value) and "x[...]" not in str(info.value)
    np.testing.assert_array_equal(w.data, np.ones(3))   # refused before anything was written
