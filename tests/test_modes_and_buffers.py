"""Training and evaluation modes, and buffers: state a module saves but never trains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import Tensor, losses, no_grad, nn, optim
from tinygrad_edu.nn import Buffer, Linear, Module, Sequential, Sigmoid
from tinygrad_edu.train import fit


class Scaler(Module):
    """A layer with one parameter and two buffers, one of them inside a dict."""

    def __init__(self, n: int) -> None:
        self.scale = Tensor(np.ones(n), requires_grad=True, name="scale")
        self.mean = Buffer(np.zeros(n), name="mean")
        self.extra = {"count": Buffer(np.zeros(()))}
        self.last_input: Tensor | None = None  # a cached input: neither parameter nor buffer

    def forward(self, x: Tensor) -> Tensor:
        self.last_input = x
        if self.training:
            with no_grad():
                self.mean.data[...] = 0.5 * self.mean.data + 0.5 * x.data.mean(axis=0)
                self.extra["count"].data[...] += 1
        return (x - self.mean) * self.scale


def net() -> Sequential:
    return Sequential(Linear(3, 2, rng=0), Scaler(2), Sigmoid())


def test_a_module_starts_in_training_mode_and_eval_train_reach_every_module() -> None:
    model = net()
    assert model.training and all(m.training for _, m in model.named_modules())
    assert model.eval() is model
    assert [m.training for _, m in model.named_modules()] == [False] * 4
    model.layers[1].train()  # one submodule back: only it and what it holds
    assert [m.training for _, m in model.named_modules()] == [False, False, True, False]
    assert model.train() is model and all(m.training for _, m in model.named_modules())
    model.train(False)
    assert not any(m.training for _, m in model.named_modules())


def test_train_refuses_a_mode_that_is_not_a_bool() -> None:
    with pytest.raises(TypeError, match=r"mode must be True or False.*model\.eval\(\)"):
        net().train("eval")  # type: ignore[arg-type]


def test_buffers_are_found_and_named_like_parameters_but_never_trained() -> None:
    model = net()
    model(Tensor(np.ones((4, 3))))  # caches an input tensor: it must not become state
    assert [name for name, _ in model.named_buffers()] == ["layers.1.mean", "layers.1.extra.count"]
    assert [name for name, _ in model.named_parameters()] == ["layers.0.weight", "layers.0.bias", "layers.1.scale"]
    assert all(isinstance(b, Buffer) and not b.requires_grad for b in model.buffers())
    assert list(model.state_dict()) == ["layers.0.weight", "layers.0.bias", "layers.1.scale", "layers.1.mean",
                                        "layers.1.extra.count"]
    opt = optim.SGD(model.parameters(), lr=0.1)
    assert len(opt.state_dict()) >= 1 and not any(isinstance(p, Buffer) for p in model.parameters())


def test_a_buffer_refuses_to_require_grad() -> None:
    with pytest.raises(TypeError, match=r"Buffer.*never trained"):
        Buffer(np.zeros(2)).requires_grad_()
    assert Buffer(np.zeros(2)).requires_grad_(False).requires_grad is False


def test_state_dict_copies_buffers_and_load_state_dict_restores_them() -> None:
    model = net()
    model(Tensor(np.arange(12.0).reshape(4, 3)))
    state = model.state_dict()
    assert state["layers.1.extra.count"] == 1.0 and np.any(state["layers.1.mean"] != 0)
    model(Tensor(np.ones((4, 3))))
    assert model.state_dict()["layers.1.extra.count"] == 2.0 and state["layers.1.extra.count"] == 1.0  # a copy
    fresh = net()
    fresh.load_state_dict(state)
    for name, value in fresh.state_dict().items():
        np.testing.assert_array_equal(value, state[name], err_msg=name)
    bad = dict(state, **{"layers.1.mean": np.zeros(3)})
    with pytest.raises(ValueError, match=r"'layers\.1\.mean' has shape \(3,\), the model expects \(2,\)"):
        fresh.load_state_dict(bad)
    missing = {k: v for k, v in state.items() if k != "layers.1.mean"}
    with pytest.raises(ValueError, match=r"missing 'layers\.1\.mean'"):
        fresh.load_state_dict(missing)


def test_eval_mode_leaves_buffers_alone_and_save_load_keeps_them(tmp_path: Path) -> None:
    model = net()
    model(Tensor(np.arange(12.0).reshape(4, 3)))
    before = model.state_dict()
    model.eval()(Tensor(np.ones((4, 3))))
    after = model.state_dict()
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    model.save(tmp_path / "m.npz")
    other = net()
    other.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(other.state_dict()["layers.1.mean"], model.state_dict()["layers.1.mean"])


def test_a_checkpointed_fit_resumes_buffers_bit_for_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 3)), rng.random((40, 2))

    def run(epochs: int, resume: bool) -> Sequential:
        model = net()
        fit(model, losses.quadratic_cost, optim.SGD(model.parameters(), lr=0.5), (x, y), epochs=epochs,
            batch_size=8, rng=1, checkpoint=tmp_path / "run.npz", resume=resume, progress=False)
        return model

    whole = net()
    fit(whole, losses.quadratic_cost, optim.SGD(whole.parameters(), lr=0.5), (x, y), epochs=3, batch_size=8,
        rng=1, progress=False)
    run(1, False)
    resumed = run(3, True)
    assert whole.state_dict()["layers.1.extra.count"] == 15.0  # 5 mini-batches an epoch, 3 epochs
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_nn_exports_buffer() -> None:
    assert nn.Buffer is Buffer and "Buffer" in nn.__all__
