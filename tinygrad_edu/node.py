"""A node of the recorded graph: what the backward walk and its checks read of a tensor.

``autograd`` (the walk), ``inplace`` (the in-place check), ``diagnostics`` (the messages) and ``constants`` come
before ``tensor``: tensor.py imports them, so they cannot import the ``Tensor`` class back without a circle.
Their type hints say ``Node``, this description of a tensor, instead. ``Tensor`` fits it without naming it: a
``typing.Protocol`` is checked by mypy (a Tensor passed where a Node is expected must have every member below,
with these types) and does nothing at run time.

>>> from tinygrad_edu import Tensor
>>> x = Tensor([1.0, 2.0], requires_grad=True, name="x")
>>> y = x * 2
>>> y._op.name, y._parents[0] is x, x._op, x._parents
('mul', True, None, ())
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import numpy as np

from .ops import Op

__all__ = ["Node", "AnyNode"]

AnyNode = TypeVar("AnyNode", bound="Node")
"""Whatever kind of node came in: ``toposort(tensors)`` gives back Tensors, not just Nodes."""


class Node(Protocol):
    """A tensor as the engine's lower modules see it: its array, its gradient, and the op that made it."""

    _data: np.ndarray
    _grad: np.ndarray | None
    requires_grad: bool
    name: str | None
    _op: type[Op] | None  # None for a leaf
    _kwargs: dict[str, Any]  # the op's arguments
    _creation_number: int  # when it was made (parents are always older)
    _data_replaced_at: int  # when `t.data = new` last gave it another array (-1: never)
    _site: str | None  # file:line of the learner's code that made it (under detect_anomaly)

    def __init__(self, data: Any) -> None:
        """A new leaf holding ``data``: ``type(t)(array)`` makes a tensor of ``t``'s own kind."""

    @property
    def _parents(self: AnyNode) -> tuple[AnyNode, ...]:
        """The tensors this one was computed from, of its own kind (a Tensor's parents are Tensors)."""

    @property
    def parents(self: AnyNode) -> tuple[AnyNode, ...]: ...

    @property
    def op(self) -> type[Op] | None: ...

    @property
    def data(self) -> np.ndarray: ...

    @property
    def grad(self) -> np.ndarray | None: ...

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def ndim(self) -> int: ...

    @property
    def size(self) -> int: ...

    @property
    def dtype(self) -> np.dtype: ...
