"""jit: a replayed step equals the eager step bit for bit, shows its source, and refuses what it cannot replay."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tinygrad_edu import JitError, LearnerWarning, Tensor, bench, detect_anomaly, jit, losses, nn, ops, optim, tutorials

TWINS = [key for key in tutorials.TUTORIALS if key != "reg_dropout"]   # reg_dropout reseeds: refused, below


def _twin_step(key: str) -> tuple[tutorials.Twin, Callable[[], Tensor]]:
    twin = tutorials.build(key, 0)
    params = twin.model.parameters()
    optimizer = twin.optimizer(params) if twin.optimizer else optim.SGD(params, lr=twin.lr)

    def train_step() -> Tensor:
        loss = twin.engine_loss(twin.model)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return twin, train_step


def _same_bits(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _assert_same_models(eager: nn.Module, replayed: nn.Module) -> None:
    for (name, p), (_, q) in zip(eager.named_parameters(), replayed.named_parameters()):
        assert _same_bits(p.data, q.data), name
        assert _same_bits(p.grad, q.grad), f"{name}.grad"
        assert p.grad.strides == q.grad.strides and p.data.strides == q.data.strides, f"{name}: memory layout"
    for (name, b), (_, c) in zip(eager.named_buffers(), replayed.named_buffers()):
        assert _same_bits(b.data, c.data), name    # batch norm's running statistics, updated every step


@pytest.mark.parametrize("key", TWINS)
def test_every_tutorials_step_replays_bit_for_bit(key: str) -> None:
    eager_twin, eager_step = _twin_step(key)
    twin, step = _twin_step(key)
    jitted = jit(step)
    steps = 30 if key in ("mnist3", "lnet", "logreg", "network2", "batchnorm") else 100
    for i in range(steps):
        assert _same_bits(eager_step().data, jitted().data), f"loss at step {i}"
    _assert_same_models(eager_twin.model, twin.model)
    assert jitted.replays == steps - 3 and len(jitted.traces) == 1  # the first call makes the .grad


def _nielsen_batches(sizes: list[int], batch: int, dtype: Any, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [(rng.random((batch, sizes[0])).astype(dtype), np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1],
                                                                                                       batch)])
            for _ in range(n)]


@pytest.mark.parametrize("which", [2, 3], ids=["nn.MLP + optim.SGD", "the learner's step"])
@pytest.mark.parametrize("workload", ["W1", "W2"])
def test_the_benchmarks_steps_replay_bit_for_bit(which: int, workload: str) -> None:
    # W2's network at a budget size: the same layers and float32, a smaller hidden width and fewer steps
    sizes, batch, dtype, n = ((bench.W1_SIZES, bench.W1_BATCH, np.float64, 100) if workload == "W1" else
                              ([784, 128, 128, 10], 64, np.float32, 20))
    eager = bench.nielsen_engines(sizes, dtype, 0, per_sample=0, with_torch=False)[which]
    compiled = bench.nielsen_engines(sizes, dtype, 0, per_sample=0, with_torch=False)[which]
    step = jit(compiled.run)
    batches = _nielsen_batches(sizes, batch, dtype, n)
    for b in batches:
        eager.run(b)
        step(b)
    assert step.replays == n - 3
    assert all(_same_bits(g, h) for g, h in zip(eager.gradients(batches[0]), compiled.gradients(batches[0])))


def _mlp_step(model: nn.Module, optimizer: optim.Optimizer) -> Callable[..., Tensor]:
    def train_step(x: np.ndarray, y: np.ndarray) -> Tensor:
        loss = losses.quadratic_cost(model(Tensor(x)), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss
    return train_step


def _pair(sizes: tuple[int, ...] = (4, 3, 2), **kwargs: Any) -> tuple[nn.Module, Callable[..., Tensor], nn.Module,
                                                                      Callable[..., Tensor]]:
    eager = nn.MLP(sizes, rng=0, **kwargs)
    model = nn.MLP(sizes, rng=0, **kwargs)
    return (eager, _mlp_step(eager, optim.SGD(eager.parameters(), lr=0.5)), model,
            _mlp_step(model, optim.SGD(model.parameters(), lr=0.5)))


def test_a_smaller_last_mini_batch_gets_its_own_trace() -> None:
    eager, eager_step, model, step = _pair()
    step = jit(step)
    rng = np.random.default_rng(0)
    for size in [5, 5, 5, 3, 3, 3, 5, 3]:
        x, y = rng.standard_normal((size, 4)), rng.standard_normal((size, 2))
        assert _same_bits(eager_step(x, y).data, step(x, y).data)
    _assert_same_models(eager, model)
    assert sorted(t.description for t in step.traces) == ["x (3, 4) float64, y (3, 2) float64",
                                                          "x (5, 4) float64, y (5, 2) float64"]
    assert step.replays == 3   # 5: three recorded (the first makes the .grad); 3: two recorded


def test_dropout_draws_new_masks_at_every_replay() -> None:
    eager, eager_step, model, step = _pair((4, 8, 8, 2), dropout=0.3)
    step = jit(step)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 2))
    losses_seen = set()
    for _ in range(20):
        loss = step(x, y)
        assert _same_bits(eager_step(x, y).data, loss.data)
        losses_seen.add(loss.item())
    _assert_same_models(eager, model)
    assert step.replays == 17 and len(losses_seen) == 20   # a new mask each step, not the recorded one
    assert ".binomial(" in step.source or ".random(" in step.source


def test_the_courses_dropout_twin_replays_when_seeded_once() -> None:
    # the course reseeds its masks in every forward pass (refused below); seeded once, the twin replays
    def twin_and_step() -> tuple[tutorials.Twin, Callable[[], Tensor]]:
        twin = tutorials.build("reg_dropout", 0)
        optimizer = optim.SGD(twin.model.parameters(), lr=twin.lr)
        x, y = twin.x.T.copy(), twin.y.T.copy()

        def train_step() -> Tensor:
            loss = losses.binary_cross_entropy(twin.model(Tensor(x)), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss
        return twin, train_step
    eager_twin, eager_step = twin_and_step()
    twin, step = twin_and_step()
    step = jit(step)
    for _ in range(30):
        assert _same_bits(eager_step().data, step().data)
    _assert_same_models(eager_twin.model, twin.model)
    assert step.replays == 27


def test_an_update_in_place_under_no_grad_and_a_changed_learning_rate() -> None:
    from tinygrad_edu import no_grad
    sizes = [4, 3, 2]
    settings = {"lr": 0.5}

    def make() -> tuple[nn.Module, Callable[..., Tensor]]:
        model = nn.MLP(sizes, rng=0)

        def train_step(x: np.ndarray, y: np.ndarray, lr: float) -> Tensor:
            loss = losses.quadratic_cost(model(Tensor(x)), y)
            for p in model.parameters():
                p.grad = None
            loss.backward()
            with no_grad():
                for p in model.parameters():
                    p.data -= lr * p.grad
            return loss
        return model, train_step
    eager, eager_step = make()
    model, step = make()
    step = jit(step)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    for i in range(12):
        if i == 6:
            settings["lr"] = 0.25   # a new value for an argument: a new recording, then replays again
        assert _same_bits(eager_step(x, y, settings["lr"]).data, step(x, y, settings["lr"]).data)
    _assert_same_models(eager, model)
    assert len(step.traces) == 2 and step.replays >= 6


def test_load_state_dict_between_calls_is_seen() -> None:
    eager, eager_step, model, step = _pair()
    step = jit(step)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    for _ in range(4):
        eager_step(x, y)
        step(x, y)
    fresh = nn.MLP([4, 3, 2], rng=7).state_dict()
    eager.load_state_dict(fresh)
    model.load_state_dict(fresh)
    for _ in range(4):
        assert _same_bits(eager_step(x, y).data, step(x, y).data)
    _assert_same_models(eager, model)


def test_the_source_reads_as_the_backprop_with_each_rule() -> None:
    _, _, _model, step = _pair()
    step = jit(step)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    with pytest.raises(RuntimeError, match="nothing is compiled yet"):
        step.source  # noqa: B018 (the property raises)
    for _ in range(3):
        step(x, y)
    source = step.source
    forward, backward, update = source.index("# -- forward"), source.index("# -- backward"), source.index("# -- upd")
    assert forward < backward < update
    sigmoid_rule = ops.Sigmoid.__doc__.strip().splitlines()[0]
    assert f"# sigmoid: {sigmoid_rule}" in source[backward:update]
    assert f"# matmul: {ops.MatMul.__doc__.strip().splitlines()[0]}" in source[backward:update]
    assert "x @ layers_0_weight + layers_0_bias" in source[forward:backward]
    for name in ("grad_layers_0_weight", "grad_layers_0_bias", "grad_layers_2_weight", "grad_layers_2_bias"):
        assert f"{name} =" in source[backward:update] and name in source[update:]
    assert "layers_0_weight -=" in source[update:]
    # the source IS what runs: its function, called on the step's arrays, gives what a replay gives
    compiled = step.traces[0]
    assert compiled.step.__code__.co_filename.startswith("<jit train_step")


def test_named_tensors_keep_their_names_in_the_source() -> None:
    _twin, step = _twin_step("nielsen")
    step = jit(step)
    for _ in range(3):
        step()
    source = step.source
    for name in ("z1 =", "a1 =", "z2 =", "a2 =", "grad_z2 =", "grad_a1 =", "grad_z1 ="):
        assert name in source, name


def test_detect_anomaly_runs_eagerly_and_a_non_finite_replay_falls_back() -> None:
    eager, eager_step, model, step = _pair()
    step = jit(step)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    for _ in range(4):
        step(x, y)
        eager_step(x, y)
    with detect_anomaly():
        assert _same_bits(eager_step(x, y).data, step(x, y).data)
    assert step.eager_calls == 4 and step.replays == 1
    bad = x.copy()
    bad[0, 0] = np.nan    # same shapes: the replay runs, meets a non-finite loss and runs the step eagerly
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", LearnerWarning)
        expected, got = eager_step(bad, y), step(bad, y)
    assert np.isnan(got.item()) and _same_bits(expected.data, got.data)
    assert step.eager_calls == 5
    _assert_same_models(eager, model)


def test_eager_stays_as_it_was_after_replays() -> None:
    eager, eager_step, model, step = _pair()
    step = jit(step)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    for _ in range(5):
        eager_step(x, y)
        step(x, y)
    # the same model, used eagerly after the replays: a graph, a walk, the same gradients as the eager twin
    for p in model.parameters() + eager.parameters():
        p.grad = None
    loss = losses.quadratic_cost(model(Tensor(x)), y)
    assert loss.parents and loss.op is not None
    loss.backward()
    other = losses.quadratic_cost(eager(Tensor(x)), y)
    other.backward()
    _assert_same_models(eager, model)
    assert type(model.parameters()[0].data) is np.ndarray


# -- the pitfalls, refused with the reason and the way out ---------------------------------------------------

def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((5, 4)), rng.standard_normal((5, 2))


def test_a_branch_on_data_is_refused() -> None:
    model = nn.MLP([4, 3, 2], rng=0)
    optimizer = optim.SGD(model.parameters(), lr=0.5)

    @jit
    def train_step(x: np.ndarray, y: np.ndarray) -> Tensor:
        loss = losses.quadratic_cost(model(Tensor(x)), y)
        if loss.item() > 1:  # a replay would keep the first call's choice
            optimizer.lr = 0.1
        loss.backward()
        optimizer.step()
        return loss

    with pytest.raises(JitError, match=r"reads an array's values into Python \(\.item\(\)\).*test_jit.py"):
        train_step(*_data())
    assert type(model.parameters()[0].data) is np.ndarray   # everything handed back, plain


def test_nothing_jitted_is_refused() -> None:
    @jit
    def train_step(x: np.ndarray) -> float:
        return 2.0 * 3.0

    with pytest.raises(JitError, match="nothing was jitted"):
        train_step(np.ones(3))


def test_a_forward_pass_without_backward_is_refused() -> None:
    model = nn.MLP([4, 3, 2], rng=0)

    @jit
    def forward(x: np.ndarray, y: np.ndarray) -> Tensor:
        return losses.quadratic_cost(model(Tensor(x)), y)

    with pytest.raises(JitError, match="never called backward"):
        forward(*_data())


_LAST_LOSS: Tensor | None = None


def test_rebinding_a_global_is_refused() -> None:
    model = nn.MLP([4, 3, 2], rng=0)

    def train_step(x: np.ndarray, y: np.ndarray) -> Tensor:
        global _LAST_LOSS
        loss = losses.quadratic_cost(model(Tensor(x)), y)
        loss.backward()
        _LAST_LOSS = loss
        return loss

    with pytest.raises(JitError, match="assigns the variable '_LAST_LOSS'"):
        jit(train_step)(*_data())


def test_a_silently_dropped_append_is_refused() -> None:
    model = nn.MLP([4, 3, 2], rng=0)
    history: list[Tensor] = []

    @jit
    def train_step(x: np.ndarray, y: np.ndarray) -> Tensor:
        loss = losses.quadratic_cost(model(Tensor(x)), y)
        loss.backward()
        history.append(loss.detach())
        return loss

    with pytest.raises(JitError, match="appends to the list history"):
        train_step(*_data())


def test_a_counter_the_step_changes_is_refused() -> None:
    model = nn.MLP([4, 3, 2], rng=0)
    model.calls = 0  # type: ignore[attr-defined]

    @jit
    def train_step(x: np.ndarray, y: np.ndarray) -> Tensor:
        model.calls += 1  # type: ignore[attr-defined]
        loss = losses.quadratic_cost(model(Tensor(x)), y)
        loss.backward()
        return loss

    with pytest.raises(JitError, match=r"changes the Python value model.calls \(0 -> 1\)"):
        train_step(*_data())


def test_a_python_number_that_changes_every_call_is_refused() -> None:
    model = nn.MLP([4, 3, 2], rng=0)
    settings = {"scale": 1.0}   # a dict's items are not watched: each call computes with another number

    @jit
    def train_step(x: np.ndarray, y: np.ndarray) -> Tensor:
        loss = losses.quadratic_cost(model(Tensor(x)), y) * settings["scale"]
        model.zero_grad()
        loss.backward()
        return loss

    x, y = _data()
    with pytest.raises(JitError, match=r"changed between calls \(2\. then 3\.\): it was computed outside"):
        for i in range(3):
            settings["scale"] = 1.0 + i
            train_step(x, y)


def test_adams_step_runs_as_it_is_after_the_replayed_backward() -> None:
    # Adam's bias correction is a new Python number every step: the replay calls its step() itself
    _, step = _twin_step("opt_adam")
    step = jit(step)
    for _ in range(4):
        step()
    assert step.replays == 1
    assert "# then Adam.step() runs as it is" in step.source
    assert "layers_0_weight -=" not in step.source


def test_a_new_generator_in_every_step_is_refused() -> None:
    twin, step = _twin_step("reg_dropout")   # the course reseeds its dropout in every forward pass
    with pytest.raises(JitError, match=r"new random generator.*Seed the generator once"):
        jit(step)()
    assert all(isinstance(m.rng, np.random.Generator) for _, m in twin.model.named_modules()
               if isinstance(m, nn.Dropout))


def test_jit_takes_a_function() -> None:
    with pytest.raises(TypeError, match="jit\\(fn\\): fn must be a function"):
        jit(3)  # type: ignore[arg-type]


def test_an_attribute_name_is_no_global_and_another_jitted_step_is_left_alone() -> None:
    # `optimizer.step()` names the attribute `step`; a notebook's global `step` (another jitted step) is no state
    namespace: dict[str, Any] = {"jit": jit, "nn": nn, "optim": optim, "losses": losses, "Tensor": Tensor}
    exec(  # a notebook's globals, written out
        "model = nn.MLP([4, 3, 2], rng=0)\n"
        "optimizer = optim.SGD(model.parameters(), lr=0.5)\n"
        "def train_step(x, y):\n"
        "    loss = losses.quadratic_cost(model(Tensor(x)), y)\n"
        "    optimizer.zero_grad()\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
        "    return loss\n"
        "step = jit(train_step)\n", namespace)
    step = namespace["step"]
    x, y = _data()
    for _ in range(5):
        step(x, y)
    assert step.replays == 2


def test_p_data_given_a_new_array_replays_and_a_rebound_parameter_is_refused() -> None:
    def make(rebind: bool) -> tuple[nn.Module, Callable[..., Tensor]]:
        from tinygrad_edu import no_grad
        model = nn.MLP([4, 3, 2], rng=0)

        def train_step(x: np.ndarray, y: np.ndarray) -> Tensor:
            loss = losses.quadratic_cost(model(Tensor(x)), y)
            for p in model.parameters():
                p.grad = None
            loss.backward()
            with no_grad():
                for p in model.parameters():
                    p.data = p.data - 0.5 * p.grad    # a new array for each tensor: replayed
                if rebind:  # a new tensor for a parameter: refused
                    layer = model.layers[0]
                    layer.weight = Tensor(layer.weight.data * 1.0, requires_grad=True)  # type: ignore[attr-defined]
            return loss
        return model, train_step
    eager, eager_step = make(False)
    model, step = make(False)
    step = jit(step)
    x, y = _data()
    for _ in range(8):
        assert _same_bits(eager_step(x, y).data, step(x, y).data)
    _assert_same_models(eager, model)
    assert step.replays >= 5
    _, rebinding = make(True)
    rebinding = jit(rebinding)
    with pytest.raises(JitError, match=r"read model.layers\[0\].weight.* rebound inside the step"):
        for _ in range(3):
            rebinding(x, y)


class _RunningMean(nn.Module):
    """A layer that keeps a running mean of its input in a buffer, updated in place every step (as batch norm)."""

    def __init__(self, features: int) -> None:
        self.running_mean = nn.Buffer(np.zeros(features))
        self.steps = nn.Buffer(np.zeros(()))

    def __call__(self, x: Tensor) -> Tensor:
        from tinygrad_edu import no_grad
        if self.training:
            with no_grad():
                self.running_mean.data[...] = 0.9 * self.running_mean.data + 0.1 * x.data.mean(axis=0)
                self.steps.data += 1
        return x - Tensor(self.running_mean.data)


def test_a_buffer_updated_in_place_every_step_is_replayed() -> None:
    def make() -> tuple[nn.Sequential, Callable[..., Tensor]]:
        model = nn.Sequential(nn.Linear(4, 3, rng=0), _RunningMean(3), nn.Sigmoid(), nn.Linear(3, 2, rng=1))
        return model, _mlp_step(model, optim.SGD(model.parameters(), lr=0.5))
    eager, eager_step = make()
    model, step = make()
    step = jit(step)
    rng = np.random.default_rng(0)
    for _ in range(10):
        x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
        assert _same_bits(eager_step(x, y).data, step(x, y).data)
    _assert_same_models(eager, model)
    for (name, b), (_, c) in zip(eager.named_buffers(), model.named_buffers()):
        assert _same_bits(b.data, c.data), name
    assert step.replays >= 6 and float(dict(model.named_buffers())['layers.1.steps'].data) == 10.0


def test_a_global_number_changed_between_calls_is_seen() -> None:
    source = ("model = nn.MLP([4, 3, 2], rng=0)\n"
              "lr = 0.5\n"
              "def train_step(x, y):\n"
              "    loss = losses.quadratic_cost(model(Tensor(x)), y)\n"
              "    model.zero_grad()\n"
              "    loss.backward()\n"
              "    with no_grad():\n"
              "        for p in model.parameters():\n"
              "            p.data -= lr * p.grad\n"
              "    return loss\n")
    from tinygrad_edu import no_grad
    spaces: list[dict[str, Any]] = []
    for _ in range(2):
        namespace: dict[str, Any] = {"nn": nn, "losses": losses, "Tensor": Tensor, "no_grad": no_grad}
        exec(source, namespace)  # a notebook's globals, written out
        spaces.append(namespace)
    eager, compiled = spaces
    step = jit(compiled["train_step"])
    x, y = _data()
    for i in range(10):
        if i == 5:
            eager["lr"] = compiled["lr"] = 0.25   # a schedule outside the step: a new recording, then replays
        assert _same_bits(eager["train_step"](x, y).data, step(x, y).data)
    _assert_same_models(eager["model"], compiled["model"])
    assert len(step.traces) == 2 and step.replays >= 4


@pytest.mark.parametrize("layout", ["conv", "conv2", "conv2_relu"])
def test_nielsens_conv_networks_replay_bit_for_bit(layout: str) -> None:
    from tinygrad_edu import convnet

    def make() -> tuple[nn.Module, Callable[..., Tensor]]:
        model = convnet.build(layout, 0)
        optimizer = optim.SGD(model.parameters(), lr=convnet.SETTINGS[layout][0])

        def train_step(x: np.ndarray, labels: np.ndarray) -> Tensor:
            loss = losses.softmax_cross_entropy(model(Tensor(x)), labels)
            if layout == "conv2_relu":
                loss = loss + convnet.l2_penalty(model, 0.1, 5_000)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss
        return model, train_step
    eager, eager_step = make()
    model, step = make()
    step = jit(step)
    rng = np.random.default_rng(0)
    for _ in range(12):
        x, labels = rng.random((10, 1, 28, 28)), rng.integers(0, 10, 10)
        assert _same_bits(eager_step(x, labels).data, step(x, labels).data)
    _assert_same_models(eager, model)
    assert step.replays == 9
    assert "# conv2d: " in step.source and "# max_pool2d: " in step.source


def test_a_check_the_engine_makes_is_made_again_at_every_replay() -> None:
    # softmax_cross_entropy checks that each target row sums to 1 (np.allclose): a replay checks it too, and a
    # target that fails runs the step eagerly, which raises the loss's own message
    model = nn.MLP([4, 3], rng=0, output_activation=None)
    optimizer = optim.SGD(model.parameters(), lr=0.5)

    @jit
    def train_step(x: np.ndarray, target: np.ndarray) -> Tensor:
        loss = losses.softmax_cross_entropy(model(Tensor(x)), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    x = np.random.default_rng(0).standard_normal((5, 4))
    target = np.eye(3)[[0, 1, 2, 1, 0]]
    for _ in range(4):
        train_step(x, target)
    assert train_step.replays == 1 and "np.allclose(" in train_step.source
    with pytest.raises(ValueError, match="each target row must be a probability distribution"):
        train_step(x, target * 2)
    assert train_step.eager_calls == 4
