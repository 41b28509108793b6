"""Speed and memory benchmarks: the engine against hand-written numpy (and PyTorch when it is installed).

``tinygrad-edu bench`` (or ``python -m tinygrad_edu.bench``) measures, side by side in one run:

* **W1, overhead-bound**: Nielsen's net [784, 30, 10], sigmoid, quadratic cost, mini-batches of 10,
  eta 3.0, float64. Seconds per epoch of 50,000 samples: a timed fraction of the epoch, scaled up.
* **W2, math-bound**: [784, 1024, 1024, 10], the same net and cost, mini-batches of 256, float32.
  Seconds per 50 SGD steps.
* **W3, per-op overhead**: a chain of 100 elementwise ops on a 10x10 tensor, forward and backward.
  Microseconds per op.
* **W4, convolution**: Nielsen's chapter-6 network (20 filters 5x5, 2x2 max-pool, sigmoid, 100 sigmoid, softmax;
  ``convnet.build("conv")``), one SGD step per mini-batch of 10 and of 64, eta 0.1, float64. Seconds per epoch
  of 50,000 images; the baseline is im2col numpy by hand. PyTorch gets as many threads as numpy's BLAS.
* **Memory**: peak RSS of W1, and RSS after 1,000 and after 10,000 steps, each engine in a fresh process.

The baseline is the numpy a careful programmer writes by hand: the mini-batch in rows, ``a @ W.T + b`` per
layer, the backward pass in matrix form, updates in place. Beside it run the tutorial's own forms
(``tinygrad_edu.manual.nielsen``: the whole mini-batch in columns, and per sample), the engine twice (``nn.MLP``
with ``optim.SGD``, and the step a learner writes with the README's operators, ``(a @ W.T + b).sigmoid()``),
both again compiled by ``jit`` (their first calls record, untimed; W3's chain too), and PyTorch eager (CPU).
Every engine starts from the same weights, and before anything is timed each one must give the same
gradients on one mini-batch (float64, max abs difference below 1e-9): a benchmark of a wrong computation is
worthless. Each engine is timed ``--repeats`` times, interleaved with the others so that a noisy neighbour
slows all of them alike; the table shows the median, the min-max range and the ratio of medians.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import convnet, datasets, losses, nn, optim, tutorials
from .jit import jit
from .blas import blas_thread_count, blas_threads
from .manual import nielsen
from .diagnostics import LearnerWarning
from .tensor import Tensor

__all__ = ["main", "add_arguments", "run", "BenchmarkError", "Engine", "check_gradients", "nielsen_engines",
           "chain_engines", "DESCRIPTION"]

DESCRIPTION = __doc__.split("\n\n")[0]
"""The first line of this module's docstring: what ``tinygrad-edu bench --help`` says first."""

W1_SIZES, W1_BATCH, W1_EPOCH = [784, 30, 10], 10, 50_000
W2_SIZES, W2_BATCH, W2_STEPS = [784, 1024, 1024, 10], 256, 50
ETA = 3.0
CHAIN_LENGTH = 100
CONV_BATCHES, CONV_ETA = (10, 64), 0.1
GRADIENT_TOLERANCE = 1e-9

Grads = list[np.ndarray]  # weight, bias, weight, bias, ... in the engine's layout: weight (in, out)


class BenchmarkError(RuntimeError):
    """An engine disagrees with the baseline, so its timing would mean nothing."""


def _grad(t: Tensor) -> np.ndarray:
    """``t.grad`` after backward(): every tensor benchmarked here takes part in the loss, so it has one."""
    assert t.grad is not None
    return t.grad


@dataclass
class Engine:
    """One way of running a workload: ``run(batch)`` does one unit of work, ``gradients(batch)`` checks it."""

    name: str
    run: Callable[[Any], object]
    gradients: Callable[[Any], Grads]
    batches: Callable[[Any], Any] = lambda batch: batch  # the batch in this engine's own layout
    fraction: float = 1.0  # time only this share of the batches (the slow per-sample form), then scale
    times: list[float] = field(default_factory=list)
    warmup: int = 1  # untimed calls first (a compiled step records its first calls, eagerly)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)  # numpy's OpenBLAS also uses every core by default
    return torch


# -- W1 and W2: the Nielsen network, four ways ---------------------------------------------------------------

def nielsen_engines(sizes: Sequence[int], dtype: Any, seed: int = 0, per_sample: float = 0.2,
                    with_torch: bool = True, compiled: bool = True) -> list[Engine]:
    """The same network, from the same N(0, 1) weights, as each engine runs it; a batch is ``(x, y)`` rows.

    The first engine, the baseline, is the numpy a careful programmer writes: the mini-batch in rows,
    ``a @ W.T + b`` per layer, the backward pass in matrix form, updates in place. ``per_sample`` is the share
    of the batches that the slow per-sample form of the tutorial is timed on (0: left out).
    """
    matrix = nielsen.Network(sizes, rng=seed, dtype=dtype)
    tutorial_form = nielsen.Network(sizes, rng=seed, dtype=dtype)
    start = nielsen.params_of(matrix)  # w0 (out, in), b0 (out, 1), ...: the tutorial's layout
    model = nn.MLP(sizes, activation="sigmoid", rng=seed, dtype=dtype)
    model.load_state_dict(tutorials.to_engine("nielsen", start))
    optimizer = optim.SGD(model.parameters(), lr=ETA)

    def manual_layout(grads: tuple[list[np.ndarray], list[np.ndarray]]) -> Grads:
        nabla_b, nabla_w = grads
        return list(tutorials.to_engine("nielsen", nielsen.as_params(nabla_w, nabla_b)).values())

    def columns(batch: Any) -> Any:
        x, y = batch
        return np.ascontiguousarray(x.T), np.ascontiguousarray(y.T)

    def pairs(batch: Any) -> Any:
        x, y = columns(batch)
        return [(x[:, j:j + 1], y[:, j:j + 1]) for j in range(x.shape[1])]

    def per_sample_gradients(batch: Any) -> Grads:
        total = [np.zeros_like(g) for g in manual_layout(tutorial_form.backprop(*batch[0]))]
        for x, y in batch:
            for t, g in zip(total, manual_layout(tutorial_form.backprop(x, y))):
                t += g
        return [t / len(batch) for t in total]

    def engine_loss(batch: Any) -> Tensor:
        x, y = batch
        return losses.quadratic_cost(model(Tensor(x)), y)

    def engine_step(batch: Any) -> None:
        optimizer.zero_grad()
        engine_loss(batch).backward()
        optimizer.step()

    def engine_gradients(batch: Any) -> Grads:
        optimizer.zero_grad()
        engine_loss(batch).backward()
        return [_grad(p).copy() for p in model.parameters()]

    mlp = Engine("tinygrad_edu, nn.MLP + optim.SGD", engine_step, engine_gradients)
    engines = [
        _rows_numpy(start, dtype),
        Engine("numpy, the tutorial's matrix form (columns)",
               lambda b: matrix.update_mini_batch_matrix(b[0], b[1], ETA),
               lambda b: manual_layout(matrix.backprop_batch(*b)), columns),
        mlp,
        _learner_step(start, dtype),
        _compiled(nielsen_engines(sizes, dtype, seed, 0, False, False)[2], "nn.MLP + optim.SGD") if compiled else mlp,
        _compiled(_learner_step(start, dtype), "the learner's step") if compiled else mlp,
    ]
    if not compiled:
        del engines[4:]
    if per_sample:
        engines.insert(2, Engine(f"numpy, per sample (as the tutorial; {per_sample:.0%} timed)",
                                 lambda b: tutorial_form.update_mini_batch(b, ETA), per_sample_gradients, pairs,
                                 fraction=per_sample))
    torch = _torch() if with_torch else None
    if torch is not None:
        engines.append(_torch_nielsen(torch, matrix, dtype))
    return engines


def _rows_numpy(start: dict[str, np.ndarray], dtype: Any) -> Engine:
    """The baseline: hand-written numpy with the batch in rows, W (out, in), the backward in matrix form."""
    weights = [start[f"w{i}"].astype(dtype) for i in range(len(start) // 2)]
    biases = [start[f"b{i}"].ravel().astype(dtype) for i in range(len(start) // 2)]

    def gradients(batch: Any) -> Grads:
        x, y = batch
        activations = [x]
        for w, b in zip(weights, biases):
            activations.append(1 / (1 + np.exp(-(activations[-1] @ w.T + b))))
        a = activations[-1]
        delta = (a - y) * a * (1 - a) / len(x)  # dC/dz of the last layer, C = sum ||a - y||^2 / 2n
        grads: list[np.ndarray] = []
        for layer in range(len(weights) - 1, -1, -1):
            grads[:0] = [delta.T @ activations[layer], delta.sum(axis=0)]
            if layer:
                a = activations[layer]
                delta = (delta @ weights[layer]) * a * (1 - a)
        return grads  # w0 (out, in), b0, w1, ...

    def step(batch: Any) -> None:
        grads = gradients(batch)
        for p, g in zip([p for pair in zip(weights, biases) for p in pair], grads):
            p -= ETA * g

    def engine_layout(batch: Any) -> Grads:
        return [g.T if g.ndim == 2 else g for g in gradients(batch)]

    return Engine("numpy, rows, W (out, in), as a careful programmer writes (baseline)", step, engine_layout)


def _learner_step(start: dict[str, np.ndarray], dtype: Any) -> Engine:
    """The step a learner writes from the README's operators, in the tutorials' layout W (out, in)."""
    weights = [Tensor(start[f"w{i}"].astype(dtype), requires_grad=True) for i in range(len(start) // 2)]
    biases = [Tensor(start[f"b{i}"].ravel().astype(dtype), requires_grad=True) for i in range(len(start) // 2)]
    params = [p for pair in zip(weights, biases) for p in pair]

    def gradients(batch: Any) -> Grads:
        x, y = batch
        a = Tensor(x)
        for w, b in zip(weights, biases):
            a = (a @ w.T + b).sigmoid()
        loss = ((a - y) ** 2).sum() / (2 * len(x))
        for p in params:
            p.grad = None
        loss.backward()
        return [_grad(p) for p in params]

    def step(batch: Any) -> None:
        gradients(batch)
        for p in params:
            p.data -= ETA * _grad(p)

    def engine_layout(batch: Any) -> Grads:
        return [g.T.copy() if g.ndim == 2 else g.copy() for g in gradients(batch)]

    return Engine("tinygrad_edu, the learner's step: (a @ W.T + b).sigmoid()", step, engine_layout)


def _compiled(engine: Engine, what: str) -> Engine:
    """The same engine with its step and its gradients compiled by ``jit`` (the first calls record, eagerly)."""
    step, gradients = jit(engine.run), jit(engine.gradients)

    def replayed_gradients(batch: Any) -> Grads:
        grads = [gradients(batch) for _ in range(4)][-1]   # the parameters do not move: the same gradients
        if not gradients.replays:
            raise BenchmarkError(f"jit did not compile the gradients of {engine.name}; nothing to time.")
        return grads

    return Engine(f"tinygrad_edu, {what}, compiled by jit", step, replayed_gradients, engine.batches, warmup=4)


def compile_seconds(engine: Engine) -> float | None:
    """How long the call that compiled a jit engine's step took (its recording included); None for others."""
    traces = getattr(engine.run, "traces", None)
    return max(t.compile_seconds for t in traces) if traces else None


def _torch_nielsen(torch: Any, reference: nielsen.Network, dtype: Any) -> Engine:
    """PyTorch eager as people write it: nn.Sequential of Linear and Sigmoid, torch.optim.SGD."""
    layers: list[Any] = []
    for w, b in zip(reference.weights, reference.biases):
        linear = torch.nn.Linear(w.shape[1], w.shape[0], dtype=torch.float64 if dtype == np.float64 else
                                 torch.float32)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.copy()))  # torch stores (out, in), as the tutorial does
            linear.bias.copy_(torch.from_numpy(b.ravel().copy()))
        layers += [linear, torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=ETA)

    def loss(batch: Any) -> Any:
        x, y = batch
        return ((model(x) - y) ** 2).sum() / (2 * x.shape[0])

    def step(batch: Any) -> None:
        optimizer.zero_grad()
        loss(batch).backward()
        optimizer.step()

    def gradients(batch: Any) -> Grads:
        optimizer.zero_grad()
        loss(batch).backward()
        grads = [p.grad.numpy().copy() for p in model.parameters()]
        return [g.T if g.ndim == 2 else g for g in grads]

    def tensors(batch: Any) -> Any:
        return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in batch)

    return Engine(f"PyTorch {torch.__version__.split('+')[0]} eager", step, gradients, tensors)


def check_gradients(engines: Sequence[Engine], batch: Any, tolerance: float = GRADIENT_TOLERANCE) -> float:
    """Every engine's gradients on ``batch`` against the first one's; the largest difference, or raise."""
    reference = engines[0].gradients(engines[0].batches(batch))
    worst = 0.0
    for engine in engines[1:]:
        grads = engine.gradients(engine.batches(batch))
        if len(grads) != len(reference) or any(g.shape != r.shape for g, r in zip(grads, reference)):
            raise BenchmarkError(f"{engine.name}: gradient shapes {[g.shape for g in grads]} differ from the "
                                 f"baseline's {[r.shape for r in reference]}.")
        diff = max(float(np.max(np.abs(g - r))) for g, r in zip(grads, reference))
        if not diff < tolerance:
            raise BenchmarkError(f"{engine.name}: gradients differ from {engines[0].name} by {diff:.3g} (max abs, "
                                 f"tolerance {tolerance:g}); not timing a computation that disagrees.")
        worst = max(worst, diff)
    return worst


def _mnist_batches(n_batches: int, batch_size: int, dtype: Any, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    data = datasets.load_mnist(dtype=dtype)
    x, y = data.train_x, datasets.one_hot(data.train_y, dtype=dtype)
    needed = n_batches * batch_size
    order = np.concatenate([np.random.default_rng(seed + k).permutation(len(x))
                            for k in range(-(-needed // len(x)))])[:needed]
    return [(x[order[i:i + batch_size]], y[order[i:i + batch_size]]) for i in range(0, needed, batch_size)]


def _time_engines(engines: Sequence[Engine], batches: Sequence[Any], repeats: int) -> None:
    prepared = [[e.batches(b) for b in batches[:max(1, round(len(batches) * e.fraction))]] for e in engines]
    for engine, own in zip(engines, prepared):
        for _ in range(engine.warmup):  # untimed: first-call costs (imports, caches, recording) are not the engine's
            engine.run(own[0])
    for _ in range(repeats):
        for engine, own in zip(engines, prepared):
            start = time.perf_counter()
            for batch in own:
                engine.run(batch)
            engine.times.append((time.perf_counter() - start) * len(batches) / len(own))


def _nielsen_workload(title: str, sizes: Sequence[int], batch_size: int, dtype: Any, n_batches: int,
                      scale: float, unit: str, repeats: int, seed: int, per_sample: float) -> str:
    check = nielsen_engines(sizes, np.float64, seed)
    diff = check_gradients(check, _mnist_batches(1, batch_size, np.float64, seed + 99)[0])
    engines = nielsen_engines(sizes, dtype, seed, per_sample)
    _time_engines(engines, _mnist_batches(n_batches, batch_size, dtype, seed), repeats)
    for engine in engines:
        engine.times = [t * scale for t in engine.times]
    note = f"gradients agree on one mini-batch (float64): max abs difference {diff:.1e}" + _compile_note(engines)
    return _table(title, unit, engines, note)


def _compile_note(engines: Sequence[Engine]) -> str:
    times = [t for t in map(compile_seconds, engines) if t is not None]
    return (f"; jit: the first calls record eagerly (untimed), the call that compiled took "
            f"{min(times) * 1e3:.0f}-{max(times) * 1e3:.0f} ms") if times else ""


# -- W3: a chain of elementwise ops ---------------------------------------------------------------------------

def _chain_numpy(x: np.ndarray) -> list[np.ndarray]:
    """The chain's forward values, one numpy call per op: x, x * 0.9, ... (every intermediate kept)."""
    values = [x]
    for i in range(CHAIN_LENGTH):
        v = values[-1]
        kind = i % 4
        values.append(v * 0.9 if kind == 0 else v + 0.1 if kind == 1 else np.tanh(v) if kind == 2 else -v)
    return values


def _chain_backward_numpy(values: list[np.ndarray], g: np.ndarray) -> np.ndarray:
    """The chain rule by hand: d(0.9 v) = 0.9, d(v + 0.1) = 1, d tanh(v) = 1 - tanh(v)^2, d(-v) = -1."""
    for i in range(CHAIN_LENGTH - 1, -1, -1):
        kind = i % 4
        if kind == 0:
            g = g * 0.9
        elif kind == 2:
            out = values[i + 1]
            g = g * (1 - out * out)
        elif kind == 3:
            g = -g
    return g


def _chain_tensor(x: Any) -> Any:
    """The same chain on anything with operators and tanh(): our Tensor, or a torch tensor."""
    v = x
    for i in range(CHAIN_LENGTH):
        kind = i % 4
        v = v * 0.9 if kind == 0 else v + 0.1 if kind == 1 else v.tanh() if kind == 2 else -v
    return v


def chain_engines() -> list[Engine]:
    """W3: a batch is ``(x, upstream)``, two 10x10 arrays; ``run`` does forward (and backward) once."""

    def numpy_forward(batch: Any) -> None:
        _chain_numpy(batch[0])

    def numpy_gradients(batch: Any) -> Grads:
        return [_chain_backward_numpy(_chain_numpy(batch[0]), batch[1])]

    def engine_gradients(batch: Any) -> Grads:
        x = Tensor(batch[0], requires_grad=True)
        _chain_tensor(x).backward(gradient=batch[1])
        return [_grad(x)]

    def chain_step(batch: Any) -> np.ndarray:
        x = Tensor(batch[0], requires_grad=True)
        _chain_tensor(x).backward(gradient=batch[1])
        return _grad(x)

    compiled = jit(chain_step)

    def compiled_gradients(batch: Any) -> Grads:
        return [[compiled(batch) for _ in range(3)][-1]]  # the third call replays

    # forward + backward engines are timed by their gradient function itself (the result is dropped)
    engines = [
        Engine("numpy, forward only (baseline)", numpy_forward, numpy_gradients),
        Engine("numpy, forward + backward by hand", numpy_gradients, numpy_gradients),
        Engine("tinygrad_edu, forward + backward", engine_gradients, engine_gradients),
        Engine("tinygrad_edu, forward + backward, compiled by jit", compiled, compiled_gradients, warmup=4),
    ]
    torch = _torch()
    if torch is not None:
        def torch_gradients(batch: Any) -> Grads:
            x = batch[0].detach().requires_grad_()
            _chain_tensor(x).backward(batch[1])
            return [x.grad.numpy()]

        engines.append(Engine(f"PyTorch {torch.__version__.split('+')[0]} eager, forward + backward",
                              torch_gradients, torch_gradients, lambda b: tuple(torch.from_numpy(a) for a in b)))
    return engines


def _chain_workload(n_chains: int, repeats: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    batches = [(rng.standard_normal((10, 10)), rng.standard_normal((10, 10))) for _ in range(n_chains)]
    engines = chain_engines()
    diff = check_gradients(engines, batches[0])
    _time_engines(engines, batches, repeats)
    for engine in engines:
        engine.times = [t / (n_chains * CHAIN_LENGTH) * 1e6 for t in engine.times]
    note = (f"{CHAIN_LENGTH} ops (mul, add, tanh, neg, repeated) per chain, {n_chains} chains per timing; "
            f"gradients agree: max abs difference {diff:.1e}" + _compile_note(engines))
    return _table(f"W3, per-op overhead: a chain of {CHAIN_LENGTH} elementwise ops on 10x10, float64",
                  "us per op", engines, note)


# -- W4: Nielsen's conv-pool network ----------------------------------------------------------------------------

def conv_engines(batch_size: int, seed: int = 0, with_torch: bool = True) -> list[Engine]:
    """Nielsen's chapter-6 network (``convnet.build("conv")``), one SGD step (eta 0.1) per run; a batch is
    ``(images (N, 1, 28, 28), labels (N,))``. The baseline is hand-written im2col numpy."""
    model = convnet.build("conv", rng=seed)
    start = {name: p.data.copy() for name, p in model.named_parameters()}
    optimizer = optim.SGD(model.parameters(), lr=CONV_ETA)

    def engine_gradients(batch: Any) -> Grads:
        optimizer.zero_grad()
        losses.softmax_cross_entropy(model(Tensor(batch[0])), batch[1]).backward()
        return [_grad(p).copy() for p in model.parameters()]

    def engine_step(batch: Any) -> None:
        optimizer.zero_grad()
        losses.softmax_cross_entropy(model(Tensor(batch[0])), batch[1]).backward()
        optimizer.step()

    engines = [_conv_numpy(start, batch_size),
               Engine("tinygrad_edu, nn.Sequential(Conv2d, MaxPool2d, ...) + optim.SGD", engine_step,
                      engine_gradients)]
    torch = _torch() if with_torch else None
    if torch is not None:
        # NOTE: as many threads as numpy's BLAS gets: two libraries fighting over a loaded machine's cores measure
        # the fight, not the engines (OPENBLAS_NUM_THREADS=1 pins both)
        torch.set_num_threads(int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1)))
        engines.append(_torch_conv(torch, start))
    return engines


def _conv_numpy(start: dict[str, np.ndarray], batch_size: int) -> Engine:
    """The baseline: im2col numpy as a careful programmer writes it. The windows are copied once (the forward
    pass's columns are kept for the weight gradient) and the images get no gradient."""
    w1, b1, w2, b2, w3, b3 = (start[k].copy() for k in ("layers.0.weight", "layers.0.bias", "layers.4.weight",
                                                          "layers.4.bias", "layers.6.weight", "layers.6.bias"))
    params = [w1, b1, w2, b2, w3, b3]

    def gradients(batch: Any) -> Grads:
        x, labels = batch
        n = len(x)
        windows = np.lib.stride_tricks.sliding_window_view(x, (5, 5), axis=(2, 3))  # (N, 1, 24, 24, 5, 5)
        cols = windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, 25, 576)                # copied once, kept
        z1 = (w1.reshape(20, 25) @ cols).reshape(n, 20, 24, 24) + b1.reshape(1, 20, 1, 1)
        corners = [z1[:, :, i::2, j::2] for i in range(2) for j in range(2)]        # the 4 places in a window
        pooled = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3]))
        a1 = (1 / (1 + np.exp(-pooled))).reshape(n, 2880)
        a2 = 1 / (1 + np.exp(-(a1 @ w2 + b2)))
        z3 = a2 @ w3 + b3
        p = np.exp(z3 - z3.max(axis=1, keepdims=True))
        d3 = p / p.sum(axis=1, keepdims=True)
        d3[np.arange(n), labels] -= 1
        d3 /= n                                                                      # dC/dz3 of the mean cost
        d2 = (d3 @ w3.T) * a2 * (1 - a2)
        d1 = ((d2 @ w2.T) * a1 * (1 - a1)).reshape(n, 20, 12, 12)                    # dC/d(pooled)
        dz1 = np.zeros_like(z1)
        taken = np.zeros(pooled.shape, dtype=bool)
        for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):                # the first maximum only
            first = (corners[k] == pooled) & ~taken
            dz1[:, :, i::2, j::2] = d1 * first
            taken |= first
        dz1_rows = dz1.reshape(n, 20, 576)
        dw1 = (dz1_rows @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(w1.shape)
        return [dw1, dz1_rows.sum(axis=(0, 2)), a1.T @ d2, d2.sum(axis=0), a2.T @ d3, d3.sum(axis=0)]

    def step(batch: Any) -> None:
        for p, g in zip(params, gradients(batch)):
            p -= CONV_ETA * g

    cols_mib = batch_size * 25 * 576 * 8 / 2**20
    return Engine(f"numpy im2col by hand, columns kept ({cols_mib:.1f} MiB) (baseline)", step, gradients)


def _torch_conv(torch: Any, start: dict[str, np.ndarray]) -> Engine:
    """PyTorch eager as people write it: nn.Sequential(Conv2d, MaxPool2d, Sigmoid, ...), torch.optim.SGD."""
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 20, 5), torch.nn.MaxPool2d(2), torch.nn.Sigmoid(),
                                torch.nn.Flatten(), torch.nn.Linear(2880, 100), torch.nn.Sigmoid(),
                                torch.nn.Linear(100, 10)).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            value = start[f"layers.{name}"]
            p.copy_(torch.from_numpy(value.T.copy() if value.ndim == 2 else value))  # Linear: (in, out) -> (out, in)
    optimizer = torch.optim.SGD(model.parameters(), lr=CONV_ETA)

    def gradients(batch: Any) -> Grads:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(batch[0]), batch[1]).backward()
        return [g.T.copy() if g.ndim == 2 else g for g in (p.grad.numpy() for p in model.parameters())]

    def step(batch: Any) -> None:
        gradients(batch)
        optimizer.step()

    return Engine(f"PyTorch {torch.__version__.split('+')[0]} eager", step, gradients,
                  lambda b: (torch.from_numpy(b[0]), torch.from_numpy(b[1])))


def _conv_workload(batch_size: int, n_batches: int, repeats: int, seed: int) -> str:
    data = datasets.load_mnist()
    order = np.random.default_rng(seed).permutation(len(data.train_x))[:n_batches * batch_size]
    x, labels = data.train_x[order].reshape(-1, 1, 28, 28), data.train_y[order]
    batches = [(x[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, len(order), batch_size)]
    engines = conv_engines(batch_size, seed)
    diff = check_gradients(engines, batches[0])
    _time_engines(engines, batches, repeats)
    steps = W1_EPOCH // batch_size
    for engine in engines:
        engine.times = [t * steps / n_batches for t in engine.times]
    mib = batch_size * 25 * 576 * 8 / 2**20
    note = (f"{n_batches} of the epoch's {steps} steps timed, scaled to the epoch; gradients agree on one mini-batch "
            f"(float64): max abs difference {diff:.1e}; the im2col buffer, (N, 25, 576) float64, is {mib:.1f} MiB: "
            f"the baseline keeps one from forward to backward, the engine copies it again in backward")
    torch = _torch_threads()
    if torch:
        note += f"; PyTorch on {torch} thread{'s' if torch > 1 else ''}, as many as numpy's BLAS"
    return _table(f"W4, convolution: Nielsen's chapter-6 conv-pool step (20 5x5 filters, 2x2 max-pool, sigmoid, 100 "
                  f"sigmoid, softmax), mini-batch {batch_size}, eta {CONV_ETA}, float64", "s per epoch", engines, note)


def _torch_threads() -> int | None:
    """How many threads PyTorch runs on now (None without PyTorch); read without changing it."""
    try:
        import torch
    except ImportError:
        return None
    return int(torch.get_num_threads())


# -- memory: each engine alone in a fresh process --------------------------------------------------------------

# in nielsen_engines(..., per_sample=0): the rows numpy baseline, nn.MLP, the learner's step, nn.MLP compiled, PyTorch
_MEMORY_ENGINES = (0, 2, 3, 4, 6)


def _status_mib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MiB: VmRSS now, VmHWM the peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # the file counts kB of 1024 bytes
    raise BenchmarkError(f"/proc/self/status has no {field}")


def _memory_child(index: int, steps: int, seed: int) -> dict[str, Any]:
    """Run W1 for ``steps`` steps with engine number ``index`` alone; resident memory as it goes (MiB)."""
    engine = nielsen_engines(W1_SIZES, np.float64, seed, per_sample=0, with_torch=index == _MEMORY_ENGINES[-1])[index]
    data = datasets.load_mnist()
    x, y = data.train_x, datasets.one_hot(data.train_y)
    order = np.random.default_rng(seed).permutation(len(x))
    report: dict[str, Any] = {"name": engine.name, "loaded": _status_mib("VmRSS"), "peak_reset": True}
    # NOTE: writing 5 to clear_refs resets the peak (VmHWM) to the current RSS, so the peak below is that of
    # training alone, not of parsing the data files. Some containers refuse the write: then say so.
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        report["peak_reset"] = False
    batches_per_epoch = len(x) // W1_BATCH
    for step in range(1, steps + 1):
        rows = order[(step - 1) % batches_per_epoch * W1_BATCH:][:W1_BATCH]
        engine.run(engine.batches((x[rows], y[rows])))
        if step in (_first_checkpoint(steps), steps):
            report[f"after {step}"] = _status_mib("VmRSS")
    report["peak"] = _status_mib("VmHWM")
    return report


def _first_checkpoint(steps: int) -> int:
    """The step of the first memory reading: 1,000 of 10,000 (a tenth of the run when it is shorter)."""
    return max(1, min(1_000, steps // 10))


def _memory_workload(steps: int, seed: int) -> str:
    if not os.path.exists("/proc/self/status"):
        return "Memory: skipped (it reads /proc/self/status, which only Linux has)"
    rows = []
    for index in _MEMORY_ENGINES if _torch() is not None else _MEMORY_ENGINES[:-1]:
        command = [sys.executable, "-m", "tinygrad_edu.bench", "--memory-child", str(index), "--steps", str(steps),
                   "--seed", str(seed)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BenchmarkError(f"memory run {index} failed:\n{done.stderr}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    first_step, later = _first_checkpoint(steps), f"after {steps}"
    reset = all(row["peak_reset"] for row in rows)
    lines = [f"Memory: W1 for {steps} steps, each engine alone in a fresh process; resident MiB, and the peak "
             + ("while training (after the data is loaded)" if reset else
                "of the whole process (this system refused to reset the peak after loading the data)"),
             f"  {'engine':66} {'loaded':>8} {f'after {first_step}':>11} {later:>12} {'growth':>8} {'peak':>8} "
             f"{'peak ratio':>11} {'peak - loaded':>14}"]
    for row in rows:
        first = row[f"after {first_step}"]
        growth = row[later] - first
        lines.append(f"  {row['name']:66} {row['loaded']:8.1f} {first:11.1f} {row[later]:12.1f} "
                     f"{growth:+8.1f} {row['peak']:8.1f} {row['peak'] / rows[0]['peak']:10.2f}x "
                     f"{row['peak'] - row['loaded']:+14.1f}")
    lines.append("  (loaded: after importing the engine and reading MNIST as float64, about 420 MiB of it the data; "
                 "peak - loaded: what training itself added)")
    return "\n".join(lines)


# -- the report -------------------------------------------------------------------------------------------------

def _table(title: str, unit: str, engines: Sequence[Engine], note: str) -> str:
    base = statistics.median(engines[0].times)
    lines = [title, f"  {note}", f"  {'engine':66} {'median':>9} {'min - max':>19} {'ratio':>7}   ({unit})"]
    for engine in engines:
        median = statistics.median(engine.times)
        spread = f"{min(engine.times):.3g} - {max(engine.times):.3g}"
        lines.append(f"  {engine.name:66} {median:9.3g} {spread:>19} {median / base:6.2f}x")
    return "\n".join(lines)


def _machine() -> str:
    torch = _torch()
    threads = f", torch threads {torch.get_num_threads()}" if torch is not None else ", torch not installed"
    blas = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}
    count = blas_thread_count()
    numpy_threads = f", numpy BLAS threads {count}" if count is not None else ""
    load = f", load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""  # not on Windows
    return (f"{platform.python_implementation()} {platform.python_version()}, numpy {np.__version__}, "
            f"{os.cpu_count()} CPUs{load}{threads}{numpy_threads}{', ' + str(blas) if blas else ''}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench options, shared by ``tinygrad-edu bench`` and ``python -m tinygrad_edu.bench``."""
    parser.add_argument("--only", default="W1,W2,W3,W4,memory",
                        help="comma-separated workloads to run (default W1,W2,W3,W4,memory)")
    parser.add_argument("--repeats", type=int, default=5, help="timings per engine; the median is reported "
                                                               "(default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, numpy on one BLAS thread: checks that everything runs (about 30 s of CPU "
                             "time; longer on a busy machine)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for weights and batches (default 0)")
    parser.add_argument("--steps", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Run the chosen workloads and print their tables; 1 if an engine disagrees, 2 for bad arguments."""
    # the tutorial's N(0, 1) weights saturate W2's wide layers (a LearnerWarning, but not the user's training), and
    # exp overflows to inf in the numpy forms, harmlessly (1 / (1 + inf) = 0)
    # --quick checks that everything runs: one BLAS thread keeps its small products from waiting on busy cores
    threads = blas_threads(1) if args.quick else contextlib.nullcontext()
    with warnings.catch_warnings(), np.errstate(over="ignore"), threads:
        warnings.simplefilter("ignore", LearnerWarning)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.memory_child is not None:
        print(json.dumps(_memory_child(args.memory_child, args.steps or 10_000, args.seed)))
        return 0
    chosen = [w.strip().lower() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(chosen) - {"w1", "w2", "w3", "w4", "memory"})
    if unknown or not chosen or args.repeats < 1:
        print(f"tinygrad-edu bench: --only takes W1, W2, W3, W4 and memory, comma-separated (got {args.only!r}); "
              f"--repeats must be at least 1 (got {args.repeats}).", file=sys.stderr)
        return 2
    w1_batches, w2_steps, chains, mem_steps = (20, 2, 20, 1_000) if args.quick else (1_000, W2_STEPS, 300, 10_000)
    print(f"tinygrad-edu bench on {_machine()}\n", flush=True)
    try:
        if "w1" in chosen:
            steps_per_epoch = W1_EPOCH // W1_BATCH
            print(_nielsen_workload(
                f"W1, overhead-bound: Nielsen {W1_SIZES}, sigmoid, quadratic cost, mini-batch {W1_BATCH}, eta "
                f"{ETA}, float64; {w1_batches} of the epoch's {steps_per_epoch} steps timed, scaled to the epoch",
                W1_SIZES, W1_BATCH, np.float64, w1_batches, steps_per_epoch / w1_batches, "s per epoch",
                args.repeats, args.seed, per_sample=0.2) + "\n", flush=True)
        if "w2" in chosen:
            print(_nielsen_workload(
                f"W2, math-bound: {W2_SIZES}, sigmoid, quadratic cost, mini-batch {W2_BATCH}, float32; "
                f"{w2_steps} steps timed" + ("" if w2_steps == W2_STEPS else f", scaled to {W2_STEPS}"),
                W2_SIZES, W2_BATCH, np.float32, w2_steps, W2_STEPS / w2_steps, f"s per {W2_STEPS} steps",
                args.repeats, args.seed, per_sample=0.02) + "\n", flush=True)
        if "w3" in chosen:
            print(_chain_workload(chains, args.repeats, args.seed) + "\n", flush=True)
        if "w4" in chosen:
            for batch_size, n_batches in zip(CONV_BATCHES, (3, 2) if args.quick else (200, 40)):
                print(_conv_workload(batch_size, n_batches, args.repeats, args.seed) + "\n", flush=True)
        if "memory" in chosen:
            print(_memory_workload(args.steps or mem_steps, args.seed) + "\n", flush=True)
    except BenchmarkError as error:
        print(f"tinygrad-edu bench: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinygrad_edu.bench", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
