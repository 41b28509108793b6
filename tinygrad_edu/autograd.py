"""The backward pass: the chain rule, walked over the recorded graph.

One walk, ``backward_steps``, does the work. It starts from the output's gradient and visits tensors newest
first. At each tensor it applies the op's rule from ``ops`` (the local derivative), undoes broadcasting in one
place (``unbroadcast``) and adds the results into the gradients waiting at the parents. It yields every step,
so that ``Tensor.backward()``, ``grad()`` and the step-through page all read the same walk. (Its type hints
say ``Node``: a Tensor, as ``node.py`` describes it to the modules that tensor.py imports.)

>>> from tinygrad_edu import Tensor
>>> x = Tensor([1.0, 2.0], requires_grad=True, name="x")
>>> y = (x * x).sum()
>>> for node, grad_out, parent_grads in backward_steps([y], [np.ones(())]):
...     print(node.op.name if node.op else node.name, grad_out, parent_grads)
sum 1.0 [array([1., 1.])]
mul [1. 1.] [array([1., 2.]), array([1., 2.])]
x [2. 4.] []
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from . import diagnostics, inplace
from .grad_mode import enable_grad, mode
from .node import AnyNode, Node

__all__ = ["toposort", "unbroadcast", "apply_rule", "backward_steps", "backward", "grad"]

_ARRAY = (np.ndarray, np.generic)  # what a rule returns on arrays (numpy reductions of 0-d arrays give scalars)

Step = tuple["AnyNode", Any, list[Any]]
"""``(node, grad_out, parent_grads)``: a tensor, the gradient that reached it, and what it sends to each parent."""


def toposort(roots: Iterable[AnyNode], all_parents: bool = False) -> list[AnyNode]:
    """Every tensor that needs a gradient (``all_parents=True``: every one, as a drawing shows), parents before
    children; iterative, so depth is unlimited."""
    # NOTE: a tensor is made after its parents, so creation order is already a topological order: collect
    # the graph with a stack, then sort it by creation number (deterministic, and cheaper than a DFS order).
    seen: set[AnyNode] = set(roots)  # Tensor hashes by identity
    stack = list(seen)
    while stack:
        for p in stack.pop().parents:
            if (all_parents or p.requires_grad) and p not in seen:
                seen.add(p)
                stack.append(p)
    return sorted(seen, key=lambda t: t._creation_number)


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Bring a rule's gradient to its input's shape: the one place where broadcasting is undone.

    NOTE: if numpy stretched an input (leading axes added, or size-1 axes repeated), each stretched copy
    got its own gradient, and the input's gradient is their sum. A reduction's rule returns a smaller,
    keepdims-shaped gradient instead; that one is expanded to the input's shape.
    """
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    if lead >= 0:
        stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
        if stretched:  # size-1 axes that numpy repeated
            grad = grad.sum(axis=stretched, keepdims=True)
        if lead:  # leading axes that numpy added
            grad = grad.sum(axis=tuple(range(lead)))
        if grad.shape == shape:
            return grad
    if not isinstance(grad, _ARRAY):  # a Tensor (create_graph): the expansion is recorded too
        return grad.broadcast_to(shape)
    full = np.empty(shape, dtype=grad.dtype)  # np.broadcast_to would give a read-only view
    full[...] = grad
    return full


def apply_rule(node: Node, grad_out: Any, create_graph: bool = False) -> tuple[Any, ...]:
    """The op's backward rule at ``node``: one gradient per parent (or None), shaped as the rule returns it; a
    leaf has no rule and sends nothing.

    The rule gets the arrays the forward pass saw or, with ``create_graph``, the Tensors themselves, so that
    the backward pass is recorded too (higher-order gradients).
    """
    op: Any = node._op  # never None at a recorded node (typed loosely: no check on the hot path)
    parents, kwargs = node._parents, node._kwargs
    if not parents:
        return ()
    if not (kwargs or create_graph or len(parents) > 2):
        # NOTE: a fast path (bench row W3): the same calls spelled out for one or two inputs, since Python's
        # f(*args, **kwargs) costs about as much as a small op's numpy
        if len(parents) == 1:
            return op.backward(grad_out, node._data, parents[0]._data)
        a, b = parents
        if op.needs_input_grad:
            return op.backward(grad_out, node._data, a._data, b._data,
                               needs_input_grad=(a.requires_grad, b.requires_grad))
        return op.backward(grad_out, node._data, a._data, b._data)
    if op.needs_input_grad:  # which inputs want a gradient, so the rule can skip the others
        kwargs = {**kwargs, "needs_input_grad": tuple([p.requires_grad for p in parents])}
    if create_graph:
        with enable_grad():
            return op.backward(grad_out, node, *parents, **kwargs)
    return op.backward(grad_out, node._data, *[p._data for p in parents], **kwargs)


def backward_steps(roots: Sequence[AnyNode], grad_outputs: Sequence[Any], create_graph: bool = False,
                   caller: str = "backward()") -> Iterator[Step[AnyNode]]:
    """Walk the graph back from ``roots``, whose gradients are ``grad_outputs``; yield each step, newest first.

    A step is ``(node, grad_out, parent_grads)``: ``grad_out`` is the whole gradient of the roots with respect
    to ``node`` (every consumer has sent its share), ``parent_grads`` what the rule sends to each parent, in
    the parent's shape (None where a parent needs no gradient). A leaf's step has no ``parent_grads``.
    """
    pending: dict[AnyNode, Any] = {}  # gradients arrived at a tensor, not yet passed on
    for root, g in zip(roots, grad_outputs):
        pending[root] = pending[root] + g if root in pending else g
    # NOTE: a tensor is made after its parents, so the newest tensor with a pending gradient has heard from
    # every tensor it feeds: its gradient is complete. Creation numbers are unique: no two entries tie.
    queue = [(-t._creation_number, t) for t in pending]
    heapq.heapify(queue)
    while queue:
        node = heapq.heappop(queue)[1]
        grad_out = pending.pop(node)
        if node._creation_number < inplace.LOG.last_change:  # something was written since node was made
            inplace.check(node, caller)
        parent_grads: list[Any] = []  # the chain rule: what the node sends each parent, in the parent's shape
        for parent, g in zip(node._parents, apply_rule(node, grad_out, create_graph)):
            if g is None or not parent.requires_grad:
                parent_grads.append(None)
                continue
            g = g if g.shape == parent._data.shape else unbroadcast(g, parent._data.shape)
            parent_grads.append(g)
            if parent not in pending:  # the first gradient to arrive: queue the parent
                heapq.heappush(queue, (-parent._creation_number, parent))
            pending[parent] = pending[parent] + g if parent in pending else g
        if mode.anomaly:
            diagnostics.check_finite_grads(node, parent_grads)
        yield node, grad_out, parent_grads


def backward(root: Node, gradient: Any = None) -> None:
    """``root.backward(gradient)``: every leaf adds its gradient into ``.grad``; intermediates keep this pass's."""
    if not root.requires_grad:
        raise diagnostics.not_requiring_grad(root)
    if gradient is None and root.size != 1:
        raise diagnostics.non_scalar(root)
    start = np.ones_like(root.data) if gradient is None else diagnostics.checked_gradient(root, gradient)
    shared: set[int] = set()  # memory (by owner) that another tensor's .grad holds too: a leaf copies it
    for node, grad_out, parent_grads in backward_steps([root], [start]):
        if not node._parents:
            accumulate(node, grad_out, shared)
            continue
        node._grad = grad_out if type(grad_out) is np.ndarray else np.asarray(grad_out)
        for g in parent_grads:
            if g is grad_out:  # the rule passed its upstream array on as it is (add does)
                shared.add(id(inplace.owner(g)))
                break


def accumulate(leaf: Node, g: Any, shared: set[int]) -> None:
    """Add this pass's gradient into a leaf's ``.grad``, which always has the leaf's dtype and memory layout.

    The first gradient is taken as it is when it fits (no copy), unless its memory is in ``shared``: held by the
    ``.grad`` of another tensor too, because a rule passed it on as it is, or another leaf took it. Later ones are
    added in place. Like its data, a leaf's ``.grad`` may share memory with the ``.grad`` of a transpose or
    reshape of it (``W.T``), never with another leaf's or with an array a rule passed on as it is."""
    data, total = leaf.data, leaf._grad
    if total is None:
        # NOTE: PyTorch's gradient layout contract: a .grad laid out like its .data keeps every later
        # elementwise pass (the update, the next accumulation) running along the grain of memory. Taking the
        # array without a copy when it already fits is a fast path (bench row W1).
        memory = id(inplace.owner(g))
        if (type(g) is np.ndarray and g.dtype == data.dtype and g.strides == data.strides and g.flags.writeable
                and memory not in shared):
            shared.add(memory)  # and no other leaf takes it
        else:
            g, copy = np.empty_like(data), g
            g[...] = copy
        leaf._grad = g
    elif total.shape != data.shape:  # `w.data = ...` gave the leaf another shape since its .grad was set
        raise diagnostics.shape_changed(leaf)
    else:
        diagnostics.second_pass(leaf)
        if total.dtype == data.dtype and total.flags.writeable and np.can_cast(g.dtype, total.dtype, "same_kind"):
            total += g
        else:  # made read-only, or the data given another dtype: a new array
            leaf._grad = (total + g).astype(data.dtype, copy=False)


def grad(outputs: Node | Sequence[Node], inputs: Node | Sequence[Node],
         grad_outputs: Any = None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple[Any, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, returned without touching any ``.grad``.

    With ``create_graph=True`` the rules run on Tensors, so the returned gradients are Tensors with a graph
    of their own and can be differentiated again (second derivatives, Hessian-vector products).

    >>> from tinygrad_edu import Tensor
    >>> x = Tensor(2.0, requires_grad=True)
    >>> (dy,) = grad(x ** 3, x, create_graph=True)
    >>> (d2y,) = grad(dy, x)
    >>> float(dy.data), float(d2y)
    (12.0, 12.0)
    """
    outs = list(outputs) if isinstance(outputs, Sequence) else [outputs]  # a Tensor is not a Sequence
    ins = list(inputs) if isinstance(inputs, Sequence) else [inputs]
    upstream = (list(grad_outputs) if isinstance(grad_outputs, (list, tuple)) else
                [None] * len(outs) if grad_outputs is None else [grad_outputs])
    if len(upstream) != len(outs):
        raise ValueError(f"grad(): {len(outs)} outputs but {len(upstream)} grad_outputs; give one per output.")
    starts = []  # the gradient each output starts from
    for out, g in zip(outs, upstream):
        if not out.requires_grad or (g is None and out.size != 1):
            raise RuntimeError(f"grad(): output {diagnostics.describe(out)} " + (
                "does not require grad; nothing to differentiate." if not out.requires_grad else
                f"is not a scalar; pass grad_outputs=[an array of shape {out.shape}]."))
        g = np.ones_like(out.data) if g is None else diagnostics.checked_gradient(out, g, keep_graph=create_graph)
        starts.append(type(out)(g) if create_graph and isinstance(g, _ARRAY) else g)  # create_graph: a Tensor
    wanted = set(ins)
    found = {node: g for node, g, _ in backward_steps(outs, starts, create_graph, "grad()") if node in wanted}
    for i, t in enumerate(ins):
        if t not in found and not allow_unused:
            raise RuntimeError(
                f"grad(): input {i} ({diagnostics.describe(t)}) is not used to compute the outputs (or does "
                f"not require grad). Pass allow_unused=True to get None for it.")
    return tuple(None if t not in found else np.array(found[t]) if isinstance(found[t], _ARRAY) else found[t]
                 for t in ins)
