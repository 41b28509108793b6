"""The engine's regularisation: the L2 penalty helper (both conventions) and how it relates to weight_decay."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_edu import Tensor, losses, nn, optim
from tinygrad_edu.manual import network2, regularization


def test_l2_penalty_sums_the_weights_only_with_either_n() -> None:
    model = nn.MLP([3, 4, 2], rng=0)
    weights = [p.data for name, p in model.named_parameters() if name.endswith("weight")]
    squares = sum(float(np.sum(w * w)) for w in weights)
    assert losses.l2_penalty(model, 5.0, 50_000).item() == pytest.approx(5.0 / 100_000 * squares, rel=1e-14)
    penalty = losses.l2_penalty(model.named_parameters(), 0.7, 7)
    penalty.backward()
    for name, p in model.named_parameters():
        if name.endswith("weight"):
            np.testing.assert_allclose(p.grad, 0.1 * p.data, rtol=1e-14)
        else:
            assert p.grad is None
    bare = [Tensor(np.ones((2, 2)), requires_grad=True), Tensor(np.ones(2), requires_grad=True)]
    assert losses.l2_penalty(bare, 1.0, 2).item() == 1.0        # unnamed: the matrix only
    assert losses.l2_penalty(model, 0.0, 10).item() == 0.0


def test_l2_penalty_refuses_bad_input() -> None:
    model = nn.MLP([2, 1], rng=0)
    with pytest.raises(ValueError, match=r"lmbda .* must be a number >= 0, got -1"):
        losses.l2_penalty(model, -1.0, 10)
    with pytest.raises(ValueError, match="n must be a positive count"):
        losses.l2_penalty(model, 1.0, 0)
    with pytest.raises(ValueError, match="found no weights"):
        losses.l2_penalty({"bias": Tensor(np.ones(2), requires_grad=True)}, 1.0, 1)


def test_nielsens_weight_decay_is_the_penalty_and_weight_decay_on_the_weights() -> None:
    """w <- (1 - lr lmbda / n) w - lr dC0/dw three ways: by hand, the penalty in the loss, weight_decay."""
    rng = np.random.default_rng(3)
    x, y = rng.random((8, 5)), np.eye(3)[rng.integers(0, 3, 8)]
    net = network2.Network([5, 4, 3], rng=1)
    start = network2.params_of(net)
    net.update_mini_batch_l2(x.T, y.T, eta=0.5, lmbda=5.0, n=100)

    def engine() -> nn.MLP:
        model = nn.MLP([5, 4, 3], rng=0)
        model.load_state_dict({"layers.0.weight": start["w0"].T.copy(), "layers.0.bias": start["b0"].ravel().copy(),
                               "layers.2.weight": start["w1"].T.copy(), "layers.2.bias": start["b1"].ravel().copy()})
        return model

    penalised = engine()
    optimizer = optim.SGD(penalised.parameters(), lr=0.5)
    (losses.sigmoid_cross_entropy(penalised(x), y) + losses.l2_penalty(penalised, 5.0, 100)).backward()
    optimizer.step()
    decayed = engine()
    named = decayed.named_parameters()
    weights = optim.SGD([p for name, p in named if name.endswith("weight")], lr=0.5, weight_decay=5.0 / 100)
    biases = optim.SGD([p for name, p in named if name.endswith("bias")], lr=0.5)
    losses.sigmoid_cross_entropy(decayed(x), y).backward()
    weights.step()
    biases.step()
    for model in (penalised, decayed):
        state = model.state_dict()
        np.testing.assert_allclose(state["layers.0.weight"], net.weights[0].T, rtol=0, atol=1e-14)
        np.testing.assert_allclose(state["layers.2.bias"], net.biases[1].ravel(), rtol=0, atol=1e-14)


def test_the_courses_penalty_is_lambda_over_2m() -> None:
    rng = np.random.default_rng(4)
    params = regularization.initialize_parameters([2, 5, 3, 1])
    X, Y = rng.standard_normal((2, 11)), (rng.random((1, 11)) > 0.5).astype(float)
    value, _ = regularization.gradients_l2(params, X, Y, lambd=0.7)
    tensors = {k: Tensor(v, requires_grad=True) for k, v in params.items()}
    a1 = (tensors["W1"] @ X + tensors["b1"]).relu()
    a2 = (tensors["W2"] @ a1 + tensors["b2"]).relu()
    cost = losses.binary_cross_entropy((tensors["W3"] @ a2 + tensors["b3"]).sigmoid().T, Y.T)  # rows: examples
    total = cost + losses.l2_penalty([tensors["W1"], tensors["W2"], tensors["W3"]], 0.7, 11)  # the weights, m = 11
    assert total.item() == pytest.approx(value, rel=1e-12)


# -- dropout ------------------------------------------------------------------------------------------------

def test_dropout_drops_scales_and_backpropagates_through_its_mask() -> None:
    layer = nn.Dropout(0.25, rng=7)
    x = Tensor(np.random.default_rng(0).standard_normal((200, 50)), requires_grad=True)
    out = layer(x)
    u = np.random.default_rng(1).standard_normal(x.shape)
    (out * u).sum().backward()
    mask = layer.mask
    assert set(np.unique(mask)) == {0.0, 1.0} and abs(mask.mean() - 0.75) < 0.02
    np.testing.assert_array_equal(out.data, x.data * (mask / 0.75))
    np.testing.assert_array_equal(x.grad, u * (mask / 0.75))
    again = nn.Dropout(0.25, rng=7)
    again(x.data)
    np.testing.assert_array_equal(again.mask, mask)                     # the same seed, the same mask
    assert repr(layer) == "Dropout(p=0.25)"
    assert np.array_equal(nn.Dropout(0.0, rng=0)(x.data).data, x.data)  # p = 0 drops nothing


@pytest.mark.filterwarnings("ignore:Dropout. p=0.86:tinygrad_edu.diagnostics.LearnerWarning")  # a large p on purpose
def test_dropouts_gradient_given_its_mask_equals_pytorchs() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x, u = rng.standard_normal((6, 9)), rng.standard_normal((6, 9))
    for p in (0.1, 0.5, 0.86):
        layer = nn.Dropout(p, rng=3)
        t = Tensor(x, requires_grad=True)
        (layer(t) * u).sum().backward()
        # torch's own dropout draws its own mask: read it from its output, then compare the rule given that mask
        torch.manual_seed(0)
        xt = torch.tensor(x, requires_grad=True)
        yt = torch.nn.functional.dropout(xt, p=p, training=True)
        (yt * torch.tensor(u)).sum().backward()
        torch_mask = (yt.detach().numpy() != 0).astype(float)
        np.testing.assert_allclose(yt.detach().numpy(), x * torch_mask / (1 - p), rtol=1e-15)
        np.testing.assert_allclose(xt.grad.numpy(), u * torch_mask / (1 - p), rtol=1e-15)
        # and ours, given the same mask, gives the same values and gradient
        t2 = Tensor(x, requires_grad=True)
        mine = nn.Dropout(p, rng=0)
        mine.rng = _FixedDraw(torch_mask, p)  # type: ignore[assignment]
        (mine(t2) * u).sum().backward()
        np.testing.assert_allclose(t2.grad, xt.grad.numpy(), rtol=1e-15, atol=0)
        assert t.grad is not None


class _FixedDraw:
    """Stands in for a Generator: random() returns uniforms that give exactly the wanted mask."""

    def __init__(self, mask: np.ndarray, p: float) -> None:
        self.values = np.where(mask == 1, (1 + p) / 2, p / 2)

    def random(self, shape: tuple[int, ...]) -> np.ndarray:
        assert shape == self.values.shape
        return self.values


def test_dropout_refuses_p_outside_0_1_and_names_it() -> None:
    for bad in (1.0, -0.1, 1.5, True, "0.5"):
        with pytest.raises(ValueError, match=r"^Dropout: p is the probability of dropping a unit .* \[0, 1\), got p="):
            nn.Dropout(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"MLP\(dropout=...\)"):
        nn.MLP([2, 1], dropout=1.0)


def test_dropout_refuses_the_courses_keep_prob_with_its_translation() -> None:
    for keep_prob, meant in ((0.86, "Dropout(0.14)"), (0.875, "Dropout(0.125)"), (1, "Dropout(0)"),
                             ("0.8", "Dropout(1 - keep_prob)")):
        with pytest.raises(TypeError) as error:
            nn.Dropout(keep_prob=keep_prob)
        assert str(error.value) == (f"Dropout takes p, the probability of dropping a unit (as in PyTorch), not the "
                                    f"course's keep_prob: keep_prob={keep_prob!r} is {meant}.")
    layer = nn.Dropout(0.25, keep_prob=None)
    assert layer.p == 0.25 and layer.mask is None   # no mask before the first training pass
    assert nn.Dropout().p == 0.5                    # PyTorch's default


def test_a_keep_prob_passed_as_p_is_a_learner_warning() -> None:
    import warnings

    from tinygrad_edu.diagnostics import LearnerWarning

    # a keep_prob passed as p drops most units: said once, with the p that was probably meant
    with pytest.warns(LearnerWarning, match=r"Dropout: p=0.8 drops 80% .* keep_prob = 0.8, that is p = 0.2\."):
        nn.Dropout(0.8)
    with pytest.warns(LearnerWarning, match=r"MLP\(dropout=...\): p=0.7 drops 70%"):
        nn.MLP([2, 2, 1], dropout=0.7)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LearnerWarning)
        nn.Dropout(0.5)
        nn.MLP([2, 2, 1], dropout=0.14)


def test_mlp_puts_dropout_after_hidden_layers_and_shares_its_generator() -> None:
    model = nn.MLP([4, 3, 3, 2], dropout=0.2, rng=0)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Linear", "Sigmoid", "Dropout", "Linear", "Sigmoid", "Dropout", "Linear", "Sigmoid"]
    drops = [layer for layer in model.layers if isinstance(layer, nn.Dropout)]
    assert drops[0].rng is drops[1].rng
    assert [name for name, _ in model.named_parameters()] == [
        "layers.0.weight", "layers.0.bias", "layers.3.weight", "layers.3.bias", "layers.6.weight", "layers.6.bias"]
    assert nn.MLP([4, 3, 2], rng=0).layers[2].__class__.__name__ == "Linear"   # no dropout: as before
