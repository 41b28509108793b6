"""check_backprop on a network that is not a tutorial's: a correct derivation agrees, each planted mistake is named.

The network, in the course's layout (features, examples): two tanh layers and a softmax output with the
cross-entropy cost, J = -1/m sum Y * log softmax(W3 tanh(W2 tanh(W1 X + b1) + b2) + b3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tinygrad_edu
from tinygrad_edu import Tensor, check_backprop, nn

N_X, N_H, N_Y, M = 5, 6, 3, 8   # N_H twice, so W2 is square and b1, b2 have the same shape
Manual = Callable[[dict[str, np.ndarray]], tuple[float, dict[str, np.ndarray]]]  # a hand-written backprop


def _problem(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = {"W1": rng.standard_normal((N_H, N_X)), "b1": rng.standard_normal((N_H, 1)),
              "W2": rng.standard_normal((N_H, N_H)) * 0.5, "b2": rng.standard_normal((N_H, 1)),
              "W3": rng.standard_normal((N_Y, N_H)), "b3": rng.standard_normal((N_Y, 1))}
    x = rng.standard_normal((N_X, M))
    y = np.eye(N_Y)[:, rng.integers(0, N_Y, M)]   # one-hot columns
    return params, x, y


PARAMS, X, Y = _problem()


def backprop(p: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
    """The derivation by hand, as a learner of the course writes it."""
    a1 = np.tanh(p["W1"] @ X + p["b1"])
    a2 = np.tanh(p["W2"] @ a1 + p["b2"])
    z3 = p["W3"] @ a2 + p["b3"]
    a3 = np.exp(z3 - z3.max(axis=0)) / np.exp(z3 - z3.max(axis=0)).sum(axis=0)
    cost = -np.sum(Y * np.log(a3)) / M
    dz3 = (a3 - Y) / M
    dz2 = (p["W3"].T @ dz3) * (1 - a2 ** 2)
    dz1 = (p["W2"].T @ dz2) * (1 - a1 ** 2)
    grads = {"dW3": dz3 @ a2.T, "db3": dz3.sum(axis=1, keepdims=True),
             "dW2": dz2 @ a1.T, "db2": dz2.sum(axis=1, keepdims=True),
             "dW1": dz1 @ X.T, "db1": dz1.sum(axis=1, keepdims=True)}
    return cost, grads


def loss(t: dict[str, Tensor]) -> Tensor:
    """The same forward pass with engine operators."""
    a1 = (t["W1"] @ X + t["b1"]).tanh()
    a2 = (t["W2"] @ a1 + t["b2"]).tanh()
    z3 = t["W3"] @ a2 + t["b3"]
    return -(z3.log_softmax(axis=0) * Y).sum() / M


def with_mistake(change: dict[str, Any]) -> Manual:
    """backprop, with some of its gradients replaced (a value, or a function of the right gradients)."""
    def manual(p: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        cost, grads = backprop(p)
        for key, new in change.items():
            grads[key] = new(grads) if callable(new) else new
        return cost, grads
    return manual


# -- a correct derivation -----------------------------------------------------------------------------------

def test_a_correct_derivation_agrees_within_1e_10() -> None:
    report = check_backprop(backprop, loss, PARAMS)
    assert report.ok, str(report)
    assert report.worst <= 1e-10
    assert [r.name for r in report.rows] == list(PARAMS)
    assert all(r.index is None and r.diagnosis == "" for r in report.rows)
    assert report.cost == pytest.approx(report.engine_cost, rel=1e-12)
    assert "agree: worst relative error" in str(report)


def test_the_engine_gradients_are_the_true_ones() -> None:
    # The check is only as good as loss(t): the engine's gradient of it against central differences.
    tensors = [Tensor(PARAMS[k].copy(), requires_grad=True) for k in PARAMS]
    assert tinygrad_edu.gradcheck(lambda *ts: loss(dict(zip(PARAMS, ts))), tensors)


def test_keys_may_be_the_names_or_d_names_and_the_cost_is_optional() -> None:
    plain = check_backprop(lambda p: {k[1:]: g for k, g in backprop(p)[1].items()}, loss, PARAMS)
    assert plain.ok and plain.cost is None
    assert "cost: engine" in str(plain)


def test_manual_gets_copies_and_the_report_compares_at_the_given_params() -> None:
    def clobbering(p: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        result = backprop(p)
        for a in p.values():
            a[...] = 0.0   # a backprop that updates its parameters in place
        return result

    assert check_backprop(clobbering, loss, PARAMS).ok
    assert check_backprop(backprop, loss, PARAMS).ok
    assert np.array_equal(PARAMS["W1"], _problem()[0]["W1"])


def test_params_may_be_the_tensors_of_a_model() -> None:
    model = nn.Linear(N_X, N_Y, rng=1)
    xs, targets = X.T, Y.T   # the engine's layout: one example per row

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        z = xs @ p["weight"] + p["bias"]
        a = np.exp(z - z.max(axis=1, keepdims=True))
        dz = (a / a.sum(axis=1, keepdims=True) - targets) / M
        return {"weight": xs.T @ dz, "bias": dz.sum(axis=0)}

    params = dict(model.named_parameters())
    report = check_backprop(manual, lambda t: -(model(xs).log_softmax(axis=1) * targets).sum() / M, params)
    assert report.ok, str(report)
    assert np.allclose(params["bias"].grad, manual({k: v.data for k, v in params.items()})["bias"], rtol=0,
                       atol=1e-15)


# -- each planted mistake gets its diagnosis -----------------------------------------------------------------

def _only_bad_row(manual: Manual, name: str) -> tinygrad_edu.check.GradientRow:
    report = check_backprop(manual, loss, PARAMS)
    assert not report.ok
    assert [r.name for r in report.rows if not r.ok] == [name], str(report)
    assert report.first_disagreement.name == name
    assert name in str(report).split("DISAGREE")[1]
    return report.row(name)


def test_a_missing_1_over_m_is_a_constant_factor_of_m() -> None:
    row = _only_bad_row(with_mistake({"dW3": lambda g: g["dW3"] * M}), "W3")
    assert "factor" in row.diagnosis and "8.00" in row.diagnosis
    assert row.rel_error == pytest.approx(M - 1)
    assert row.index == (0, 0) and row.yours == pytest.approx(M * row.engine)


def test_a_factor_below_one_shows_both_ways() -> None:
    row = _only_bad_row(with_mistake({"db1": lambda g: g["db1"] / 2}), "b1")
    assert "factor" in row.diagnosis and "0.50" in row.diagnosis and "1/2.00" in row.diagnosis


def test_a_flipped_sign() -> None:
    row = _only_bad_row(with_mistake({"dW2": lambda g: -g["dW2"]}), "W2")
    assert "sign" in row.diagnosis and "factor" not in row.diagnosis
    assert row.rel_error == pytest.approx(2.0)


def test_a_transposed_gradient_of_a_square_parameter() -> None:
    row = _only_bad_row(with_mistake({"dW2": lambda g: g["dW2"].T}), "W2")
    assert "transpose" in row.diagnosis


def test_a_transposed_gradient_of_another_shape() -> None:
    row = _only_bad_row(with_mistake({"dW1": lambda g: g["dW1"].T.copy()}), "W1")
    assert "transpose" in row.diagnosis and "(5, 6)" in row.diagnosis and "(6, 5)" in row.diagnosis
    assert "agree once it is transposed" in row.diagnosis
    assert row.rel_error == float("inf")


def test_another_parameters_gradient_is_named() -> None:
    row = _only_bad_row(with_mistake({"db2": lambda g: g["db1"]}), "b2")
    assert "'b1'" in row.diagnosis and "gradient of" in row.diagnosis


def test_a_gradient_right_on_some_rows_only_says_which() -> None:
    def one_unit_wrong(g: dict[str, np.ndarray]) -> np.ndarray:
        wrong = g["dW1"].copy()
        wrong[[2, 3]] *= 0.5
        return wrong

    row = _only_bad_row(with_mistake({"dW1": one_unit_wrong}), "W1")
    assert "right except in rows 2-3 (2 of 6)," in row.diagnosis and "columns" not in row.diagnosis
    assert row.index == (2, 0)


def test_a_gradient_right_on_some_columns_only_says_which() -> None:
    def one_column_wrong(g: dict[str, np.ndarray]) -> np.ndarray:
        wrong = g["dW3"].copy()
        wrong[:, 4] += 1.0
        return wrong

    row = _only_bad_row(with_mistake({"dW3": one_column_wrong}), "W3")
    assert "right except in columns 4 (1 of 6)," in row.diagnosis and "rows" not in row.diagnosis


def test_nan_and_inf_say_where_they_first_appear() -> None:
    def poisoned(value: float) -> object:
        def change(g: dict[str, np.ndarray]) -> np.ndarray:
            wrong = g["dW2"].copy()
            wrong[1, 4] = wrong[3, 0] = value
            return wrong
        return change

    row = _only_bad_row(with_mistake({"dW2": poisoned(np.nan)}), "W2")
    assert "NaN" in row.diagnosis and "(1, 4)" in row.diagnosis and row.index == (1, 4)
    assert row.abs_error == float("inf")
    row = _only_bad_row(with_mistake({"dW2": poisoned(-np.inf)}), "W2")
    assert "Inf" in row.diagnosis and "(1, 4)" in row.diagnosis


def test_a_bias_gradient_of_shape_n_instead_of_n_1() -> None:
    row = _only_bad_row(with_mistake({"db3": lambda g: g["db3"].ravel()}), "b3")
    assert "(3,)" in row.diagnosis and "(3, 1)" in row.diagnosis and "broadcast to (3, 3)" in row.diagnosis
    assert "agree once reshaped" in row.diagnosis


def test_a_derivation_with_no_pattern_falls_back() -> None:
    rng = np.random.default_rng(3)
    row = _only_bad_row(with_mistake({"dW1": lambda g: g["dW1"] + rng.standard_normal(g["dW1"].shape)}), "W1")
    assert "no simple pattern" in row.diagnosis


# -- errors: keys and shapes ------------------------------------------------------------------------------------

def test_a_missing_key_names_it() -> None:
    def missing(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        grads = backprop(p)[1]
        del grads["db3"]
        return grads

    with pytest.raises(KeyError, match=r"'b3'.*'db3'"):
        check_backprop(missing, loss, PARAMS)


def test_an_extra_key_names_it() -> None:
    with pytest.raises(KeyError, match="'dA1'"):
        check_backprop(with_mistake({"dA1": np.zeros((N_H, M))}), loss, PARAMS)


def test_a_key_given_twice_is_refused() -> None:
    with pytest.raises(KeyError, match="two gradients for 'W1'"):
        check_backprop(with_mistake({"W1": lambda g: g["dW1"]}), loss, PARAMS)


def test_a_shape_that_cannot_match_names_the_key_and_both_shapes() -> None:
    def forgot_the_sum(g: dict[str, np.ndarray]) -> np.ndarray:
        return np.ones((N_H, M))   # dz1 itself, not summed over the examples

    with pytest.raises(ValueError, match=r"'db1' has shape \(6, 8\).*shape \(6, 1\)"):
        check_backprop(with_mistake({"db1": forgot_the_sum}), loss, PARAMS)


def test_loss_must_return_a_scalar_tensor() -> None:
    with pytest.raises(TypeError, match="scalar Tensor"):
        check_backprop(backprop, lambda t: float(loss(t).item()), PARAMS)  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match=r"shape \(6, 8\)"):
        check_backprop(backprop, lambda t: (t["W1"] @ X).tanh(), PARAMS)


def test_manual_must_return_gradients() -> None:
    with pytest.raises(TypeError, match="dict of gradients"):
        check_backprop(lambda p: [1.0, 2.0, 3.0], loss, PARAMS)


def test_the_table_and_the_html_show_every_row() -> None:
    report = check_backprop(with_mistake({"dW3": lambda g: g["dW3"] * M}), loss, PARAMS)
    text = str(report)
    assert text.splitlines()[1].split() == ["parameter", "shape", "max", "abs", "max", "rel", "first",
                                             "disagreement"]
    assert [line.split()[0] for line in text.splitlines()[2:8]] == list(PARAMS)
    page = report._repr_html_()
    assert page.count("<tr") == 1 + len(PARAMS) and page.count("#fde0dc") == 1
    assert "DISAGREE" in page and "factor" in page


def test_a_gradient_never_filled_in_is_all_zeros() -> None:
    row = _only_bad_row(with_mistake({"dW3": lambda g: np.zeros_like(g["dW3"])}), "W3")
    assert row.diagnosis.startswith("all zeros")


def test_a_forward_pass_that_overflows_is_blamed_on_loss() -> None:
    def overflowing(t: dict[str, Tensor]) -> Tensor:
        return loss(t) + (t["b1"] * 1e4).exp().sum()   # exp(10000 b1) is inf in float64

    with np.errstate(over="ignore"):
        report = check_backprop(backprop, overflowing, PARAMS)
    assert "the engine's has Inf" in report.row("b1").diagnosis and "loss(t)" in report.row("b1").diagnosis


def test_bad_arguments_are_refused_with_a_message() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        check_backprop(backprop, loss, PARAMS, tolerance=-1.0)
    with pytest.raises(TypeError, match="non-empty dict"):
        check_backprop(backprop, loss, {})
    frozen = {**PARAMS, "W1": Tensor(PARAMS["W1"].copy())}
    with pytest.raises(ValueError, match=r"params\['W1'\] is a Tensor that does not require grad"):
        check_backprop(backprop, loss, frozen)


def test_rows_where_both_gradients_are_zero_do_not_count_as_right() -> None:
    # blank pixels: the first-layer gradient is 0 in their rows whatever the derivation; a mistake everywhere
    # else is not "right except in some rows"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5))
    x[:3] = 0.0  # three "blank pixels": features that are 0 in every example
    params = {"W": rng.standard_normal((2, 6))}

    def loss(t: dict[str, Tensor]) -> Tensor:
        return ((t["W"] @ x) ** 2).sum()

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"dW": (p["W"] @ x) @ (x.T ** 2)}  # wrong wherever it is not 0, with no simple pattern

    report = check_backprop(manual, loss, params)
    assert not report.ok
    assert report.rows[0].diagnosis.startswith("no simple pattern")  # not "right except in columns 3-5"

    def manual_one_row(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        right = 2 * (p["W"] @ x) @ x.T
        right[1] *= -1.0  # the second unit's row wrong, the first one right
        return {"dW": right}

    diagnosis = check_backprop(manual_one_row, loss, params).rows[0].diagnosis
    assert "rows 1 (1 of 2)" in diagnosis and "columns" not in diagnosis
