"""Check an op's analytic gradient against float64 central differences.

>>> from tinygrad_edu import Tensor
>>> x = Tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
>>> gradcheck(lambda t: (t * t).sigmoid(), [x])
True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .autograd import grad
from .tensor import Tensor

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree; the message holds a table of the worst elements."""


def _output(fn: Callable[..., Tensor], inputs: Sequence[Tensor]) -> Tensor:
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}.")
    return out


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-4, *, max_elements: int = 2000,
              projections: int = 4, seed: int = 0, show: int = 8) -> bool:
    """Compare ``grad`` of ``fn(*inputs)`` with central differences, for every input that requires grad.

    The output is contracted with a random, non-uniform upstream gradient ``u``: the check compares
    ``d<u, fn(x)>/dx`` element by element for inputs with at most ``max_elements`` elements. Larger inputs
    get ``projections`` random directions ``v`` instead, comparing ``<u, J v>`` computed both ways
    (analytic: ``<grad, v>``; numeric: a central difference along ``v``).

    Returns True, or raises ``GradcheckError`` with a table (input, index, analytic, numeric, error).
    """
    rng = np.random.default_rng(seed)
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; create them with requires_grad=True.")
    if any(inputs[i].dtype != np.float64 for i in checked):
        warnings.warn("gradcheck: some inputs are not float64; central differences in float32 have an error "
                      "around 1e-3 and will fail or mislead. Check with float64 inputs.", stacklevel=2)
    out = _output(fn, inputs)
    u = rng.standard_normal(out.shape).astype(out.dtype) + 0.5  # non-uniform, so every element matters
    analytic = grad(out, [inputs[i] for i in checked], grad_outputs=u, allow_unused=True)

    def contracted() -> float:
        # Not under no_grad: fn may itself call grad() (checking a first derivative's gradient).
        return float(np.sum(_output(fn, inputs).data * u))

    rows: list[tuple[float, str]] = []
    for i, a_grad in zip(checked, analytic):
        x = inputs[i]
        a_grad = np.zeros(x.shape) if a_grad is None else np.asarray(a_grad, dtype=np.float64)
        original = x.data.copy()
        try:
            if x.size <= max_elements:
                for index in np.ndindex(x.shape):
                    x.data[index] = original[index] + eps
                    plus = contracted()
                    x.data[index] = original[index] - eps
                    minus = contracted()
                    x.data[index] = original[index]
                    numeric = (plus - minus) / (2 * eps)
                    rows.append(_row(i, str(index), a_grad[index], numeric, atol, rtol))
            else:
                for k in range(projections):
                    v = rng.standard_normal(x.shape)
                    x.data[...] = original + eps * v
                    plus = contracted()
                    x.data[...] = original - eps * v
                    minus = contracted()
                    x.data[...] = original
                    numeric = (plus - minus) / (2 * eps)
                    rows.append(_row(i, f"<u, J v{k}>", float(np.sum(a_grad * v)), numeric, atol, rtol))
        finally:
            x.data[...] = original
    bad = [r for r in rows if r[0] > 0]
    if bad:
        bad.sort(key=lambda r: -r[0])
        table = "\n".join(r[1] for r in bad[:show])
        raise GradcheckError(
            f"gradcheck: {len(bad)} of {len(rows)} checks disagree (atol={atol}, rtol={rtol}, eps={eps}).\n"
            f"{'input':>5} {'index':>14} {'analytic':>14} {'numeric':>14} {'error':>10}\n{table}")
    return True


def _row(i: int, where: str, analytic: Any, numeric: float, atol: float, rtol: float) -> tuple[float, str]:
    error = abs(float(analytic) - numeric)
    excess = error - (atol + rtol * abs(numeric))
    if not np.isfinite(error):
        excess = np.inf
    return excess, f"{i:>5} {where:>14} {float(analytic):>14.6g} {numeric:>14.6g} {error:>10.3g}"
