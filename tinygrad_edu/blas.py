"""How many threads numpy's matrix products use: one, where a thread per core only makes the products wait.

numpy's BLAS (OpenBLAS in the wheels) runs a matrix product on a thread per core. For the tutorials' products the
threads cost more than they share, above all on a machine whose cores are busy with other work, where they wait
for one another; one thread runs steadily (README, Notebooks, has the measurements). ``one_blas_thread()`` sets
that for the rest of the process (the notebooks call it first), ``blas_threads(n)`` inside a ``with`` block.

Both use threadpoolctl, an optional extra (``pip install 'tinygrad_edu[notebooks]'`` brings it); without it they
change nothing, and ``OPENBLAS_NUM_THREADS=1`` in the environment does the same for a whole run.

>>> import numpy as np
>>> with blas_threads(1):
...     product = np.ones((3, 4)) @ np.ones((4, 2))
>>> product.tolist()[0]
[4.0, 4.0]
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["blas_threads", "one_blas_thread", "blas_thread_count"]


def blas_threads(n: int) -> contextlib.AbstractContextManager[Any]:
    """Limit numpy's BLAS to ``n`` threads now; used as ``with blas_threads(1):`` the limit ends with the block.

    Without threadpoolctl installed, a block that changes nothing.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def one_blas_thread() -> bool:
    """Run numpy's matrix products on one thread from now on; False (nothing changed) without threadpoolctl."""
    return not isinstance(blas_threads(1), contextlib.nullcontext)


def blas_thread_count() -> int | None:
    """How many threads numpy's BLAS uses now (the largest, if it has several libraries); None without
    threadpoolctl, which is the one that can tell."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [int(pool["num_threads"]) for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return max(counts) if counts else None
