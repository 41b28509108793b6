"""The memory one W2 step allocates at its peak, above what it started with, per engine (numpy's arrays, tracemalloc).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python .ci/step_memory.py

Each engine takes five untimed steps first (a step compiled by jit records and compiles there), then three more
are watched. Resident memory (the bench's memory rows) cannot show this: the allocator keeps freed pages.
"""

from __future__ import annotations

import gc
import tracemalloc
import warnings

import numpy as np

from tinygrad_edu import bench
from tinygrad_edu.diagnostics import LearnerWarning


def main() -> None:
    warnings.simplefilter("ignore", LearnerWarning)  # W2's wide layers saturate from N(0, 1) weights
    np.seterr(over="ignore")
    engines = bench.nielsen_engines(bench.W2_SIZES, np.float32, 0, per_sample=0, with_torch=False)
    rng = np.random.default_rng(1)
    batches = [(rng.random((bench.W2_BATCH, 784)).astype(np.float32),
                np.eye(10, dtype=np.float32)[rng.integers(0, 10, bench.W2_BATCH)]) for _ in range(8)]
    tracemalloc.start()
    for index in (0, 2, 4, 3, 5):
        engine = engines[index]
        for batch in batches[:5]:
            engine.run(batch)
        gc.collect()
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for batch in batches[5:]:
            engine.run(batch)
        peak = tracemalloc.get_traced_memory()[1]
        print(f"{engine.name:70} step peak above its start: {(peak - start) / 2**20:6.1f} MiB")


if __name__ == "__main__":
    main()
