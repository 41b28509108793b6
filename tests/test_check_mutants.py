"""Tests that pin mutants of tinygrad_edu/check.py which the other check tests let survive (.ci/mutation.md).

Each test names the mutant it kills; it was run against that one edit applied by hand, and failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tinygrad_edu import Tensor, check_backprop


def _engine_of(params: dict[str, np.ndarray], loss_fn: Callable[[Any], Tensor]) -> dict[str, np.ndarray]:
    t = {k: Tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    loss_fn(t).backward()
    return {k: np.asarray(v.grad).copy() for k, v in t.items()}


# -- run 5's two survivors left for later ------------------------------------------------------------------------

@pytest.mark.parametrize("size", [1e-3, 1e3])
def test_an_extra_multiple_of_w_is_judged_relative_to_the_gradient_whatever_the_units_of_w(size: float) -> None:
    # data_and_l2 14 (the parameter's scale floored at 1.0): W's coefficient is measured in units of the gradient
    # (so that it reads like the data term's), and a term a ten-millionth of the gradient is too small to name an
    # L2 term at any size of W, small entries included.
    rng = np.random.default_rng(7)
    x, params = rng.standard_normal((3, 10)), {"W": rng.standard_normal((4, 3)) * size}
    loss_fn = lambda t: ((t["W"] @ x / size).tanh() ** 2).sum()

    def manual(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        g = _engine_of(p, loss_fn)["W"]
        return {"W": g + 1e-7 * np.max(np.abs(g)) * p["W"] / np.max(np.abs(p["W"]))}

    report = check_backprop(manual, loss_fn, params)
    assert not report.ok and report.rows[0].diagnosis.startswith("no simple pattern"), report.rows[0].diagnosis


def test_a_missing_l2_term_with_an_inexact_coefficient_on_large_weights_is_named_with_it() -> None:
    # _Graph.penalty_story 26 (the fit's tolerance divided by the penalty's size, not multiplied): λ = 0.1/7 is
    # not a binary fraction, so λ·2W and the fitted κ·W differ by rounding, which grows with W's entries.
    rng = np.random.default_rng(7)
    x, params = rng.standard_normal((3, 10)), {"W": rng.standard_normal((4, 3)) * 1e5}
    data = lambda t: ((t["W"] @ x * 1e-5).tanh() ** 2).sum()
    report = check_backprop(lambda p: {"W": _engine_of(p, data)["W"]},
                            lambda t: data(t) + 0.1 / 7 * (t["W"] ** 2).sum(), params)
    assert report.rows[0].diagnosis == ("L2 term missing: yours lacks 0.02857·W, the gradient of loss(t)'s "
                                        "0.01429·ΣW²")
