"""The next chapters' twins: each agrees with its hand-derived reference, and compare names a planted mistake."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_edu import nn, tutorials
from tinygrad_edu.manual import gradient_checking, regularization

NEW = ["network2", "reg_l2", "reg_dropout", "opt_momentum", "opt_adam", "gradcheck"]


def test_the_compare_table_lists_the_next_chapters_after_the_five_seeds() -> None:
    assert list(tutorials.TUTORIALS)[:5] == ["mnist3", "nielsen", "xor", "lnet", "logreg"]
    assert list(tutorials.TUTORIALS)[5:11] == NEW and len(tutorials.TUTORIALS) >= 8


@pytest.mark.parametrize("key", NEW)
def test_the_twins_steps_follow_the_reference(key: str) -> None:
    result = tutorials.compare(key, steps=5)
    assert result.ok and result.worst <= 1e-10, str(result)
    twin = tutorials.build(key)
    before = {k: v.copy() for k, v in twin.params.items()}
    tutorials.compare(twin, steps=2)
    assert any(not np.array_equal(before[k], twin.params[k]) for k in before)   # the steps did move


def test_compare_finds_the_courses_two_planted_mistakes() -> None:
    twin = tutorials.build("gradcheck")

    def planted(params, x, y):
        mistaken = gradient_checking.backward_propagation_n_with_mistakes
        return gradient_checking.gradients(params, x, y, backward=mistaken)

    twin.manual_gradients = planted
    result = tutorials.compare(twin, steps=1)
    wrong = {row.name: row.diagnosis for row in result.rows if row.diagnosis}
    assert list(wrong) == ["layers.0.bias <- b1", "layers.2.weight <- W2"]
    assert result.first_disagreement.name == "layers.0.bias <- b1"
    assert "4.00" in wrong["layers.0.bias <- b1"] and "2.00" in wrong["layers.2.weight <- W2"]


def test_compare_catches_dropout_backprop_without_the_keep_prob_division() -> None:
    twin = tutorials.build("reg_dropout")
    reference = twin.manual_gradients

    def forgot(params, x, y):
        value, grads = reference(params, x, y)
        return value, {**grads, "W1": grads["W1"] * 0.86, "b1": grads["b1"] * 0.86}

    twin.manual_gradients = forgot
    result = tutorials.compare(twin, steps=1)
    assert result.first_disagreement.name == "layers.0.weight <- W1"
    assert [row.name for row in result.rows if row.diagnosis] == ["layers.0.weight <- W1", "layers.0.bias <- b1"]


def test_the_dropout_twin_uses_the_courses_fixed_masks() -> None:
    twin = tutorials.build("reg_dropout")
    drops = [m for _, m in twin.model.named_modules() if isinstance(m, nn.Dropout)]
    first = [d.mask.copy() for d in drops]
    twin.engine_loss(twin.model)
    assert all(np.array_equal(a, d.mask) for a, d in zip(first, drops))   # reseeded: the same masks every step
    assert 0.8 < float(np.mean(first[0])) < 0.92                          # keep_prob 0.86
    _, grads = regularization.gradients_dropout(twin.params, twin.x, twin.y, [d.mask.T for d in drops], 0.86)
    assert set(grads) == {"W1", "b1", "W2", "b2", "W3", "b3"}
