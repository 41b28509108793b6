"""Random-graph differential fuzzing of the engine.

Each case is a small random program (a DAG with fan-out, reuse, broadcasting and reductions) written as a
list of instructions, so the same program can run on tinygrad_edu Tensors, on plain float64 numpy (for
central differences) and on torch (when installed). A failing case prints its seed; replay it with
``FUZZ_SEED=<seed> pytest tests/test_fuzz.py``. ``FUZZ_CASES=<n>`` runs more cases (default 200).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tinygrad_edu import Tensor, grad, where

CASES = int(os.environ.get("FUZZ_CASES", "200"))
SEEDS = [int(os.environ["FUZZ_SEED"])] if "FUZZ_SEED" in os.environ else list(range(CASES))

Instruction = tuple[str, tuple[int, ...], dict[str, Any]]


def _broadcastable(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def make_program(seed: int) -> tuple[list[np.ndarray], list[Instruction], list[np.ndarray]]:
    """Random leaves, instructions over them, and the weights that contract the outputs into a scalar."""
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (4,), (3, 1), (1, 4), (), (2, 3, 4)]
    leaves = [rng.uniform(-1.5, 1.5, size=shapes[i] if i < 2 else shapes[rng.integers(len(shapes))])
              for i in range(int(rng.integers(2, 4)))]
    nodes: list[tuple[int, ...]] = [x.shape for x in leaves]
    program: list[Instruction] = []
    unary = ["tanh", "sigmoid", "exp_tanh", "log1p_sq", "sqrt1p_sq", "square", "neg", "softmax",
             "log_softmax", "logsumexp", "sum", "mean", "max", "var", "transpose", "flatten", "getitem"]
    binary = ["add", "sub", "mul", "div_safe", "where", "maximum", "pow_tensor"]
    for _ in range(int(rng.integers(3, 12))):
        i = int(rng.integers(len(nodes)))
        shape = nodes[i]
        if rng.random() < 0.45:
            j = int(rng.integers(len(nodes)))  # j == i reuses a node: the `a + a` case
            if not _broadcastable(shape, nodes[j]):
                continue
            name = str(rng.choice(binary))
            program.append((name, (i, j), {}))
            nodes.append(np.broadcast_shapes(shape, nodes[j]))
            continue
        name = str(rng.choice(unary))
        kwargs: dict[str, Any] = {}
        if name in ("softmax", "log_softmax", "logsumexp", "sum", "mean", "max", "var", "getitem"):
            if not shape:
                continue
            kwargs["axis"] = int(rng.integers(-len(shape), len(shape)))
        if name in ("logsumexp", "sum", "mean", "max", "var"):
            kwargs["keepdims"] = bool(rng.random() < 0.5)
        if name == "getitem":
            size = shape[kwargs["axis"]]
            kwargs["index"] = rng.integers(0, size, size=int(rng.integers(1, 5)))  # repeats likely
        if name == "matmul_self" and len(shape) < 2:
            continue
        program.append((name, (i,), kwargs))
        probe = _run_numpy(leaves, program)[-1]
        nodes.append(probe.shape)
    weights = [rng.standard_normal(s) + 0.3 for s in nodes[len(leaves):]]
    return leaves, program, weights


def _apply(name: str, args: list[Any], kwargs: dict[str, Any], lib: dict[str, Callable[..., Any]]) -> Any:
    a = args[0]
    b = args[1] if len(args) > 1 else None
    axis = kwargs.get("axis")
    keep = kwargs.get("keepdims", False)
    table: dict[str, Callable[[], Any]] = {
        "add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
        "div_safe": lambda: a / (b * b + 1.0), "where": lambda: lib["where"](a, b),
        "maximum": lambda: lib["maximum"](a, b), "pow_tensor": lambda: (a * a + 0.5) ** (b * 0.5),
        "tanh": lambda: lib["tanh"](a), "sigmoid": lambda: lib["sigmoid"](a),
        "exp_tanh": lambda: lib["exp"](lib["tanh"](a)), "log1p_sq": lambda: lib["log"](a * a + 1.0),
        "sqrt1p_sq": lambda: lib["sqrt"](a * a + 1.0), "square": lambda: a ** 2, "neg": lambda: -a,
        "softmax": lambda: lib["softmax"](a, axis), "log_softmax": lambda: lib["log_softmax"](a, axis),
        "logsumexp": lambda: lib["logsumexp"](a, axis, keep), "sum": lambda: lib["sum"](a, axis, keep),
        "mean": lambda: lib["mean"](a, axis, keep), "max": lambda: lib["max"](a, axis, keep),
        "var": lambda: lib["var"](a, axis, keep), "transpose": lambda: lib["transpose"](a),
        "flatten": lambda: lib["reshape"](a, (-1,)), "getitem": lambda: lib["take"](a, kwargs.get("index"), axis),
    }
    return table[name]()


def _index(x: Any, index: np.ndarray, axis: int) -> Any:
    ndim = len(x.shape)
    return x[(slice(None),) * (axis % ndim) + (index,)]


def _softmax_np(a: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _logsumexp_np(a: np.ndarray, axis: int, keep: bool) -> np.ndarray:
    top = a.max(axis=axis, keepdims=True)
    out = np.log(np.exp(a - top).sum(axis=axis, keepdims=True)) + top
    return out if keep else np.squeeze(out, axis=axis)


NUMPY: dict[str, Callable[..., Any]] = {
    "where": lambda a, b: np.where(a > 0, a, b), "maximum": np.maximum, "tanh": np.tanh,
    "sigmoid": lambda a: 1 / (1 + np.exp(-a)), "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "softmax": _softmax_np, "log_softmax": lambda a, ax: np.log(_softmax_np(a, ax)),
    "logsumexp": _logsumexp_np, "sum": lambda a, ax, k: a.sum(axis=ax, keepdims=k),
    "mean": lambda a, ax, k: a.mean(axis=ax, keepdims=k), "max": lambda a, ax, k: a.max(axis=ax, keepdims=k),
    "var": lambda a, ax, k: a.var(axis=ax, keepdims=k), "transpose": lambda a: a.T,
    "reshape": lambda a, s: a.reshape(s), "take": _index,
}

ENGINE: dict[str, Callable[..., Any]] = {
    "where": lambda a, b: where(a.data > 0, a, b), "maximum": lambda a, b: a.maximum(b),
    "tanh": Tensor.tanh, "sigmoid": Tensor.sigmoid, "exp": Tensor.exp, "log": Tensor.log, "sqrt": Tensor.sqrt,
    "softmax": lambda a, ax: a.softmax(ax), "log_softmax": lambda a, ax: a.log_softmax(ax),
    "logsumexp": lambda a, ax, k: a.logsumexp(ax, k), "sum": lambda a, ax, k: a.sum(ax, k),
    "mean": lambda a, ax, k: a.mean(ax, k), "max": lambda a, ax, k: a.max(ax, k),
    "var": lambda a, ax, k: a.var(ax, k), "transpose": lambda a: a.T, "reshape": lambda a, s: a.reshape(s),
    "take": _index,
}


def _run(leaves: list[Any], program: list[Instruction], lib: dict[str, Callable[..., Any]]) -> list[Any]:
    values = list(leaves)
    for name, inputs, kwargs in program:
        values.append(_apply(name, [values[i] for i in inputs], kwargs, lib))
    return values[len(leaves):]


def _run_numpy(leaves: list[np.ndarray], program: list[Instruction]) -> list[np.ndarray]:
    with np.errstate(all="ignore"):
        return [np.asarray(v) for v in _run(leaves, program, NUMPY)]


def _scalar(outputs: list[Any], weights: list[np.ndarray]) -> Any:
    total = None
    for out, w in zip(outputs, weights):
        term = (out * w).sum()
        total = term if total is None else total + term
    return total


def _numeric_gradient(leaves: list[np.ndarray], program: list[Instruction], weights: list[np.ndarray],
                      k: int, eps: float = 1e-6) -> np.ndarray:
    base = [x.copy() for x in leaves]
    result = np.zeros_like(base[k])
    for index in np.ndindex(base[k].shape):
        values = []
        for step in (eps, -eps):
            moved = [x.copy() for x in base]
            moved[k][index] += step
            values.append(float(_scalar(_run_numpy(moved, program), weights)))
        result[index] = (values[0] - values[1]) / (2 * eps)
    return result


def _is_smooth(leaves: list[np.ndarray], program: list[Instruction]) -> bool:
    """Skip programs that sit on a kink (max/maximum/where ties, a where condition near 0), or whose values are
    too large for float64 central differences (|value| > 1e6: a step of 1e-6 moves them by rounding alone)."""
    values = list(leaves)
    for (name, inputs, kwargs), out in zip(program, _run_numpy(leaves, program)):
        args = [values[i] for i in inputs]
        if name in ("maximum",) and np.min(np.abs(args[0] - args[1])) < 1e-3:
            return False
        if name == "where" and np.min(np.abs(args[0])) < 1e-3:
            return False
        if name == "max":
            s = np.sort(args[0], axis=kwargs["axis"])
            if s.shape[kwargs["axis"]] > 1 and np.min(np.abs(np.diff(s, axis=kwargs["axis"]))) < 1e-3:
                return False
        if not np.all(np.isfinite(out)) or np.max(np.abs(out), initial=0.0) > 1e6:
            return False
        values.append(out)
    return True


@pytest.mark.parametrize("seed", SEEDS)
def test_random_graph_gradients_match_central_differences(seed: int) -> None:
    leaves, program, weights = make_program(seed)
    if not program or not _is_smooth(leaves, program):
        pytest.skip(f"seed {seed}: program empty, on a kink, or too large for central differences")
    tensors = [Tensor(x.copy(), requires_grad=True, name=f"leaf{k}") for k, x in enumerate(leaves)]
    outputs = _run(tensors, program, ENGINE)
    expected = _run_numpy(leaves, program)
    for out, ref in zip(outputs, expected):
        np.testing.assert_allclose(out.data, ref, rtol=1e-10, atol=1e-12, err_msg=f"forward, seed {seed}")
    loss = _scalar(outputs, weights)
    analytic = grad(loss, tensors, allow_unused=True)
    for k, g in enumerate(analytic):
        numeric = _numeric_gradient(leaves, program, weights, k)
        g = np.zeros_like(numeric) if g is None else g
        np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-6,
                                   err_msg=f"gradient of leaf {k}, replay with FUZZ_SEED={seed}: {program}")


torch: Any = None
with contextlib.suppress(ImportError):  # the optional cross-check: only when torch is installed
    torch = importlib.import_module("torch")

TORCH: dict[str, Callable[..., Any]] = {} if torch is None else {
    "where": lambda a, b: torch.where(a > 0, a, b), "maximum": torch.maximum, "tanh": torch.tanh,
    "sigmoid": torch.sigmoid, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt,
    "softmax": lambda a, ax: torch.softmax(a, ax), "log_softmax": lambda a, ax: torch.log_softmax(a, ax),
    "logsumexp": lambda a, ax, k: torch.logsumexp(a, ax, keepdim=k),
    "sum": lambda a, ax, k: a.sum(ax, keepdim=k), "mean": lambda a, ax, k: a.mean(ax, keepdim=k),
    "max": lambda a, ax, k: torch.amax(a, ax, keepdim=k), "var": lambda a, ax, k: a.var(ax, keepdim=k, correction=0),
    "transpose": lambda a: a.permute(tuple(reversed(range(a.ndim)))),  # a tuple, so 0-d works too
    "reshape": lambda a, s: a.reshape(s),
    "take": lambda a, i, ax: _index(a, torch.as_tensor(i), ax),
}


@pytest.mark.skipif(torch is None, reason="torch is not installed (optional cross-check)")
@pytest.mark.parametrize("seed", SEEDS)
def test_random_graph_matches_torch(seed: int) -> None:
    leaves, program, weights = make_program(seed)
    if not program:
        pytest.skip("empty program")
    tensors = [Tensor(x.copy(), requires_grad=True) for x in leaves]
    ours = _run(tensors, program, ENGINE)
    theirs_leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in leaves]
    theirs = _run(theirs_leaves, program, TORCH)
    for k, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"forward of instruction {k}, FUZZ_SEED={seed}: {program}")
    _scalar(ours, weights).backward()
    _scalar(theirs, [torch.tensor(w) for w in weights]).backward()
    for k, (a, b) in enumerate(zip(tensors, theirs_leaves)):
        expected = np.zeros(a.shape) if b.grad is None else b.grad.numpy()
        got = np.zeros(a.shape) if a.grad is None else a.grad
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-11,
                                   err_msg=f"gradient of leaf {k}, FUZZ_SEED={seed}: {program}")
