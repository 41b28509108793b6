"""to_torch / from_torch: the same network on both sides, outputs and gradients equal on MNIST batches."""

from __future__ import annotations

import re
import sys
from typing import Any

import numpy as np
import pytest

from tinygrad_edu import Tensor, datasets, losses, nn
from tinygrad_edu.interop import from_torch, to_torch

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def batches() -> list[tuple[np.ndarray, np.ndarray]]:
    data = datasets.load_mnist()
    rng = np.random.default_rng(0)
    picks = [rng.choice(len(data.train_x), size=32, replace=False) for _ in range(3)]
    return [(data.train_x[i], datasets.one_hot(data.train_y[i])) for i in picks]


def every_layer(rng: int = 0) -> nn.Sequential:
    """Each layer kind interop knows, in one float64 network 784-30-20-16-10."""
    return nn.Sequential(nn.Linear(784, 30, init="xavier", rng=rng), nn.Tanh(),
                         nn.Linear(30, 20, rng=rng + 1), nn.Sigmoid(),
                         nn.Linear(20, 16, init="he", rng=rng + 2), nn.ReLU(),
                         nn.Linear(16, 10, bias=False, rng=rng + 3), nn.Identity(), nn.LogSoftmax(axis=1))


def ours(model: nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    model.zero_grad()
    out = model(Tensor(x))
    losses.nll_loss(out, y.argmax(axis=1)).backward()
    return out.data, {name: p.grad for name, p in model.named_parameters()}


def theirs(module: Any, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    module.zero_grad()
    out = module(torch.from_numpy(x))
    torch.nn.functional.nll_loss(out, torch.from_numpy(y.argmax(axis=1))).backward()
    return out.detach().numpy(), {name: p.grad.numpy() for name, p in module.named_parameters()}


def assert_same(a: tuple[np.ndarray, dict[str, np.ndarray]], b: tuple[np.ndarray, dict[str, np.ndarray]],
                torch_side: bool) -> None:
    """Outputs and every gradient within 1e-12; b's gradients in PyTorch's names and layout if torch_side."""
    np.testing.assert_allclose(a[0], b[0], rtol=0, atol=1e-12)
    assert len(a[1]) == len(b[1])
    for name, g in a[1].items():
        other = b[1][name.replace("layers.", "")] if torch_side else b[1][name]  # layers.0.weight is 0.weight
        np.testing.assert_allclose(g, other.T if torch_side and g.ndim == 2 else other, rtol=0, atol=1e-12)
        assert np.max(np.abs(g)) > 0, name   # a gradient that is all zeros would prove nothing


def test_to_torch_gives_the_same_outputs_and_gradients(batches: list) -> None:
    model = every_layer()
    module = to_torch(model)
    assert isinstance(module, torch.nn.Sequential) and len(module) == len(model)
    assert [type(m).__name__ for m in module] == [type(m).__name__ for m in model]
    assert module[0].weight.dtype == torch.float64 and module[0].weight.shape == (30, 784)
    assert module[6].bias is None and module[8].dim == 1
    for x, y in batches:
        assert_same(ours(model, x, y), theirs(module, x, y), torch_side=True)


def test_the_round_trip_gives_the_same_network(batches: list) -> None:
    model = every_layer(5)
    back = from_torch(to_torch(model))
    assert isinstance(back, nn.Sequential) and str(back) == str(model)
    for x, y in batches:
        assert_same(ours(model, x, y), ours(back, x, y), torch_side=False)
    assert isinstance(back.layers[0], nn.Linear) and isinstance(model.layers[0], nn.Linear)
    back.layers[0].weight.data += 1.0   # copies, not shared memory
    assert not np.array_equal(back.layers[0].weight.data, model.layers[0].weight.data)


def test_a_model_trained_in_torch_comes_back(batches: list) -> None:
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(784, 30), torch.nn.Sigmoid(), torch.nn.Linear(30, 10),
                                 torch.nn.LogSoftmax(dim=1)).double()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
    for x, y in batches:   # a few steps, so the weights are not torch's initial ones
        optimizer.zero_grad()
        torch.nn.functional.nll_loss(module(torch.from_numpy(x)), torch.from_numpy(y.argmax(axis=1))).backward()
        optimizer.step()
    model = from_torch(module)
    assert [name for name, _ in model.named_parameters()] == \
        [f"layers.{name}" for name, _ in module.named_parameters()]
    for x, y in batches:
        assert_same(ours(model, x, y), theirs(module, x, y), torch_side=True)


def test_an_mlp_in_float32_keeps_its_dtype(batches: list) -> None:
    model = nn.MLP([784, 16, 10], activation="relu", output_activation="softmax", rng=0, dtype=np.float32)
    module = to_torch(model)
    assert module[0].weight.dtype == torch.float32
    back = from_torch(module)
    assert isinstance(back, nn.Sequential) and isinstance(back.layers[0], nn.Linear)
    assert back.layers[0].weight.dtype == np.float32
    x = batches[0][0].astype(np.float32)
    np.testing.assert_allclose(model(x).data, module(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model(x).data, back(x).data)


def test_one_layer_becomes_a_sequential_and_back() -> None:
    layer = nn.Linear(3, 2, rng=0)
    module = to_torch(layer)
    assert isinstance(module, torch.nn.Sequential) and isinstance(module[0], torch.nn.Linear)
    back = from_torch(module[0])
    assert isinstance(back, nn.Linear)
    np.testing.assert_array_equal(back.weight.data, layer.weight.data)


def test_an_unsupported_layer_is_named() -> None:
    with pytest.raises(TypeError, match=r"from_torch: 1 is a GELU.*supported: Linear"):
        from_torch(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.GELU()))

    class Square(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return x * x

    with pytest.raises(TypeError, match=r"to_torch: layers.1 is a Square"):
        to_torch(nn.Sequential(nn.Linear(3, 2), Square()))
    with pytest.raises(ValueError, match="without dim"):
        from_torch(torch.nn.Softmax())


def convnet_layers(rng: int = 0) -> nn.Sequential:
    """Every conv layer kind interop knows: conv (stride, padding, no bias), both pools, flatten, linear."""
    return nn.Sequential(nn.Conv2d(1, 4, 5, stride=1, padding=2, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, (3, 2), stride=(2, 1), bias=False, init="he", rng=rng + 1), nn.Tanh(),
                         nn.AvgPool2d(2, stride=1), nn.Flatten(), nn.Linear(6 * 5 * 12, 10, init="xavier", rng=rng),
                         nn.LogSoftmax(axis=1))


def test_a_conv_net_crosses_over_with_the_same_outputs_and_gradients(batches: list) -> None:
    model = convnet_layers()
    module = to_torch(model)
    assert [type(m).__name__ for m in module] == [type(m).__name__ for m in model]
    assert module[3].stride == (2, 1) and module[3].bias is None and module[0].padding == (2, 2)
    for x, y in batches[:2]:
        images = x.reshape(-1, 1, 28, 28)
        mine, other = ours(model, images, y), theirs(module, images, y)
        np.testing.assert_allclose(mine[0], other[0], rtol=0, atol=1e-12)
        for name, g in mine[1].items():   # conv weights in the same layout; the Linear one transposed
            expected = other[1][name.removeprefix("layers.")]
            np.testing.assert_allclose(g, expected.T if g.ndim == 2 else expected, rtol=0, atol=1e-12)
    back = from_torch(module)
    assert str(back) == str(model)
    images, y = batches[2][0].reshape(-1, 1, 28, 28), batches[2][1]
    np.testing.assert_array_equal(ours(back, images, y)[0], ours(model, images, y)[0])


def test_torch_conv_options_this_engine_lacks_are_refused_by_name() -> None:
    for layer, words in [(torch.nn.Conv2d(1, 2, 3, dilation=2), "dilation=(2, 2)"),
                         (torch.nn.Conv2d(2, 2, 3, groups=2), "groups=2"),
                         (torch.nn.Conv2d(1, 2, 3, padding="same"), "padding='same'"),
                         (torch.nn.MaxPool2d(2, ceil_mode=True), "ceil_mode=True"),
                         (torch.nn.AvgPool2d(2, padding=1), "padding=1")]:
        with pytest.raises(ValueError, match=re.escape(words)):
            from_torch(layer)
    valid = from_torch(torch.nn.Conv2d(1, 2, 3, padding="valid").double())
    assert isinstance(valid, nn.Conv2d) and valid.padding == (0, 0)
# -- what crosses over and what is refused, word for word ---------------------------------------------------------

def state_equal(a: nn.Module, b: nn.Module) -> bool:
    first, second = a.state_dict(), b.state_dict()
    return list(first) == list(second) and all(np.array_equal(first[k], second[k]) for k in first)


def test_a_nested_sequential_crosses_over_as_a_nested_sequential(batches: list) -> None:
    model = nn.Sequential(nn.Sequential(nn.Linear(784, 12, rng=0), nn.Tanh()), nn.Linear(12, 10, rng=1),
                          nn.LogSoftmax(axis=1))
    module = to_torch(model)
    assert isinstance(module[0], torch.nn.Sequential) and isinstance(module[0][0], torch.nn.Linear)
    assert [name for name, _ in module.named_parameters()] == ["0.0.weight", "0.0.bias", "1.weight", "1.bias"]
    for x, y in batches[:1]:
        assert_same(ours(model, x, y), theirs(module, x, y), torch_side=True)
    back = from_torch(module)
    assert str(back) == str(model) and isinstance(back, nn.Sequential) and isinstance(back.layers[0], nn.Sequential)
    assert state_equal(back, model)

    class Square(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return x * x

    with pytest.raises(TypeError) as error:
        to_torch(nn.Sequential(nn.Sequential(nn.Linear(2, 2), Square())))
    supported = ("Linear, BatchNorm1d, Conv2d, MaxPool2d, AvgPool2d, Flatten, Dropout, Sigmoid, Tanh, ReLU, "
                 "Identity, Softmax, LogSoftmax and Sequential (or MLP).")
    assert str(error.value) == ("to_torch: layers.0.layers.1 is a Square, which has no PyTorch counterpart here; "
                                "supported: " + supported)
    with pytest.raises(TypeError) as error:
        from_torch(torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.GELU())))
    assert str(error.value) == "from_torch: 0.1 is a GELU, which this engine does not have; supported: " + supported


def test_dropout_crosses_over_with_its_p_and_mode() -> None:
    model = nn.MLP([6, 5, 3], activation="relu", dropout=0.25, rng=0)
    module = to_torch(model)
    drops = [m for m in module.modules() if isinstance(m, torch.nn.Dropout)]
    assert [d.p for d in drops] == [0.25] and all(d.training for d in drops)
    assert not next(m for m in to_torch(model.eval()).modules() if isinstance(m, torch.nn.Dropout)).training
    x = np.random.default_rng(1).normal(size=(4, 6))
    with torch.no_grad():  # in evaluation mode both sides pass the input through: the same outputs
        np.testing.assert_allclose(to_torch(model).double()(torch.from_numpy(x)).numpy(), model(x).data,
                                   rtol=0, atol=1e-12)
    back = from_torch(torch.nn.Dropout(0.3).eval())
    assert isinstance(back, nn.Dropout) and back.p == 0.3 and not back.training


def test_only_float64_and_float32_cross_over() -> None:
    with pytest.raises(TypeError) as error:
        to_torch(nn.Sequential(nn.Tanh(), nn.Linear(3, 2, dtype=np.float16)))
    assert str(error.value) == ("to_torch: layers.1 (Linear) holds float16 weights; only float64 and float32 cross "
                                "over.")
    with pytest.raises(TypeError) as error:
        to_torch(nn.Linear(3, 2, dtype=np.float16))
    assert str(error.value) == "to_torch: model (Linear) holds float16 weights; only float64 and float32 cross over."
    with pytest.raises(TypeError) as error:
        from_torch(torch.nn.Sequential(torch.nn.Linear(3, 2)).half())
    assert str(error.value) == ("from_torch: 0 (Linear) holds float16 weights; convert the model with .double() or "
                                ".float() first.")
    with pytest.raises(TypeError, match=r"^from_torch: module \(Linear\) holds bfloat16"):
        from_torch(torch.nn.Linear(3, 2).to(torch.bfloat16))
    for dtype, torch_dtype in [(np.float32, torch.float32), (np.float64, torch.float64)]:
        layer = nn.Linear(3, 2, bias=False, rng=0, dtype=dtype)
        module = to_torch(layer)
        assert module[0].weight.dtype == torch_dtype and module[0].bias is None
        back = from_torch(module)
        assert isinstance(back, nn.Sequential) and list(back.state_dict()) == ["layers.0.weight"]  # no bias
        assert back.state_dict()["layers.0.weight"].dtype == dtype


def test_without_torch_the_message_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails as where it is not installed
    for function, argument in [(to_torch, nn.Linear(2, 2)), (from_torch, None)]:
        with pytest.raises(ImportError) as error:
            function(argument)
        assert str(error.value) == ("tinygrad_edu.interop needs PyTorch, which is optional: pip install "
                                    "'tinygrad_edu[torch]'")
        assert error.value.__cause__ is None and error.value.__suppress_context__  # no chained traceback


def test_activations_keep_their_axis_and_only_exact_classes_cross_over() -> None:
    module = to_torch(nn.Sequential(nn.Softmax(axis=0), nn.LogSoftmax(axis=1), nn.ReLU(), nn.Identity()))
    assert [type(m).__name__ for m in module] == ["Softmax", "LogSoftmax", "ReLU", "Identity"]
    assert module[0].dim == 0 and module[1].dim == 1
    back = from_torch(torch.nn.Sequential(torch.nn.Softmax(dim=0), torch.nn.LogSoftmax(dim=1), torch.nn.Sigmoid()))
    assert isinstance(back, nn.Sequential) and isinstance(back.layers[1], nn.LogSoftmax)
    assert isinstance(back.layers[0], nn.Softmax) and back.layers[0].axis == 0 and back.layers[1].axis == 1
    assert type(back.layers[2]) is nn.Sigmoid
    assert type(from_torch(torch.nn.Tanh())) is nn.Tanh  # one layer comes back as one layer

    class MyTanh(nn.Tanh):
        pass

    class MySoftmax(nn.Softmax):
        pass

    torch_tanh = type("TorchTanh", (torch.nn.Tanh,), {})  # subclasses of PyTorch's classes
    torch_linear = type("TorchLinear", (torch.nn.Linear,), {})
    for layer, kind in [(MyTanh(), "MyTanh"), (MySoftmax(axis=1), "MySoftmax")]:
        with pytest.raises(TypeError, match=f"^to_torch: model is a {kind}, which has no PyTorch counterpart"):
            to_torch(layer)
    for module, kind in [(torch_tanh(), "TorchTanh"), (torch_linear(2, 2), "TorchLinear")]:
        with pytest.raises(TypeError, match=f"^from_torch: module is a {kind}, which this engine does not have"):
            from_torch(module)
    with pytest.raises(ValueError) as error:
        from_torch(torch.nn.Sequential(torch.nn.LogSoftmax()))
    assert str(error.value) == "from_torch: 0 is a LogSoftmax without dim; give it one, e.g. LogSoftmax(dim=1)."


def test_weights_are_copied_both_ways() -> None:
    layer = nn.Linear(3, 2, rng=0)
    module = to_torch(layer)
    with torch.no_grad():
        module[0].weight += 1.0
        module[0].bias += 1.0
    np.testing.assert_array_equal(layer.weight.data + 1.0, module[0].weight.detach().numpy().T)
    back = from_torch(module[0])
    assert isinstance(back, nn.Linear) and back.bias is not None and isinstance(layer.bias, Tensor)
    with torch.no_grad():
        module[0].weight *= 0.0
        module[0].bias *= 0.0
    assert np.all(back.weight.data != 0) and np.all(back.bias.data != 0)
