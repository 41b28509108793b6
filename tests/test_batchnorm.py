"""nn.BatchNorm1d and nn.batch_norm: the stages in the graph, both hand derivations, the running statistics as
buffers, the modes, the bad-input messages, and the layer in MLP, fit and checkpoints.

PyTorch's BatchNorm1d is the reference where torch is installed (tests/test_torch_crosscheck.py style: skipped
cleanly without it); tinygrad_edu.manual.batchnorm, derived by hand, is the reference everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_edu import Tensor, datasets, gradcheck, grad, losses, nn, optim
from tinygrad_edu.autograd import toposort
from tinygrad_edu.manual import batchnorm as manual
from tinygrad_edu.train import evaluate, fit

STAGES = {"mean": "mean", "centred": "sub", "squared": "pow", "variance": "mean", "var_eps": "add",
          "inv_std": "pow", "x_hat": "mul", "scaled": "mul", "out": "add"}


def case(rng: np.random.Generator, n: int = 8, c: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x with column means far from 0 and different spreads, gamma, beta, and a non-uniform upstream gradient."""
    x = rng.standard_normal((n, c)) * rng.uniform(0.5, 3.0, c) + 4 * rng.standard_normal(c)
    return x, rng.uniform(0.5, 1.5, c), rng.standard_normal(c), rng.standard_normal((n, c))


def layer_with(gamma: np.ndarray, beta: np.ndarray, **options: float) -> nn.BatchNorm1d:
    layer = nn.BatchNorm1d(len(gamma), **options)
    layer.weight.data, layer.bias.data = gamma.copy(), beta.copy()
    return layer


def engine_gradients(layer: nn.BatchNorm1d, x: np.ndarray, d_out: np.ndarray) -> tuple[Tensor, dict]:
    xt = Tensor(x.copy(), requires_grad=True, name="x")
    out = layer(xt)
    out.backward(d_out)
    return out, {"x": xt.grad, "gamma": layer.weight.grad, "beta": layer.bias.grad}


def norm(model: nn.Sequential, index: int = 1) -> nn.BatchNorm1d:
    """The batch-norm layer at ``model.layers[index]``."""
    layer = model.layers[index]
    assert isinstance(layer, nn.BatchNorm1d)
    return layer


def assert_close(ours: dict, expected: dict, tol: float = 1e-10) -> None:
    for name in ("x", "gamma", "beta"):
        scale = max(float(np.max(np.abs(expected[name]))), 1e-300)
        error = float(np.max(np.abs(ours[name] - expected[name]))) / scale
        assert error <= tol, f"{name}: relative error {error:.2e}"


# -- the graph and the hand derivations ---------------------------------------------------------------------

def test_every_stage_is_a_named_node_of_the_graph() -> None:
    x, gamma, beta, _ = case(np.random.default_rng(0))
    out = layer_with(gamma, beta)(Tensor(x, requires_grad=True, name="x"))
    named = {t.name: t.op.name for t in toposort([out], all_parents=True) if t.op is not None}
    assert named == STAGES
    eval_out = layer_with(gamma, beta).eval()(Tensor(x, requires_grad=True, name="x"))
    nodes = toposort([eval_out], all_parents=True)
    # eval mode: the statistics are constants, so inv_std is a leaf computed from running_var alone
    assert {t.name for t in nodes if not t.parents} == {"x", "running_mean", "inv_std", "weight", "bias"}
    assert {t.name for t in nodes if t.parents} == {"centred", "x_hat", "scaled", "out"}


def test_both_hand_derivations_agree_with_the_engine() -> None:
    x, gamma, beta, d_out = case(np.random.default_rng(1), n=16, c=5)
    _, engine = engine_gradients(layer_with(gamma, beta), x, d_out)
    _, cache = manual.forward(x, gamma, beta)
    for backward in (manual.backward_staged, manual.backward_closed, manual.backward_one_pass):
        assert_close(backward(d_out, cache), engine)


def test_every_stage_gradient_agrees_with_the_staged_derivation() -> None:
    x, gamma, beta, d_out = case(np.random.default_rng(2))
    out = layer_with(gamma, beta)(Tensor(x, requires_grad=True, name="x"))
    nodes = {t.name: t for t in toposort([out], all_parents=True) if t.op is not None}
    names = [name for name in STAGES if name != "out"]
    engine = dict(zip(names, grad(out, [nodes[name] for name in names], grad_outputs=d_out)))
    by_hand = manual.backward_nodes(d_out, manual.forward(x, gamma, beta)[1])
    for name in names:
        scale = float(np.max(np.abs(by_hand[name])))
        assert float(np.max(np.abs(engine[name] - by_hand[name]))) <= 1e-10 * scale, name


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 7), c=st.integers(1, 4), seed=st.integers(0, 2**16), eps=st.sampled_from([1e-5, 0.1]))
def test_closed_form_equals_the_engine_for_any_shape(n: int, c: int, seed: int, eps: float) -> None:
    x, gamma, beta, d_out = case(np.random.default_rng(seed), n, c)
    _, engine = engine_gradients(layer_with(gamma, beta, eps=eps), x, d_out)
    _, cache = manual.forward(x, gamma, beta, eps)
    assert_close(manual.backward_closed(d_out, cache), engine, 1e-9)


@pytest.mark.parametrize("training", [True, False])
def test_central_differences(training: bool) -> None:
    rng = np.random.default_rng(3)
    x, gamma, beta, _ = case(rng, n=5, c=3)
    inputs = [Tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    if training:
        assert gradcheck(lambda *t: nn.batch_norm(*t), inputs)
    else:
        mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
        assert gradcheck(lambda x, g, b: nn.batch_norm(x, g, b, running_mean=mean, running_var=var), inputs)


# -- PyTorch -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_equals_pytorch_in_train_and_eval_mode(dtype: str) -> None:
    torch = pytest.importorskip("torch")
    tol = 1e-10 if dtype == "float64" else 1e-5
    rng = np.random.default_rng(4)
    ours = nn.BatchNorm1d(5, eps=1e-3, momentum=0.3, dtype=dtype)
    theirs = torch.nn.BatchNorm1d(5, eps=1e-3, momentum=0.3, dtype=getattr(torch, dtype))
    with torch.no_grad():
        ours.weight.data, ours.bias.data = rng.uniform(0.5, 1.5, 5).astype(dtype), rng.standard_normal(5).astype(dtype)
        theirs.weight.copy_(torch.from_numpy(ours.weight.data)), theirs.bias.copy_(torch.from_numpy(ours.bias.data))
    for step, (n, training) in enumerate([(7, True), (3, True), (12, True), (4, False), (1, False), (9, True)]):
        ours.train(training), theirs.train(training)
        x, _, _, d_out = case(rng, n, 5)
        x, d_out = x.astype(dtype), d_out.astype(dtype)
        ours.weight.grad = ours.bias.grad = None
        theirs.zero_grad()
        out, engine = engine_gradients(ours, x, d_out)
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        t_out = theirs(tx)
        t_out.backward(torch.from_numpy(d_out))
        reference = {"x": tx.grad.numpy(), "gamma": theirs.weight.grad.numpy(), "beta": theirs.bias.grad.numpy()}
        assert out.dtype == np.dtype(dtype)
        np.testing.assert_allclose(out.data, t_out.detach().numpy(), rtol=0, atol=tol * 10, err_msg=f"step {step}")
        assert_close(engine, reference, tol)
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(getattr(ours, name).data, getattr(theirs, name).numpy(), rtol=tol, atol=0,
                                       err_msg=f"{name} after step {step}")


def test_to_torch_and_from_torch_carry_the_buffers_and_the_mode() -> None:
    torch = pytest.importorskip("torch")
    from tinygrad_edu.interop import from_torch, to_torch

    model = nn.MLP([6, 4, 3], batchnorm=True, init="nielsen", rng=0)
    data = np.random.default_rng(5).standard_normal((10, 6))
    model(data)                                              # one train-mode batch moves the running statistics
    model.eval()
    there = to_torch(model)
    assert isinstance(there[1], torch.nn.BatchNorm1d) and not there[1].training
    np.testing.assert_array_equal(there[1].running_var.numpy(), norm(model).running_var.data)
    with torch.no_grad():
        np.testing.assert_allclose(there(torch.from_numpy(data)).numpy(), model(data).data, rtol=0, atol=1e-12)
    back = from_torch(there)
    assert isinstance(back, nn.Sequential)
    assert back.state_dict().keys() == model.state_dict().keys()
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name], value, err_msg=name)
    assert not norm(back).training
    norm(back).running_mean.data = np.zeros(4)            # copies: the torch model is not changed
    assert np.any(there[1].running_mean.numpy() != 0)
    with pytest.raises(ValueError, match="without track_running_stats=True"):
        from_torch(torch.nn.BatchNorm1d(3, track_running_stats=False))
    with pytest.raises(ValueError, match="momentum"):
        from_torch(torch.nn.BatchNorm1d(3, momentum=None))


# -- buffers, modes, saving ---------------------------------------------------------------------------------

def test_running_statistics_are_buffers_never_trained() -> None:
    model = nn.MLP([4, 3, 2], batchnorm=True, rng=0)
    assert [name for name, _ in model.named_buffers()] == ["layers.1.running_mean", "layers.1.running_var"]
    assert not any(isinstance(p, nn.Buffer) for p in model.parameters())
    assert {"layers.1.running_mean", "layers.1.running_var", "layers.1.weight"} <= set(model.state_dict())
    x = np.random.default_rng(6).standard_normal((8, 4))
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    expected = 0.9 * norm(model).running_var.data + 0.1 * (x @ model.parameters()[0].data).var(axis=0, ddof=1)
    losses.quadratic_cost(model(x), np.zeros((8, 2))).backward()
    optimizer.step()
    assert norm(model).running_var.grad is None           # changed by the forward pass only
    np.testing.assert_allclose(norm(model).running_var.data, expected, rtol=1e-13)


def test_eval_mode_uses_the_running_statistics_and_leaves_them() -> None:
    rng = np.random.default_rng(7)
    layer = nn.BatchNorm1d(3)
    for _ in range(5):
        layer(rng.standard_normal((6, 3)) * 2 + 1)
    layer.eval()
    mean, var = layer.running_mean.data.copy(), layer.running_var.data.copy()
    one = rng.standard_normal((1, 3))
    np.testing.assert_allclose(layer(one).data, (one - mean) / np.sqrt(var + 1e-5), rtol=1e-13)
    np.testing.assert_array_equal(layer.running_mean.data, mean)
    assert layer.train() is layer and layer.training


def test_save_load_and_a_checkpoint_keep_the_running_statistics(tmp_path) -> None:
    data = datasets.load_mnist()
    train = (data.train_x[:200], datasets.one_hot(data.train_y[:200]))
    model = nn.MLP([784, 16, 10], batchnorm=True, init="nielsen", rng=0)
    fit(model, losses.sigmoid_cross_entropy, optim.SGD(model.parameters(), lr=0.5), train, epochs=1,
        batch_size=20, rng=0, progress=False, checkpoint=tmp_path / "run.npz")
    saved = np.load(tmp_path / "run.npz", allow_pickle=False)
    np.testing.assert_array_equal(saved["model/layers.1.running_mean"], norm(model).running_mean.data)
    model.save(tmp_path / "model.npz")
    fresh = nn.MLP([784, 16, 10], batchnorm=True, rng=1)
    fresh.load(tmp_path / "model.npz")
    fresh.eval(), model.eval()
    np.testing.assert_array_equal(fresh(data.test_x[:5]).data, model(data.test_x[:5]).data)


def test_evaluate_uses_eval_mode_and_fit_trains_in_train_mode() -> None:
    data = datasets.load_mnist()
    model = nn.MLP([784, 8, 10], batchnorm=True, rng=0)
    model.eval()
    running = norm(model).running_mean.data.copy()
    history = fit(model, losses.sigmoid_cross_entropy, optim.SGD(model.parameters(), lr=0.5),
                  (data.train_x[:100], datasets.one_hot(data.train_y[:100])), epochs=1, batch_size=25, rng=0,
                  progress=False)
    assert model.training and not np.array_equal(norm(model).running_mean.data, running)
    running = norm(model).running_mean.data.copy()
    accuracy = evaluate(model, data.test_x[:300], data.test_y[:300])
    np.testing.assert_array_equal(norm(model).running_mean.data, running)   # the test data changed nothing
    assert model.training and all(m.training for _, m in model.named_modules())
    assert 0 <= accuracy <= 1 and len(history["loss"]) == 1


def test_a_float32_layer_takes_a_float64_array_in_its_own_dtype() -> None:
    layer = nn.BatchNorm1d(3, dtype=np.float32)
    x = np.random.default_rng(1).standard_normal((4, 3))                # numpy's default, float64
    for mode in ("train", "eval"):
        layer.train(mode == "train")
        assert layer(x).dtype == np.float32, mode


def test_fit_refuses_a_last_mini_batch_of_one_before_it_trains() -> None:
    data = datasets.load_mnist()
    model = nn.MLP([784, 4, 10], batchnorm=True, rng=0)
    before = [p.data.copy() for p in model.parameters()]
    train = (data.train_x[:21], datasets.one_hot(data.train_y[:21]))
    with pytest.raises(ValueError, match=r"^fit: 21 samples in mini-batches of 10 leave a last mini-batch of 1 "):
        fit(model, losses.sigmoid_cross_entropy, optim.SGD(model.parameters(), lr=0.5), train, epochs=1,
            batch_size=10, rng=0, progress=False)
    assert all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))   # nothing was trained
    for bad in (0, "10"):   # a batch size that is no count is named as such, not a ZeroDivisionError
        with pytest.raises(ValueError, match=f"^fit: batch_size must be a positive integer, got {bad!r}"):
            fit(model, losses.sigmoid_cross_entropy, optim.SGD(model.parameters(), lr=0.5), train, epochs=1,
                batch_size=bad, rng=0, progress=False)  # type: ignore[arg-type]
    fit(model, losses.sigmoid_cross_entropy, optim.SGD(model.parameters(), lr=0.5), train, epochs=1, batch_size=7,
        rng=0, progress=False)                                                           # 3 batches of 7: trains
    plain = nn.MLP([784, 4, 10], rng=0)                        # without batch norm a last batch of 1 is fine
    fit(plain, losses.sigmoid_cross_entropy, optim.SGD(plain.parameters(), lr=0.5), train, epochs=1, batch_size=10,
        rng=0, progress=False)


def test_evaluating_in_training_mode_by_hand_warns_once_and_eval_mode_does_not() -> None:
    import warnings

    from tinygrad_edu import no_grad
    from tinygrad_edu.diagnostics import LearnerWarning

    layer, x = nn.BatchNorm1d(3), np.random.default_rng(4).standard_normal((5, 3))

    def evaluate_by_hand() -> np.ndarray:
        with no_grad():
            return layer(x).data                         # the learner's line: warned about once

    with pytest.warns(LearnerWarning, match=r"BatchNorm1d\(3\): the model is in training mode.*model\.eval\(\)"):
        evaluate_by_hand()
    with warnings.catch_warnings():
        warnings.simplefilter("error", LearnerWarning)
        evaluate_by_hand()                               # once only
        layer(x).sum().backward()                        # training, with the graph recorded: no warning
        layer.eval()
        running = layer.running_mean.data.copy()
        evaluate_by_hand()
    np.testing.assert_array_equal(layer.running_mean.data, running)


# -- bad input ------------------------------------------------------------------------------------------------

def test_bad_input_messages() -> None:
    layer = nn.BatchNorm1d(4)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(4\): a batch of 1 in training mode.*more than one value "
                                         r"per feature.*model\.eval\(\)"):
        layer(np.ones((1, 4)))
    with pytest.raises(ValueError, match=r"the input has 3 features per sample \(shape \(5, 3\)\), but this layer "
                                         r"normalises 4"):
        layer(np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C\) = \(batch size, 4\).*\(4,\) \(1-D\)"):
        layer(np.ones(4))
    with pytest.raises(ValueError, match=r"\(N, C\).*\(2, 4, 3\) \(3-D\).*\(N, C, L\)"):
        layer(np.ones((2, 4, 3)))
    layer.eval()
    assert layer(np.ones((1, 4))).shape == (1, 4)               # one sample is fine on the running statistics
    refused: list[tuple[dict[str, Any], str]] = [
        ({"num_features": 0}, "positive integer"), ({"num_features": 3, "eps": 0}, "eps"),
        ({"num_features": 3, "momentum": 1.5}, "momentum"), ({"num_features": 3, "dtype": np.int64}, "floating-point")]
    for bad, match in refused:
        with pytest.raises((ValueError, TypeError), match=match):
            nn.BatchNorm1d(**bad)
    with pytest.raises(ValueError, match=r"weight and bias must be \(3,\)"):
        nn.batch_norm(np.ones((4, 3)), np.ones(2), np.zeros(2))
    with pytest.raises(ValueError, match="both running_mean and running_var"):
        nn.batch_norm(np.ones((4, 3)), np.ones(3), np.zeros(3), running_mean=np.zeros(3))


def test_mlp_with_batchnorm_and_repr() -> None:
    model = nn.MLP([784, 30, 20, 10], batchnorm=True, rng=0, dtype=np.float32)
    kinds = [type(m).__name__ for m in model.layers]
    assert kinds == ["Linear", "BatchNorm1d", "Sigmoid", "Linear", "BatchNorm1d", "Sigmoid", "Linear", "Sigmoid"]
    assert [name for name, _ in model.named_parameters() if name.endswith("bias")] == [
        "layers.1.bias", "layers.4.bias", "layers.6.bias"]                 # beta twice, the output layer's bias
    assert repr(model.layers[1]) == "BatchNorm1d(30, eps=1e-05, momentum=0.1, dtype=float32)"
    assert model(np.zeros((3, 784))).dtype == np.float32


# -- the twin and the command line --------------------------------------------------------------------------

def test_the_compare_table_twin_agrees_and_names_the_stages() -> None:
    from tinygrad_edu import tutorials

    result = tutorials.compare("batchnorm", steps=3)
    assert result.ok and result.worst < 1e-12, str(result)
    assert [row.name.split(" <- ")[1] for row in result.rows] == [
        "w1", "gamma1", "beta1", "w2", "gamma2", "beta2", "w3", "b3"]
    twin = tutorials.build("batchnorm")
    loss = twin.engine_loss(twin.model)
    names = {t.name for t in toposort([loss], all_parents=True)}
    assert {"z1", "z1_bn", "a1", "x_hat", "inv_std", "variance", "mean"} <= names


def test_train_batchnorm_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    from tinygrad_edu.cli import main

    args = ["train", "--batchnorm", "--sizes", "784,20,10", "--epochs", "1", "--limit", "1000", "--batch-size", "20",
            "--lr", "0.5", "--cost", "cross_entropy", "--init", "nielsen", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith(", batch norm after each hidden linear layer")
    assert int(out.split("Epoch 0: ")[1].split(" / ")[0]) > 7000      # of 10000 test images; chance is 1000
    assert main(["train", "--batchnorm", "--limit", "1001", "--batch-size", "10"]) == 2
    assert "leave a last mini-batch of 1 image" in capsys.readouterr().err
