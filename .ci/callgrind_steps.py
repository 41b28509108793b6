"""Instructions per step of one benchmark engine, counted by callgrind: noise-free, where busy-machine timings are not.

callgrind counts only inside ``functools.reduce`` (``--toggle-collect``), which runs nothing but the steps, after
a warm-up of five (a step compiled by jit records and compiles there). Divide "Collected" by the steps::

    OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --toggle-collect=functools_reduce \\
        --callgrind-out-file=/tmp/cg.out .venv/bin/python .ci/callgrind_steps.py W1 4 200

Arguments: the workload (W1, W2, W3), the engine's index in ``bench.nielsen_engines(..., per_sample=0,
with_torch=False)`` (0 numpy by hand, 2 nn.MLP + optim.SGD, 3 the learner's step, 4 and 5 the same compiled by
jit) or in ``bench.chain_engines()`` for W3 (1 numpy forward + backward by hand, 2 the engine, 3 compiled), and
the number of steps.
"""

from __future__ import annotations

import functools
import sys
import warnings

import numpy as np

from tinygrad_edu import bench
from tinygrad_edu.diagnostics import LearnerWarning


def main(workload: str, index: int, steps: int) -> None:
    warnings.simplefilter("ignore", LearnerWarning)  # W2's wide layers saturate from N(0, 1) weights
    np.seterr(over="ignore")
    rng = np.random.default_rng(1)
    if workload == "W3":
        engine = bench.chain_engines()[index]
        batches = [(rng.standard_normal((10, 10)), rng.standard_normal((10, 10))) for _ in range(8)]
    else:
        sizes, size, dtype = ((bench.W1_SIZES, bench.W1_BATCH, np.float64) if workload == "W1" else
                              (bench.W2_SIZES, bench.W2_BATCH, np.float32))
        engine = bench.nielsen_engines(sizes, dtype, 0, per_sample=0, with_torch=False)[index]
        batches = [(rng.random((size, sizes[0])).astype(dtype), np.eye(sizes[-1], dtype=dtype)[
            rng.integers(0, sizes[-1], size)]) for _ in range(8)]
    for batch in batches[:5]:
        engine.run(batch)
    functools.reduce(lambda _, i: engine.run(batches[i % 8]), range(steps), None)
    print(engine.name)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
