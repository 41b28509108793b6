"""Every engine twin reproduces its hand-derived reference; compare() notices when one does not."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_edu import tutorials


@pytest.mark.parametrize("key", list(tutorials.TUTORIALS))
def test_twin_gradients_and_steps_match_the_hand_derived_reference(key: str) -> None:
    result = tutorials.compare(key, steps=3)
    assert result.ok, str(result)
    assert result.worst <= 1e-10
    assert np.isclose(result.losses[0], result.losses[1], rtol=1e-12, atol=0)
    assert [row.name.split(" <- ")[0] for row in result.rows] == \
        [name for name, _ in tutorials.build(key).model.named_parameters()]


def test_compare_flags_the_one_parameter_whose_gradient_is_wrong() -> None:
    twin = tutorials.build("nielsen")
    engine_loss = twin.engine_loss
    bias = dict(twin.model.named_parameters())["layers.2.bias"]
    twin.engine_loss = lambda model: engine_loss(model) + 1e-3 * (bias * bias).sum()  # a bug in one place
    result = tutorials.compare(twin, steps=1)
    assert not result.ok
    assert result.first_disagreement.name == "layers.2.bias <- b1"
    assert [row.name for row in result.rows if max(row.grad_rel, row.param_rel) > 1e-10] == ["layers.2.bias <- b1"]
    text = str(result)
    assert "layers.2.bias <- b1" in text.split("<-- first disagreement")[0].splitlines()[-1]
    assert "DISAGREE" in text


def test_compare_catches_a_forgotten_factor_in_the_hand_derived_backprop() -> None:
    twin = tutorials.build("xor")
    reference = twin.manual_gradients

    def forgot_the_two(params, x, y):  # d/dW of sum (y - out)^2 without its factor 2
        loss, grads = reference(params, x, y)
        return loss, {**grads, "weights2": grads["weights2"] / 2}

    twin.manual_gradients = forgot_the_two
    result = tutorials.compare(twin, steps=2)
    assert result.first_disagreement.name == "layers.2.weight <- weights2"
    # check_backprop measures against the engine's gradient: the reference's is half of it
    assert result.first_disagreement.grad_rel == pytest.approx(0.5)
    assert "factor" in result.first_disagreement.diagnosis and "0.50" in result.first_disagreement.diagnosis
    assert result.first_disagreement.diagnosis in str(result)


def test_unknown_tutorial_names_the_choices() -> None:
    with pytest.raises(KeyError, match="nielsen"):
        tutorials.build("nope")


@pytest.mark.parametrize("key", list(tutorials.TUTORIALS))
def test_the_mapping_turns_the_reference_into_the_twin_and_back(key: str) -> None:
    twin = tutorials.build(key)
    state = tutorials.to_engine(key, twin.params)
    assert list(state) == sorted(state, key=[name for name, _ in twin.model.named_parameters()].index)
    parameters = {name: p.data for name, p in twin.model.named_parameters()}
    for name, value in parameters.items():
        assert np.array_equal(state[name], value), name
    assert twin.model.load_state_dict(state, strict=False).unexpected == []
    back = tutorials.to_reference(key, parameters)
    assert back.keys() == twin.params.keys()
    assert all(np.array_equal(back[k], twin.params[k]) and back[k].shape == twin.params[k].shape for k in back)


def test_the_mapping_follows_the_number_of_layers_and_names_what_is_missing() -> None:
    params = {f"{kind}{i}": np.zeros((3, 2) if kind == "W" else (3, 1)) for i in (1, 2, 3) for kind in "Wb"}
    state = tutorials.to_engine("lnet", params)
    assert {k: v.shape for k, v in state.items() if k.startswith("layers.4")} == \
        {"layers.4.weight": (2, 3), "layers.4.bias": (3,)}
    del params["b2"]
    with pytest.raises(KeyError, match="b2"):
        tutorials.to_engine("lnet", params)
    with pytest.raises(KeyError, match="nielsen"):
        tutorials.to_engine("nope", params)


def test_compare_is_check_backprop_in_the_engines_names() -> None:
    result = tutorials.compare("nielsen", steps=0)
    assert result.check.ok and [r.name for r in result.check.rows] == [r.name.split(" <- ")[0] for r in result.rows]
    assert [r.grad_rel for r in result.rows] == [r.rel_error for r in result.check.rows]
    assert result.losses == (result.check.engine_cost, result.check.cost)
