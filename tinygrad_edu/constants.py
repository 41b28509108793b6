"""A cache of the constant operands a training step repeats: ``x * 2``, ``1 - x``, ``loss / n``.

NOTE: each such number would otherwise become a new array and a new Tensor on every op; wrapping each one once
(read-only, so sharing it between graphs is safe) is a fast path for the chain of bench row W3.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .node import AnyNode

__all__ = ["cached"]

_CACHE: dict[tuple[Any, ...], Any] = {}  # the Tensors that `make` returned


def cached(x: float, dtype: np.dtype, make: Callable[[np.ndarray, bool], AnyNode]) -> AnyNode:
    """The constant Tensor for the Python number ``x`` in ``dtype``, made by ``make`` the first time."""
    # 1 == 1.0 give the same constant; 0.0 == -0.0 must not (1 / x tells them apart)
    key = (x, dtype) if x else (x, math.copysign(1.0, x), dtype)
    constant = _CACHE.get(key)
    if constant is None or constant._data_replaced_at != -1 or constant.requires_grad:  # one a user changed
        if len(_CACHE) >= 1024:
            _CACHE.clear()
        array = np.array(x, dtype=dtype)
        array.flags.writeable = False
        constant = _CACHE[key] = make(array, False)
    return constant
