"""SGD and Adam against hand-written numpy references, their checks, and small training runs."""

import numpy as np
import pytest

from tinygrad_edu import Tensor
from tinygrad_edu.losses import mse, sigmoid_cross_entropy
from tinygrad_edu.nn import MLP, Linear
from tinygrad_edu.optim import SGD, Adam, RMSprop

STEPS = 5


def _gradients(seed, shape, steps=STEPS):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(steps)]


def _run(make_optimizer, start, grads):
    """Feed the given gradients to an optimizer over one parameter; return its values after each step."""
    p = Tensor(start.copy(), requires_grad=True, name="p")
    opt = make_optimizer([p])
    history = []
    for g in grads:
        opt.zero_grad()
        p.grad = g.copy()
        opt.step()
        history.append(p.data.copy())
    return history


def _sgd_reference(start, grads, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    p, v, history = start.copy(), np.zeros_like(start), []
    for g in grads:
        d = g + weight_decay * p
        v = momentum * v + d
        update = (d + momentum * v if nesterov else v) if momentum else d
        p = p - lr * update
        history.append(p.copy())
    return history


def _adam_reference(start, grads, lr, b1, b2, eps, weight_decay=0.0):
    p, m, v, history = start.copy(), np.zeros_like(start), np.zeros_like(start), []
    for t, g in enumerate(grads, start=1):
        d = g + weight_decay * p
        m = b1 * m + (1 - b1) * d
        v = b2 * v + (1 - b2) * d * d
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        history.append(p.copy())
    return history


START = np.random.default_rng(0).standard_normal((3, 4))


@pytest.mark.parametrize("settings", [
    {}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}, {"weight_decay": 0.1},
    {"momentum": 0.5, "nesterov": True, "weight_decay": 0.01},
], ids=["plain", "momentum", "nesterov", "decay", "all"])
def test_sgd_matches_the_numpy_reference(settings):
    grads = _gradients(1, START.shape)
    got = _run(lambda params: SGD(params, lr=0.1, **settings), START, grads)
    expected = _sgd_reference(START, grads, 0.1, **settings)
    for step, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15, err_msg=f"step {step}")


@pytest.mark.parametrize("settings", [
    {"lr": 1e-2}, {"lr": 0.1, "betas": (0.8, 0.99), "eps": 1e-6}, {"lr": 1e-2, "weight_decay": 0.1},
], ids=["defaults", "custom", "decay"])
def test_adam_matches_the_numpy_reference(settings):
    grads = _gradients(2, START.shape)
    got = _run(lambda params: Adam(params, **settings), START, grads)
    full = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, **settings}
    expected = _adam_reference(START, grads, full["lr"], *full["betas"], full["eps"], full["weight_decay"])
    for step, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15, err_msg=f"step {step}")


def test_a_changed_learning_rate_takes_effect():
    grads = _gradients(3, START.shape, steps=2)
    p = Tensor(START.copy(), requires_grad=True)
    opt = SGD([p], lr=0.1)
    p.grad = grads[0]
    opt.step()
    opt.lr = np.float64(0.01)
    p.grad = grads[1]
    opt.step()
    np.testing.assert_allclose(p.data, START - 0.1 * grads[0] - 0.01 * grads[1], rtol=1e-14)


def test_parameters_without_gradient_are_skipped_and_adam_counts_steps_per_parameter():
    a = Tensor(np.ones(2), requires_grad=True)
    b = Tensor(np.ones(2), requires_grad=True)
    opt = Adam([a, b], lr=0.1)
    a.grad = np.array([1.0, -3.0])
    opt.step()
    np.testing.assert_array_equal(b.data, [1.0, 1.0])
    a.grad, b.grad = np.array([1.0, -3.0]), np.array([2.0, -0.5])
    opt.step()
    # b's first step: bias correction for t = 1, so it moves by lr * sign(grad) (up to eps)
    np.testing.assert_allclose(b.data, [0.9, 1.1], rtol=1e-7)


def test_step_updates_in_place_builds_no_graph_and_stamps_the_change():
    model = MLP([2, 3, 1], rng=0)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    arrays = [p.data for p in model.parameters()]
    x = np.random.default_rng(0).standard_normal((4, 2))
    loss = model(x).sum()
    loss.backward()
    opt.step()
    for p, before in zip(model.parameters(), arrays):
        assert p.op is None and p.is_leaf and p.parents == () and p.requires_grad
        assert p.data is before  # written in place, the same array
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()  # the graph saved the old values
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_read_only_parameter_arrays_are_rebound_instead_of_written():
    array = np.ones(3)
    array.flags.writeable = False
    p = Tensor(array, requires_grad=True)
    opt = SGD([p], lr=0.5)
    p.grad = np.ones(3)
    opt.step()
    np.testing.assert_array_equal(p.data, [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(array, [1.0, 1.0, 1.0])


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
                                  lambda ps: Adam(ps, lr=0.1, weight_decay=0.1)], ids=["SGD", "Adam"])
def test_float32_parameters_stay_float32(make):
    model = MLP([3, 4, 2], init="he", rng=0, dtype=np.float32)
    opt = make(model.parameters())
    opt.lr = np.float64(opt.lr)  # even a float64 learning rate must not promote the parameters
    x = np.random.default_rng(1).standard_normal((5, 3))
    for _ in range(2):
        opt.zero_grad()
        mse(model(x), np.zeros((5, 2))).backward()
        opt.step()
    for p in model.parameters():
        assert p.dtype == np.float32 and p.grad.dtype == np.float32
    assert model(x).dtype == np.float32


def test_named_parameters_and_dicts_are_accepted():
    model = MLP([2, 2, 1], rng=0)
    opt = SGD(model.named_parameters(), lr=0.1)
    assert opt.names == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]
    assert opt.params == model.parameters()
    assert Adam(dict(model.named_parameters())).names == opt.names
    assert "4 parameters" in repr(opt) and "Adam(lr=0.001" in repr(Adam(model.parameters()))


def test_invalid_parameters_are_refused_with_an_explanation():
    w = Tensor(np.ones((2, 2)), requires_grad=True, name="w")
    computed = w * 2
    with pytest.raises(ValueError, match=r"not a leaf: it was computed from other tensors by mul.*parameters\(\)"):
        SGD([w, computed], lr=0.1)
    with pytest.raises(ValueError, match="'frozen' does not require grad"):
        SGD([("frozen", Tensor(np.ones(2)))], lr=0.1)
    with pytest.raises(TypeError, match="is a ndarray, not a Tensor"):
        SGD([np.ones(2)], lr=0.1)
    with pytest.raises(TypeError, match=r"wrap a single one: SGD\(\[w\]"):
        SGD(w, lr=0.1)
    with pytest.raises(TypeError, match=r"model.parameters\(\)"):
        Adam(MLP([2, 1], rng=0))
    with pytest.raises(ValueError, match="empty list of parameters"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="appears twice"):
        SGD([w, w], lr=0.1)


def test_invalid_settings_are_refused():
    w = [Tensor(np.ones(2), requires_grad=True)]
    with pytest.raises(ValueError, match="nesterov=True needs a momentum"):
        SGD(w, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"lr must lie in"):
        SGD(w, lr=-0.1)
    with pytest.raises(TypeError, match="lr must be a number"):
        SGD(w, lr="0.1")
    with pytest.raises(ValueError, match=r"betas\[1\] must lie in \[0.0, 1.0\)"):
        Adam(w, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="betas must be a pair"):
        Adam(w, betas=0.9)


def test_a_gradient_of_the_wrong_shape_is_refused():
    p = Tensor(np.ones((2, 2)), requires_grad=True, name="w")
    opt = SGD([p], lr=0.1)
    with pytest.raises(ValueError, match=r"'w' .*its own shape, \(2, 2\)"):
        p.grad = np.ones(2)  # refused where it is set
    p.grad = np.ones((2, 2))
    p.data = np.ones(2)  # the parameter changed shape after its gradient was computed
    with pytest.raises(ValueError, match=r"gradient of 'w' has shape \(2, 2\) but the parameter has shape \(2,\)"):
        opt.step()


# -- training -----------------------------------------------------------------------------------------------

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([[0.0], [1.0], [1.0], [0.0]])


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.5, momentum=0.9),
                                  lambda ps: Adam(ps, lr=0.05)], ids=["SGD", "Adam"])
def test_a_small_mlp_learns_xor(make):
    model = MLP([2, 4, 1], activation="tanh", output_activation="sigmoid", init="xavier", rng=0)
    opt = make(model.parameters())
    losses = []
    for _ in range(300):
        opt.zero_grad()
        loss = sigmoid_cross_entropy(model(XOR_X), XOR_Y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
    np.testing.assert_array_equal(model(XOR_X).data > 0.5, XOR_Y > 0.5)


def test_linear_regression_with_plain_sgd_finds_the_true_weights():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3))
    true_w, true_b = np.array([[1.0], [-2.0], [0.5]]), np.array([0.3])
    y = x @ true_w + true_b
    layer = Linear(3, 1, init="xavier", rng=1)
    opt = SGD(layer.parameters(), lr=0.1)
    first = None
    for _ in range(200):
        opt.zero_grad()
        loss = mse(layer(x), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 1e-6 * first
    np.testing.assert_allclose(layer.weight.data, true_w, atol=1e-3)
    np.testing.assert_allclose(layer.bias.data, true_b, atol=1e-3)


# -- AMSGrad ------------------------------------------------------------------------------------------------

def _amsgrad_reference(start, grads, lr, b1, b2, eps):
    p, m, v, v_max, history = start.copy(), np.zeros_like(start), np.zeros_like(start), np.zeros_like(start), []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_max = np.maximum(v_max, v)
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v_max / (1 - b2**t)) + eps)
        history.append(p.copy())
    return history


def test_amsgrad_matches_the_numpy_reference_and_differs_from_adam():
    # a large first gradient, then small ones: v decays but v_max keeps the large value, so AMSGrad moves less
    grads = [g * (10.0 if k == 0 else 0.1) for k, g in enumerate(_gradients(4, START.shape, steps=6))]
    got = _run(lambda params: Adam(params, lr=0.1, betas=(0.9, 0.9), amsgrad=True), START, grads)
    expected = _amsgrad_reference(START, grads, 0.1, 0.9, 0.9, 1e-8)
    for step, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15, err_msg=f"step {step}")
    plain = _run(lambda params: Adam(params, lr=0.1, betas=(0.9, 0.9)), START, grads)
    assert np.abs(got[-1] - START).sum() < np.abs(plain[-1] - START).sum()


def test_amsgrad_matches_pytorch():
    torch = pytest.importorskip("torch")
    grads = [g * (10.0 if k == 0 else 0.1) for k, g in enumerate(_gradients(5, START.shape, steps=6))]
    got = _run(lambda params: Adam(params, lr=0.05, amsgrad=True, weight_decay=0.01), START, grads)
    w = torch.tensor(START.copy(), requires_grad=True)
    reference = torch.optim.Adam([w], lr=0.05, amsgrad=True, weight_decay=0.01)
    for step, g in enumerate(grads):
        w.grad = torch.tensor(g)
        reference.step()
        np.testing.assert_allclose(got[step], w.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=f"step {step}")


# -- state_dict / load_state_dict ---------------------------------------------------------------------------

MAKERS = {
    "SGD": lambda ps: SGD(ps, lr=0.1),
    "momentum": lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    "nesterov": lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "Adam": lambda ps: Adam(ps, lr=0.01, weight_decay=0.1),
    "AMSGrad": lambda ps: Adam(ps, lr=0.01, amsgrad=True),
}


def _steps(opt, params, grads):
    for g in grads:
        for p, gp in zip(params, g):
            p.grad = gp.copy()
        opt.step()


@pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))
def test_a_saved_and_loaded_state_continues_bit_for_bit(make, tmp_path):
    rng = np.random.default_rng(6)
    starts = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    grads = [[rng.standard_normal(s.shape) for s in starts] for _ in range(6)]
    straight = [Tensor(s.copy(), requires_grad=True) for s in starts]
    straight_opt = make(straight)
    _steps(straight_opt, straight, grads)

    first = [Tensor(s.copy(), requires_grad=True) for s in starts]
    opt = make(first)
    _steps(opt, first, grads[:3])
    np.savez(tmp_path / "opt.npz", **opt.state_dict())  # through a file, read without pickle
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as archive:
        state = {name: archive[name] for name in archive.files}
    resumed = [Tensor(p.data.copy(), requires_grad=True) for p in first]
    fresh = make(resumed)
    fresh.lr = 123.0  # the settings come from the state, as in PyTorch
    fresh.load_state_dict(state)
    _steps(fresh, resumed, grads[3:])
    for a, b in zip(resumed, straight):
        assert a.data.tobytes() == b.data.tobytes()
    got, expected = fresh.state_dict(), straight_opt.state_dict()
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name].tobytes() == expected[name].tobytes(), name


def test_state_dict_names_its_entries_and_is_a_copy():
    w = Tensor(np.ones(2), requires_grad=True)
    unused = Tensor(np.ones(3), requires_grad=True)
    opt = Adam([w, unused], lr=0.1, amsgrad=True)
    w.grad = np.array([1.0, -2.0])
    opt.step()
    state = opt.state_dict()
    assert sorted(state) == ["amsgrad", "betas", "eps", "has_state", "lr", "m.0", "step.0", "type", "v.0",
                             "v_max.0", "weight_decay"]
    assert state["has_state"].tolist() == [True, False]  # unused has not taken a step
    assert str(state["type"]) == "Adam" and int(state["step.0"]) == 1 and state["betas"].tolist() == [0.9, 0.999]
    before = state["m.0"].copy()
    opt.step()
    np.testing.assert_array_equal(state["m.0"], before)  # later steps leave the copy alone


def test_load_state_dict_refuses_a_mismatch_and_changes_nothing():
    w = Tensor(np.ones((2, 2)), requires_grad=True)
    sgd = SGD([w], lr=0.1, momentum=0.9)
    w.grad = np.ones((2, 2))
    sgd.step()
    state = sgd.state_dict()
    with pytest.raises(ValueError, match="the state is from SGD, not Adam"):
        Adam([Tensor(np.ones((2, 2)), requires_grad=True)]).load_state_dict(state)
    other = SGD([Tensor(np.ones(3), requires_grad=True)], lr=0.5, momentum=0.5)
    with pytest.raises(ValueError, match=r"'velocity.0' has shape \(2, 2\).*needs \(3,\).*Nothing was loaded"):
        other.load_state_dict(state)
    assert other.lr == 0.5 and other.velocity == [None]
    with pytest.raises(ValueError, match=r"unexpected entry 'moment\.0'"):
        sgd.load_state_dict({**state, "moment.0": np.ones((2, 2))})
    with pytest.raises(ValueError, match="is for parameter 3, but this optimizer has 1"):
        sgd.load_state_dict({**state, "velocity.3": np.ones((2, 2))})
    with pytest.raises(ValueError, match="missing setting 'momentum'"):
        sgd.load_state_dict({k: v for k, v in state.items() if k != "momentum"})
    with pytest.raises(ValueError, match="no 'type' entry"):
        sgd.load_state_dict({"lr": np.array(0.1)})
    with pytest.raises(TypeError, match="expected a dict"):
        sgd.load_state_dict([1, 2])


def test_a_partial_running_state_is_refused() -> None:
    w = Tensor(np.ones(2), requires_grad=True)
    opt = Adam([w], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    state = opt.state_dict()
    del state["m.0"]  # the moments without their step count would restart Adam's bias correction wrongly
    fresh = Adam([Tensor(np.ones(2), requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match=r"missing 'm.0': has_state marks parameter 0, whose running state is "
                                         r"\['m', 'step', 'v'\] together"):
        fresh.load_state_dict(state)
    assert fresh.steps == [0]  # nothing was loaded


# -- what the optimizers refuse, word for word (each line here was a surviving mutant of a mutation run) -------

def _stepped(make, *shapes):
    """An optimizer over parameters of these shapes, each after one step, and its state_dict."""
    params = [Tensor(np.ones(shape), requires_grad=True) for shape in shapes]
    opt = make(params)
    for p in params:
        p.grad = np.full(p.shape, 0.5)
    opt.step()
    return opt, opt.state_dict()


def _refusal(make, state, *shapes):
    fresh = make([Tensor(np.ones(shape), requires_grad=True) for shape in shapes])
    before = fresh.state_dict()
    with pytest.raises(ValueError) as error:
        fresh.load_state_dict(state)
    after = fresh.state_dict()
    assert sorted(after) == sorted(before) and all(np.array_equal(after[k], before[k]) for k in before)
    return str(error.value)


MOMENTUM = lambda ps: SGD(ps, lr=0.1, momentum=0.9)
AMSGRAD = lambda ps: Adam(ps, lr=0.1, amsgrad=True)


@pytest.mark.parametrize("make, change, says", [
    (MOMENTUM, {"lr": np.array(-3.0)}, "lr must lie in [0.0, inf), got -3.0"),
    (MOMENTUM, {"lr": np.array(np.nan)}, "lr must lie in [0.0, inf), got nan"),
    (MOMENTUM, {"lr": np.array(np.inf)}, "lr must lie in [0.0, inf), got inf"),
    (MOMENTUM, {"lr": np.array("0.1")}, "setting 'lr' must be a number, got '0.1' (<U3)"),
    (MOMENTUM, {"lr": np.array(True)}, "setting 'lr' must be a number, got True (bool)"),
    (MOMENTUM, {"lr": np.array([0.1, 0.2])}, "setting 'lr' has shape (2,), expected ()"),
    (MOMENTUM, {"momentum": np.array(-1.0)}, "momentum must lie in [0.0, inf), got -1.0"),
    (MOMENTUM, {"nesterov": np.array(1.0)}, "setting 'nesterov' must be True or False, got 1.0 (float64)"),
    (MOMENTUM, {"momentum": np.array(0.0), "nesterov": np.array(True)},
     "nesterov=True needs a momentum > 0 and dampening=0 (Nesterov's look-ahead follows the undamped velocity; "
     "PyTorch refuses the same)"),
    (MOMENTUM, {"weight_decay": np.array(-0.1)}, "weight_decay must lie in [0.0, inf), got -0.1"),
    (AMSGRAD, {"betas": np.array([1.0, 1.0])}, "betas[0] must lie in [0.0, 1.0), got 1.0"),
    (AMSGRAD, {"betas": np.array([0.9, 1.0])}, "betas[1] must lie in [0.0, 1.0), got 1.0"),
    (AMSGRAD, {"betas": np.array([0.9, 0.99, 0.999])}, "setting 'betas' has shape (3,), expected (2,)"),
    (AMSGRAD, {"eps": np.array(-1e-8)}, "eps must lie in [0.0, inf), got -1e-08"),
    (AMSGRAD, {"amsgrad": np.array(0)}, "setting 'amsgrad' must be True or False, got 0 (int64)"),
    (AMSGRAD, {"step.0": np.array(-1)}, "'step.0' is -1, but a parameter with running state has taken at least 1 step"),
    (AMSGRAD, {"step.0": np.array(0)}, "'step.0' is 0, but a parameter with running state has taken at least 1 step"),
    (AMSGRAD, {"step.0": np.array(1.0)}, "'step.0' has shape () and dtype float64, parameter 0 needs () and int64"),
    (AMSGRAD, {"v.0": np.array([0.1, -0.2])},
     "'v.0' holds negative values (down to -0.2); an average of squares is >= 0"),
    (AMSGRAD, {"v_max.0": np.array([-1.0, 0.2])},
     "'v_max.0' holds negative values (down to -1); an average of squares is >= 0"),
    (AMSGRAD, {"m.0": np.ones(3)}, "'m.0' has shape (3,) and dtype float64, parameter 0 needs (2,) and float64"),
    (AMSGRAD, {"m.0": np.ones(2, dtype=np.float32)},
     "'m.0' has shape (2,) and dtype float32, parameter 0 needs (2,) and float64"),
])
def test_load_state_dict_checks_what_the_constructor_checks_and_the_running_state(make, change, says):
    _, state = _stepped(make, (2,))
    message = _refusal(make, {**state, **change}, (2,))
    who = type(make([Tensor(np.ones(2), requires_grad=True)])).__name__
    assert message == f"{who}.load_state_dict: {says}. Nothing was loaded."


def test_the_constructor_refuses_the_same_settings_in_the_same_words():
    w = [Tensor(np.ones(2), requires_grad=True)]
    for make, says in [(lambda: SGD(w, lr=np.inf), "SGD: lr must lie in [0.0, inf), got inf."),
                       (lambda: SGD(w, lr=0.1, momentum=np.nan), "SGD: momentum must lie in [0.0, inf), got nan."),
                       (lambda: Adam(w, betas=(-0.1, 0.9)), "Adam: betas[0] must lie in [0.0, 1.0), got -0.1."),
                       (lambda: Adam(w, weight_decay=-1), "Adam: weight_decay must lie in [0.0, inf), got -1.0."),
                       (lambda: Adam(w, betas=(0.9,)), "Adam: betas must be a pair (b1, b2), got (0.9,)."),
                       (lambda: SGD(w, lr=0.1, nesterov=True), "SGD: nesterov=True needs a momentum > 0 and "
                        "dampening=0 (Nesterov's look-ahead follows the undamped velocity; PyTorch refuses the same)."),
                       (lambda: SGD(w, lr=0.1, momentum=0.9, dampening=1.5),
                        "SGD: dampening must lie in [0.0, 1.0], got 1.5."),
                       (lambda: RMSprop(w, alpha=1.0), "RMSprop: alpha must lie in [0.0, 1.0), got 1.0.")]:
        with pytest.raises(ValueError) as error:
            make()
        assert str(error.value) == says
    for make, says in [(lambda: SGD(w, lr=True), "SGD: lr must be a number, got bool."),
                       (lambda: Adam(w, eps="1e-8"), "Adam: eps must be a number, got str.")]:
        with pytest.raises(TypeError) as error:
            make()
        assert str(error.value) == says
    assert SGD(w, lr=np.int64(0)).lr == 0.0 and Adam(w, betas=[0.0, 0.5], eps=0).betas == (0.0, 0.5)
    assert isinstance(SGD(w, lr=1).lr, float)


def test_settings_load_as_the_constructor_takes_them():
    w = [Tensor(np.ones(2), requires_grad=True)]
    opt = Adam(w, lr=0.1)
    opt.load_state_dict({**opt.state_dict(), "lr": np.array(2), "betas": np.array([0, 0.5]), "amsgrad": np.array(True)})
    assert opt.lr == 2.0 and isinstance(opt.lr, float) and opt.betas == (0.0, 0.5) and opt.amsgrad is True
    assert type(opt.betas[0]) is float


def test_a_state_must_hold_the_running_state_of_every_parameter_that_has_one():
    _, state = _stepped(MOMENTUM, (2,), (3,))
    assert state["has_state"].tolist() == [True, True]
    without = {k: v for k, v in state.items() if k != "velocity.1"}
    assert _refusal(MOMENTUM, without, (2,), (3,)) == (
        "SGD.load_state_dict: missing 'velocity.1': has_state marks parameter 1, whose running state is ['velocity'] "
        "together. Nothing was loaded.")
    no_flags = {k: v for k, v in without.items() if k != "has_state"}  # as saved before has_state, one lost
    assert _refusal(MOMENTUM, no_flags, (2,), (3,)) == (
        "SGD.load_state_dict: missing entry 'has_state' (one flag per parameter, True where its running state "
        "follows), and only parameters [0] have running state: a state saved without it must hold every "
        "parameter's or none. Nothing was loaded.")
    for flags in [np.array([True]), np.array([1, 1]), np.array([[True, True]])]:
        assert _refusal(MOMENTUM, {**state, "has_state": flags}, (2,), (3,)) == (
            f"SGD.load_state_dict: 'has_state' has shape {flags.shape} and dtype {flags.dtype}, this optimizer needs "
            f"(2,) and bool: one flag per parameter. Nothing was loaded.")
    unmarked = {**state, "has_state": np.array([True, False])}
    assert _refusal(MOMENTUM, unmarked, (2,), (3,)) == (
        "SGD.load_state_dict: unexpected 'velocity.1': parameter 1's running state is none (has_state). Nothing was "
        "loaded.")
    _, plain = _stepped(lambda ps: SGD(ps, lr=0.1), (2,))
    assert plain["has_state"].tolist() == [False] and "velocity.0" not in plain  # plain SGD keeps no state
    assert _refusal(lambda ps: SGD(ps, lr=0.1), {**plain, "has_state": np.array([True])}, (2,)) == (
        "SGD.load_state_dict: has_state marks parameter 0, but SGD keeps no running state with these settings. "
        "Nothing was loaded.")
    assert _refusal(lambda ps: SGD(ps, lr=0.1), {**state, "momentum": np.array(0.0)}, (2,), (3,)) == (
        "SGD.load_state_dict: has_state marks parameter 0, but SGD keeps no running state with these settings; "
        "has_state marks parameter 1, but SGD keeps no running state with these settings. Nothing was loaded.")
    _, adam = _stepped(lambda ps: Adam(ps, lr=0.1), (2,))
    assert _refusal(AMSGRAD, {**adam, "amsgrad": np.array(True)}, (2,)) == (
        "Adam.load_state_dict: missing 'v_max.0': has_state marks parameter 0, whose running state is ['m', 'step', "
        "'v', 'v_max'] together. Nothing was loaded.")
    _, amsgrad = _stepped(AMSGRAD, (2,))
    assert _refusal(lambda ps: Adam(ps, lr=0.1), {**amsgrad, "amsgrad": np.array(False)}, (2,)) == (
        "Adam.load_state_dict: unexpected 'v_max.0': parameter 0's running state is ['m', 'step', 'v']. Nothing was "
        "loaded.")


def test_running_state_entries_are_named_kind_dot_index_within_range():
    _, state = _stepped(MOMENTUM, (2,))
    for key, says in [("velocity.1", "'velocity.1' is for parameter 1, but this optimizer has 1"),
                      ("velocity.01", "unexpected entry 'velocity.01'"),
                      ("velocity.-1", "unexpected entry 'velocity.-1'"), ("velocity", "unexpected entry 'velocity'"),
                      ("speed.0", "unexpected entry 'speed.0'"), ("velocity.x", "unexpected entry 'velocity.x'")]:
        message = _refusal(MOMENTUM, {**state, key: np.ones(2)}, (2,))
        assert message == f"SGD.load_state_dict: {says}. Nothing was loaded."
    assert _refusal(MOMENTUM, {k: v for k, v in state.items() if k != "lr"}, (2,)) == (
        "SGD.load_state_dict: missing setting 'lr'. Nothing was loaded.")


def test_everything_wrong_is_said_at_once():
    _, state = _stepped(MOMENTUM, (2,))
    message = _refusal(MOMENTUM, {**state, "lr": np.array("x"), "velocity.0": np.ones(3), "extra.0": np.ones(2)}, (2,))
    assert message == ("SGD.load_state_dict: setting 'lr' must be a number, got 'x' (<U1); 'velocity.0' has shape (3,) "
                       "and dtype float64, parameter 0 needs (2,) and float64; unexpected entry 'extra.0'. Nothing was "
                       "loaded.")


def test_the_base_class_saves_and_loads_its_learning_rate():
    from tinygrad_edu.optim import Optimizer

    w = Tensor(np.ones(2), requires_grad=True)
    opt = Optimizer([w], lr=0.5)
    state = opt.state_dict()
    assert sorted(state) == ["has_state", "lr", "type"] and str(state["type"]) == "Optimizer"
    fresh = Optimizer([w], lr=0.1)
    fresh.load_state_dict(state)
    assert fresh.lr == 0.5
    with pytest.raises(ValueError, match=r"^Optimizer.load_state_dict: lr must lie in \[0.0, inf\), got -1.0"):
        fresh.load_state_dict({**state, "lr": np.array(-1.0)})
    with pytest.raises(NotImplementedError):
        fresh.step()


def test_amsgrad_starts_over_when_a_parameter_changes_shape():
    p = Tensor(np.ones(2), requires_grad=True)
    opt = Adam([p], lr=0.1, betas=(0.9, 0.9), amsgrad=True)
    for g in ([10.0, -10.0], [0.1, 0.1]):
        p.grad = np.array(g)
        opt.step()
    p.data = np.ones(3)  # a new start: moments, step count and v_max of the old shape no longer apply
    p.grad = np.array([0.5, -0.5, 2.0])
    opt.step()
    fresh = Tensor(np.ones(3), requires_grad=True)
    reference = Adam([fresh], lr=0.1, betas=(0.9, 0.9), amsgrad=True)
    fresh.grad = np.array([0.5, -0.5, 2.0])
    reference.step()
    assert p.data.tobytes() == fresh.data.tobytes()
    assert opt.steps == [1] and opt.v_max[0] is not None and opt.v_max[0].shape == (3,)


def test_messages_for_parameters_word_for_word():
    w = Tensor(np.ones((2, 2)), requires_grad=True, name="w")
    for make, error_type, says in [
        (lambda: SGD([w, w * 2], lr=0.1), ValueError,
         "SGD: 'parameter 1' is not a leaf: it was computed from other tensors by mul, so changing it would not "
         "change them (and the next forward pass would recompute it). Pass the leaves you created, e.g. "
         "model.parameters()."),
        (lambda: Adam([("frozen", Tensor(np.ones(2)))]), ValueError,
         "Adam: 'frozen' does not require grad, so backward() never gives it a gradient and step() could not move "
         "it. Create it with requires_grad=True (or leave it out)."),
        (lambda: SGD([w, w], lr=0.1), ValueError,
         "SGD: 'w' appears twice (also as 'w'); it would be updated twice per step. Pass each parameter once."),
        (lambda: SGD([], lr=0.1), ValueError,
         "SGD: got an empty list of parameters, so step() would change nothing. Did the model store its tensors "
         "with requires_grad=True?"),
        (lambda: SGD([np.ones(2)], lr=0.1), TypeError,
         "SGD: 'parameter 0' is a ndarray, not a Tensor; pass tensors or (name, tensor) pairs, e.g. "
         "model.parameters() or model.named_parameters()."),
        (lambda: Adam(w), TypeError, "Adam: params must be a list of tensors; wrap a single one: Adam([w], lr=...)."),
        (lambda: SGD(MLP([2, 1], rng=0), lr=0.1), TypeError,
         "SGD: pass the model's parameters, not the model: SGD(model.parameters(), lr=...)."),
    ]:
        with pytest.raises(error_type) as error:
            make()
        assert str(error.value) == says
    opt = SGD([("layer.weight", w)], lr=0.1)
    w.grad = np.ones((2, 2))
    w.data = np.ones(3)
    with pytest.raises(ValueError) as error:
        opt.step()
    assert str(error.value) == ("SGD.step(): the gradient of 'layer.weight' has shape (2, 2) but the parameter has "
                                "shape (3,); set .grad only to arrays of the parameter's shape.")


def test_repr_names_every_setting():
    w = [Tensor(np.ones(2), requires_grad=True)]
    assert repr(SGD(w, lr=0.5, momentum=0.9, nesterov=True, weight_decay=0.01)) == (
        "SGD(lr=0.5, momentum=0.9, nesterov=True, weight_decay=0.01, 1 parameters)")
    assert repr(Adam(w, lr=0.1, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1, amsgrad=True)) == (
        "Adam(lr=0.1, betas=(0.8, 0.9), eps=1e-06, weight_decay=0.1, amsgrad=True, 1 parameters)")
    assert repr(Adam(w)) == "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, 1 parameters)"


@pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))
def test_a_parameter_that_changes_dtype_and_shape_between_steps_gets_fresh_scratch_arrays(make):
    """The scratch arrays kept between steps follow the parameter: float32 stays float32, a new shape is new."""
    rng = np.random.default_rng(8)
    p = Tensor(np.ones(3), requires_grad=True)
    opt = make([p])
    p.grad = rng.standard_normal(3)
    opt.step()
    p.data = np.ones(4, dtype=np.float32)
    fresh_p = Tensor(np.ones(4, dtype=np.float32), requires_grad=True)
    fresh = make([fresh_p])
    p.grad = rng.standard_normal(4).astype(np.float32)
    fresh_p.grad = p.grad.copy()
    if isinstance(opt, SGD):
        opt.velocity = [None]  # Adam starts over at a new shape by itself; SGD's velocity is reset by hand
    opt.step()
    fresh.step()
    assert p.dtype == np.float32 and p.data.tobytes() == fresh_p.data.tobytes()


@pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))
@pytest.mark.parametrize("change", ["dtype", "shape"])
def test_scratch_arrays_follow_a_change_of_dtype_or_of_shape_alone(make, change):
    rng = np.random.default_rng(9)
    size = 4 if change == "shape" else 100
    p = Tensor(rng.standard_normal(100), requires_grad=True)
    opt = make([p])
    p.grad = rng.standard_normal(100)
    opt.step()
    start = rng.standard_normal(size).astype(np.float32 if change == "dtype" else np.float64)
    p.data = start.copy()
    fresh_p = Tensor(start.copy(), requires_grad=True)
    fresh = make([fresh_p])
    p.grad = rng.standard_normal(size).astype(start.dtype)
    fresh_p.grad = p.grad.copy()
    if isinstance(opt, SGD):
        opt.velocity = [None]
    if isinstance(opt, Adam):  # at the same shape Adam carries its moments on: start both alike
        opt.m, opt.v, opt.v_max, opt.steps = [None], [None], [None], [0]
    opt.step()
    fresh.step()
    assert p.data.dtype == start.dtype and p.data.tobytes() == fresh_p.data.tobytes()


def test_a_parameter_without_a_gradient_is_skipped_wherever_it_stands():
    still, moving = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    opt = SGD([still, moving], lr=0.5, weight_decay=0.1)
    moving.grad = np.ones(2)
    opt.step()
    np.testing.assert_array_equal(still.data, [1.0, 1.0])
    np.testing.assert_allclose(moving.data, [1.0 - 0.5 * 1.1] * 2, rtol=1e-15)


def test_a_loaded_state_is_copied_and_parameters_without_a_step_need_none():
    w, unused = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    opt = Adam([w, unused], lr=0.1)
    w.grad = np.array([1.0, -2.0])
    opt.step()
    state = opt.state_dict()
    kept = {name: value.copy() for name, value in state.items()}
    fresh = Adam([Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(3), requires_grad=True)], lr=0.5)
    fresh.load_state_dict(state)  # parameter 1 never stepped: it needs no running state
    assert fresh.steps == [1, 0] and fresh.m[1] is None
    fresh.params[0].grad = np.ones(2)
    fresh.step()
    assert all(np.array_equal(state[name], kept[name]) for name in kept)  # the caller's arrays are left alone


def test_every_kind_of_problem_is_reported_in_the_order_of_the_entries():
    _, state = _stepped(lambda ps: Adam(ps, lr=0.1), (2,))
    bad = {"type": state["type"], "bogus": np.ones(2), "m.7": np.ones(2), "step.0": np.array(0), "v.0": np.ones(3),
           "lr": np.array(-1.0), "betas": state["betas"], "eps": state["eps"], "weight_decay": state["weight_decay"],
           "amsgrad": state["amsgrad"], "has_state": state["has_state"], "m.0": state["m.0"], "late": np.ones(1)}
    assert _refusal(lambda ps: Adam(ps, lr=0.1), bad, (2,)) == (
        "Adam.load_state_dict: lr must lie in [0.0, inf), got -1.0; unexpected entry 'bogus'; 'm.7' is for parameter "
        "7, but this optimizer has 1; 'step.0' is 0, but a parameter with running state has taken at least 1 step; "
        "'v.0' has shape (3,) and dtype float64, parameter 0 needs (2,) and float64; unexpected entry 'late'. "
        "Nothing was loaded.")


def test_a_state_saved_before_has_state_and_dampening_loads_when_whole():
    """Checkpoints written before has_state and SGD's dampening existed: every parameter's running state, or none,
    and dampening taken as 0 (SGD stepped undamped then); the next steps are the ones the old run would take."""
    for shapes in [((2,), (3,)), ((2,),)]:
        _, state = _stepped(MOMENTUM, *shapes)
        old = {k: v for k, v in state.items() if k not in ("has_state", "dampening")}
        fresh = MOMENTUM([Tensor(np.ones(shape), requires_grad=True) for shape in shapes])
        fresh.load_state_dict(old)
        assert fresh.dampening == 0.0 and fresh.state_dict()["has_state"].all()
        for kind in ("velocity.0", "velocity.1")[:len(shapes)]:
            np.testing.assert_array_equal(fresh.state_dict()[kind], state[kind])
    never = {k: v for k, v in _stepped(lambda ps: SGD(ps, lr=0.1), (2,))[1].items() if k != "has_state"}
    plain = SGD([Tensor(np.ones(2), requires_grad=True)], lr=0.1)
    plain.load_state_dict(never)  # no running state at all: nothing to lose
    assert plain.state_dict()["has_state"].tolist() == [False]
    damped = {k: v for k, v in _stepped(MOMENTUM, (2,))[1].items() if k != "dampening"}
    mine = SGD([Tensor(np.ones(2), requires_grad=True)], lr=0.1, momentum=0.9, dampening=0.5)
    mine.load_state_dict(damped)  # as PyTorch: the settings come from the state
    assert mine.dampening == 0.0


def test_rmsprop_gets_the_same_checks_by_construction():
    def make(ps):
        return RMSprop(ps, lr=0.01, momentum=0.9, centered=True)

    _, state = _stepped(make, (2,))
    assert sorted(k for k in state if "." in k) == ["grad_avg.0", "momentum_buffer.0", "square_avg.0"]
    for change, says in [({"alpha": np.array(1.0)}, "alpha must lie in [0.0, 1.0), got 1.0"),
                         ({"lr": np.array(np.nan)}, "lr must lie in [0.0, inf), got nan"),
                         ({"centered": np.array(1)}, "setting 'centered' must be True or False, got 1 (int64)"),
                         ({"square_avg.0": np.array([0.1, -0.5])},
                          "'square_avg.0' holds negative values (down to -0.5); an average of squares is >= 0")]:
        assert _refusal(make, {**state, **change}, (2,)) == f"RMSprop.load_state_dict: {says}. Nothing was loaded."
    without = {k: v for k, v in state.items() if k != "grad_avg.0"}
    assert _refusal(make, without, (2,)) == (
        "RMSprop.load_state_dict: missing 'grad_avg.0': has_state marks parameter 0, whose running state is "
        "['grad_avg', 'momentum_buffer', 'square_avg'] together. Nothing was loaded.")
    plain = {**state, "centered": np.array(False), "momentum": np.array(0.0)}
    assert _refusal(make, plain, (2,)) == (
        "RMSprop.load_state_dict: unexpected 'grad_avg.0', 'momentum_buffer.0': parameter 0's running state is "
        "['square_avg']. Nothing was loaded.")


def test_what_the_mutation_run_found_about_settings_and_messages():
    w = [Tensor(np.ones(2), requires_grad=True)]
    with pytest.raises(TypeError) as error:
        SGD(42, lr=0.1)
    assert str(error.value).startswith("SGD: params must be a model (anything with named_parameters())")
    assert SGD(w, lr=0.1, momentum=0.9, dampening=1.0).dampening == 1.0  # [0, 1]: 1 itself is allowed
    assert RMSprop(w).lr == 0.01 and RMSprop(w).alpha == 0.99 and RMSprop(w).eps == 1e-8  # PyTorch's defaults
    for kwargs, says in [({"eps": -1.0}, "RMSprop: eps must lie in [0.0, inf), got -1.0."),
                         ({"weight_decay": -1.0}, "RMSprop: weight_decay must lie in [0.0, inf), got -1.0."),
                         ({"momentum": np.nan}, "RMSprop: momentum must lie in [0.0, inf), got nan.")]:
        with pytest.raises(ValueError) as refused:
            RMSprop(w, **kwargs)
        assert str(refused.value) == says
    with pytest.raises(TypeError) as not_a_dict:
        SGD(w, lr=0.1).load_state_dict([("lr", 0.1)])
    assert str(not_a_dict.value) == ("SGD.load_state_dict: expected a dict of name -> numpy array (as state_dict() "
                                     "returns), got list.")
    assert repr(RMSprop(w, lr=0.1)) == "RMSprop(lr=0.1, alpha=0.99, eps=1e-08, weight_decay=0.0, 1 parameters)"
    assert repr(RMSprop(w, lr=0.1, momentum=0.5, centered=True)) == (
        "RMSprop(lr=0.1, alpha=0.99, eps=1e-08, weight_decay=0.0, momentum=0.5, centered=True, 1 parameters)")


def test_every_problem_of_a_state_is_reported_at_once_and_whole():
    _, state = _stepped(AMSGRAD, (2,))
    broken = {k: v for k, v in state.items() if k not in ("lr", "m.0", "v.0")}
    broken["eps"] = np.array("tiny")
    assert _refusal(AMSGRAD, broken, (2,)) == (
        "Adam.load_state_dict: missing setting 'lr'; setting 'eps' must be a number, got 'tiny' (<U4). Nothing was "
        "loaded.")
    assert _refusal(AMSGRAD, {k: v for k, v in state.items() if k not in ("m.0", "v.0")}, (2,)) == (
        "Adam.load_state_dict: missing 'm.0', 'v.0': has_state marks parameter 0, whose running state is ['m', "
        "'step', 'v', 'v_max'] together. Nothing was loaded.")


def test_a_running_state_of_zeros_is_a_valid_average_of_squares():
    """A parameter whose gradient was 0 so far has v = 0 (Adam) and square_avg = 0 (RMSprop): not refused."""
    for make in (AMSGRAD, lambda ps: RMSprop(ps, lr=0.01)):
        params = [Tensor(np.ones(2), requires_grad=True)]
        opt = make(params)
        params[0].grad = np.zeros(2)
        opt.step()
        fresh = make([Tensor(np.ones(2), requires_grad=True)])
        fresh.load_state_dict(opt.state_dict())
        assert all(np.array_equal(a, b) for a, b in zip(fresh.state_dict().values(), opt.state_dict().values()))


def test_centered_rmsprop_keeps_the_running_mean_of_the_gradient_with_its_sign():
    w = Tensor(np.ones(2), requires_grad=True)
    opt = RMSprop([w], lr=0.01, alpha=0.9, centered=True)
    for g in ([1.0, -2.0], [3.0, 0.5]):
        w.grad = np.array(g)
        opt.step()
    np.testing.assert_allclose(opt.state_dict()["grad_avg.0"], 0.9 * 0.1 * np.array([1.0, -2.0]) + 0.1 * np.array(
        [3.0, 0.5]), rtol=1e-15)


def test_velocity_takes_the_parameters_dtype_and_scratch_arrays_are_kept_between_steps():
    w = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    plain = SGD([w], lr=0.1, momentum=0.9)
    w.grad = np.ones(2)  # float64, set by hand
    plain.step()
    assert plain.velocity[0] is not None and plain.velocity[0].dtype == np.float32
    SGD([Tensor(np.ones(2, dtype=np.float32), requires_grad=True)], lr=0.1, momentum=0.9).load_state_dict(
        plain.state_dict())  # so the checkpoint fits a float32 parameter
    opt = SGD([w], lr=0.1, momentum=0.9, weight_decay=0.01)
    opt.step()
    scratch, decayed = opt._scratch[0], opt._decayed[0]
    opt.step()
    assert opt._scratch[0] is scratch and opt._decayed[0] is decayed  # no fresh temporaries per step
