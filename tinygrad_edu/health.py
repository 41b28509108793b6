"""Whether training is healthy: the one definition of a saturated output, and the watch ``fit`` keeps.

An output of a sigmoid (or softmax) or tanh is **saturated** when it lies within ``SATURATION_MARGIN`` of a limit
of its range: a sigmoid above 0.99 or below 0.01, a tanh beyond ±0.99. There the local derivative is almost 0,
so almost no gradient passes back through it. The health table (``visualize.training.layer_health``) reports the
fraction per layer; ``fit`` warns when a hidden layer is almost all saturated (``watch_saturation``).

>>> import numpy as np
>>> saturated(np.array([0.005, 0.5, 0.995]), "sigmoid")
array([ True, False,  True])
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from . import ops
from .autograd import toposort
from .diagnostics import describe, learner_warning

if TYPE_CHECKING:
    from .tensor import Tensor

__all__ = ["SATURATION_MARGIN", "saturated", "watch_saturation"]

SATURATION_MARGIN = 0.01
"""How close to a limit of its range (0 and 1, or -1 and 1) an output must be to count as saturated."""


def saturated(values: np.ndarray, kind: str) -> np.ndarray:
    """Which of a layer's outputs are saturated (a boolean array like ``values``); ``kind`` is "sigmoid",
    "softmax" or "tanh"."""
    if kind == "tanh":
        return np.abs(values) > 1 - SATURATION_MARGIN
    return (values > 1 - SATURATION_MARGIN) | (values < SATURATION_MARGIN)


_LOOKS = itertools.count()


def watch_saturation(loss: Tensor) -> None:
    """Now and then (one call in 32, so a training step rarely pays for it), look in the graph of ``loss`` for a
    hidden sigmoid or tanh layer (one whose outputs feed a matmul) with almost all outputs saturated: the layers
    before it learn almost nothing. ``fit`` calls it after every ``backward()``.

    NOTE: "almost all" means 99%, and only hidden layers count: raw pixels (0-255) saturate nearly all of the first
    hidden layer, while an output layer near 0 and 1 is a confident classifier (a well-trained [784, 30, 10]
    passes 99% there on some mini-batches).
    """
    if next(_LOOKS) % 32:
        return
    for node in toposort([loss]):
        if node.op is not ops.MatMul:
            continue
        for t in node.parents:
            if t.op not in (ops.Sigmoid, ops.Tanh) or t.size < 16:
                continue
            kind = "sigmoid" if t.op is ops.Sigmoid else "tanh"
            fraction = float(np.mean(saturated(t.data, kind)))
            if fraction >= 0.99:
                learner_warning(f"saturation {kind}", (
                    f"{kind}: {fraction:.0%} of the outputs of this {describe(t)} are saturated (within "
                    f"{SATURATION_MARGIN} of their limits), where the derivative is almost 0, so the layers before "
                    f"it barely learn. Scale the inputs to about [0, 1] (pixels / 255), or start from smaller weights "
                    f"(nn.MLP(..., init='nielsen'), N(0, 1/fan_in))."))
