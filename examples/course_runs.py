"""The deep-learning course's second-course runs at full length, by hand (``tinygrad_edu.manual``), timed.

The course's data and random draws are reproduced exactly, so these are its runs, not look-alikes:

- Initialization (circles): zeros / large random / He, 15,000 iterations at 0.01;
- Optimization (moons): gradient descent / momentum / Adam, 10,000 epochs at 0.0007, mini-batches of 64;
- the later edition's learning-rate decay: 5,000 epochs with ``schedule_lr_decay`` (gradient descent and
  momentum from 0.1, Adam from 0.01).

Prints one line per run: the training (and test) accuracy, the last printed cost, the seconds. Run with one BLAS
thread: ``OPENBLAS_NUM_THREADS=1 python examples/course_runs.py [init|optimization|decay ...]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from tinygrad_edu import datasets
from tinygrad_edu.manual import initialization, optimization


def _columns(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.T.copy(), y.reshape(1, -1).astype(np.float64)


def init_runs() -> None:
    circles = datasets.load_circles()
    X, Y = _columns(circles.train_x, circles.train_y)
    Xt, Yt = _columns(circles.test_x, circles.test_y)
    for name in initialization.INITIALIZATIONS:
        start = time.perf_counter()
        params, costs = initialization.model(X, Y, initialization=name)
        print(f"init {name:8} train {initialization.accuracy(X, Y, params):.4f}  test "
              f"{initialization.accuracy(Xt, Yt, params):.4f}  cost at 14000 {costs[-1]!r}  "
              f"({time.perf_counter() - start:.1f} s)", flush=True)


def optimization_runs(decay: bool) -> None:
    moons = datasets.load_moons()
    X, Y = _columns(moons.train_x, moons.train_y)
    for name in optimization.OPTIMIZERS:
        start = time.perf_counter()
        if decay:
            rate = 0.01 if name == "adam" else 0.1
            params, costs = optimization.model(X, Y, [2, 5, 2, 1], name, learning_rate=rate, num_epochs=5000,
                                               decay=optimization.schedule_lr_decay)
        else:
            params, costs = optimization.model(X, Y, [2, 5, 2, 1], name, num_epochs=10000)
        printed = ", ".join(f"{c:f}" for c in costs[::10])
        print(f"{'decay' if decay else 'optimization'} {name:8} train {optimization.accuracy(X, Y, params):.4f}  "
              f"costs every 1000 epochs {printed}  ({time.perf_counter() - start:.1f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    which = (sys.argv[1:] if argv is None else argv) or ["init", "optimization", "decay"]
    for name in which:
        if name == "init":
            init_runs()
        elif name in ("optimization", "decay"):
            optimization_runs(decay=name == "decay")
        else:
            print(f"unknown run {name!r}; choose init, optimization or decay", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
