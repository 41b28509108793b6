"""The in-place check: refuse to run a rule on values that changed after the forward pass saw them.

``w.data -= lr * w.grad`` between the forward pass and ``backward()``, or ``x[0] = 5`` on a tensor a rule
reads, would make the rule compute the gradient of values that are gone. The design is PyTorch's version
counter, on numpy:

* Every write through a tensor (``t[i] = v``, ``t.data -= d``) bumps the *version* of the array that owns the
  memory. Views, ``detach()`` and ``Tensor(w.data)`` share that array, so they share its version.
* A version here is the time of the last write on one clock that also numbers tensors as they are made, so a
  node made at time ``s`` "remembers" every version it read: any version newer than ``s`` is a change.
* ``backward()`` calls ``check(node)`` before running a node's rule, and refuses if a value the rule reads
  (its inputs where ``op.reads_inputs``, its output where ``op.reads_out``, a mask or index it kept) changed.
  Giving a tensor another array (``t.data = new``) is a change for every op that used it.

NOTE: the version belongs to the whole owning array, as in PyTorch: a write into one row counts as a change of
every view of that array, also of rows the rule reads that were not written (an error, never a wrong gradient).
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any

import numpy as np

from .diagnostics import describe
from .node import AnyNode, Node

__all__ = ["CLOCK", "LOG", "owner", "note_write", "note_new_data", "stale_inputs", "check", "state_to_copy",
           "restore_copy"]

CLOCK = itertools.count()
"""One clock for two events: a tensor's creation (``t._creation_number``) and a write into memory (a version)."""


class _Log:
    """The latest change of anything (nodes made after it need no check), and each written array's version."""

    # NOTE: an instance with slots, not class attributes: backward() reads last_change at every node, where a
    # class attribute's lookup is slower (bench row W3)
    __slots__ = ("last_change", "versions")

    def __init__(self) -> None:
        self.last_change = -1
        # keyed by the owning array's id, because numpy arrays cannot be hashed or given attributes; an entry
        # goes when its array does (weakref.finalize), so an id is never reused while its entry is here
        self.versions: dict[int, int] = {}


LOG = _Log()


def owner(array: np.ndarray) -> np.ndarray:
    """The ndarray that owns ``array``'s memory (itself, unless it is a view)."""
    found, base = array, array.base
    while base is not None:  # as_strided views have a non-ndarray link in the chain
        if isinstance(base, np.ndarray):
            found = base
        base = getattr(base, "base", None)
    return found


def note_write(array: np.ndarray) -> None:
    """A write into ``array``'s memory: bump the version of the array that owns it."""
    memory = array if array.base is None else owner(array)  # a parameter's update (bench row W1) owns it
    key = id(memory)
    if key not in LOG.versions:
        weakref.finalize(memory, LOG.versions.pop, key, None).atexit = False
    LOG.versions[key] = LOG.last_change = next(CLOCK)


def note_new_data(t: Node) -> None:
    """``t.data = new``: the tensor holds another array from now on."""
    t._data_replaced_at = LOG.last_change = next(CLOCK)


def _version(array: np.ndarray) -> int:
    return LOG.versions.get(id(owner(array)), -1)


def stale_inputs(node: AnyNode, every: bool = False) -> list[AnyNode]:
    """The tensors whose values ``node``'s rule reads and that changed after ``node`` was computed: among its
    parents, and ``node`` itself where the rule reads its output. Empty when the rule can run.

    ``every=True`` lists every changed parent and output, read by the rule or not (what a picture of the
    forward pass's values needs: after ``optimizer.step()``, the biases too).
    """
    made, op = node._creation_number, node._op
    if made > LOG.last_change or op is None or not node._parents:
        return []
    stale = [node] if (every or op.reads_out) and max(node._data_replaced_at, _version(node._data)) > made else []
    for parent in node._parents:
        # another array may have another shape, which even a rule that reads only shapes would get wrong
        if parent._data_replaced_at > made or ((every or op.reads_inputs) and _version(parent._data) > made):
            stale.append(parent)
    return stale


def check(node: Node, caller: str = "backward()") -> None:
    """Raise if ``node``'s rule would read a value (input, output, kept mask or index) changed since the forward.

    Callers skip it where nothing was written since the node was made (``node._creation_number > LOG.last_change``).
    """
    made, op = node._creation_number, node._op
    if op is None:  # a leaf: no rule reads anything
        return
    for t in stale_inputs(node):
        if t is node:
            raise RuntimeError(
                f"{caller}: {describe(node)} was changed after {op.name} computed it, and the rule of {op.name} "
                f"reads its output, so the gradient would be computed from the wrong values. Change a copy "
                f"instead (e.g. y = y * mask), or run the forward pass again.")
        how, via = (("was given new data (t.data = ...)", "") if t._data_replaced_at > made else
                    ("was modified in place", " (through it, or through a tensor that shares its memory)"))
        raise RuntimeError(
            f"{caller}: {describe(t)} {how} after {op.name} saved it for the backward pass{via}, so its "
            f"gradient would be computed from the wrong values. Run the forward pass again after changing "
            f"it, change it only between steps (after backward, before the next forward), or give a tensor "
            f"that will be changed its own copy of the data (Tensor(x.copy())).")
    for key, value in (node._kwargs or {}).items():  # masks and indices: where's condition, getitem's index
        arrays: Any = value if isinstance(value, tuple) else (value,)
        if any(isinstance(a, np.ndarray) and _version(a) > made for a in arrays):
            raise RuntimeError(
                f"{caller}: the {key} array that {op.name} kept was modified in place after {op.name} used "
                f"it, so the gradient would go to the wrong elements. Run the forward pass again after "
                f"changing it.")


def state_to_copy(t: Node, keys: list[str]) -> dict[str, Any]:
    """What ``copy``/``pickle`` keep of a tensor. A copy gets fresh stamps (``restore_copy``), so a node whose
    rule would read changed values must not be copied: its copy would pass the check with a wrong gradient."""
    if t._creation_number < LOG.last_change:
        check(t, "copy/pickle")
    return {key: getattr(t, key) for key in keys}


def restore_copy(t: Node, state: dict[str, Any]) -> None:
    """A copy gets a fresh creation number and no change stamp.

    NOTE: numbers from the original (or from another process) would break "parents are older than children";
    copying a graph restores parents before children, so the order holds.
    """
    for key, value in (state[1] if isinstance(state, tuple) else state or {}).items():
        setattr(t, key, value)
    t._creation_number = next(CLOCK)
    t._data_replaced_at = -1
