"""SGD's dampening and RMSprop: by the formula, against PyTorch (skipped without it), and saved and resumed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tinygrad_edu import Tensor
from tinygrad_edu.manual import optimization
from tinygrad_edu.optim import SGD, Optimizer, RMSprop

START = np.random.default_rng(30).standard_normal((3, 4))


def _gradients(seed: int, steps: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(START.shape) for _ in range(steps)]


def _run(make: Callable[[list[Tensor]], Optimizer], grads: list[np.ndarray]) -> list[np.ndarray]:
    w = Tensor(START.copy(), requires_grad=True)
    opt = make([w])
    seen = []
    for g in grads:
        w.grad = g.copy()
        opt.step()
        seen.append(w.data.copy())
    return seen


def test_dampening_is_the_courses_momentum_after_the_first_step() -> None:
    grads = _gradients(1)
    # v <- 0.9 v + 0.1 g with v1 = g (PyTorch's first step), then w <- w - lr v
    v, w, expected = None, START.copy(), []
    for g in grads:
        v = g.copy() if v is None else 0.9 * v + 0.1 * g
        w = w - 0.05 * v
        expected.append(w)
    got = _run(lambda ps: SGD(ps, lr=0.05, momentum=0.9, dampening=0.9), grads)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)
    # with the velocity started at zero it is the course's update_parameters_with_momentum, step for step
    w_engine = Tensor(START.copy(), requires_grad=True)
    opt = SGD([w_engine], lr=0.05, momentum=0.9, dampening=0.9)
    opt.velocity = [np.zeros_like(START)]
    params, velocity = {"W1": START.copy()}, {"dW1": np.zeros_like(START)}
    for g in grads:
        w_engine.grad = g.copy()
        opt.step()
        params, velocity = optimization.update_parameters_with_momentum(params, {"dW1": g}, velocity, 0.9, 0.05)
        np.testing.assert_allclose(w_engine.data, params["W1"], rtol=1e-14, atol=1e-15)


def test_rmsprop_by_the_formula() -> None:
    grads = _gradients(2)
    s, w, expected = np.zeros_like(START), START.copy(), []
    for g in grads:
        s = 0.9 * s + 0.1 * g * g
        w = w - 0.01 * g / (np.sqrt(s) + 1e-8)
        expected.append(w)
    got = _run(lambda ps: RMSprop(ps, lr=0.01, alpha=0.9), grads)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


SETTINGS: dict[str, dict] = {
    "plain": {"lr": 0.01},
    "alpha": {"lr": 0.02, "alpha": 0.9, "eps": 1e-6},
    "decay": {"lr": 0.01, "weight_decay": 0.1},
    "momentum": {"lr": 0.01, "momentum": 0.9},
    "centered": {"lr": 0.01, "centered": True},
    "everything": {"lr": 0.005, "alpha": 0.95, "eps": 1e-7, "weight_decay": 0.01, "momentum": 0.5,
                   "centered": True},
}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_rmsprop_matches_pytorch(name: str) -> None:
    torch = pytest.importorskip("torch")
    grads = _gradients(3)
    got = _run(lambda ps: RMSprop(ps, **SETTINGS[name]), grads)
    w = torch.tensor(START.copy(), requires_grad=True)
    reference = torch.optim.RMSprop([w], **SETTINGS[name])
    for step, g in enumerate(grads):
        w.grad = torch.tensor(g)
        reference.step()
        np.testing.assert_allclose(got[step], w.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=f"step {step}")


@pytest.mark.parametrize(("momentum", "dampening", "nesterov", "decay"),
                         [(0.9, 0.9, False, 0.0), (0.9, 0.5, False, 0.01), (0.5, 0.1, False, 0.0),
                          (0.9, 0.0, True, 0.0)])
def test_sgd_with_dampening_matches_pytorch(momentum: float, dampening: float, nesterov: bool, decay: float) -> None:
    torch = pytest.importorskip("torch")
    grads = _gradients(4)
    settings: dict = {"lr": 0.05, "momentum": momentum, "dampening": dampening, "nesterov": nesterov,
                      "weight_decay": decay}
    got = _run(lambda ps: SGD(ps, **settings), grads)
    w = torch.tensor(START.copy(), requires_grad=True)
    reference = torch.optim.SGD([w], **settings)
    for step, g in enumerate(grads):
        w.grad = torch.tensor(g)
        reference.step()
        np.testing.assert_allclose(got[step], w.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=f"step {step}")


def test_bad_settings_are_refused_with_their_names() -> None:
    w = Tensor(START.copy(), requires_grad=True)
    with pytest.raises(ValueError, match="dampening"):
        SGD([w], lr=0.1, momentum=0.9, dampening=1.5)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([w], lr=0.1, momentum=0.9, dampening=0.5, nesterov=True)   # PyTorch refuses it too
    with pytest.raises(ValueError, match="alpha"):
        RMSprop([w], alpha=1.0)
    with pytest.raises(ValueError, match="momentum"):
        RMSprop([w], momentum=-0.1)
    assert "centered=True" in repr(RMSprop([w], centered=True)) and "dampening=0.9" in repr(
        SGD([w], lr=0.1, momentum=0.9, dampening=0.9))


@pytest.mark.parametrize("settings", [{}, {"momentum": 0.9}, {"centered": True}, {"momentum": 0.5, "centered": True}])
def test_rmsprop_state_resumes_bit_for_bit(settings: dict, tmp_path) -> None:
    grads = _gradients(5)
    straight = _run(lambda ps: RMSprop(ps, lr=0.01, **settings), grads)
    w = Tensor(START.copy(), requires_grad=True)
    opt = RMSprop([w], lr=0.01, **settings)
    for g in grads[:3]:
        w.grad = g.copy()
        opt.step()
    np.savez(tmp_path / "opt.npz", **opt.state_dict())  # type: ignore[arg-type]
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as archive:
        state = {name: archive[name] for name in archive.files}
    assert ("momentum_buffer.0" in state) == bool(settings.get("momentum"))
    assert ("grad_avg.0" in state) == bool(settings.get("centered"))
    resumed = Tensor(w.data.copy(), requires_grad=True)
    fresh = RMSprop([resumed], lr=1.0)
    fresh.load_state_dict(state)
    for g in grads[3:]:
        resumed.grad = g.copy()
        fresh.step()
    assert resumed.data.tobytes() == straight[-1].tobytes()
    if settings:  # with a second kind of running state, one without the other is refused
        partial = {k: v for k, v in state.items() if not k.startswith("square_avg")}
        with pytest.raises(ValueError, match="together"):
            RMSprop([Tensor(START.copy(), requires_grad=True)], lr=0.01, **settings).load_state_dict(partial)
