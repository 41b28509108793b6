"""Module's parameter walk, state dicts and files, Linear and its initialisers, Sequential and MLP."""

import os

import numpy as np
import pytest

from tinygrad_edu import Tensor, optim
from tinygrad_edu.nn import (
    INITIALISERS, MLP, Identity, Linear, LogSoftmax, Module, ReLU, Sequential, Sigmoid, Softmax, Tanh,
)


def _param(rng, shape):
    return Tensor(rng.standard_normal(shape), requires_grad=True)


class Block(Module):
    def __init__(self, rng):
        self.weight = _param(rng, (2, 2))
        self.bias = _param(rng, (2,))

    def forward(self, x):
        return x @ self.weight + self.bias


class Net(Module):
    def __init__(self):
        rng = np.random.default_rng(0)
        self.scale = Tensor(np.array(1.5), requires_grad=True)
        self.layers = [Block(rng), (_param(rng, (3,)), Block(rng))]
        self.blocks = {"head": Linear(2, 1, rng=rng), 3: _param(rng, (1,))}
        self.constant = Tensor(np.ones(2))  # no requires_grad: not a parameter
        self.count, self.label, self.array = 3, "net", np.ones(3)

    def forward(self, x):
        x = self.layers[1][1](self.layers[0](x)) * self.scale
        return self.blocks["head"](x)


EXPECTED_NAMES = [
    "scale", "layers.0.weight", "layers.0.bias", "layers.1.0", "layers.1.1.weight", "layers.1.1.bias",
    "blocks.head.weight", "blocks.head.bias", "blocks.3",
]


# -- the parameter walk -------------------------------------------------------------------------------------

def test_named_parameters_walks_attributes_lists_dicts_and_modules_in_definition_order():
    net = Net()
    named = net.named_parameters()
    assert [name for name, _ in named] == EXPECTED_NAMES
    tensors = dict(named)
    assert tensors["layers.1.1.bias"] is net.layers[1][1].bias
    assert tensors["blocks.head.weight"] is net.blocks["head"].weight
    assert tensors["blocks.3"] is net.blocks[3]
    assert [id(p) for p in net.parameters()] == [id(p) for _, p in named]


def test_namedtuple_fields_give_the_names():
    from collections import namedtuple

    class Pair(Module):
        def __init__(self):
            Weights = namedtuple("Weights", "w1 w2")
            self.weights = Weights(Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(3), requires_grad=True))

    assert [name for name, _ in Pair().named_parameters()] == ["weights.w1", "weights.w2"]


def test_a_tensor_or_module_reachable_twice_is_listed_once_under_its_first_name():
    net = Net()
    net.tied = net.layers[0].weight  # same tensor, second path
    net.again = [net.layers[0]]  # same module, second path
    names = [name for name, _ in net.named_parameters()]
    assert names == EXPECTED_NAMES
    modules = [name for name, _ in net.named_modules()]
    assert modules == ["", "layers.0", "layers.1.1", "blocks.head"]


def test_cycles_terminate():
    net = Net()
    net.me = net
    loop: list = []
    loop.append(loop)
    net.loop = loop
    child = net.layers[0]
    child.parent = net
    assert [name for name, _ in net.named_parameters()] == EXPECTED_NAMES
    assert "<cycle>" in repr(net)


def test_computed_tensors_cached_by_forward_are_not_parameters():
    class Caching(Module):
        def __init__(self):
            self.w = Tensor(np.ones((2, 2)), requires_grad=True)

        def forward(self, x):
            self.z = x @ self.w  # as the tutorials keep self.z1, self.a1 for their backward pass
            self.a = self.z.sigmoid()
            return self.a

    m = Caching()
    m(Tensor(np.ones((1, 2))))
    assert m.z.requires_grad
    assert [name for name, _ in m.named_parameters()] == ["w"]


def test_a_typo_in_an_attribute_name_raises():
    layer = Linear(2, 3, rng=0)
    with pytest.raises(AttributeError):
        layer.wieght  # noqa: B018


def test_zero_grad_clears_every_parameter():
    net = Net()
    net(Tensor(np.ones((4, 2)))).sum().backward()
    assert all(p.grad is not None for name, p in net.named_parameters() if name not in ("layers.1.0", "blocks.3"))
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_module_without_forward_explains():
    with pytest.raises(NotImplementedError, match="must define forward"):
        Module()(1)


def test_repr_draws_the_tree():
    inner = Sequential(Linear(3, 2, bias=False, rng=0), ReLU())
    outer = Sequential(inner, Softmax(axis=1))
    assert repr(outer) == (
        "Sequential(\n"
        "  (layers.0): Sequential(\n"
        "    (layers.0): Linear(in_features=3, out_features=2, bias=False)\n"
        "    (layers.1): ReLU()\n"
        "  )\n"
        "  (layers.1): Softmax(axis=1)\n"
        ")")


# -- state dicts --------------------------------------------------------------------------------------------

def _two_layers(seed, dtype=np.float64):
    return Sequential(Linear(4, 3, rng=seed, dtype=dtype), Linear(3, 2, rng=seed + 1, dtype=dtype))


def test_state_dict_is_a_copy_by_dotted_name():
    model = _two_layers(0)
    state = model.state_dict()
    assert list(state) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    np.testing.assert_array_equal(state["layers.0.weight"], model.layers[0].weight.data)
    state["layers.0.weight"][...] = 0.0
    assert not np.all(model.layers[0].weight.data == 0.0)


def test_state_dict_round_trip_gives_the_same_values_and_outputs():
    source, target = _two_layers(0), _two_layers(10)
    x = np.random.default_rng(1).standard_normal((5, 4))
    assert not np.allclose(source(x).data, target(x).data)
    result = target.load_state_dict(source.state_dict())
    assert result.missing == [] and result.unexpected == []
    for (name, a), (_, b) in zip(source.named_parameters(), target.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
        assert a.data is not b.data
    np.testing.assert_array_equal(source(x).data, target(x).data)


def test_loading_stamps_the_change_so_a_stale_graph_refuses_backward():
    model = _two_layers(0)
    stale = model(Tensor(np.ones((2, 4)))).sum()
    model.load_state_dict(_two_layers(5).state_dict())
    with pytest.raises(RuntimeError, match=r"given new data \(t.data = ...\) after"):
        stale.backward()


def test_load_state_dict_reports_every_problem_at_once_and_changes_nothing():
    model = _two_layers(0)
    before = model.state_dict()
    state = model.state_dict()
    state["layers.0.weight"] = np.zeros((3, 4))
    del state["layers.1.bias"]
    state["layers.2.weight"] = np.zeros((2, 2))
    state["layers.0.bias"] = state["layers.0.bias"].astype(np.float32)
    state["layers.1.weight"] = state["layers.1.weight"].tolist()
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert message.startswith("load_state_dict: missing 'layers.1.bias'; unexpected 'layers.2.weight'; "
                              "'layers.0.weight' has shape (3, 4), the model expects (4, 3)")
    assert "transposed" in message
    assert "'layers.0.bias' has dtype float32, the model expects float64" in message
    assert "'layers.1.weight' is a list, the model expects a numpy array" in message
    assert "Nothing was loaded" in message
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.data, before[name])


def test_non_strict_load_skips_missing_and_unexpected_names_but_not_bad_shapes():
    model, other = _two_layers(0), _two_layers(7)
    state = other.state_dict()
    del state["layers.1.bias"]
    state["extra"] = np.zeros(1)
    result = model.load_state_dict(state, strict=False)
    assert result.missing == ["layers.1.bias"] and result.unexpected == ["extra"]
    np.testing.assert_array_equal(model.layers[1].weight.data, other.layers[1].weight.data)
    assert not np.array_equal(model.layers[1].bias.data, other.layers[1].bias.data)
    state["layers.0.bias"] = np.zeros(4)
    with pytest.raises(ValueError, match=r"'layers.0.bias' has shape \(4,\), the model expects \(3,\)"):
        model.load_state_dict(state, strict=False)


def test_load_state_dict_needs_a_mapping():
    with pytest.raises(TypeError, match="dict of name"):
        _two_layers(0).load_state_dict([np.zeros(3)])


# -- files --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_save_and_load_round_trip(tmp_path, dtype):
    path = tmp_path / "model.npz"
    source, target = _two_layers(0, dtype), _two_layers(3, dtype)
    source.save(path)
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(source.state_dict())
        np.testing.assert_array_equal(archive["layers.1.weight"], source.layers[1].weight.data)
    target.load(str(path))
    x = np.random.default_rng(2).standard_normal((3, 4))
    out_source, out_target = source(x).data, target(x).data
    assert out_target.dtype == dtype
    np.testing.assert_array_equal(out_source, out_target)
    assert os.listdir(tmp_path) == ["model.npz"]


def test_a_failed_save_leaves_the_previous_file_intact_and_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    first = _two_layers(0)
    first.save(path)
    saved_bytes = path.read_bytes()

    def broken_write(member, array, **kwargs):
        member.write(b"\x93NUMPY half an array")  # a partial write, then the failure
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", broken_write)
    with pytest.raises(OSError, match="disk full"):
        _two_layers(9).save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model.npz"]
    assert path.read_bytes() == saved_bytes
    restored = _two_layers(4)
    restored.load(path)
    for (name, a), (_, b) in zip(first.named_parameters(), restored.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_load_rejects_a_single_array_file(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match=r"not an \.npz archive"):
        _two_layers(0).load(path)


# -- Linear and the initialisers ----------------------------------------------------------------------------

def test_linear_layout_and_forward_match_numpy():
    layer = Linear(3, 2, rng=0)
    assert layer.weight.shape == (3, 2) and layer.bias.shape == (2,)
    assert (layer.weight.name, layer.bias.name) == ("weight", "bias")
    x = np.random.default_rng(1).standard_normal((5, 3))
    np.testing.assert_allclose(layer(Tensor(x)).data, x @ layer.weight.data + layer.bias.data, rtol=1e-15)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]


def test_normal_init_draws_weights_then_biases_from_the_given_seed():
    reference = np.random.default_rng(5)
    expected_w = reference.standard_normal((3, 2))
    expected_b = reference.standard_normal(2)
    layer = Linear(3, 2, rng=5)
    np.testing.assert_array_equal(layer.weight.data, expected_w)
    np.testing.assert_array_equal(layer.bias.data, expected_b)


def test_one_generator_feeds_successive_layers_and_seeds_reproduce():
    generator = np.random.default_rng(0)
    a, b = Linear(3, 3, rng=generator), Linear(3, 3, rng=generator)
    assert not np.array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(Linear(3, 3, rng=0).weight.data, a.weight.data)
    fresh_1, fresh_2 = Linear(3, 3), Linear(3, 3)
    assert not np.array_equal(fresh_1.weight.data, fresh_2.weight.data)


@pytest.mark.parametrize("init, expected_std", [
    ("normal", lambda fi, fo: 1.0),
    ("nielsen", lambda fi, fo: 1 / np.sqrt(fi)),
    ("xavier", lambda fi, fo: np.sqrt(2 / (fi + fo))),
    ("he", lambda fi, fo: np.sqrt(2 / fi)),
])
def test_initialiser_scales(init, expected_std):
    fan_in, fan_out = 400, 300
    layer = Linear(fan_in, fan_out, init=init, rng=1)
    w = layer.weight.data
    assert abs(w.mean()) < 0.01 * expected_std(fan_in, fan_out) * 5
    assert w.std() == pytest.approx(expected_std(fan_in, fan_out), rel=0.01)
    if init == "normal":
        assert layer.bias.data.std() == pytest.approx(1.0, rel=0.2)  # Nielsen's N(0, 1) biases
    else:
        np.testing.assert_array_equal(layer.bias.data, np.zeros(fan_out))
    if init == "xavier":  # uniform: bounded by sqrt(6 / (fan_in + fan_out))
        assert np.abs(w).max() <= np.sqrt(6 / (fan_in + fan_out))
        assert np.abs(w).max() > 0.99 * np.sqrt(6 / (fan_in + fan_out))
    assert INITIALISERS[init]((fan_in, fan_out), 1).shape == (fan_in, fan_out)


def test_zeros_init_for_logistic_regression():
    layer = Linear(5, 1, init="zeros", rng=0)
    np.testing.assert_array_equal(layer.weight.data, np.zeros((5, 1)))
    np.testing.assert_array_equal(layer.bias.data, np.zeros(1))


def test_callable_init_and_its_errors():
    layer = Linear(2, 3, init=lambda shape, rng: np.full(shape, 0.5), rng=0)
    np.testing.assert_array_equal(layer.weight.data, np.full((2, 3), 0.5))
    np.testing.assert_array_equal(layer.bias.data, np.zeros(3))
    with pytest.raises(ValueError, match=r"init returned shape \(3, 2\), expected \(2, 3\)"):
        Linear(2, 3, init=lambda shape, rng: np.zeros(shape[::-1]))
    with pytest.raises(ValueError, match="unknown init 'glorot'"):
        Linear(2, 3, init="glorot")
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        Linear(0, 3)
    with pytest.raises(TypeError, match="floating-point"):
        Linear(2, 3, dtype=np.int64)


def test_linear_without_bias():
    layer = Linear(2, 3, bias=False, rng=0)
    assert layer.bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    x = np.ones((1, 2))
    np.testing.assert_allclose(layer(x).data, x @ layer.weight.data)


def test_linear_explains_a_wrong_input_shape():
    layer = Linear(4, 2, rng=0)
    with pytest.raises(ValueError, match=r"input has shape \(4, 7\).*pass x.T"):
        layer(np.ones((4, 7)))
    with pytest.raises(ValueError, match=r"last axis must hold the 4 features"):
        layer(np.ones((3, 5)))


def test_float32_model_stays_float32_forward_and_backward():
    net = MLP([3, 5, 2], activation="tanh", output_activation=None, init="he", rng=0, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in net.parameters())
    out = net(np.random.default_rng(0).standard_normal((4, 3)))  # float64 data is cast on the way in
    assert out.dtype == np.float32
    out.sum().backward()
    assert all(p.grad.dtype == np.float32 for p in net.parameters())


# -- activations, Sequential, MLP ---------------------------------------------------------------------------

def test_activation_modules_match_numpy():
    z = np.random.default_rng(0).standard_normal((3, 4))
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    softmax = shifted / shifted.sum(axis=1, keepdims=True)
    cases = [
        (Sigmoid(), 1 / (1 + np.exp(-z))), (Tanh(), np.tanh(z)), (ReLU(), np.maximum(z, 0)),
        (Identity(), z), (Softmax(), softmax), (LogSoftmax(), np.log(softmax)),
        (Softmax(axis=0), np.exp(z) / np.exp(z).sum(axis=0, keepdims=True)),
    ]
    for module, expected in cases:
        np.testing.assert_allclose(module(Tensor(z)).data, expected, rtol=1e-12, err_msg=repr(module))


def test_sequential_applies_layers_in_order_and_checks_its_arguments():
    net = Sequential(Linear(2, 3, rng=0), Tanh(), Linear(3, 1, rng=1))
    x = np.random.default_rng(2).standard_normal((4, 2))
    w1, b1, w2, b2 = (p.data for p in net.parameters())
    np.testing.assert_allclose(net(x).data, np.tanh(x @ w1 + b1) @ w2 + b2, rtol=1e-13)
    assert len(net) == 3 and isinstance(net[1], Tanh) and list(net)[2] is net.layers[2]
    with pytest.raises(TypeError, match="argument 1 is a ufunc, not a Module"):
        Sequential(Linear(2, 2), np.tanh)


def test_mlp_structure_and_output_activation():
    net = MLP([2, 4, 3, 1], activation="tanh", output_activation="sigmoid", rng=0)
    assert [type(m).__name__ for m in net.layers] == ["Linear", "Tanh", "Linear", "Tanh", "Linear", "Sigmoid"]
    assert [name for name, _ in net.named_parameters()] == [
        "layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias", "layers.4.weight",
        "layers.4.bias"]
    same = MLP([2, 4, 1], activation="relu", rng=0)
    assert [type(m).__name__ for m in same.layers] == ["Linear", "ReLU", "Linear", "ReLU"]
    logits = MLP([2, 4, 1], output_activation=None, rng=0)
    assert [type(m).__name__ for m in logits.layers] == ["Linear", "Sigmoid", "Linear"]
    from_class = MLP([2, 4, 1], activation=Tanh, rng=0)
    assert from_class.layers[1] is not from_class.layers[3]
    shared = Tanh()
    from_instance = MLP([2, 4, 1], activation=shared, rng=0)
    assert from_instance.layers[1] is shared and from_instance.layers[3] is shared
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        MLP([2, 1], activation="swish")
    with pytest.raises(ValueError, match="at least the input and output sizes"):
        MLP([5])


def test_mlp_forward_matches_numpy():
    net = MLP([3, 4, 2], rng=3)
    w1, b1, w2, b2 = (p.data for p in net.parameters())
    x = np.random.default_rng(4).standard_normal((6, 3))

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    np.testing.assert_allclose(net(Tensor(x)).data, sigmoid(sigmoid(x @ w1 + b1) @ w2 + b2), rtol=1e-13)


def test_a_parameter_made_from_a_computation_without_recording_is_a_leaf_and_is_found() -> None:
    class Scaled(Module):
        def __init__(self) -> None:
            self.w = (Tensor(np.ones((2, 2))) * 0.01).requires_grad_()  # no input needed grad: no graph

        def forward(self, x: Tensor) -> Tensor:
            return x @ self.w

    model = Scaled()
    assert model.w.is_leaf and model.w.op is not None
    assert [name for name, _ in model.named_parameters()] == ["w"]
    optim.SGD(model.parameters(), lr=0.1)  # accepted as a leaf
