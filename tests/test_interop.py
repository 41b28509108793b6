"""to_torch / from_torch: the same network on both sides, outputs and gradients equal on MNIST batches."""

from __future__ import annotations

import re
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
        other = b[1][name.removeprefix("layers.")] if torch_side else b[1][name]
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
    with pytest.raises(TypeError, match=r"from_torch: 1 is a Dropout.*supported: Linear"):
        from_torch(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Dropout(0.5)))

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
