"""check_backprop on a network that is not a tutorial's: a correct derivation agrees, each planted mistake is named.

The network, in the course's layout (features, examples): two tanh layers and a softmax output with the
cross-entropy cost, J = -1/m sum Y * log softmax(W3 tanh(W2 tanh(W1 X + b1) + b2) + b3).
"""

from __future__ import annotations

import functools

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
    assert row.diagnosis == ("not finite: yours has NaN first at index (1, 4) (look for a log of 0, a division by 0 "
                             "or an exp that overflowed)") and row.index == (1, 4)
    assert row.abs_error == float("inf")
    row = _only_bad_row(with_mistake({"dW2": poisoned(-np.inf)}), "W2")
    assert row.diagnosis.startswith("not finite: yours has Inf first at index (1, 4) (look for")


def test_a_bias_gradient_of_shape_n_instead_of_n_1() -> None:
    row = _only_bad_row(with_mistake({"db3": lambda g: g["db3"].ravel()}), "b3")
    assert "(3,)" in row.diagnosis and "(3, 1)" in row.diagnosis and "broadcast to (3, 3)" in row.diagnosis
    assert "agree once reshaped" in row.diagnosis


def test_a_derivation_with_no_pattern_falls_back() -> None:
    rng = np.random.default_rng(3)
    row = _only_bad_row(with_mistake({"dW1": lambda g: g["dW1"] + rng.standard_normal(g["dW1"].shape)}), "W1")
    assert row.diagnosis == ("no simple pattern (not a factor, sign, transpose, another parameter's gradient or an "
                             "L2 term): go through the derivation step by step")


# -- errors: keys and shapes ------------------------------------------------------------------------------------

def test_a_missing_key_names_it() -> None:
    def missing(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        grads = backprop(p)[1]
        del grads["db3"]
        return grads

    with pytest.raises(KeyError, match=r"'b3'.*'db3'"):
        check_backprop(missing, loss, PARAMS)


def test_an_extra_key_names_it() -> None:
    with pytest.raises(KeyError, match="'dQ1'"):
        check_backprop(with_mistake({"dQ1": np.zeros((N_H, M))}), loss, PARAMS)


def test_the_courses_intermediates_are_skipped_with_a_note() -> None:
    report = check_backprop(with_mistake({"dA1": np.zeros((N_H, M)), "dZ2": np.ones((N_H, M))}), loss, PARAMS)
    assert report.ok, str(report)
    assert report.notes == ["skipped dA1, dZ2: gradients of intermediates (dA, dZ), not of parameters."]
    assert str(report).endswith("note: " + report.notes[0])


def test_a_key_given_twice_is_refused() -> None:
    with pytest.raises(KeyError, match="two gradients for 'W1'"):
        check_backprop(with_mistake({"W1": lambda g: g["dW1"]}), loss, PARAMS)


def test_a_shape_that_cannot_match_names_both_shapes() -> None:
    row = _only_bad_row(with_mistake({"db1": np.ones((N_H, M))}), "b1")
    assert "has shape (6, 8), which cannot be the gradient of a parameter of shape (6, 1)" in row.diagnosis
    assert row.index is None and row.abs_error == row.rel_error == float("inf") and row.ok is False


def test_a_bias_gradient_not_summed_over_the_examples_is_named() -> None:
    def not_summed(p: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        cost, grads = backprop(p)
        a1 = np.tanh(p["W1"] @ X + p["b1"])
        a2 = np.tanh(p["W2"] @ a1 + p["b2"])
        z3 = p["W3"] @ a2 + p["b3"]
        a3 = np.exp(z3 - z3.max(axis=0)) / np.exp(z3 - z3.max(axis=0)).sum(axis=0)
        grads["db3"] = (a3 - Y) / M   # dZ3 itself
        return cost, grads

    row = _only_bad_row(not_summed, "b3")
    assert row.diagnosis.startswith("not summed: yours is the gradient at the sum where b3 is added (dZ) itself")
    assert "np.sum(dZ, axis=1, keepdims=True)" in row.diagnosis


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
    assert report.row("b1").diagnosis.startswith("not finite: the engine's has Inf first at index (")
    assert report.row("b1").diagnosis.endswith(" (loss(t) itself overflows there; check the forward pass)")


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


# -- input forms from real learners' code -------------------------------------------------------------------------

def test_grads_then_cost_is_read_as_cost_then_grads() -> None:
    flipped = check_backprop(lambda p: backprop(p)[::-1], loss, PARAMS)
    assert flipped.ok, str(flipped)
    assert flipped.cost == check_backprop(backprop, loss, PARAMS).cost == pytest.approx(flipped.engine_cost)


def test_a_cost_that_is_not_loss_ts_fails_and_leads_the_report() -> None:
    regularised = lambda t: loss(t) + 0.01 * (t["W1"] ** 2).sum()
    report = check_backprop(lambda p: backprop(p)[::-1], regularised, PARAMS)
    assert report.costs_differ and not report.ok
    assert report.rows[0].ok is False and all(r.ok for r in report.rows[1:])
    assert str(report).startswith(f"DISAGREE: your cost {report.cost:.12g} is not loss(t)'s")
    assert "different functions" in report._repr_html_().split("<table>")[0]
    # the gradients may all agree and the costs still differ (a constant term): not ok either
    shifted = check_backprop(lambda p: (backprop(p)[0] + 1.0, backprop(p)[1]), loss, PARAMS)
    assert all(r.ok for r in shifted.rows) and not shifted.ok
    assert not check_backprop(lambda p: backprop(p)[1], regularised, PARAMS).costs_differ  # no cost: nothing to compare


def _as_lists(t: Any) -> dict[str, Any]:
    return dict(zip(PARAMS, t))


def test_a_flat_list_of_arrays_is_matched_by_position() -> None:
    values = list(PARAMS.values())

    def manual(p: list[np.ndarray]) -> list[np.ndarray]:
        grads = backprop(_as_lists(p))[1]
        return [grads["d" + k] for k in PARAMS]

    report = check_backprop(manual, lambda t: loss(_as_lists(t)), values)
    assert report.ok, str(report)
    assert [r.name for r in report.rows] == ["w0", "b0", "w1", "b1", "w2", "b2"]
    assert report.notes == ["params and gradients matched by position, named w0, b0, w1, b1, w2, b2."]
    wrong = check_backprop(lambda p: [*manual(p)[:2], -manual(p)[2], *manual(p)[3:]], lambda t: loss(_as_lists(t)),
                           values)
    assert [r.name for r in wrong.rows if not r.ok] == ["w1"] and "sign flipped" in wrong.row("w1").diagnosis


def test_lists_of_lists_must_come_back_in_the_same_form() -> None:
    biases, weights = [PARAMS["b1"], PARAMS["b2"]], [PARAMS["W1"], PARAMS["W2"]]
    with pytest.raises(TypeError, match=r"must return 2 lists of gradients of lengths \[2, 2\].*a dict"):
        check_backprop(lambda p: {"b0": 1.0}, lambda t: (t[1][0] ** 2).sum(), [biases, weights])
    with pytest.raises(TypeError, match=r"params must be a non-empty dict.*got a list of int, ndarray"):
        check_backprop(backprop, loss, [PARAMS["W1"], 3])


def test_numpy_on_a_tensor_inside_loss_says_to_use_the_tensor_method() -> None:
    def numpy_loss(t: dict[str, Tensor]) -> Tensor:
        a1 = np.tanh(t["W1"] @ X + t["b1"])  # type: ignore[call-overload]
        return (a1 * 1.0).sum()

    with pytest.raises(tinygrad_edu.check.CodeError, match=r"your loss\(t\) called np.tanh on a Tensor") as info:
        check_backprop(backprop, numpy_loss, PARAMS)
    assert "use t.tanh()" in str(info.value) and "`a1 = np.tanh(t[\"W1\"] @ X + t[\"b1\"])" in str(info.value)
    assert isinstance(info.value.__cause__, TypeError) and info.value.function == "loss(t)"


def test_an_error_in_manual_names_manual_and_the_line() -> None:
    def broken(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"dW1": p["W4"]}

    with pytest.raises(tinygrad_edu.check.CodeError) as info:
        check_backprop(broken, loss, PARAMS)
    assert str(info.value).startswith("your manual(params) raised KeyError: 'W4' (in test_check.py, line")
    assert "`return {\"dW1\": p[\"W4\"]}`" in str(info.value) and isinstance(info.value.error, KeyError)


def test_a_gradient_that_is_not_numbers_is_refused() -> None:
    with pytest.raises(TypeError, match=r"manual's 'db2' is a str of dtype <U4, not an array of numbers"):
        check_backprop(with_mistake({"db2": "oops"}), loss, PARAMS)


# -- verdicts from numbers, kinks --------------------------------------------------------------------------------

def test_a_1d_gradient_wrong_in_one_entry_disagrees_whatever_the_diagnosis(monkeypatch: pytest.MonkeyPatch) -> None:
    c = np.array([1.0, -2.0, 0.5, 3.0])
    params = {"bias": np.array([0.5, -1.0, 2.0, 0.3])}

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        g = 2 * c ** 2 * p["bias"]
        g[2] += 1e-6
        return {"bias": g}

    report = check_backprop(manual, lambda t: ((t["bias"] * c) ** 2).sum(), params)
    assert not report.ok and report.rows[0].index == (2,)
    assert report.rows[0].diagnosis.startswith("right on some entries only: wrong at 2 (1 of 4)")
    monkeypatch.setattr(tinygrad_edu.check, "_diagnose", lambda ev: tinygrad_edu.check.Finding(""))
    silent = check_backprop(manual, lambda t: ((t["bias"] * c) ** 2).sum(), params)
    assert not silent.ok and not silent.rows[0].ok and silent.rows[0].diagnosis == ""


def _relu_net() -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4))
    x[:, 1] = 0.0   # a blank example: with b = 0 its pre-activations sit exactly at relu's kink
    return {"W": rng.standard_normal((2, 3)), "b": np.zeros((2, 1)), "v": rng.standard_normal((1, 2))}, x


def test_relu_at_its_kink_is_named() -> None:
    params, x = _relu_net()

    def manual(p: dict[str, np.ndarray], scale: float = 1.0) -> dict[str, np.ndarray]:
        z = p["W"] @ x + p["b"]
        dz = p["v"].T * (z >= 0) * scale   # relu' taken as 1 at 0
        return {"W": dz @ x.T, "b": dz.sum(axis=1, keepdims=True), "v": np.maximum(z, 0).sum(axis=1)[None, :]}

    def relu_loss(t: dict[str, Tensor]) -> Tensor:
        return (t["v"] @ (t["W"] @ x + t["b"]).relu()).sum()

    report = check_backprop(manual, relu_loss, params)
    assert [r.name for r in report.rows if not r.ok] == ["b"], str(report)
    assert report.row("b").diagnosis.startswith("right except at a kink: relu's input sits exactly at its kink in 2 "
                                                "entries, and there yours takes the derivative 1 at 0 (Z >= 0)")
    assert "note:" not in report.row("b").diagnosis
    both = check_backprop(lambda p: manual(p, 3.0), relu_loss, params)   # another mistake as well: a note only
    assert "(note: relu's input is exactly at its kink in 2 entries, and b is upstream" in both.row("b").diagnosis
    assert not both.row("b").diagnosis.startswith("right except at a kink")


def test_maximum_at_a_tie_is_named() -> None:
    params, x = _relu_net()

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        z = p["W"] @ x + p["b"]
        dz = p["v"].T * (z > 0)   # all of the gradient to the zero side at a tie
        return {"W": dz @ x.T, "b": dz.sum(axis=1, keepdims=True), "v": np.maximum(z, 0).sum(axis=1)[None, :]}

    report = check_backprop(manual, lambda t: (t["v"] @ (t["W"] @ x + t["b"]).maximum(0.0)).sum(), params)
    assert "right except at a kink: maximum's input" in report.row("b").diagnosis
    assert "second input at a tie" in report.row("b").diagnosis


# -- the tolerance, the names, the constants: edge cases the mutation run asked for --------------------------------

def _cast(dtype: Any) -> Manual:
    return lambda p: (backprop(p)[0], {k: g.astype(dtype) for k, g in backprop(p)[1].items()})


def test_the_tolerance_follows_the_least_precise_dtype_and_says_so() -> None:
    f32 = check_backprop(_cast(np.float32), loss, PARAMS)   # float64 parameters, float32 gradients
    assert f32.ok and f32.tolerance == 1e-4
    assert f32.tolerance_reason == ("float32's default: in float32 a correct backprop differs from the engine's by "
                                    "rounding, so 1e-04 allows for that")
    assert not check_backprop(_cast(np.float32), loss, PARAMS, tolerance=1e-10).ok   # why the default follows
    f16 = check_backprop(_cast(np.float16), loss, PARAMS)
    assert f16.ok and f16.tolerance == 1e-2 and f16.tolerance_reason.startswith("float16's default")
    given = check_backprop(backprop, loss, PARAMS, tolerance=1e-6)
    assert given.tolerance == 1e-6 and given.tolerance_reason == "given" and "(tolerance 1e-06, given)" in str(given)
    exact = check_backprop(backprop, loss, PARAMS, tolerance=0)
    assert exact.tolerance == 0.0
    with pytest.raises(ValueError, match=r"tolerance .* got True"):
        check_backprop(backprop, loss, PARAMS, tolerance=True)


def test_integer_parameters_and_gradients_count_as_float64() -> None:
    x = np.array([[1.0, 2.0], [0.0, 1.0]])
    report = check_backprop(lambda p: {"w": np.array([[6, 2]])}, lambda t: (t["w"] @ x).sum() * 2,
                            {"w": np.array([[1, 2]])})
    assert report.ok and report.tolerance == 1e-10 and report.rows[0].shape == (1, 2)
    with pytest.raises(TypeError, match=r"params\['w'\] must be a numeric array, got dtype <U1"):
        check_backprop(lambda p: p, lambda t: t["w"], {"w": np.array(["a"])})


def test_functions_are_required() -> None:
    with pytest.raises(TypeError, match="manual and loss must be functions"):
        check_backprop(backprop, None, PARAMS)
    with pytest.raises(TypeError, match="manual and loss must be functions"):
        check_backprop(None, loss, PARAMS)
    with pytest.raises(TypeError, match="does not depend on any tensor in t"):
        check_backprop(backprop, lambda t: Tensor(np.float64(1.0)), PARAMS)


def test_groups_of_the_same_kind_are_named_by_group() -> None:
    weights, more = [PARAMS["W1"], PARAMS["W2"]], [PARAMS["W3"]]
    report = check_backprop(lambda p: [[2 * p[0][0], 2 * p[0][1]], [2 * p[1][0]]],
                            lambda t: sum((w * w).sum() for group in t for w in group), [weights, more])
    assert report.ok and [r.name for r in report.rows] == ["p0_0", "p0_1", "p1_0"]
    flat = check_backprop(lambda p: [2 * v for v in p], lambda t: sum((v * v).sum() for v in t),
                          (PARAMS["b1"], PARAMS["W1"].ravel(), PARAMS["W2"]))
    assert flat.ok and [r.name for r in flat.rows] == ["b0", "b1", "w0"]


def test_a_cost_may_be_a_one_element_array_or_a_tensor() -> None:
    wraps: list[Callable[[float], Any]] = [lambda c: np.array([[c]]), Tensor]
    for wrap in wraps:
        def manual(p: dict[str, np.ndarray], wrap: Callable[[float], Any] = wrap) -> tuple[Any, dict[str, np.ndarray]]:
            return wrap(backprop(p)[0]), backprop(p)[1]

        report = check_backprop(manual, loss, PARAMS)
        assert report.ok and report.cost == pytest.approx(report.engine_cost, rel=1e-12)
    with pytest.raises(TypeError, match=r"or \(grads, cost\); it returned a tuple of dict"):
        check_backprop(lambda p: (backprop(p)[1], backprop(p)[1]), loss, PARAMS)


@pytest.mark.parametrize(("scale", "named"), [
    (1 / M, "(= 1/m, m = 8: divided by m once more than loss(t))"),
    (2.0, "2.00 times the right gradient (= 2: the 2 from a square counted twice, or a 1/2 left out)"),
    (0.5, "0.50 (= 1/2.00) times the right gradient (= 1/2: the 2 from a square left out)"),
    (3.0, "3.00 times the right gradient (a missing or extra 1/m, or the 2 from a square?)"),
    (-M, "sign flipped and off by a constant factor: yours is -8.00 times"),
])
def test_a_factor_is_named_when_it_is_one_of_the_costs_constants(scale: float, named: str) -> None:
    row = _only_bad_row(with_mistake({"dW2": lambda g: g["dW2"] * scale}), "W2")
    assert named in row.diagnosis


def test_the_constants_come_from_the_graph_a_mean_and_a_scaled_mask() -> None:
    rng = np.random.default_rng(7)
    x, mask = rng.standard_normal((3, 10)), (rng.random((4, 10)) < 0.75) / 0.75   # values 0 and 1/keep_prob
    params = {"W": rng.standard_normal((4, 3))}

    def mean_loss(t: dict[str, Tensor]) -> Tensor:
        return ((t["W"] @ x).tanh() * mask).mean()

    def manual(p: dict[str, np.ndarray], scale: float) -> dict[str, np.ndarray]:
        return {"W": ((1 - np.tanh(p["W"] @ x) ** 2) * mask / 40) @ x.T * scale}

    assert check_backprop(lambda p: manual(p, 1.0), mean_loss, params).ok
    assert "(= m = 40, the number of examples" in \
        check_backprop(lambda p: manual(p, 40), mean_loss, params).rows[0].diagnosis
    assert "(= keep_prob = 0.75: a missing / keep_prob)" in \
        check_backprop(lambda p: manual(p, 0.75), mean_loss, params).rows[0].diagnosis


def _course_l2(lambd: float = 0.7, penalty: str = "L2") -> tuple[dict[str, np.ndarray], Callable[..., Any], Any]:
    """One layer of the course's regularised net: sigmoid, cross-entropy, lambd/(2m) sum W^2 (or lambd/m sum |W|)."""
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((3, M)), (rng.random((2, M)) < 0.5).astype(float)
    params = {"W": rng.standard_normal((2, 3)), "b": rng.standard_normal((2, 1))}

    def manual(p: dict[str, np.ndarray], coef: float = lambd / M, extra: float = 0.0) -> dict[str, np.ndarray]:
        dz = (1 / (1 + np.exp(-(p["W"] @ x + p["b"]))) - y) / M
        term = p["W"] if penalty == "L2" else np.sign(p["W"])
        return {"W": dz @ x.T + coef * term, "b": dz.sum(axis=1, keepdims=True) + extra * p["b"]}

    def loss_fn(t: dict[str, Tensor]) -> Tensor:
        a = (t["W"] @ x + t["b"]).sigmoid()
        cost = -(y * a.log() + (1 - y) * (1 - a).log()).sum() / M
        if penalty == "L2":
            return cost + lambd / (2 * M) * (t["W"] ** 2).sum()
        if penalty == "L1":
            return cost + lambd / M * t["W"].abs().sum()
        return cost + lambd / (2 * M) * (t["W"] ** 2).sum() + lambd / M * t["W"].abs().sum()

    return params, manual, loss_fn


@pytest.mark.parametrize(("coef", "said"), [
    (0.7 / M / 2, "the L2 term is half loss(t)'s (0.04375·W, not 0.0875·W): the square's 2 left out"),
    (0.7 / M / M, "the L2 term is 0.01094·W where loss(t) has 0.0875·W: λ/m divided by m once more (m = 8)"),
    (0.7 / 40, "the L2 term is 0.0175·W where loss(t) has 0.0875·W: you used λ/n (n = 40, the training set?) where "
               "loss(t) has λ/m (m = 8, the mini-batch)"),
    (0.7 / M * 3.3, "the L2 term is 0.2888·W where loss(t) has 0.0875·W (3.3 times)"),
])
def test_each_l2_coefficient_is_named(coef: float, said: str) -> None:
    params, manual, loss_fn = _course_l2()
    report = check_backprop(lambda p: manual(p, coef), loss_fn, params)
    assert [r.name for r in report.rows if not r.ok] == ["W"]
    assert report.row("W").diagnosis == said


def test_other_penalties_are_told_apart_too() -> None:
    params, manual, loss_fn = _course_l2(penalty="L1")
    assert check_backprop(manual, loss_fn, params).ok
    assert check_backprop(lambda p: manual(p, 0.0), loss_fn, params).row("W").diagnosis == "L1 term missing"
    assert check_backprop(lambda p: manual(p, 0.7 / M * 3), loss_fn, params).row("W").diagnosis == \
        "the L1 term is 3 times loss(t)'s"
    params, manual, loss_fn = _course_l2(penalty="both")
    assert check_backprop(lambda p: manual(p, 0.0), loss_fn, params).row("W").diagnosis == "penalty term missing"


def test_a_bias_subtracted_or_in_the_engines_layout_is_summed_over_its_axis() -> None:
    rng = np.random.default_rng(9)
    x = rng.standard_normal((7, 3))   # the engine's layout: one example per row
    params = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}

    def loss_fn(t: dict[str, Tensor]) -> Tensor:
        return ((x @ t["W"] - t["b"]) ** 2).sum()

    def manual(p: dict[str, np.ndarray], axis: int) -> dict[str, np.ndarray]:
        dz = 2 * (x @ p["W"] - p["b"])
        return {"W": x.T @ dz, "b": -dz.sum(axis=axis)}

    assert check_backprop(lambda p: manual(p, 0), loss_fn, params).ok
    row = check_backprop(lambda p: manual(p, 1), loss_fn, params).row("b")
    assert row.diagnosis.startswith("summed over the wrong axis: yours is the gradient at the sum where b is added "
                                    "(dZ) summed over axis 1 (shape (7,)); b was broadcast along axis 0")


# -- where the verdict's line runs, and the messages word for word ------------------------------------------------

def test_the_tolerance_is_relative_to_the_largest_engine_value_and_inclusive() -> None:
    right = backprop(PARAMS)[1]
    scale = float(np.max(np.abs(check_backprop(backprop, loss, PARAMS).row("W2").engine or 0.0))) or \
        float(np.max(np.abs(right["dW2"])))
    assert check_backprop(backprop, loss, PARAMS, tolerance=0).ok or True   # exact rounding may differ by 1 ulp
    exact = {"w": np.array([[1.0, -2.0]])}
    assert check_backprop(lambda p: {"w": 2 * p["w"]}, lambda t: (t["w"] ** 2).sum(), exact, tolerance=0).ok
    for off, ok in ((0.5, True), (2.0, False)):
        def nudged(p: dict[str, np.ndarray], off: float = off) -> dict[str, np.ndarray]:
            grads = backprop(p)[1]
            grads["dW2"] = grads["dW2"].copy()
            grads["dW2"][0, 0] += off * 1e-8 * np.max(np.abs(grads["dW2"]))
            return grads

        assert check_backprop(nudged, loss, PARAMS, tolerance=1e-8).row("W2").ok is ok
    assert scale > 0


def test_a_zero_engine_gradient_takes_the_tolerance_as_absolute() -> None:
    x = np.array([[1.0, 2.0]])
    params = {"w": np.array([[0.5]]), "unused": np.array([[1.0, 2.0], [3.0, 4.0]])}
    report = check_backprop(lambda p: {"w": np.array([[6.0]]), "unused": np.full((2, 2), 1e-11)},
                            lambda t: (t["w"] * x).sum() * 2 * t["w"].sum(), params)
    assert report.ok, str(report)
    wrong = check_backprop(lambda p: {"w": np.array([[6.0]]), "unused": np.full((2, 2), 1e-3)},
                           lambda t: (t["w"] * x).sum() * 2 * t["w"].sum(), params)
    assert wrong.row("unused").diagnosis.startswith("the engine's gradient is all zeros and yours is not: loss(t)'s "
                                                    "cost does not depend on unused (is it used in loss(t)")


def test_a_gradient_of_more_dimensions_says_which_columns() -> None:
    rng = np.random.default_rng(11)
    x, params = rng.standard_normal((2, 3, 4)), {"k": rng.standard_normal((2, 3, 4))}

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        g = 2 * x * (p["k"] * x)
        g[:, :, 2] *= 3.0
        return {"k": g}

    row = check_backprop(manual, lambda t: ((t["k"] * x) ** 2).sum(), params).row("k")
    assert row.diagnosis.startswith("right except in columns 2 (1 of 4), where every disagreeing value lies")


def test_a_bias_broadcast_along_two_axes_names_both() -> None:
    rng = np.random.default_rng(12)
    x, params = rng.standard_normal((2, 3, 4)), {"b": rng.standard_normal((1, 3, 1))}

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"b": 2 * (x + p["b"])}   # the gradient at x + b itself, not summed

    row = check_backprop(manual, lambda t: ((x + t["b"]) ** 2).sum(), params).row("b")
    assert row.diagnosis == ("not summed: yours is the gradient at the sum where b is added (dZ) itself, of shape "
                             "(2, 3, 4); b was broadcast along axis (0, 2), so its gradient sums over it: np.sum(dZ, "
                             "axis=(0, 2), keepdims=True)")


def test_spans_shorten_long_lists() -> None:
    spans = tinygrad_edu.check._spans
    assert spans([0, 1, 2, 5]) == "0-2, 5"
    assert spans(range(0, 40, 2)) == "0, 2, 4, 6, 8, 10, 12, 14, ..."
    assert spans(range(0, 16, 2)) == "0, 2, 4, 6, 8, 10, 12, 14"


def test_a_factor_near_one_shows_its_digits_and_one_number_says_so() -> None:
    row = _only_bad_row(with_mistake({"dW2": lambda g: g["dW2"] * 1.001}), "W2")
    assert "yours is 1.00100000 times the right gradient" in row.diagnosis
    row = _only_bad_row(with_mistake({"dW2": lambda g: g["dW2"] * 0.999}), "W2")
    assert "yours is 0.99900000 (= 1/1.00100100) times" in row.diagnosis
    x = np.array([[1.0, 2.0]])
    one = check_backprop(lambda p: {"w": 3 * 2 * x.sum() * p["w"]}, lambda t: (t["w"] * x).sum() * t["w"].sum(),
                         {"w": np.array([[0.5]])})
    assert one.rows[0].diagnosis == ("off by a constant factor: yours is 3.00 times the right gradient (one number: "
                                     "any wrong value is some factor of the right one)")


def test_a_gradient_never_filled_in_below_a_layer_that_agrees_says_where() -> None:
    report = check_backprop(with_mistake({"dW1": np.zeros((N_H, N_X)), "db1": np.zeros((N_H, 1))}), loss, PARAMS)
    assert report.row("W1").diagnosis.startswith("all zeros: this gradient was never filled in (or a mask zeroed "
                                                 "it); layer 2 agrees, layer 1 and below do not: the mistake enters "
                                                 "between layer 2 and layer 1 (dA1 -> dZ1: tanh's derivative)")


def test_a_weight_used_transposed_keeps_its_data_term_apart_from_its_l2_term() -> None:
    rng = np.random.default_rng(13)
    x, params = rng.standard_normal((6, 3)), {"W": rng.standard_normal((4, 3))}   # the engine's layout: x @ W.T

    def manual(p: dict[str, np.ndarray], lambd: float) -> dict[str, np.ndarray]:
        return {"W": (2 * (x @ p["W"].T)).T @ x + lambd * p["W"]}

    def l2_loss(t: dict[str, Tensor]) -> Tensor:
        return ((x @ t["W"].T) ** 2).sum() + 0.5 * (t["W"] ** 2).sum()

    assert check_backprop(lambda p: manual(p, 1.0), l2_loss, params).ok
    assert check_backprop(lambda p: manual(p, 0.0), l2_loss, params).rows[0].diagnosis.startswith("L2 term missing")


def test_the_users_code_errors_keep_their_own_message() -> None:
    def typed(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise TypeError("a Tensor went missing")

    with pytest.raises(tinygrad_edu.check.CodeError, match=r"^your manual\(params\) raised TypeError: a Tensor went "
                                                           r"missing \(in test_check.py, line \d+: `raise TypeError"):
        check_backprop(typed, loss, PARAMS)
    with pytest.raises(tinygrad_edu.check.CodeError, match=r"^your manual\(params\) raised TypeError: int\(\) "
                                                           r"argument must be .*, not 'dict'$"):
        check_backprop(int, loss, PARAMS)
    namespace: dict[str, Any] = {"np": np}
    exec(compile("def hidden(t):\n    f = np.sinh\n    return f(t['W1']).sum()\n", "<typed in>", "exec"), namespace)
    with pytest.raises(tinygrad_edu.check.CodeError) as info:
        check_backprop(backprop, namespace["hidden"], PARAMS)
    assert str(info.value) == ("your loss(t) called a numpy function on a Tensor (in <typed in>, line 3): numpy "
                               "functions cannot follow a Tensor's graph; use the Tensor's own method (t.tanh(), "
                               "t.exp(), ...).")


def test_the_argument_messages_word_for_word() -> None:
    with pytest.raises(TypeError) as info:
        check_backprop(None, loss, PARAMS)
    assert str(info.value) == ("check_backprop(manual, loss, params): manual and loss must be functions: "
                               "manual(params) returns your gradients, loss(t) the cost as a Tensor.")
    with pytest.raises(TypeError) as info:
        check_backprop(backprop, lambda t: Tensor(np.float64(1.0)), PARAMS)
    assert str(info.value) == ("check_backprop: loss(t)'s cost does not depend on any tensor in t (it was computed "
                               "from the arrays, or under no_grad()): build it from t's tensors with engine "
                               "operators.")
    with pytest.raises(TypeError, match=r"it returned a str\. Reduce it"):
        check_backprop(backprop, lambda t: "cost", PARAMS)  # type: ignore[arg-type, return-value]
    with pytest.raises(KeyError) as key:
        check_backprop(backprop, loss, PARAMS).row("W9")
    assert key.value.args[0] == "no parameter 'W9' in this report; it has W1, b1, W2, b2, W3, b3."
    with pytest.raises(KeyError, match=r"returned two gradients for 'W1' \('W1' and 'dW1'\); return one"):
        check_backprop(with_mistake({"W1": lambda g: g["dW1"]}), loss, PARAMS)
    with pytest.raises(KeyError, match=r"no gradient for 'b3' \(looked for 'b3' or 'db3'\); it returned 'dW3', "):
        check_backprop(lambda p: {k: g for k, g in backprop(p)[1].items() if k != "db3"}, loss, PARAMS)
    with pytest.raises(TypeError, match=r"must return 3 lists of gradients of lengths \[1, 1, 1\], in params' "
                                        r"order, alone or with the cost"):
        check_backprop(lambda p: [[1.0], [2.0]], lambda t: t[0][0].sum(), [[PARAMS["b1"]], [PARAMS["b2"]],
                                                                             [PARAMS["b3"]]])
    with pytest.raises(TypeError, match=r"must return a list of 2 gradients, one per parameter, in params' order"):
        check_backprop(lambda p: [p[0]], lambda t: t[0].sum() + t[1].sum(), [PARAMS["b1"], PARAMS["W1"]])
    with pytest.raises(TypeError, match=r"must return a dict of gradients \(\{'dW1': \.\.\., \.\.\.\}\)"):
        check_backprop(lambda p: [1.0], loss, PARAMS)


def test_three_groups_and_a_scalar_parameter_line_up_by_position() -> None:
    groups = [[np.array([1.0, 2.0]), np.array([3.0])], [np.array([[1.0, 2.0]]), np.array([[0.5]])], [np.array(2.0)]]
    report = check_backprop(lambda p: [[2 * v for v in g] for g in p],
                            lambda t: sum((v * v).sum() for g in t for v in g), groups)
    assert report.ok and [r.name for r in report.rows] == ["b0", "b1", "p1_0", "p1_1", "p2_0"]
    flat = check_backprop(lambda p: [4.0, 2 * p[1]], lambda t: (t[0] * t[0]).sum() + (t[1] ** 2).sum(),
                          [np.array(2.0), np.array([1.0, 3.0])])
    assert flat.ok and [r.name for r in flat.rows] == ["w0", "b0"]


def test_the_html_colours_an_agreeing_report_green() -> None:
    page = check_backprop(backprop, loss, PARAMS)._repr_html_()
    assert '<p style="color:#1b7f3b"><b>agree: worst relative error' in page and "#fde0dc" not in page


# -- where the mistake enters: layers without numbers, words for what lies between, one layer ------------------------

def _two_layers(hidden: Callable[[Any], Any], cost: Callable[[Any], Any]) -> tuple[dict[str, np.ndarray], Any]:
    rng = np.random.default_rng(14)
    x = rng.standard_normal((3, 6))
    params = {"hidden_w": rng.standard_normal((4, 3)), "hidden_b": rng.standard_normal((4, 1)),
              "out_w": rng.standard_normal((2, 4)), "out_b": rng.standard_normal((2, 1))}

    def loss_fn(t: dict[str, Tensor]) -> Tensor:
        a = hidden(t["hidden_w"] @ x + t["hidden_b"])
        return cost(t["out_w"] @ a + t["out_b"])

    return params, loss_fn


def _engine_grads_with(params: dict[str, np.ndarray], loss_fn: Any, scale: dict[str, float]) -> Manual:
    """The engine's own gradients, some scaled: a stand-in for a backprop with a mistake in those layers."""
    def manual(p: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        t = {k: Tensor(v.copy(), requires_grad=True) for k, v in p.items()}
        out = loss_fn(t)
        out.backward()
        rng = np.random.default_rng(15)
        return float(out.item()), {k: v.grad * (1 + scale.get(k, 0.0) * rng.standard_normal(v.shape))
                                   for k, v in t.items()}
    return manual


def test_layers_without_numbers_are_named_by_their_parameters() -> None:
    params, loss_fn = _two_layers(lambda z: z.tanh() / 2, lambda z: (z ** 2).sum())
    manual = _engine_grads_with(params, loss_fn, {"hidden_w": 0.5, "hidden_b": 0.5})
    text = check_backprop(manual, loss_fn, params).row("hidden_w").diagnosis
    assert text == ("the layer of out_w, out_b agrees, the layer of hidden_w, hidden_b and below do not: the mistake "
                    "enters between the layer of out_w, out_b and the layer of hidden_w, hidden_b (tanh's "
                    "derivative, / 2)")
    params, loss_fn = _two_layers(lambda z: z ** 3, lambda z: (z ** 2).sum())
    manual = _engine_grads_with(params, loss_fn, {"hidden_w": 0.5, "hidden_b": 0.5})
    assert check_backprop(manual, loss_fn, params).row("hidden_b").diagnosis.endswith(
        "(the operations in between)")


def test_the_output_place_lists_every_branch_of_the_cost() -> None:
    params, loss_fn = _two_layers(lambda z: z.relu() * 0.5, lambda z: (z.tanh() + z.exp()).sum() + z.sigmoid().sum())
    manual = _engine_grads_with(params, loss_fn, dict.fromkeys(params, 0.5))
    assert check_backprop(manual, loss_fn, params).row("out_b").diagnosis == (
        "the mistake enters at the output: every layer disagrees, so the gradient at the output layer's "
        "pre-activation (the cost's derivative through tanh, exp, sigmoid) is already wrong")


def test_one_layer_has_no_place_to_name() -> None:
    rng = np.random.default_rng(16)
    x, params = rng.standard_normal((3, 6)), {"W1": rng.standard_normal((2, 3)), "b1": rng.standard_normal((2, 1))}

    def loss_fn(t: dict[str, Tensor]) -> Tensor:
        return ((t["W1"] @ x + t["b1"]).tanh() ** 2).sum()

    report = check_backprop(_engine_grads_with(params, loss_fn, dict.fromkeys(params, 0.5)), loss_fn, params)
    assert not report.ok and all("enters" not in r.diagnosis for r in report.rows)


# -- more edges from the mutation run: each test fails on one kind of slip in check.py ------------------------------

def test_a_weight_with_an_extra_l2_term_and_a_wrong_data_term_names_both() -> None:
    row = _only_bad_row(with_mistake({"dW2": lambda g: g["dW2"] * M + 0.1 * PARAMS["W2"]}), "W2")
    assert row.diagnosis == ("the data term is 8.00 times the right one (= m = 8, the number of examples loss(t) "
                             "divides by: a missing 1/m), and yours has an L2 term 0.1·W2 that loss(t) has not (is it "
                             "in loss(t)'s cost? biases are usually not regularised)")
    row = _only_bad_row(with_mistake({"dW2": lambda g: g["dW2"] + 0.1 * PARAMS["W2"]}), "W2")
    assert row.diagnosis.startswith("yours has an L2 term 0.1·W2 that loss(t) has not")
    row = _only_bad_row(with_mistake({"dW2": lambda g: g["dW2"] + 0.1 * PARAMS["W2"].T}), "W2")
    assert row.diagnosis.startswith("no simple pattern")   # an L2 term of W2 transposed is no story we tell


def test_four_values_are_too_few_to_tell_the_data_term_from_the_l2_term() -> None:
    rng = np.random.default_rng(17)
    x, params = rng.standard_normal((4, 8)), {"w": rng.standard_normal((1, 4))}

    def manual(p: dict[str, np.ndarray], lambd: float) -> dict[str, np.ndarray]:
        return {"w": 2 * (p["w"] @ x) @ x.T + lambd * p["w"]}

    def l2_loss(t: dict[str, Tensor]) -> Tensor:
        return ((t["w"] @ x) ** 2).sum() + 0.5 * (t["w"] ** 2).sum()

    assert check_backprop(lambda p: manual(p, 1.0), l2_loss, params).ok
    assert check_backprop(lambda p: manual(p, 0.0), l2_loss, params).rows[0].diagnosis.startswith("no simple")


def test_a_longer_float_than_float64_takes_float64s_tolerance() -> None:
    x = np.array([1.0, 2.0, 3.0], dtype=np.longdouble)
    report = check_backprop(lambda p: {"w": 2 * p["w"] * x * x}, lambda t: ((t["w"] * x) ** 2).sum(),
                            {"w": np.array([0.5, -1.0, 2.0], dtype=np.longdouble)})
    assert report.ok and report.tolerance == 1e-10 and report.tolerance_reason.startswith(np.dtype(np.longdouble).name)


def test_long_names_keep_the_table_aligned() -> None:
    params = {"first_layer_weight": PARAMS["W1"]}
    report = check_backprop(lambda p: {"first_layer_weight": 2 * p["first_layer_weight"]},
                            lambda t: (t["first_layer_weight"] ** 2).sum(), params)
    head, row = str(report).splitlines()[1:3]
    assert head.startswith("parameter" + " " * 12 + "shape") and row.startswith("first_layer_weight  (6, 5)")


def test_returned_forms_that_are_not_params_form_are_refused() -> None:
    flat = [np.array([1.0, 2.0]), np.array(3.0)]
    report = check_backprop(lambda p: (float((p[0] ** 2).sum() + p[1] ** 2), [2 * p[0], 2 * p[1]]),
                            lambda t: (t[0] ** 2).sum() + t[1] ** 2, flat)
    assert report.ok and report.cost == 14.0
    with pytest.raises(TypeError, match=r"it returned a tuple of dict, ndarray"):   # an array is no cost
        check_backprop(lambda p: (np.ones(5), backprop(p)[1]), loss, PARAMS)
    with pytest.raises(TypeError, match=r"must return 2 lists of gradients of lengths \[1, 1\]"):
        check_backprop(lambda p: [[p[0][0], p[0][0]], []], lambda t: (t[0][0] ** 2).sum() + (t[1][0] ** 2).sum(),
                       [[np.array([1.0])], [np.array([2.0])]])
    with pytest.raises(TypeError, match=r"got a list of nothing"):
        check_backprop(backprop, loss, [])
    with pytest.raises(KeyError, match=r"it returned nothing\."):
        check_backprop(lambda p: {}, loss, PARAMS)
    with pytest.raises(TypeError, match=r"manual's 'b0 \(position 1\)' is a str of dtype <U3"):
        check_backprop(lambda p: [2 * p[0], "abc"], lambda t: (t[0] ** 2).sum() + (t[1] ** 2).sum(),
                       [PARAMS["W1"], PARAMS["b1"]])


def test_gradients_may_come_back_as_tensors() -> None:
    def as_tensors(p: dict[str, np.ndarray]) -> dict[str, Tensor]:
        return {k: Tensor(g) for k, g in backprop(p)[1].items()}

    assert check_backprop(as_tensors, loss, PARAMS).ok


def test_an_engine_error_inside_loss_names_the_tensors() -> None:
    with pytest.raises(tinygrad_edu.check.CodeError, match=r"your loss\(t\) raised ValueError: matmul: cannot apply "
                                                           r"to W1 \(6, 5\), W1 \(6, 5\)"):
        check_backprop(backprop, lambda t: (t["W1"] @ t["W1"]).sum(), PARAMS)


def test_a_transposed_shape_that_is_also_wrong_says_both() -> None:
    row = _only_bad_row(with_mistake({"dW1": lambda g: -g["dW1"].T.copy()}), "W1")
    assert row.diagnosis == ("has shape (5, 6), the transpose of the parameter's (6, 5): you computed the transpose of "
                             "the gradient; and even lined up it disagrees: sign flipped: yours is minus the right "
                             "gradient (dL/dp, which points uphill)")


def test_a_row_gradient_for_a_1d_bias_lines_up_by_reshaping() -> None:
    x, params = np.array([[1.0, 2.0, 3.0]]), {"b": np.array([0.5, -1.0, 2.0])}
    row = check_backprop(lambda p: {"b": (2 * (x + p["b"]))}, lambda t: ((x + t["b"]) ** 2).sum(), params).rows[0]
    assert row.diagnosis == ("has shape (1, 3), but the parameter's is (3,) (p - lr * grad would broadcast to "
                             "(1, 3), not update p); its values agree once reshaped.")
    assert not row.ok and row.index is None


def _scaled(p: dict[str, np.ndarray], scale: float, noise: Any) -> dict[str, np.ndarray]:
    return {"w": 2 * p["w"] * scale + noise}


def test_exact_stories_hold_at_tolerance_zero_and_at_any_scale() -> None:
    exact = {"w": np.array([[1.0, -2.0, 4.0]])}
    for scale, said in ((-1.0, "sign flipped: yours is minus"), (2.0, "off by a constant factor: yours is 2.00")):
        report = check_backprop(functools.partial(_scaled, scale=scale, noise=0.0), lambda t: (t["w"] ** 2).sum(),
                                exact, tolerance=0)
        assert report.rows[0].diagnosis.startswith(said)
    big = {"w": np.array([[1e6, -2e6, 4e6]])}
    noise = np.array([[1e-6, -1e-6, 0.0]])
    for scale, said in ((-1.0, "sign flipped: yours is minus"), (2.0, "off by a constant factor: yours is 2.00")):
        report = check_backprop(functools.partial(_scaled, scale=scale, noise=noise),
                                lambda t: (t["w"] ** 2).sum(), big)
        assert report.rows[0].diagnosis.startswith(said), report.rows[0].diagnosis
    zero = check_backprop(lambda p: {"w": np.array([[6.0]]), "u": np.full((2, 2), 1.5e-10)},
                          lambda t: (t["w"] * np.array([[1.0, 2.0]])).sum() * 2 * t["w"].sum(),
                          {"w": np.array([[0.5]]), "u": np.ones((2, 2))})
    assert not zero.row("u").ok   # an all-zero engine gradient: the tolerance is absolute, not doubled


def test_a_divisor_from_three_up_is_an_m_and_a_half_is_a_squares_two() -> None:
    x, y = np.array([[1.0, 2.0, -1.0]]), np.array([[0.5, 1.5, -1.0]])
    params = {"w": np.array([[0.3, 0.1, 0.2]])}

    def quadratic(t: dict[str, Tensor]) -> Tensor:   # Nielsen's 1/2 and a mean over m = 3
        return 0.5 * ((t["w"] * x - y) ** 2).sum() / 3

    def manual(p: dict[str, np.ndarray], scale: float) -> dict[str, np.ndarray]:
        return {"w": (p["w"] * x - y) * x / 3 * scale}

    assert check_backprop(lambda p: manual(p, 1.0), quadratic, params).ok
    assert "(= m = 3, the number of examples" in check_backprop(lambda p: manual(p, 3.0), quadratic,
                                                                params).rows[0].diagnosis
    assert "(= 2: the 2 from a square" in check_backprop(lambda p: manual(p, 2.0), quadratic, params).rows[0].diagnosis


# -- the mutation run's last holes ----------------------------------------------------------------------------------

def test_a_kink_note_only_for_parameters_upstream_of_the_kink() -> None:
    params, x = _relu_net()

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        z = p["W"] @ x + p["b"]
        return {"W": (p["v"].T * (z > 0)) @ x.T, "b": (p["v"].T * (z > 0)).sum(axis=1, keepdims=True),
                "v": 3 * np.maximum(z, 0).sum(axis=1)[None, :]}   # v downstream of the relu: no kink note

    report = check_backprop(manual, lambda t: (t["v"] @ (t["W"] @ x + t["b"]).relu()).sum(), params)
    assert [r.name for r in report.rows if not r.ok] == ["v"] and "note:" not in report.row("v").diagnosis


def test_no_kink_note_where_a_named_pattern_fits_every_entry() -> None:
    params, x = _relu_net()

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:   # the engine's relu' (Z > 0), all twice over
        z = p["W"] @ x + p["b"]
        dz = 2 * p["v"].T * (z > 0)
        return {"W": dz @ x.T, "b": dz.sum(axis=1, keepdims=True), "v": np.maximum(z, 0).sum(axis=1)[None, :]}

    report = check_backprop(manual, lambda t: (t["v"] @ (t["W"] @ x + t["b"]).relu()).sum(), params)
    assert [r.name for r in report.rows if not r.ok] == ["W", "b"], str(report)
    for name in ("W", "b"):
        assert "2.00 times the right gradient" in report.row(name).diagnosis, report.row(name).diagnosis
        assert "note:" not in report.row(name).diagnosis   # the kink below is no part of a factor of 2


def test_every_relu_at_its_kink_at_once() -> None:
    rng = np.random.default_rng(18)
    x = rng.standard_normal((3, 5))
    x[:, 2] = 0.0   # with zero biases the blank example sits at the kink in both layers
    params = {"W1": rng.standard_normal((4, 3)), "b1": np.zeros((4, 1)), "W2": rng.standard_normal((2, 4)),
              "b2": np.zeros((2, 1))}

    def relu2(t: dict[str, Tensor]) -> Tensor:
        return (t["W2"] @ (t["W1"] @ x + t["b1"]).relu() + t["b2"]).relu().sum()

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:   # relu' as Z >= 0 in both layers
        z1 = p["W1"] @ x + p["b1"]
        a1 = np.maximum(z1, 0)
        dz2 = (p["W2"] @ a1 + p["b2"] >= 0).astype(float)
        dz1 = (p["W2"].T @ dz2) * (z1 >= 0)
        return {"W1": dz1 @ x.T, "b1": dz1.sum(axis=1, keepdims=True), "W2": dz2 @ a1.T,
                "b2": dz2.sum(axis=1, keepdims=True)}

    report = check_backprop(manual, relu2, params)
    assert not report.ok and all(r.diagnosis.startswith("right except at a kink: relu's input sits exactly at its "
                                                        "kink in 6 entries") for r in report.rows if not r.ok)


def test_a_1d_gradient_wrong_everywhere_has_no_pattern_of_entries() -> None:
    c = np.array([1.0, -2.0, 0.5, 3.0])
    report = check_backprop(lambda p: {"b": 2 * c ** 2 * p["b"] + np.array([1.0, -1.0, 2.0, 0.5])},
                            lambda t: ((t["b"] * c) ** 2).sum(), {"b": np.array([0.5, -1.0, 2.0, 0.3])})
    assert report.rows[0].diagnosis.startswith("no simple pattern")


def test_wrong_rows_and_wrong_columns_are_named_together() -> None:
    def block(g: dict[str, np.ndarray]) -> np.ndarray:
        wrong = g["dW1"].copy()
        wrong[1:3, 3] += 1.0
        return wrong

    row = _only_bad_row(with_mistake({"dW1": block}), "W1")
    assert row.diagnosis.startswith("right except in rows 1-2 (2 of 6) and columns 3 (1 of 5), where every")


def test_a_bias_of_one_dimension_below_a_layer_that_agrees_gets_the_place() -> None:
    rng = np.random.default_rng(19)
    x = rng.standard_normal((6, 3))   # the engine's layout: x @ W + b, b of shape (n,)
    params = {"W1": rng.standard_normal((3, 4)), "b1": rng.standard_normal(4), "W2": rng.standard_normal((4, 2)),
              "b2": rng.standard_normal(2)}

    def loss_fn(t: dict[str, Tensor]) -> Tensor:
        return ((x @ t["W1"] + t["b1"]).tanh() @ t["W2"] + t["b2"]).sum()

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        a1 = np.tanh(x @ p["W1"] + p["b1"])
        da1 = np.ones((6, 2)) @ p["W2"].T
        slope = 1 - a1 ** 2
        slope[:, 0] = 1.0   # tanh's derivative forgotten for unit 0 only
        dz1 = da1 * slope
        return {"W1": x.T @ dz1, "b1": dz1.sum(axis=0), "W2": a1.T @ np.ones((6, 2)), "b2": np.full(2, 6.0)}

    report = check_backprop(manual, loss_fn, params)
    assert report.row("b1").diagnosis == report.row("W1").diagnosis == (
        "layer 2 agrees, layer 1 and below do not: the mistake enters between layer 2 and layer 1 (dA1 -> dZ1: "
        "tanh's derivative)")


def test_a_whole_layer_wrong_while_the_layer_below_agrees_is_its_own_slip() -> None:
    report = check_backprop(with_mistake({"dW2": lambda g: -g["dW2"], "db2": lambda g: -g["db2"]}), loss, PARAMS)
    assert [r.name for r in report.rows if not r.ok] == ["W2", "b2"]
    assert all("enters" not in r.diagnosis for r in report.rows)


def test_a_data_term_mixed_with_its_transpose_is_not_called_transposed() -> None:
    row = _only_bad_row(with_mistake({"dW2": lambda g: g["dW2"] + g["dW2"].T}), "W2")
    assert row.diagnosis == "the data term mixes itself and its transpose (1 and 1 times)"   # no L2 words added


def test_a_parameter_cubed_in_the_forward_pass_is_data_not_penalty() -> None:
    params = {"w": np.array([0.5, -1.0, 2.0, 0.3, 1.5])}

    def manual(p: dict[str, np.ndarray], lambd: float) -> dict[str, np.ndarray]:
        return {"w": 3 * p["w"] ** 2 + lambd * p["w"]}

    cubic = lambda t: (t["w"] ** 3).sum() + 0.5 * (t["w"] ** 2).sum()
    assert check_backprop(lambda p: manual(p, 1.0), cubic, params).ok
    assert check_backprop(lambda p: manual(p, 0.0), cubic, params).rows[0].diagnosis.startswith("L2 term missing")


@pytest.mark.parametrize(("hidden", "between"), [
    (lambda z: z.relu() * 0.5, "(dA1 -> dZ1: relu's derivative)"),
    (lambda z: z.tanh() / 1.5, "(dA1 -> dZ1: tanh's derivative, / 1.5)"),
    (lambda z: z.tanh() / 1.0, "(dA1 -> dZ1: tanh's derivative, / 1)"),
    (lambda z: (z ** 3).tanh(), "(dA1 -> dZ1: tanh's derivative)"),
])
def test_the_words_for_what_lies_between_two_layers(hidden: Callable[[Any], Any], between: str) -> None:
    rng = np.random.default_rng(20)
    x = rng.standard_normal((3, 6))
    params = {"W1": rng.standard_normal((4, 3)), "b1": rng.standard_normal((4, 1)), "W2": rng.standard_normal((2, 4)),
              "b2": rng.standard_normal((2, 1))}

    def loss_fn(t: dict[str, Tensor]) -> Tensor:
        return ((t["W2"] @ hidden(t["W1"] @ x + t["b1"]) + t["b2"]) ** 2).sum()

    manual = _engine_grads_with(params, loss_fn, {"W1": 0.5, "b1": 0.5})
    assert check_backprop(manual, loss_fn, params).row("W1").diagnosis.endswith(between)


def test_an_output_without_an_activation_names_the_costs_derivative_alone() -> None:
    params, loss_fn = _two_layers(lambda z: z.tanh(), lambda z: (z ** 2).sum())
    report = check_backprop(_engine_grads_with(params, loss_fn, dict.fromkeys(params, 0.5)), loss_fn, params)
    assert report.row("out_w").diagnosis.endswith("pre-activation (the cost's derivative) is already wrong")


def test_a_divisor_between_one_and_two_is_no_keep_prob() -> None:
    x = np.array([[1.0, 2.0, -1.0]])
    params = {"w": np.array([[0.3, 0.1, 0.2]])}
    report = check_backprop(lambda p: {"w": 1.5 * 2 * p["w"] * x ** 2 / 1.5}, lambda t: ((t["w"] * x) ** 2).sum() / 1.5,
                            params)
    assert report.rows[0].diagnosis.endswith("1.50 times the right gradient (a missing or extra 1/m, or the 2 from a "
                                             "square?)")


# -- the holes mutation run 5 found (.ci/mutation.md) --------------------------------------------------------------

def _engine_of(params: dict[str, np.ndarray], loss_fn: Callable[[Any], Tensor]) -> dict[str, np.ndarray]:
    t = {k: Tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    loss_fn(t).backward()
    return {k: np.asarray(v.grad).copy() for k, v in t.items()}


def test_a_coefficient_is_near_a_number_inclusively_and_relative_above_one() -> None:
    from tinygrad_edu.check import _near
    assert _near(1e-6, 0.0) and not _near(1.5e-6, 0.0)            # absolute below 1, the edge included
    assert _near(64 + 3e-5, 64.0) and not _near(64 + 1e-4, 64.0)   # relative above 1


def test_the_table_lines_up_when_the_two_error_columns_differ_in_width() -> None:
    params = {"w": np.ones(3), "v": np.ones(2)}
    report = check_backprop(lambda p: {"w": 2e-120 * np.ones(3), "v": 4 * p["v"]},
                            lambda t: (t["w"] * 1e-120).sum() + (t["v"] ** 2).sum(), params)
    head, *rows = str(report).splitlines()[1:4]
    assert "1.00e-120" in rows[0]   # max abs one character wider than max rel, and wider than v's
    for row, (abs_error, rel_error) in zip(rows, [("1.00e-120", "1.00e+00"), ("2.00e+00", "1.00e+00")]):
        assert head.index("max abs") + len("max abs") == row.index(abs_error) + len(abs_error), str(report)
        assert head.index("max rel") + len("max rel") == row.rindex(rel_error) + len(rel_error), str(report)


def test_the_html_shows_every_note() -> None:
    report = check_backprop(lambda p: {"w": 2 * p["w"]}, lambda t: (t["w"] ** 2).sum(), {"w": np.ones(3)})
    report.notes[:] = ["first", "second"]
    assert "<p>note: first</p><p>note: second</p>" in report._repr_html_()


def test_an_extra_l2_term_on_large_weights_is_named_with_its_coefficient() -> None:
    rng = np.random.default_rng(7)
    x, params = rng.standard_normal((3, 10)), {"W": rng.standard_normal((4, 3)) * 1e4}
    loss_fn = lambda t: ((t["W"] @ x * 1e-4).tanh() ** 2).sum() * 1e4
    report = check_backprop(lambda p: {"W": _engine_of(p, loss_fn)["W"] + 0.01 * p["W"]}, loss_fn, params)
    assert report.rows[0].diagnosis.startswith("yours has an L2 term 0.01·W that loss(t) has not")


def test_a_missing_l2_term_on_large_weights_names_its_coefficient() -> None:
    rng = np.random.default_rng(7)
    x, params = rng.standard_normal((3, 10)), {"W": rng.standard_normal((4, 3)) * 1e4}
    data = lambda t: ((t["W"] @ x * 1e-4).tanh() ** 2).sum()
    report = check_backprop(lambda p: {"W": _engine_of(p, data)["W"]},
                            lambda t: data(t) + 5.0 * (t["W"] ** 2).sum(), params)
    assert report.rows[0].diagnosis == "L2 term missing: yours lacks 10·W, the gradient of loss(t)'s 5·ΣW²"


def test_a_weighted_l2_term_missing_has_no_single_coefficient() -> None:
    rng = np.random.default_rng(7)
    x, params, weights = rng.standard_normal((3, 10)), {"W": rng.standard_normal((4, 3))}, rng.uniform(0.5, 2, (4, 3))
    data = lambda t: ((t["W"] @ x).tanh() ** 2).sum()
    report = check_backprop(lambda p: {"W": _engine_of(p, data)["W"]},
                            lambda t: data(t) + (t["W"] * t["W"] * weights).sum(), params)
    assert report.rows[0].diagnosis == "L2 term missing"


def test_a_penalised_bias_summed_over_the_wrong_axis_is_named() -> None:
    rng = np.random.default_rng(7)
    x, params = rng.standard_normal((3, 10)), {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal((4, 1))}

    def loss_fn(t: dict[str, Tensor]) -> Tensor:
        penalty = (t["b"] ** 2).sum() * 0.1   # b's first use is its penalty, its add comes after
        return ((t["W"] @ x + t["b"]).tanh() ** 2).sum() + penalty

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        a = np.tanh(p["W"] @ x + p["b"])
        dz = 2 * a * (1 - a ** 2)
        return {"W": dz @ x.T, "b": dz.sum(axis=0, keepdims=True)}

    assert check_backprop(manual, loss_fn, params).row("b").diagnosis.startswith(
        "summed over the wrong axis: yours is the gradient at the sum where b is added (dZ) summed over axis 0")


def test_a_multiplied_parameter_is_no_bias_to_sum() -> None:
    rng = np.random.default_rng(7)
    x, params = rng.standard_normal((4, 10)), {"g": rng.standard_normal((4, 1))}

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        a = np.tanh(p["g"] * x)
        return {"g": (2 * a * (1 - a ** 2)).sum(axis=0, keepdims=True)}   # dY summed over the wrong axis, no x

    diagnosis = check_backprop(manual, lambda t: ((t["g"] * x).tanh() ** 2).sum(), params).rows[0].diagnosis
    assert diagnosis.startswith("has shape (1, 10), which cannot be the gradient of a parameter of shape (4, 1)")


def test_leaky_relu_at_its_kink_is_named_with_its_slope() -> None:
    params, x = _relu_net()

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        z = p["W"] @ x + p["b"]
        dz = p["v"].T * np.where(z >= 0, 1.0, 0.1)   # the derivative 1 at 0
        return {"W": dz @ x.T, "b": dz.sum(axis=1, keepdims=True),
                "v": np.where(z > 0, z, 0.1 * z).sum(axis=1)[None, :]}

    report = check_backprop(manual, lambda t: (t["v"] @ (t["W"] @ x + t["b"]).leaky_relu(0.1)).sum(), params)
    assert [r.name for r in report.rows if not r.ok] == ["b"], str(report)
    assert report.row("b").diagnosis.startswith("right except at a kink: leaky_relu's input sits exactly at its kink "
                                                "in 2 entries, and there yours takes the derivative 1 at 0 where the "
                                                "engine takes the slope")


def test_a_data_term_off_by_less_than_a_millionth_beside_a_right_l2_term_still_disagrees() -> None:
    rng = np.random.default_rng(7)
    x, params = rng.standard_normal((3, 10)), {"W": rng.standard_normal((4, 3))}
    data = lambda t: ((t["W"] @ x).tanh() ** 2).sum()
    report = check_backprop(lambda p: {"W": _engine_of(p, data)["W"] * (1 + 1e-7) + 0.1 * p["W"]},
                            lambda t: data(t) + 0.05 * (t["W"] ** 2).sum(), params)
    assert not report.ok and report.rows[0].diagnosis.startswith("no simple pattern")


def test_a_dropout_mask_of_two_entries_is_named_between_the_layers() -> None:
    rng = np.random.default_rng(20)
    x, mask = rng.standard_normal((3, 2)), np.array([[1.0, 0.0]]) / 0.8   # one hidden unit, two examples
    params = {"W1": rng.standard_normal((1, 3)), "b1": rng.standard_normal((1, 1)), "W2": rng.standard_normal((2, 1)),
              "b2": rng.standard_normal((2, 1))}
    loss_fn = lambda t: ((t["W2"] @ ((t["W1"] @ x + t["b1"]).tanh() * mask) + t["b2"]) ** 2).sum()
    report = check_backprop(_engine_grads_with(params, loss_fn, {"W1": 0.5, "b1": 0.5}), loss_fn, params)
    assert report.row("W1").diagnosis.endswith("(dA1 -> dZ1: tanh's derivative, the dropout mask)")


def test_masks_drawn_inside_manual_on_each_call_are_named_first() -> None:
    rng = np.random.default_rng(21)
    x = rng.standard_normal((3, 6))
    params = {"W1": rng.standard_normal((4, 3)), "W2": rng.standard_normal((1, 4))}
    fixed = (rng.random((4, 6)) < 0.5) / 0.5
    draws = np.random.default_rng(0)

    def manual(p: dict[str, np.ndarray], mask: np.ndarray | None = None) -> tuple[float, dict[str, np.ndarray]]:
        d = (draws.random((4, 6)) < 0.5) / 0.5 if mask is None else mask   # the course draws D1 in its forward
        a = np.tanh(p["W1"] @ x) * d
        dz = (p["W2"].T @ np.ones((1, 6))) * d * (1 - np.tanh(p["W1"] @ x) ** 2)
        return float((p["W2"] @ a).sum()), {"W1": dz @ x.T, "W2": a.sum(axis=1)[None, :]}

    loss_fn = lambda t: (t["W2"] @ ((t["W1"] @ x).tanh() * fixed)).sum()
    report = check_backprop(manual, loss_fn, params)
    assert not report.ok and report.manual_varies
    assert str(report).split("\n")[0] == (
        "DISAGREE: manual(params) gave other numbers when called again with the same params: it draws random numbers "
        "on each call (dropout masks?) or keeps something from one call to the next, which loss(t) cannot follow. "
        "Draw the masks once, outside both functions, and use the same arrays in manual and in loss."), str(report)
    # the gradients alone vary (no cost returned), or the cost alone: either is a draw
    assert check_backprop(lambda p: manual(p)[1], loss_fn, params).manual_varies
    right = manual(params, fixed)[1]
    assert check_backprop(lambda p: (float(draws.random()), right), loss_fn, params).manual_varies
    # not a draw: a rounding's worth of difference (summed in another order), the same NaN twice, or a manual
    # that fails the second time it runs
    order = [1]

    def rounding(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        order[0] = -order[0]
        grads = manual(p, np.ones((4, 6)))[1]
        return {**grads, "W1": grads["W1"] * (1 + order[0] * 1e-15)}

    assert not check_backprop(rounding, loss_fn, params).manual_varies
    assert check_backprop(rounding, loss_fn, params, tolerance=0.0).manual_varies   # with no room, 1e-15 counts

    def scaled(scale: float, change: float) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
        def manual_scaled(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            order[0] = -order[0]
            grads = manual(p, np.ones((4, 6)))[1]
            return {**grads, "W1": grads["W1"] * scale * (1 + order[0] * change)}
        return manual_scaled

    # relative to the gradient's size: 1e-12 of a large gradient is rounding, 1e-9 of a small one is not
    assert not check_backprop(scaled(1e4, 1e-12), loss_fn, params).manual_varies
    assert check_backprop(scaled(1e-3, 1e-9), loss_fn, params).manual_varies
    deterministic = lambda p: manual(p, np.ones((4, 6)))
    assert not check_backprop(deterministic, loss_fn, params, tolerance=0.0).manual_varies   # equal is equal
    nan_later = []

    def nan_the_second_time(p: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        nan_later.append(1)
        cost, grads = deterministic(p)
        return cost, {**grads, "W2": grads["W2"] * (np.nan if len(nan_later) > 1 else 1.0)}

    assert check_backprop(nan_the_second_time, loss_fn, params).manual_varies
    nan_twice = check_backprop(lambda p: {**manual(p, fixed)[1], "W2": np.full((1, 4), np.nan)}, loss_fn, params)
    assert not nan_twice.ok and not nan_twice.manual_varies
    calls = []

    def fails_when_called_again(p: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("only once")
        return manual(p, np.ones((4, 6)))

    once = check_backprop(fails_when_called_again, loss_fn, params)
    assert not once.ok and not once.manual_varies and len(calls) == 2
    agreed = check_backprop(lambda p: manual(p, fixed), loss_fn, params)   # the same mask in both: they agree
    assert agreed.ok and not agreed.manual_varies, str(agreed)
    other = check_backprop(lambda p: manual(p, np.ones((4, 6))), loss_fn, params)   # deterministic, but wrong
    assert not other.ok and not other.manual_varies
    assert "the same dropout masks" in str(other)


def test_a_gradient_padded_on_one_side_only_is_not_called_kept_padding() -> None:
    rng = np.random.default_rng(4)
    x, w, u = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal((2, 3, 5, 5))

    def conv_loss(t: dict[str, Tensor]) -> Tensor:
        return (t["x"].conv2d(t["w"], padding=1) * u).sum()

    right = _engine_of({"x": x, "w": w}, conv_loss)
    def padded(pad: tuple[tuple[int, int], ...]) -> Any:
        return check_backprop(lambda p: {**right, "x": np.pad(right["x"], pad)}, conv_loss, {"x": x, "w": w})

    for pad in (((0, 0), (0, 0), (0, 1), (0, 0)), ((0, 0), (0, 0), (1, 2), (1, 1))):   # odd extras: not a crop
        report = padded(pad)
        assert "padding was kept" not in report.row("x").diagnosis, report.row("x").diagnosis
    kept = padded(((0, 0), (0, 0), (1, 1), (2, 2)))
    assert "Crop it off: yours[:, :, 1:-1, 2:-2]" in kept.row("x").diagnosis, kept.row("x").diagnosis
