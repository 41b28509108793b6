"""What a learner passes as "the parameters", read in one place: ``named_items``.

The optimizers (``optim.SGD(model.parameters(), ...)``), the pictures (``draw(loss, params=model)``) and the
training plots (``layer_health(model)``) all take the same kinds of argument: a model, a dict, ``(name, tensor)``
pairs or bare tensors. ``named_items`` turns each into ``(name, item)`` pairs; each caller checks the items for
what it needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .tensor import Tensor

__all__ = ["named_items"]


def named_items(params: Any, caller: str) -> list[tuple[str, Any]]:
    """``(name, item)`` pairs from whatever a learner passes as "the parameters": a model (its
    ``named_parameters()``), a dict ``{name: tensor}``, ``(name, tensor)`` pairs, or bare tensors (name ``""``).

    The one reader of that argument for the optimizers, the pictures and the training plots; each checks the
    items for what it needs.

    >>> w = Tensor([1.0], name="w")
    >>> named_items({"w": w}, "demo") == named_items([("w", w)], "demo") == [("w", w)], named_items([w], "demo")[0][0]
    (True, '')
    """
    if params is None:
        return []
    if isinstance(params, Tensor):
        raise TypeError(f"{caller}: params must be a list of tensors; wrap a single one: [{params.name or 'w'}].")
    if hasattr(params, "named_parameters"):
        return [(str(name), p) for name, p in params.named_parameters()]
    if isinstance(params, Mapping):
        return [(str(name), p) for name, p in params.items()]
    if not isinstance(params, Iterable) or isinstance(params, (str, bytes)):
        raise TypeError(
            f"{caller}: params must be a model (anything with named_parameters()), a dict {{name: Tensor}} or a "
            f"list of (name, Tensor) pairs, not a {type(params).__name__}.")
    return [item if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) else ("", item)
            for item in params]
