"""``jit(step)``: record a whole training step once as the numpy calls it makes, then replay them.

A step is forward, ``backward()`` and the update (``optimizer.step()`` or ``p.data -= lr * p.grad``). Eagerly,
each call of it also builds the graph, walks it and runs every rule through the engine's bookkeeping: a few
microseconds of Python per node, more than the numpy itself for small networks. ``jit`` runs the step eagerly,
recording the numpy calls that the ops' forwards, their backward rules and the update make; from then on it calls
only those, in the same order on the same arrays, so every number comes out bit for bit as eager's. What it
replays is Python you can read: ``step.source``, the backprop the engine derived, each backward line headed by
its op's rule.

>>> import numpy as np
>>> from tinygrad_edu import Tensor, jit, nn, optim, losses
>>> model = nn.MLP([4, 3, 2], rng=0)
>>> optimizer = optim.SGD(model.parameters(), lr=0.5)
>>> @jit
... def train_step(x, y):
...     loss = losses.quadratic_cost(model(Tensor(x)), y)
...     optimizer.zero_grad()
...     loss.backward()
...     optimizer.step()
...     return loss
>>> rng = np.random.default_rng(0)
>>> x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
>>> [round(train_step(x, y).item(), 6) for _ in range(5)]  # calls 1 to 3 record, 4 and 5 replay
[0.954792, 0.934714, 0.913061, 0.889896, 0.865383]
>>> train_step
jit(train_step): 1 compiled, 2 replays
>>> [line.strip() for line in train_step.source.splitlines() if "grad_layers_0_weight =" in line]
['grad_layers_0_weight = x.mT @ grad_add_2']

How it works, and what it cannot see:

* The first calls with a new signature (the shapes, dtypes and layouts of the array arguments) run eagerly and
  record; once two recordings in a row agree, the step is compiled and later calls replay it (the very first call
  often differs: it makes each parameter's first .grad, or an optimizer's state). Three that all differ are
  refused. A smaller last mini-batch has another signature, so it gets its own recording (``step.traces``).
* Parameters and optimizer state are found from the step itself (the variables it uses: its closure, the globals
  it names, its arguments, and what they hold) and read afresh at every replay, so ``load_state_dict`` between
  calls is seen. Updates in place and new arrays given to a tensor (``t.data = new``, ``.grad``) are replayed.
* An optimizer whose ``step()`` computes a new Python number every call (Adam's bias correction counts the steps
  in Python) is left out of the recording when nothing else differs: a replay runs forward and backward, stores
  the ``.grad``, then calls that ``step()`` as it is (the source says so where the update would be).
* A random draw from a ``np.random.Generator`` that the step can reach (``Dropout``'s) is replayed: a new draw
  every call, from the same generator, in the same order.
* The Python values a step reads are checked at every call where jit can see them: each module's ``training``,
  an optimizer's settings (``lr``), numbers in globals and closures the step names. A changed one means a new
  recording; a step that changes one itself (a counter) is refused.
* Refused with a ``JitError`` that says why: reading an array's values into Python inside the step (``if
  loss.item() > 1:``, ``print(loss)``: a branch on data keeps the first call's choice), a step that makes no
  numpy call jit can follow ("nothing was jitted"), a forward pass returned without ``backward()``, values that
  change between calls in a way the recording cannot follow (a number computed in Python, a draw from a generator
  jit cannot reach), storing a new value where jit cannot replay it
  (appending to a list), assigning a global, a parameter or module rebound inside the step (``layer.weight =
  Tensor(...)``), a new generator given to a layer inside the step (the course reseeds its dropout masks).
* Not seen (documented, not caught): Python state the step changes that no numpy call touches (a counter in an
  object jit does not walk), a Python value read from somewhere jit does not look (a dict of settings two calls
  deep), rebinding a module or a generator between calls (``model.layers[0] = ...``), so a step keeps the model
  it was recorded with.
* The source frees each array after the last line that reads it (``del``), so a replay holds no more memory than
  eager's walk does.
* ``detect_anomaly()`` runs the step eagerly. A replay whose loss (or a value the engine watches: ``log``, a
  division) is not finite falls back to one eager step, so the message points at the op, as eager's does.
* The replay returns new tensors without a graph; ``.grad`` and other arrays it stores are new each call, as
  eager's. Draw, the step-through and ``check_backprop`` stay eager.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import dis
import gc
import inspect
import itertools
import linecache
import math
import os
import sys
import types
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import autograd, inplace
from . import tensor as tensor_module
from .codegen import Fallback, Program, _consts, _refs, write
from .grad_mode import mode
from .inplace import CLOCK, LOG
from .nn import Module
from .optim import Optimizer
from .tensor import Tensor, _new
from .trace import Const, GeneratorProxy, JitError, Recorder, Ref, Traced, owner_of

__all__ = ["jit", "Jitted", "JitError"]

_MISS = object()       # a replay that does not fit these arguments (another signature, a changed setting)
_FALLBACK = object()   # a replay that met a guard: run this step eagerly


# -- where a step keeps its state ------------------------------------------------------------------------------

@dataclass(eq=False)
class Slot:
    """A place that holds an object: an attribute (a tensor's ``_data`` too), a list or dict item, a closure cell."""

    holder: Any
    key: Any
    kind: str      # "attr", "item" or "cell"
    path: str      # for names and messages

    def get(self) -> Any:
        if self.kind == "attr":
            return getattr(self.holder, self.key, None)
        if self.kind == "item":
            try:
                return self.holder[self.key]
            except (KeyError, IndexError):
                return None
        return self.holder.cell_contents

    def set(self, value: Any) -> None:
        if self.kind == "attr":
            setattr(self.holder, self.key, value)
        elif self.kind == "item":
            self.holder[self.key] = value
        else:
            self.holder.cell_contents = value

    def same(self, other: Slot) -> bool:
        return self.holder is other.holder and self.key == other.key and self.kind == other.kind

    def code(self, holder: str) -> str:
        if self.kind == "attr":
            return f"{holder}.{self.key}"
        if self.kind == "item":
            return f"{holder}[{self.key!r}]"
        return f"{holder}.cell_contents"


_SKIP_MODULES = frozenset({"builtins", "numpy", "torch", "matplotlib", "IPython", "ipykernel", "tqdm", "graphviz",
                           "scipy", "pandas", "PIL", "jupyter_client", "traitlets", "zmq", "tornado", "_pytest",
                           "pytest", "hypothesis", "threadpoolctl"})
_SKIP_MODULES |= frozenset(getattr(sys, "stdlib_module_names", ()))
_OWN_MODULES = frozenset({__name__, "tinygrad_edu.trace", "tinygrad_edu.codegen"})
_ENGINE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_MAX_DEPTH = 6
_MAX_ITEMS = 2000


@dataclass
class Found:
    """What a step can reach: the arrays and generators it may read, the Python values to check, the names."""

    arrays: list[Slot] = field(default_factory=list)
    generators: list[Slot] = field(default_factory=list)
    settings: list[tuple[Slot, Any]] = field(default_factory=list)   # Python values checked at every call
    lists: list[tuple[list[Any], int, str]] = field(default_factory=list)  # to see a list grow
    names: dict[int, str] = field(default_factory=dict)              # id(tensor) -> name for the source
    optimizers: list[Optimizer] = field(default_factory=list)


def _code_names(code: types.CodeType) -> Iterator[str]:
    """The global names a function's code reads (not attribute names: ``optimizer.step`` is no global ``step``)."""
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            yield str(ins.argval)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


def discover(fn: Callable[..., Any], args: tuple[Any, ...]) -> Found:
    """Walk from the step (its closure, the globals it names, its bound object) and the non-array arguments."""
    found = Found()
    seen: set[int] = set()
    by_module: set[int] = set()

    def member(holder: Any, key: Any, kind: str, value: Any, path: str, depth: int, watch: bool) -> None:
        if isinstance(value, np.ndarray):
            if not isinstance(value, Traced):
                found.arrays.append(Slot(holder, key, kind, path))
        elif isinstance(value, np.random.Generator):
            found.generators.append(Slot(holder, key, kind, path))
        elif watch and (isinstance(value, (bool, int, float, str)) or (
                type(value) is tuple and all(isinstance(v, (bool, int, float, str)) for v in value))):
            found.settings.append((Slot(holder, key, kind, path), value))
        else:
            visit(value, path, depth + 1)

    def visit(obj: Any, path: str, depth: int) -> None:
        if id(obj) in seen or depth > _MAX_DEPTH or obj is None or isinstance(obj, (bool, int, float, str, bytes)):
            return
        seen.add(id(obj))
        if isinstance(obj, Tensor):
            if id(obj) not in by_module:
                found.names.setdefault(id(obj), _tensor_path_name(obj, path))
            for attr, field_name in (("_data", "data"), ("_grad", "grad")):
                if isinstance(getattr(obj, attr), np.ndarray):
                    found.arrays.append(Slot(obj, attr, "attr", f"{path}.{field_name}"))
            return
        if isinstance(obj, Module):
            found.settings.append((Slot(obj, "training", "attr", f"{path}.training"), obj.training))
            for name, t in list(obj.named_parameters()) + list(obj.named_buffers()):
                if id(t) not in by_module:  # a module's own names win over the path that found the tensor
                    by_module.add(id(t))
                    found.names[id(t)] = name
            for attr, value in list(vars(obj).items()):
                member(obj, attr, "attr", value, f"{path}.{attr}", depth, not attr.startswith("_"))
            return
        if isinstance(obj, Optimizer):
            found.optimizers.append(obj)
            for attr, value in list(vars(obj).items()):
                member(obj, attr, "attr", value, f"{path}.{attr}", depth, not attr.startswith("_"))
            return
        if isinstance(obj, list):
            found.lists.append((obj, len(obj), path))
            for i, value in enumerate(obj[:_MAX_ITEMS]):
                member(obj, i, "item", value, f"{path}[{i}]", depth, False)
            return
        if isinstance(obj, dict):
            for key, value in list(obj.items())[:_MAX_ITEMS]:
                member(obj, key, "item", value, f"{path}[{key!r}]", depth, False)
            return
        if isinstance(obj, tuple):
            for i, value in enumerate(obj[:_MAX_ITEMS]):
                if not isinstance(value, (np.ndarray, np.random.Generator)):
                    visit(value, f"{path}[{i}]", depth + 1)
            return
        if isinstance(obj, types.FunctionType):
            function(obj, path, depth)
            return
        if isinstance(obj, types.MethodType):
            visit(obj.__self__, path, depth + 1)
            visit(obj.__func__, path, depth + 1)
            return
        if isinstance(obj, (types.ModuleType, type, types.BuiltinFunctionType)) or not hasattr(obj, "__dict__"):
            return
        if type(obj).__module__.split(".")[0] in _SKIP_MODULES or type(obj).__module__ in _OWN_MODULES:
            return  # never jit's own records (another jitted step named in the same globals)
        with contextlib.suppress(TypeError):
            for attr, value in list(vars(obj).items()):
                member(obj, attr, "attr", value, f"{path}.{attr}", depth, False)

    def function(fn: types.FunctionType, path: str, depth: int) -> None:
        code = fn.__code__
        for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
            with contextlib.suppress(ValueError):  # an empty cell
                member(cell, None, "cell", cell.cell_contents, name, depth, True)
        if os.path.abspath(code.co_filename).startswith(_ENGINE_DIR):
            return  # the engine's own functions: their globals are its modules, not the learner's state
        for name in dict.fromkeys(_code_names(code)):
            if name in fn.__globals__:
                member(fn.__globals__, name, "item", fn.__globals__[name], name, depth, True)
        for default in (fn.__defaults__ or ()) + tuple((fn.__kwdefaults__ or {}).values()):
            visit(default, path, depth + 1)

    visit(fn, getattr(fn, "__name__", "step"), 0)
    for i, arg in enumerate(args):
        if not isinstance(arg, (np.ndarray, Tensor, tuple, list)):
            visit(arg, f"arg{i}", 1)
    return found


def _tensor_path_name(t: Tensor, path: str) -> str:
    return t.name if t.name and t.name.isidentifier() and t.name not in ("weight", "bias") else path


# -- the arguments: arrays and tensors by position, the rest by value -------------------------------------------

def _flatten(args: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """``(path, leaf)`` for every argument, descending into tuples and lists."""
    for i, a in enumerate(args):
        if type(a) in (tuple, list):
            yield from _flatten(a, prefix + (i,))
        else:
            yield prefix + (i,), a


def signature(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """What a recording is specific to: each array's shape, dtype and layout; the other arguments' values."""
    parts: list[Any] = [mode.grad_enabled]
    for path, a in _flatten(list(args) + sorted(kwargs.items())):
        if isinstance(a, Tensor):
            d = a._data
            parts.append(("tensor", path, d.shape, d.dtype.str, d.strides, a.requires_grad, a._grad is None))
        elif isinstance(a, np.ndarray):
            parts.append(("array", path, a.shape, a.dtype.str, a.strides))
        elif isinstance(a, (bool, int, float, str, type(None))):
            parts.append(("value", path, type(a).__name__, a))
        else:
            parts.append(("object", path, id(a)))
    return tuple(parts)


def _describe_signature(args: tuple[Any, ...], names: list[str]) -> str:
    parts = []
    for path, a in _flatten(args):
        name = _input_name(path, names)
        if isinstance(a, (Tensor, np.ndarray)):
            d = a._data if isinstance(a, Tensor) else a
            parts.append(f"{name} {d.shape} {d.dtype}")
    return ", ".join(parts)


def _input_name(path: tuple[Any, ...], names: list[str]) -> str:
    head = names[path[0]] if path[0] < len(names) else f"arg{path[0]}"
    return "_".join([head] + [str(p) for p in path[1:]])


def _parameter_names(fn: Callable[..., Any]) -> list[str]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


# -- one recorded call --------------------------------------------------------------------------------------------

@dataclass
class Recording:
    """One eager run of the step, recorded, and what it read and left behind."""

    recorder: Recorder
    inputs: list[tuple[int, tuple[Any, ...], str]]   # (value, argument path, "" / "data" / "grad")
    state: list[tuple[int, Slot]]                    # (value, where it was read)
    generators: list[tuple[int, Slot]]               # (const, where it lives)
    stores: list[tuple[int, Any, str]]               # (value, where it was stored: a Slot or an input path, note)
    result: Any                                      # the return value's template
    settings: list[tuple[Slot, Any]]
    names: dict[int, str]
    optimizers: list[Optimizer]
    backward_ran: bool
    clock_start: int
    eager_steps: list[Optimizer] = field(default_factory=list)  # optimizers whose step() a replay calls as it is


class _Annotate:
    """The engine's own functions, wrapped while a step is recorded, to note which op and rule each call is.

    They are module attributes the engine calls by name (``apply_op``, ``autograd.apply_rule``, ...): wrapping them
    here costs the eager engine nothing when nothing is recorded.
    """

    def __init__(self, rec: Recorder, found: Found) -> None:
        self.rec, self.found = rec, found
        self.backward_ran = False

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        rec = self.rec
        saved_apply_op, saved_rule = tensor_module.apply_op, autograd.apply_rule
        saved_unbroadcast, saved_backward, saved_accumulate = (autograd.unbroadcast, autograd.backward,
                                                               autograd.accumulate)

        def apply_op(op: Any, *parents: Any, **kwargs: Any) -> Any:
            with rec.note("forward", op):
                out = saved_apply_op(op, *parents, **kwargs)
            value = rec.value_of(out._data)
            if value is not None and value.tensor is None:
                value.tensor = weakref.ref(out)
                value.hints.append((1, op.name))
            return out

        def apply_rule(node: Any, grad_out: Any, create_graph: bool = False) -> Any:
            ref = weakref.ref(node)
            rec.hint(grad_out, 5, lambda: "grad_" + self.name(ref()))
            with rec.note("backward", node._op, ref):
                grads = saved_rule(node, grad_out, create_graph)
            for parent, g in zip(node._parents, grads):
                rec.hint(g, 3, self.grad_name(weakref.ref(parent)))
            return grads

        def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
            with rec.note("unbroadcast"):
                return saved_unbroadcast(grad, shape)

        def backward(root: Any, gradient: Any = None) -> None:
            rec.section = "backward"
            self.backward_ran = True
            try:
                with rec.note("walk"):
                    saved_backward(root, gradient)
            finally:
                rec.section = "update"

        def accumulate(leaf: Any, g: Any, shared: set[int]) -> None:
            with rec.note("accumulate"):
                saved_accumulate(leaf, g, shared)

        steps = []
        for opt in self.found.optimizers:
            bound = opt.step

            def step(bound: Any = bound, name: str = type(opt).__name__, opt: Optimizer = opt) -> Any:
                with rec.note("update", name, opt):
                    return bound()
            opt.step = step  # type: ignore[method-assign]
            steps.append(opt)
        tensor_module.apply_op = apply_op
        autograd.apply_rule, autograd.unbroadcast = apply_rule, unbroadcast
        autograd.backward, autograd.accumulate = backward, accumulate
        try:
            yield
        finally:
            tensor_module.apply_op = saved_apply_op
            autograd.apply_rule, autograd.unbroadcast = saved_rule, saved_unbroadcast
            autograd.backward, autograd.accumulate = saved_backward, saved_accumulate
            for opt in steps:
                del opt.step

    def grad_name(self, ref: weakref.ref[Any]) -> Callable[[], str]:
        """The name of a gradient, found once the recording is over (a tensor may be named later in the step)."""
        return lambda: "grad_" + self.name(ref())

    def name(self, t: Any) -> str:
        if t is None:
            return "t"
        return _display_name(t, self.found.names)


def _display_name(t: Tensor, names: dict[int, str]) -> str:
    if id(t) in names:
        return names[id(t)].replace(".", "_")
    if t.name and t.name.replace(" ", "").isidentifier():
        return t.name
    return t.op.name if t.op is not None else "t"


def _rebinds(fn: Callable[..., Any]) -> str | None:
    """The global or nonlocal variable ``fn`` assigns, if any: a replay would never assign it again."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    for ins in dis.get_instructions(code):
        if ins.opname == "STORE_GLOBAL" or (ins.opname == "STORE_DEREF" and ins.argval in code.co_freevars):
            return str(ins.argval)
    return None


def record(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Recording]:
    """Run ``fn`` eagerly once, recording every numpy call; return its result and the recording."""
    assigned = _rebinds(fn)
    if assigned is not None:
        raise JitError(f"jit: the step assigns the variable {assigned!r} (global or nonlocal). A replay runs the "
                       f"recorded numpy calls only, so that assignment would happen on the recorded calls and never "
                       f"again. Return the value instead (or keep it in an array the step updates in place).")
    found = discover(fn, tuple(args) + tuple(kwargs.values()))
    rec = Recorder()
    notes = _Annotate(rec, found)
    names = _parameter_names(fn)
    clock_start = next(CLOCK)
    inputs: list[tuple[int, tuple[Any, ...], str]] = []
    swapped: list[tuple[Slot, Any, Traced]] = []       # (slot, original, what the step got)
    tensors_in: list[tuple[Tensor, str, Any, Traced]] = []
    generators: list[tuple[int, Slot, np.random.Generator, GeneratorProxy]] = []
    before = [(s, s.get()) for s, _ in found.settings]

    def given(a: Any, path: tuple[Any, ...]) -> Any:
        if isinstance(a, Tensor):
            for attr, what in (("_data", "data"), ("_grad", "grad")):
                array = getattr(a, attr)
                if isinstance(array, np.ndarray):
                    traced = rec.external(array, ("input", path, what))
                    inputs.append((traced._index, path, what))
                    rec.hint(traced, 9, _input_name(path, names) + ("" if what == "data" else "_grad"))
                    tensors_in.append((a, attr, array, traced))
                    setattr(a, attr, traced)
            return a
        if isinstance(a, np.ndarray):
            traced = rec.external(a, ("input", path, ""))
            inputs.append((traced._index, path, ""))
            rec.hint(traced, 9, _input_name(path, names))
            return traced
        if type(a) in (tuple, list):
            return type(a)(given(x, path + (i,)) for i, x in enumerate(a))
        return a

    result: Any = None
    recording: Recording | None = None
    try:
        with rec.recording(), notes.active():
            for slot in found.arrays:
                original = slot.get()
                if not isinstance(original, np.ndarray) or isinstance(original, Traced):
                    continue
                traced = rec.external(original, ("state", slot.path))
                owner = slot.holder
                if isinstance(owner, Tensor) and id(owner) in found.names and slot.key == "_data":
                    rec.hint(traced, 9, found.names[id(owner)].replace(".", "_"))
                elif isinstance(owner, Tensor) and id(owner) in found.names:
                    rec.hint(traced, 9, found.names[id(owner)].replace(".", "_") + "_grad")
                else:
                    rec.hint(traced, 8, _slot_name(slot))
                slot.set(traced)
                swapped.append((slot, original, traced))
            for slot in found.generators:
                real = slot.get()
                if not isinstance(real, np.random.Generator):
                    continue
                handle = rec.const(real)
                proxy = GeneratorProxy(real, rec, handle)
                slot.set(proxy)
                generators.append((handle.index, slot, real, proxy))
            call_args = [given(a, (i,)) for i, a in enumerate(args)]
            call_kwargs = {k: given(v, (k,)) for k, v in kwargs.items()}
            result = fn(*call_args, **call_kwargs)
            rec.busy = True  # what follows reads the recording; it records nothing
        recording = _finish(rec, found, notes, result, inputs, swapped, tensors_in, generators, clock_start)
    finally:
        _restore(rec, swapped, tensors_in, generators)
    changed = [(slot, old, slot.get()) for slot, old in before if slot.get() != old]
    if changed:
        slot, old, new = changed[0]
        raise JitError(f"jit: the step changes the Python value {slot.path} ({old!r} -> {new!r}) that it reads. "
                       f"A replay runs numpy only, so that value would stay as the recording left it. Keep "
                       f"counters and schedules outside the step (pass a number as an argument), or do not jit it.")
    result = _plain_result(result)  # an array the step returned: the learner gets a plain one
    _check_escapes(recording.recorder)
    return result, recording


def _plain_result(x: Any) -> Any:
    if isinstance(x, Traced):
        return _plain_deep(x)
    if type(x) in (tuple, list):
        return type(x)(_plain_result(i) for i in x)
    if type(x) is dict:
        return {k: _plain_result(v) for k, v in x.items()}
    return x


def _slot_name(slot: Slot) -> str:
    path = slot.path.split(".")[-1] if slot.kind == "attr" else slot.path
    if isinstance(slot.holder, list):
        parent = slot.path.rsplit("[", 1)[0].split(".")[-1]
        return f"{parent.lstrip('_')}_{slot.key}"
    return path.lstrip("_") or "state"


def _restore(rec: Recorder, swapped: list[tuple[Slot, Any, Traced]], tensors_in: list[Any],
             generators: list[Any]) -> None:
    """Put back every array and generator the step was handed (after an error too)."""
    for slot, original, traced in swapped:
        current = slot.get()
        if current is traced:
            slot.set(original)
        elif isinstance(current, Traced):
            slot.set(current._plain)
    for t, attr, array, traced in tensors_in:
        current = getattr(t, attr)
        if current is traced:
            setattr(t, attr, array)
        elif isinstance(current, Traced):
            setattr(t, attr, current._plain)
    for _, slot, real, proxy in generators:
        if slot.get() is proxy:
            slot.set(real)


def _finish(rec: Recorder, found: Found, notes: _Annotate, result: Any, inputs: list[Any],
            swapped: list[tuple[Slot, Any, Traced]], tensors_in: list[Any], generators: list[Any],
            clock_start: int) -> Recording:
    """After the eager run: what the step stored, its return value's template, plain arrays everywhere again."""
    for _, slot, _real, proxy in generators:
        if slot.get() is not proxy:
            raise JitError(f"jit: the step gives {slot.path} a new random generator (e.g. layer.rng = "
                           f"np.random.default_rng(seed), as the course reseeds its dropout). A replay draws from "
                           f"the generator it recorded and would never see the new one. Seed the generator once, "
                           f"outside the step, or do not jit this step.")
    state: list[tuple[int, Slot]] = [(traced._index, slot) for slot, _, traced in swapped]
    stores = _stored_over(rec, inputs, swapped, tensors_in)
    _restore(rec, swapped, tensors_in, generators)
    # tensors that got a .grad or new data and were not there before (a tensor the step made and kept)
    for slot, index in _stored_anew(found):
        stores.append((index, slot, slot.path))
    for lst, length, path in found.lists:
        if len(lst) > length and any(isinstance(x, (Traced, Tensor)) for x in lst[length:]):
            raise JitError(f"jit: the step appends to the list {path}. A replay runs numpy only, so the list would "
                           f"not grow after the recorded calls. Return the value from the step and append it "
                           f"outside (history.append(step(x, y).item())).")
    graphs: list[Tensor] = []
    template = _template(rec, result, clock_start, graphs)
    for root in graphs:
        _plain_graph(root)
    _resolve_names(rec, found, notes)
    for call in rec.calls:  # the walk's own calls: the starting gradient, and gradients that add up
        if call.context == ("walk",):
            call.context = ("start",) if call.kind == "function" and call.target is np.ones_like else ("add up",)
    return Recording(rec, inputs, state, [(i, slot) for i, slot, _, _ in generators], stores, template,
                     found.settings, found.names, found.optimizers, notes.backward_ran, clock_start)


def _stored_over(rec: Recorder, inputs: list[Any], swapped: list[tuple[Slot, Any, Traced]],
                 tensors_in: list[Any]) -> list[tuple[int, Any, str]]:
    """Where the step replaced an array it was handed (``p.grad = ...``, ``t.data = ...``): value indices."""
    stores: list[tuple[int, Any, str]] = []
    for slot, _, traced in swapped:
        current = slot.get()
        if current is not traced and isinstance(current, Traced) and current._recorder is rec:
            stores.append((current._index, slot, slot.path))
    for t, attr, _, traced in tensors_in:
        current = getattr(t, attr)
        if current is not traced and isinstance(current, Traced) and current._recorder is rec:
            path = next(p for i, p, _ in inputs if i == traced._index)
            stores.append((current._index, (path, attr), f"{attr.strip('_')} of an argument"))
    return stores


def _stored_anew(found: Found) -> list[tuple[Slot, int]]:
    """Where the step stored its arrays anew (value indices); plain arrays put back there."""
    out = []
    for slot, value in discover_after(found):
        out.append((slot, value._index))
        slot.set(value._plain)
    return out


def discover_after(found: Found) -> list[tuple[Slot, Any]]:
    """Traced arrays left in places the step reaches (new attributes, a .grad given to a new tensor)."""
    left: list[tuple[Slot, Any]] = []
    seen: set[int] = set()

    def visit(obj: Any, path: str, depth: int) -> None:
        if id(obj) in seen or depth > _MAX_DEPTH:
            return
        seen.add(id(obj))
        if isinstance(obj, Tensor):
            for attr in ("_data", "_grad"):
                value = getattr(obj, attr)
                if isinstance(value, Traced) and value._plain is not None:
                    left.append((Slot(obj, attr, "attr", f"{path}.{attr.strip('_')}"), value))
            return
        items: list[tuple[Any, str, Any]] = []
        if isinstance(obj, (Module, Optimizer)) or (hasattr(obj, "__dict__") and not isinstance(
                obj, (types.ModuleType, type, types.FunctionType)) and
                type(obj).__module__.split(".")[0] not in _SKIP_MODULES):
            with contextlib.suppress(TypeError):
                items = [(k, "attr", v) for k, v in vars(obj).items()]
        elif isinstance(obj, list):
            items = [(i, "item", v) for i, v in enumerate(obj[:_MAX_ITEMS])]
        elif isinstance(obj, dict) and not isinstance(obj, type(sys.modules)):
            items = [(k, "item", v) for k, v in list(obj.items())[:_MAX_ITEMS]]
        for key, kind, value in items:
            if isinstance(value, Traced) and value._plain is not None:
                left.append((Slot(obj, key, kind, f"{path}.{key}"), value))
            elif isinstance(value, (Tensor, Module, Optimizer, list, dict)) or (
                    hasattr(value, "__dict__") and not isinstance(value, (types.ModuleType, type, types.FunctionType,
                                                                          types.MethodType))):
                visit(value, f"{path}.{key}", depth + 1)

    for slot in found.arrays + found.generators:
        if isinstance(slot.holder, Tensor) or slot.kind == "attr":
            visit(slot.holder, slot.path.rsplit(".", 1)[0], 0)
    for slot, _ in found.settings:
        if slot.kind == "attr":
            visit(slot.holder, slot.path.rsplit(".", 1)[0], 0)
    return left


def _template(rec: Recorder, x: Any, clock_start: int, graphs: list[Tensor]) -> Any:
    """How to rebuild the return value from a replay's arrays (the tensors to make plain again go in ``graphs``)."""
    if isinstance(x, Tensor):
        if x._creation_number < clock_start:
            return ("same", rec.const(x))  # a tensor from before the step (a parameter): the same object
        graphs.append(x)
        value = rec.value_of(x._data)
        if value is None:
            return ("object", rec.const(x))
        return ("tensor", Ref(value.index), x.name)
    if isinstance(x, Traced):
        if x._recorder is rec:
            return ("array", Ref(x._index))
        return ("object", rec.const(x._plain))
    if type(x) in (tuple, list):
        return (type(x).__name__, [_template(rec, i, clock_start, graphs) for i in x])
    if type(x) is dict:
        return ("dict", {k: _template(rec, v, clock_start, graphs) for k, v in x.items()})
    if isinstance(x, (bool, int, float, str, type(None), complex)):
        return ("literal", x)
    return ("object", rec.const(x))


def _plain_graph(root: Tensor) -> None:
    """Plain arrays again in a returned graph: the learner may draw it, or read .data."""
    stack, seen = [root], set()
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if isinstance(t._data, Traced):
            t._data = _plain_deep(t._data)
        if isinstance(t._grad, Traced):
            t._grad = _plain_deep(t._grad)
        if t._kwargs:
            t._kwargs = {k: _plain_deep(v) for k, v in t._kwargs.items()}
        stack.extend(t._parents)


def _plain_deep(x: Any) -> Any:
    if isinstance(x, Traced):
        return x._plain if x._plain is not None else np.ndarray.view(x, np.ndarray)
    if type(x) is tuple:
        return tuple(_plain_deep(i) for i in x)
    return x


def _resolve_names(rec: Recorder, found: Found, notes: _Annotate) -> None:
    for value in rec.values:
        t = value.tensor() if value.tensor is not None else None
        if t is not None:
            name = _display_name(t, found.names)
            if id(t) in found.names or (t.name and t.name.isidentifier()):
                value.named = True
                value.hints.append((7, name))
            else:
                value.hints.append((2, name))
        value.hints = [(p, h() if callable(h) else h) for p, h in value.hints]
        value.tensor = None


def _check_escapes(rec: Recorder) -> None:
    """A computed array still alive after the step somewhere jit does not look: a value it cannot store again."""
    gc.collect()
    for ref in rec.traced:
        t = ref()
        if t is None or rec.values[t._index].producer < 0:
            continue
        holders = [type(h).__name__ for h in gc.get_referrers(t) if not isinstance(h, (types.FrameType, list))]
        del t
        raise JitError(f"jit: the step stored an array it computed where jit cannot reach it (held by "
                       f"{', '.join(holders) or 'something jit does not walk'}). A replay would not store it there "
                       f"again, so that place would keep the recorded call's value. Return the value from the step "
                       f"instead, or keep it on a module or an object the step uses.")


# -- comparing two recordings ---------------------------------------------------------------------------------

def _is_optimizer_step(call: Any) -> bool:
    return call.context[:1] == ("update",) and len(call.context) == 3


def _without_optimizer_steps(rec_: Recording) -> Recording | None:
    """The recording up to its optimizers' ``step()``, which must end it; None where it does not end so."""
    rec = rec_.recorder
    first = next((i for i, c in enumerate(rec.calls) if _is_optimizer_step(c)), None)
    if first is None or not all(_is_optimizer_step(c) for c in rec.calls[first:]):
        return None
    kept = rec.calls[:first]

    def before(index: int) -> bool:
        return rec.values[index].producer < first

    if not all(before(i) for i in _ref_indices(rec_.result)):
        return None  # the step returns something its optimizer made
    trimmed = copy.copy(rec)
    trimmed.calls = kept
    used = {r.index for c in kept for r in _refs((c.args, c.kwargs, c.writes))}
    steps = list(dict.fromkeys(c.context[2] for c in rec.calls[first:]))
    return dataclasses.replace(
        rec_, recorder=trimmed, state=[(i, slot) for i, slot in rec_.state if i in used],
        stores=[(i, where, note) for i, where, note in rec_.stores if before(i)], eager_steps=steps)


def difference(a: Recording, b: Recording) -> str | None:
    """Why two recordings of the same step differ (None if one compiled program serves both)."""
    ra, rb = a.recorder, b.recorder
    if len(ra.calls) != len(rb.calls):
        return f"the step made {len(ra.calls)} numpy calls the first time and {len(rb.calls)} the next"
    if [v.meta() for v in ra.values] != [v.meta() for v in rb.values]:
        return "the arrays' shapes or layouts changed between calls"
    for i, (ca, cb) in enumerate(zip(ra.calls, rb.calls)):
        if (ca.kind, ca.method, ca.section) != (cb.kind, cb.method, cb.section) or not _same_target(ca, cb):
            return f"call {i} was {ca.describe()} the first time and {cb.describe()} the next ({cb.site})"
        targets = (ca.target,) if ca.kind == "draw" else ()
        why = _same_template(ra, rb, (targets, ca.args, ca.kwargs, ca.result, ca.writes, ca.expected),
                             ((cb.target,) if cb.kind == "draw" else (), cb.args, cb.kwargs, cb.result, cb.writes,
                              cb.expected))
        if why:
            return f"{why}, in {cb.describe()} at {cb.site}"
    if [(p, w) for _, p, w in a.inputs] != [(p, w) for _, p, w in b.inputs]:
        return "the arguments changed"
    if len(a.state) != len(b.state) or not all(sa.same(sb) for (_, sa), (_, sb) in zip(a.state, b.state)):
        moved = next((sb.path for (_, sa), (_, sb) in zip(a.state, b.state) if not sa.same(sb)), "its state")
        return (f"the step read {moved} from another object than the call before: a parameter, module or "
                f"optimizer rebound inside the step (layer.weight = Tensor(...)) is a new object every call. "
                f"Update the parameter's array instead (p.data -= lr * p.grad, or p.data = new_array)")
    if len(a.stores) != len(b.stores) or not all(_same_place(x[1], y[1]) for x, y in zip(a.stores, b.stores)):
        return "the step stored its results in other places"
    if len(a.generators) != len(b.generators) or not all(
            sa.same(sb) for (_, sa), (_, sb) in zip(a.generators, b.generators)):
        return "the step drew from other generators"
    return None


def _same_place(x: Any, y: Any) -> bool:
    if isinstance(x, Slot) and isinstance(y, Slot):
        return x.same(y)
    return bool(x == y)


def _same_target(ca: Any, cb: Any) -> bool:
    if ca.kind == "draw":
        return type(ca.target) is type(cb.target)  # the generators themselves are compared as arguments
    return ca.target is cb.target or (isinstance(ca.target, str) and ca.target == cb.target)


def _same_template(ra: Recorder, rb: Recorder, x: Any, y: Any) -> str:
    if type(x) is not type(y):
        return f"an argument changed from {x!r} to {y!r}"
    if type(x) is Const:
        oa, ob = ra.consts[x.index], rb.consts[y.index]
        if oa is ob:
            return ""
        if isinstance(oa, np.ndarray) and isinstance(ob, np.ndarray):
            if oa.shape == ob.shape and oa.dtype == ob.dtype and np.array_equal(
                    oa, ob, equal_nan=oa.dtype.kind in "fc"):
                return ""
            return (f"an array the step read from outside changed between calls ({_short(oa)} then {_short(ob)}): "
                    f"it was computed outside what jit records (Python arithmetic, a random draw from a generator "
                    f"jit cannot reach, a value of a global that was rebound), so a replay would keep the first "
                    f"one")
        if isinstance(oa, np.random.Generator) or isinstance(ob, np.random.Generator):
            return ("the step drew from a new random generator each call (e.g. layer.rng = default_rng(seed) inside "
                    "the step): a replay draws from the generator it recorded")
        if type(oa) is type(ob) and _safe_equal(oa, ob):
            return ""
        return f"an object the step used changed between calls ({oa!r} then {ob!r})"
    if type(x) is Ref:
        return "" if x.index == y.index else "a value came from another call"
    if type(x) in (tuple, list):
        if len(x) != len(y):
            return f"an argument changed from {x!r} to {y!r}"
        for i, j in zip(x, y):
            why = _same_template(ra, rb, i, j)
            if why:
                return why
        return ""
    if type(x) is dict:
        if x.keys() != y.keys():
            return f"the keyword arguments changed ({sorted(x)} then {sorted(y)})"
        for k in x:
            why = _same_template(ra, rb, x[k], y[k])
            if why:
                return why
        return ""
    if type(x) is slice:
        return _same_template(ra, rb, (x.start, x.stop, x.step), (y.start, y.stop, y.step))
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return ""
    if x != y or (isinstance(x, float) and math.copysign(1, x) != math.copysign(1, y)):
        return (f"a number changed between calls ({x!r} then {y!r}): it is computed in Python from something "
                f"that changes (a step count, a schedule, a value read from data), and a replay would repeat the "
                f"first one")
    return ""


def _safe_equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return False


def _short(a: np.ndarray) -> str:
    return np.array2string(a, threshold=6, edgeitems=2, precision=4) if a.size else f"empty {a.shape}"


# -- compiling ------------------------------------------------------------------------------------------------------

_FRESH = (np.empty_like, np.empty)  # numpy's own functions (jit is never imported while a step is recorded)


def _elide_copies(rec: Recorder, keep: set[int]) -> None:
    """Drop a copy into a fresh array that nothing writes afterwards (accumulate's first .grad): use the original.

    NOTE: eager's ``accumulate`` takes a rule's gradient as the leaf's .grad without a copy when it is a plain
    ndarray that fits; a recorded one is an ndarray subclass, so the recording shows a copy eager does not make.
    Both hold the same numbers; dropping it keeps a replay as fast as eager (bench row W1).
    """
    calls = rec.calls
    written: dict[int, int] = {}        # memory group -> last call that writes it
    for i, call in enumerate(calls):
        for w in call.writes:
            group = rec.values[w.index].memory if type(w) is Ref else None
            if group is not None:
                written[group] = i
    used_as_source: set[int] = set()
    replace: dict[int, int] = {}
    drop: set[int] = set()
    for i, call in enumerate(calls):
        if not (call.kind == "method" and call.target == "__setitem__" and call.args[1] is Ellipsis
                and type(call.args[0]) is Ref and type(call.args[2]) is Ref):
            continue
        dest, source = call.args[0].index, call.args[2].index
        made = rec.values[dest].producer
        if made < 0 or calls[made].kind != "function" or calls[made].target not in _FRESH:
            continue
        d, s = rec.values[dest], rec.values[source]
        if d.meta() != s.meta() or source in used_as_source or source in keep:
            continue
        if written.get(d.memory, -1) != i or written.get(s.memory, -1) > i:
            continue
        if any(type(r) is Ref and r.index == dest for j in range(made + 1, i) for r in _all_refs(calls[j])):
            continue
        if sum(1 for v in rec.values if v.memory == d.memory) != 1:
            continue  # a view of the fresh array exists: keep it simple
        used_as_source.add(source)
        replace[dest] = source
        drop.update((made, i))
    if not replace:
        return
    rec.calls = [c for i, c in enumerate(calls) if i not in drop]
    for call in rec.calls:
        call.args, call.kwargs = _substitute(call.args, replace), _substitute(call.kwargs, replace)
        call.writes = _substitute(call.writes, replace)
    rec.replaced = replace  # type: ignore[attr-defined]


def _all_refs(call: Any) -> list[Ref]:
    return _refs((call.args, call.kwargs))


def _substitute(x: Any, replace: dict[int, int]) -> Any:
    if type(x) is Ref:
        return Ref(replace.get(x.index, x.index))
    if type(x) in (tuple, list):
        return type(x)(_substitute(i, replace) for i in x)
    if type(x) is dict:
        return {k: _substitute(v, replace) for k, v in x.items()}
    if type(x) is slice:
        return slice(*(_substitute(i, replace) for i in (x.start, x.stop, x.step)))
    return x


def _dead_code(rec: Recorder, keep: set[int]) -> None:
    """Drop calls whose results nothing uses (a message's statistics): they change no number the step keeps."""
    while True:
        used = set(keep)
        for call in rec.calls:
            used.update(r.index for r in _refs((call.args, call.kwargs, call.writes)))
        alive = []
        for call in rec.calls:
            results = [r.index for r in _refs(call.result)]
            if call.kind in ("ufunc", "function", "method") and not call.writes and results \
                    and not any(r in used for r in results):
                continue
            alive.append(call)
        if len(alive) == len(rec.calls):
            return
        rec.calls = alive


# numpy functions whose result depends only on their argument's shape and dtype (and on constants)
_SHAPE_ONLY = (np.ones_like, np.zeros_like, np.empty_like, np.full_like)


def _fold_constants(rec_: Recording, keep: set[int]) -> None:
    """Mark the calls that depend on no input or state: the same numbers every step, computed once at compile time.

    The gradient a backward pass starts from (``np.ones_like(loss)``), a mean's ``1 / n`` spread over the batch:
    their values are the recorded ones, kept (read-only) and used by every replay. A memory written by anything
    that is not constant, read while it is still being written, or handed out (returned, stored) is not folded.
    """
    rec = rec_.recorder
    values = rec.values
    external = {values[i].memory for i, _, _ in rec_.inputs} | {values[i].memory for i, _ in rec_.state}
    unsafe = set(external) | {values[i].memory for i in keep}

    def const_ok(c: Const) -> bool:
        obj = rec.consts[c.index]
        if isinstance(obj, (np.random.Generator, GeneratorProxy)):
            return False
        return not isinstance(obj, np.ndarray) or not obj.flags.writeable

    while True:
        constant: set[int] = set()
        for call in rec.calls:
            reads = _refs((call.args, call.kwargs))
            if call.kind == "function" and call.target in _SHAPE_ONLY and call.args:
                reads = _refs((call.args[1:], call.kwargs))
            consts = [c for c in _consts((call.args, call.kwargs))]
            ok = (call.kind in ("ufunc", "function", "method") and all(r.index in constant for r in reads)
                  and all(const_ok(c) for c in consts)
                  and all(type(w) is Ref and values[w.index].memory not in unsafe for w in call.writes))
            results = _refs(call.result)
            if ok and all(values[r.index].memory not in unsafe for r in results):
                constant.update(r.index for r in results)
                constant.update(w.index for w in call.writes if type(w) is Ref)
            else:
                grew = {values[w.index].memory for w in call.writes if type(w) is Ref} - unsafe
                if grew:
                    unsafe |= grew
                    break
        else:
            break
    # a memory read before its last write would be folded at its final value: leave such memory alone
    last_write: dict[int, int] = {}
    for i, call in enumerate(rec.calls):
        for w in call.writes:
            if type(w) is Ref:
                last_write[values[w.index].memory] = i
    for i, call in enumerate(rec.calls):
        for r in _refs((call.args, call.kwargs)):
            group = values[r.index].memory
            if r.index in constant and last_write.get(group, -1) > i and r not in call.writes:
                unsafe.add(group)
    folded = {i for i in constant if values[i].memory not in unsafe}
    for call in rec.calls:
        results = _refs(call.result) + [w for w in call.writes if type(w) is Ref]
        if results and all(r.index in folded for r in results) and call.kind in ("ufunc", "function", "method"):
            call.once = True


def _ref_indices(template: Any) -> list[int]:
    return [r.index for r in _refs(template)]


@dataclass
class Compiled:
    """One recording compiled: the step's source, its function, and the replay around it."""

    source: str
    step: Callable[..., Any]
    replay: Callable[..., Any]
    wrapper_source: str
    signature: tuple[Any, ...]
    description: str
    compile_seconds: float = 0.0


def compile_recording(rec_: Recording, fn: Callable[..., Any], args: tuple[Any, ...], sig: tuple[Any, ...]) -> Compiled:
    rec = rec_.recorder
    keep = {i for i, _, _ in rec_.stores} | set(_ref_indices(rec_.result))
    _elide_copies(rec, keep)
    replaced = getattr(rec, "replaced", {})
    stores = [(replaced.get(i, i), where, note) for i, where, note in rec_.stores]
    result_refs = [replaced.get(i, i) for i in _ref_indices(rec_.result)]
    keep = {i for i, _, _ in stores} | set(result_refs)
    _dead_code(rec, keep)
    _fold_constants(rec_, keep)
    used = {r.index for c in rec.calls for r in _refs((c.args, c.kwargs, c.writes))} | keep
    rec_.state = [(i, slot) for i, slot in rec_.state if i in used]
    rec_.inputs = [(i, p, w) for i, p, w in rec_.inputs if i in used or w != "grad"]
    names = _parameter_names(fn)
    # returned scalars are checked finite: a replay that makes them inf or nan runs eagerly instead
    checked = {i for i in result_refs if rec.values[i].dtype.kind == "f" and rec.values[i].shape in ((), (1,))}
    _add_finite_guards(rec, checked)
    params = [(i, (rec.values[i].hints and max(rec.values[i].hints)[1]) or _input_name(p, names))
              for i, p, _ in rec_.inputs]
    params += [(i, max(rec.values[i].hints)[1] if rec.values[i].hints else _slot_name(slot)) for i, slot in rec_.state]
    gens = [(c, _slot_name(slot)) for c, slot in rec_.generators]
    store_list = [(i, note if isinstance(where, tuple) else _place_name(where, rec_.names))
                  for i, where, note in stores]
    title = getattr(fn, "__name__", "step")
    program = Program(rec, title, params, gens, result_refs, store_list, [type(o).__name__ for o in rec_.eager_steps],
                      _describe_signature(args, names))
    source = write(program)
    filename = f"<jit {title} {next(_COUNTER)}>"
    code = compile(source.text, filename, "exec")
    linecache.cache[filename] = (len(source.text), None, source.text.splitlines(True), filename)
    exec(code, source.namespace)
    step = source.namespace[source.name]
    replay, wrapper = _replay_function(rec_, step, stores, sig, fn)
    return Compiled(source.text, step, replay, wrapper, sig, _describe_signature(args, names))


_COUNTER = itertools.count(1)


def _place_name(slot: Slot, names: dict[int, str]) -> str:
    """Where a step stored an array, by the tensor's own name where it has one (``layers.0.weight.grad``)."""
    if isinstance(slot.holder, Tensor) and id(slot.holder) in names and slot.kind == "attr":
        return f"{names[id(slot.holder)]}.{str(slot.key).strip('_')}"
    return slot.path


def _add_finite_guards(rec: Recorder, checked: set[int]) -> None:
    """A guard right after each checked value is made (unless the engine's own watch already checks it)."""
    from .trace import Call
    guarded = {c.args[0].index for c in rec.calls if c.kind == "guard" and type(c.args[0]) is Ref}
    calls = []
    for call in rec.calls:
        calls.append(call)
        for r in _ref_indices(call.result):
            if r in checked and r not in guarded:
                calls.append(Call("guard", "finite", "item", (Ref(r),), {}, None, (), call.section, call.context,
                                  None, call.site, True))
    rec.calls = calls


def _replay_function(rec_: Recording, step: Callable[..., Any], stores: list[tuple[int, Any, str]],
                     sig: tuple[Any, ...], fn: Callable[..., Any]) -> tuple[Callable[..., Any], str]:
    """The Python around the step: check the arguments and settings, read the state, store, stamp, return."""
    rec = rec_.recorder
    ns: dict[str, Any] = {"_MISS": _MISS, "_FALLBACK": _FALLBACK, "_ndarray": np.ndarray, "_Tensor": Tensor,
                          "_mode": mode, "_step": step, "Fallback": Fallback, "_fits": _fits, "_stamp": _stamp,
                          "_renew": inplace.note_new_data, "_copyto": np.copyto, "_copy": np.copy,
                          "_tensor": _returned_tensor}
    names = iter(f"_k{i}" for i in itertools.count())

    def bind(obj: Any) -> str:
        name = next(names)
        ns[name] = obj
        return name

    def arg(path: tuple[Any, ...]) -> str:
        return f"a{path[0]}" + "".join(f"[{p}]" for p in path[1:])

    n_args = 1 + max((part[1][0] for part in sig[1:]), default=-1)
    body: list[str] = []
    # the arguments: each array's class, shape, dtype and layout as recorded; other arguments by value
    for part in sig[1:]:
        kind, path = part[0], part[1]
        expr = arg(path)
        if kind == "tensor":
            _, _, shape, dtype, strides, requires_grad, no_grad = part
            body.append(f"if {expr}.__class__ is not _Tensor or {expr}.requires_grad is not {requires_grad} or "
                        f"({expr}._grad is None) is not {no_grad}: return _MISS")
            body.append(f"_x = {expr}._data")
            body.append(f"if _x.__class__ is not _ndarray or _x.shape != {shape!r} or _x.strides != {strides!r} "
                        f"or _x.dtype != {bind(np.dtype(dtype))}: return _MISS")
        elif kind == "array":
            _, _, shape, dtype, strides = part
            body.append(f"if {expr}.__class__ is not _ndarray or {expr}.shape != {shape!r} or "
                        f"{expr}.strides != {strides!r} or {expr}.dtype != {bind(np.dtype(dtype))}: return _MISS")
        elif kind == "value":
            body.append(f"if type({expr}) is not {part[2]} or {expr} != {part[3]!r}: return _MISS")
        else:
            body.append(f"if id({expr}) != {part[2]}: return _MISS")
    # the Python values the step reads, and the engine's switches
    tests = [f"_mode.grad_enabled is not {sig[0]}", "_mode.anomaly"]
    for slot, value in rec_.settings:
        tests.append(f"{slot.code(bind(slot.holder))} {'is not' if isinstance(value, bool) else '!='} {value!r}")
    body.append(f"if {' or '.join(tests)}: return _MISS")
    # the step's parameters: inputs, state (read afresh: load_state_dict may have given new arrays), generators
    call_args = []
    for _, path, what in rec_.inputs:
        call_args.append(arg(path) if not what else f"{arg(path)}._{what}")
    for k, (index, slot) in enumerate(rec_.state):
        plain = rec.values[index].plain
        seen = bind([plain])
        owns = plain.base is None
        body.append(f"s{k} = {slot.code(bind(slot.holder))}")
        body.append(f"if s{k} is not {seen}[0] and not _fits(s{k}, {bind(rec.values[index].meta()[:3])}, {seen}, "
                    f"{owns}): return _MISS")
        call_args.append(f"s{k}")
    for k, (_const, slot) in enumerate(rec_.generators):
        body.append(f"g{k} = {slot.code(bind(slot.holder))}")
        call_args.append(f"g{k}")
    # a guard may send this step to eager: first keep what the step would change before that guard
    saves, restores = _before_guards(rec_, call_args)
    body += saves
    body.append("try:")
    body.append(f"    _r, _st = _step({', '.join(call_args)})")
    body.append("except Fallback:")
    body += ["    " + line for line in restores] + ["    return _FALLBACK"]
    # what the step stores: .grad of the parameters, new data, new attributes
    for k, (_, where, _note) in enumerate(stores):
        if isinstance(where, Slot):
            holder = bind(where.holder)
            body.append(f"{where.code(holder)} = _st[{k}]")
            if isinstance(where.holder, Tensor) and where.key == "_data":
                body.append(f"_renew({holder})")
        else:
            path, attr = where
            body.append(f"{arg(path)}.{attr} = _st[{k}]")
    for opt in rec_.eager_steps:
        body.append(f"{bind(opt)}.step()")  # as eager calls it, after backward() left the .grad
    # NOTE: the version stamps eager's `p.data -= ...` makes (the in-place check), one line for arrays that own
    # their memory (bench row W1)
    stamped = _stamped(rec_)
    owned = [k for k in stamped if rec.values[rec_.state[k][0]].plain.base is None]
    for k in owned:
        inplace.note_write(rec.values[rec_.state[k][0]].plain)  # registered once, so the entry goes with the array
    if owned:
        ns["_V"], ns["_LOG"], ns["_CLOCK"] = LOG.versions, LOG, CLOCK
        body.append(" = ".join([f"_V[id(s{k})]" for k in owned] + ["_LOG.last_change = next(_CLOCK)"]))
    if len(owned) < len(stamped):
        body.append(f"_stamp({', '.join(f's{k}' for k in stamped if k not in owned)},)")
    order = {i: k for k, i in enumerate(_ref_indices(rec_.result))}
    replaced = getattr(rec, "replaced", {})
    body.append(f"return {_rebuild(rec_.result, rec, bind, order, replaced)}")
    text = f"def replay({', '.join(f'a{i}' for i in range(n_args))}):\n" + "".join(f"    {b}\n" for b in body)
    exec(compile(text, f"<jit replay {getattr(fn, '__name__', 'step')}>", "exec"), ns)
    return ns["replay"], text


def _fits(array: Any, meta: tuple[Any, ...], seen: list[Any], owns: bool) -> bool:
    """A state array given anew (load_state_dict): the replay takes it if it has the recorded shape and layout."""
    if array.__class__ is np.ndarray and (array.shape, array.dtype, array.strides) == meta and (
            array.base is None or not owns):
        seen[0] = array
        if owns:
            inplace.note_write(array)  # its version entry goes when the array does
        return True
    return False


def _stamp(*arrays: np.ndarray) -> None:
    """The replay wrote into these tensors' arrays: stamp them as eager's writes are (the in-place check)."""
    version = LOG.last_change = next(CLOCK)
    versions = LOG.versions
    for a in arrays:
        memory = a if a.base is None else owner_of(a)
        key = id(memory)
        if key not in versions:
            weakref.finalize(memory, versions.pop, key, None).atexit = False
        versions[key] = version


def _stamped(rec_: Recording) -> list[int]:
    """The state arrays the step writes into that are a tensor's data (the in-place check reads their versions)."""
    rec = rec_.recorder
    groups = {rec.values[w.index].memory for c in rec.calls for w in c.writes if type(w) is Ref}
    return [k for k, (index, slot) in enumerate(rec_.state)
            if rec.values[index].memory in groups and isinstance(slot.holder, Tensor) and slot.key == "_data"]


def _before_guards(rec_: Recording, call_args: list[str]) -> tuple[list[str], list[str]]:
    """Lines that keep (and put back) what the step changes before its last guard: generators, written arrays."""
    rec = rec_.recorder
    last = max((i for i, c in enumerate(rec.calls) if c.kind == "guard"), default=-1)
    saves: list[str] = []
    restores: list[str] = []
    if last < 0:
        return saves, restores
    if any(c.kind == "draw" for c in rec.calls[:last]):
        for k in range(len(rec_.generators)):
            saves.append(f"_state{k} = g{k}.bit_generator.state")
            restores.append(f"g{k}.bit_generator.state = _state{k}")
    written = {rec.values[w.index].memory for c in rec.calls[:last] for w in c.writes if type(w) is Ref}
    externals = [index for index, _, _ in rec_.inputs] + [index for index, _ in rec_.state]
    for k, index in enumerate(externals):
        if rec.values[index].memory in written:
            saves.append(f"_kept{k} = _copy({call_args[k]})")
            restores.append(f"_copyto({call_args[k]}, _kept{k})")
    return saves, restores


def _rebuild(t: Any, rec: Recorder, bind: Callable[[Any], str], order: dict[int, int],
             replaced: dict[int, int]) -> str:
    """The expression that builds the return value from the step's results ``_r``."""
    kind = t[0]
    if kind == "tensor":
        return f"_tensor(_r[{order[t[1].index]}]{'' if t[2] is None else f', {t[2]!r}'})"
    if kind == "array":
        return f"_r[{order[t[1].index]}]"
    if kind in ("tuple", "list"):
        parts = [_rebuild(x, rec, bind, order, replaced) for x in t[1]]
        text = ", ".join(parts) + ("," if kind == "tuple" and len(parts) == 1 else "")
        return f"({text})" if kind == "tuple" else f"[{text}]"
    if kind == "dict":
        return "{" + ", ".join(f"{k!r}: {_rebuild(v, rec, bind, order, replaced)}" for k, v in t[1].items()) + "}"
    if kind == "literal":
        return repr(t[1])
    return bind(rec.consts[t[1].index])


def _returned_tensor(array: Any, name: str | None = None) -> Tensor:
    t = _new(array, False)
    if name is not None:
        t.name = name
    return t


# -- the public call ----------------------------------------------------------------------------------------------

class Jitted:
    """A step compiled by ``jit``: call it as the step; ``source`` is the numpy it replays."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise TypeError(f"jit(fn): fn must be a function (the training step), got {type(fn).__name__}.")
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "step")
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn
        self._compiled: dict[tuple[Any, ...], list[Compiled]] = {}
        self._recordings: dict[tuple[Any, ...], list[Recording]] = {}
        self._current: Compiled | None = None
        self.replays = 0
        self.eager_calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            args, kwargs = self._positional(args, kwargs)
        current = self._current
        if current is not None and not kwargs:
            result = current.replay(*args)
            if result is _MISS:
                return self._slow(args, kwargs)
            if result is _FALLBACK:
                return self._eager(args, kwargs)
            self.replays += 1
            return result
        return self._slow(args, kwargs)

    def _positional(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Keyword arguments as positions, where the step's signature allows (a replay takes positions)."""
        try:
            bound = inspect.signature(self.fn).bind(*args, **kwargs)
        except (TypeError, ValueError):
            return args, kwargs
        if bound.kwargs:
            return args, kwargs
        return tuple(bound.args), {}

    def _eager(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.eager_calls += 1
        return self.fn(*args, **kwargs)

    def _slow(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if mode.anomaly or any(isinstance(a, Traced) for _, a in _flatten(args)):
            return self._eager(args, kwargs)  # detect_anomaly: every op checked where it runs
        sig = signature(args, kwargs)
        for compiled in self._compiled.get(sig, []):
            if kwargs:
                break
            result = compiled.replay(*args)
            if result is _FALLBACK:
                self._current = compiled
                return self._eager(args, kwargs)
            if result is not _MISS:
                self._current = compiled
                self.replays += 1
                return result
        import time
        started = time.perf_counter()
        result, recording = record(self.fn, args, kwargs)
        self.eager_calls += 1
        _check_recording(recording, result)
        earlier = self._recordings.setdefault(sig, [])
        earlier.append(recording)
        if len(earlier) >= 2:
            why = difference(earlier[-2], earlier[-1])
            if why is not None:
                # NOTE: Adam's bias correction is a Python number that changes every step: if the steps differ
                # only inside optimizer.step(), compile the rest and let a replay call that step() as it is
                first, last = (_without_optimizer_steps(r) for r in earlier[-2:])
                if first is not None and last is not None and difference(first, last) is None:
                    why, recording = None, last
            if why is None:
                compiled = compile_recording(recording, self.fn, args, sig)
                compiled.compile_seconds = time.perf_counter() - started
                self._compiled.setdefault(sig, []).append(compiled)
                self._current = compiled
                del self._recordings[sig]
            elif len(earlier) >= 3:
                del self._recordings[sig]
                raise JitError(f"jit: the step {self.__name__} does not do the same thing on every call, so one "
                               f"recording cannot replay it: {why}.")
            else:
                del earlier[:-2]  # the first two may differ (a first call that sets up state); three may not
        return result

    # -- what a learner looks at ------------------------------------------------------------------------------
    @property
    def source(self) -> str:
        """The step as the numpy calls it replays (the most recent recording used)."""
        compiled = self._current or next((c[-1] for c in self._compiled.values()), None)
        if compiled is None:
            raise RuntimeError(f"{self.__name__}.source: nothing is compiled yet. The first two calls record the "
                               f"step (eagerly); call it twice with the same shapes, then look again.")
        return compiled.source

    @property
    def traces(self) -> list[Compiled]:
        """Every compiled recording, one per signature (the last, smaller mini-batch has its own)."""
        return [c for entries in self._compiled.values() for c in entries]

    def __repr__(self) -> str:
        return f"jit({self.__name__}): {len(self.traces)} compiled, {self.replays} replays"


def _check_recording(recording: Recording, result: Any) -> None:
    """The pitfalls a finished recording shows: nothing jitted, a forward pass without its backward."""
    rec = recording.recorder
    derived = {i for i, _, _ in recording.inputs} | {i for i, _ in recording.state}
    for call in rec.calls:
        if call.kind == "draw" or any(r.index in derived for r in _refs((call.args, call.kwargs))):
            derived.update(r.index for r in _refs((call.result, call.writes)))
    if not any(c.kind == "draw" or any(r.index in derived for r in _refs((c.args, c.kwargs))) for c in rec.calls):
        raise JitError("jit: nothing was jitted: the step made no numpy call on the arrays it was given or the "
                       "state jit found (its arguments, the modules and optimizers it uses). Pass the batch as an "
                       "argument and use the model inside the step; a step that only calls .item() or works on "
                       "Python numbers has nothing to replay.")
    if isinstance(result, Tensor) and result.requires_grad and not recording.backward_ran:
        raise JitError("jit: the step returned a tensor that still needs its backward pass, and never called "
                       "backward(). jit compiles a whole training step: call loss.backward() and the update "
                       "(optimizer.step()) inside it. To jit an evaluation, run it under no_grad().")


def jit(fn: Callable[..., Any]) -> Jitted:
    """Compile a training step: the first calls record it (eagerly), later ones replay its numpy calls.

    See the module docstring for what it does, what it refuses and what it cannot see. ``step.source`` is the
    replayed step as Python: forward, each backward rule with its derivative, the update.
    """
    return Jitted(fn)
