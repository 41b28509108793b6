"""Recording a step as the numpy calls it makes: the mechanism behind ``jit``.

While a step is recorded, every array it reads (its inputs, the parameters, an optimizer's state) is handed to
it as a ``Traced`` array: an ndarray subclass whose numpy calls (ufuncs and operators, numpy functions, array
methods, indexing) run on the plain arrays underneath, exactly as they would without it, and are written down
one by one. What comes out is the straight-line list of the numpy calls that forward, backward and the update
made (``Recorder.calls``), each value with its shape, dtype and memory layout (``Recorder.values``), and notes
for the source ``jit`` writes: which op and which rule a call belongs to, which tensor a value is.

Nothing here changes what the step computes: the recorded run IS the eager run. Arrays made from nothing
(``np.zeros``) are recorded too, so a write into one is seen; a random draw is recorded when it comes from a
``Generator`` that ``jit`` found and handed to the step as a ``GeneratorProxy``.

>>> import numpy as np
>>> recorder = Recorder()
>>> with recorder.recording():
...     x = recorder.external(np.array([1.0, 2.0]), ("input", 0))
...     y = np.exp(x) * 2
>>> [call.describe() for call in recorder.calls]
['np.exp(v0)', 'np.multiply(v1, 2)']
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Ref", "Const", "Value", "Call", "Recorder", "Traced", "GeneratorProxy", "JitError", "active",
           "owner_of"]


class JitError(RuntimeError):
    """A step that ``jit`` cannot replay faithfully, with the reason and the way out."""


# -- what a call's arguments are made of ------------------------------------------------------------------------

class Ref:
    """A value of the trace, in a call's arguments."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __eq__(self, other: object) -> bool:
        return type(other) is Ref and other.index == self.index

    def __hash__(self) -> int:
        return hash(("ref", self.index))

    def __repr__(self) -> str:
        return f"v{self.index}"


class Const:
    """An object from outside the trace (an array the step read but did not make, a function), by reference."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __eq__(self, other: object) -> bool:
        return type(other) is Const and other.index == self.index

    def __hash__(self) -> int:
        return hash(("const", self.index))

    def __repr__(self) -> str:
        return f"c{self.index}"


@dataclass(eq=False)
class Value:
    """One array of the recorded step: made by a call, or read from outside (an input, the state)."""

    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    strides: tuple[int, ...]
    memory: int                     # values with the same memory share bytes (a view and what it views)
    producer: int = -1              # the call that made it; -1 for an input or state array
    locator: tuple[Any, ...] | None = None  # where an input or state array lives (read again at every replay)
    scalar: bool = False            # numpy gives a scalar here, not a 0-d array (a full reduction)
    tensor: Any = None              # weakref to the Tensor whose data this is, for its name
    hints: list[tuple[int, Any]] = field(default_factory=list)  # (priority, name or a function giving it)
    named: bool = False             # a tensor the learner named: it keeps its own line in the source
    plain: Any = None               # the array itself, while the trace is compared and compiled

    def meta(self) -> tuple[Any, ...]:
        return self.shape, self.dtype, self.strides, self.scalar


@dataclass(eq=False)
class Call:
    """One numpy call of the step, with its arguments as ``Ref``/``Const``/literals."""

    kind: str              # "ufunc", "function", "method", "draw", "guard"
    target: Any            # the ufunc, the function, the method's name, the generator (a Const)
    method: str            # a ufunc's method ("__call__", "reduce", "at", ...); "" otherwise
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any            # Ref, tuple of Refs, or None (a call that only writes)
    writes: tuple[Any, ...]  # Refs and Consts whose memory the call writes into
    section: str           # "forward", "backward" or "update"
    context: tuple[Any, ...]  # ("forward", op) / ("backward", op, node) / ("unbroadcast",) / ...
    errstate: dict[str, str] | None  # numpy's floating-point error handling, where it differs from the caller's
    site: str              # the line of Python that made the call (for messages)
    expected: Any = None   # a guard's recorded outcome
    once: bool = False     # computed once, when the step was compiled: it depends on no input

    def describe(self) -> str:
        """The call in one line, values as ``v<n>`` (for messages and tests)."""
        if self.kind == "ufunc":
            name = f"np.{self.target.__name__}" + ("" if self.method == "__call__" else f".{self.method}")
        elif self.kind == "function":
            name = f"np.{getattr(self.target, '__name__', self.target)}"
        elif self.kind == "draw":
            name = f"{self.target!r}.{self.method}"
        else:
            name = f"{self.args[0]!r}.{self.target}"
        args = self.args[1:] if self.kind in ("method", "guard") else self.args
        parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{name}({', '.join(parts)})"


# -- the traced array ---------------------------------------------------------------------------------------------

_ACTIVE: list[Recorder] = []


def active() -> Recorder | None:
    """The recorder of the step being recorded now, if any."""
    return _ACTIVE[-1] if _ACTIVE else None


def owner_of(array: np.ndarray) -> np.ndarray:
    """The ndarray that owns ``array``'s memory (the end of its chain of bases)."""
    found, base = array, array.base
    while base is not None:
        if isinstance(base, np.ndarray):
            found = base
        base = getattr(base, "base", None)
    return found


def _plain(x: Any) -> Any:
    """The array underneath a traced one (one from a finished recording, or not recorded, included)."""
    if isinstance(x, Traced):
        return x._plain if x._plain is not None else np.ndarray.view(x, np.ndarray)
    return x


def _deep_plain(x: Any) -> Any:
    if isinstance(x, Traced):
        return _plain(x)
    if type(x) in (tuple, list):
        return type(x)(_deep_plain(i) for i in x)
    if type(x) is dict:
        return {k: _deep_plain(v) for k, v in x.items()}
    return x


def _recording(args: Any, kwargs: Any = None) -> Recorder | None:
    """The active recorder, if one of these arguments is its traced array (else the call is not recorded)."""
    rec = active()
    if rec is None or rec.busy:
        return None
    return rec if rec.owns(args) or (kwargs and rec.owns(kwargs)) else None


class Traced(np.ndarray):
    """An array whose numpy calls are recorded while its recorder is active (a plain array otherwise)."""

    _plain: np.ndarray | None
    _index: int
    _recorder: Recorder | None

    def __array_finalize__(self, obj: Any) -> None:
        # NOTE: the recorder sets these right after making the view; a Traced that numpy made by itself (from a
        # traced array, in a way no hook saw) keeps None and is refused where it is used
        self._plain = None
        self._index = -1
        self._recorder = None

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        rec = _recording(inputs, kwargs)
        if rec is None:
            return getattr(ufunc, method)(*_deep_plain(inputs), **_deep_plain(kwargs))
        return rec.ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        rec = _recording(args, kwargs)
        if rec is None:
            return func(*_deep_plain(args), **_deep_plain(kwargs))
        return rec.function(func, args, kwargs)

    @property
    def T(self) -> Any:  # noqa: N802 (numpy's name)
        return self._method("transpose", ())

    @property
    def mT(self) -> Any:  # noqa: N802 (numpy's name)
        return self._method("swapaxes", (-2, -1))

    @property
    def data(self) -> Any:
        # NOTE: ndarray.data is a memoryview of the same bytes; code that reads `getattr(g, "data", g)` (a Tensor
        # or an array) would hand numpy bytes the recorder cannot follow. The array itself means the same numbers.
        return self

    def _method(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> Any:
        rec = _recording((self,) + args, kwargs)
        if rec is None:
            return getattr(_plain(self), name)(*_deep_plain(args), **_deep_plain(kwargs or {}))
        return rec.method(self, name, args, kwargs or {})

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]


# array methods that write into the array itself; those that give Python values read the data
_IN_PLACE = frozenset({"fill", "sort", "put", "partition", "resize", "setflags", "setfield", "byteswap", "__setitem__",
                       "__delitem__", "__setstate__"})
_READS = frozenset({"item", "tolist", "tobytes", "dump", "dumps", "tofile", "__float__", "__int__", "__bool__",
                    "__index__", "__complex__", "__format__", "__repr__", "__str__", "__contains__", "__reduce__",
                    "__reduce_ex__", "__dlpack__", "__array__"})
_NOT_WRAPPED = frozenset({"__new__", "__array_finalize__", "__array_wrap__", "__array_ufunc__", "__array_function__",
                          "__sizeof__", "__class_getitem__", "__array_namespace__", "__dlpack_device__", "__len__",
                          "__init_subclass__", "__doc__", "__hash__", "__array_interface__", "__array_struct__",
                          "__array_priority__", "__iter__", "__array__"})


def _wrapped_method(name: str) -> Callable[..., Any]:
    def method(self: Traced, *args: Any, **kwargs: Any) -> Any:
        return self._method(name, args, kwargs)

    method.__name__ = name
    return method


def _reader(name: str) -> Callable[..., Any]:
    def read(self: Traced, *args: Any, **kwargs: Any) -> Any:
        rec = active()
        result = getattr(_plain(self), name)(*_deep_plain(args), **_deep_plain(kwargs))
        if rec is not None and not rec.busy and self._recorder is rec:
            rec.read(self, name, result)
        return result

    read.__name__ = name
    return read


for _name, _attr in vars(np.ndarray).items():
    if not callable(_attr) or _name in _NOT_WRAPPED or _name in ("T", "mT"):
        continue
    if _name.startswith("__") and (_name[2:-2] in ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod",
                                                   "pow", "divmod", "lshift", "rshift", "and", "or", "xor", "neg",
                                                   "pos", "abs", "invert", "lt", "le", "eq", "ne", "gt", "ge")
                               or _name[3:-2] in ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod",
                                                  "pow", "divmod", "lshift", "rshift", "and", "or", "xor")):
        continue  # operators: numpy turns them into ufunc calls, which __array_ufunc__ records
    setattr(Traced, _name, _reader(_name) if _name in _READS else _wrapped_method(_name))


# -- random draws -------------------------------------------------------------------------------------------------

class GeneratorProxy:
    """Stands in for a ``np.random.Generator`` while a step is recorded: each draw is run and recorded."""

    def __init__(self, real: np.random.Generator, recorder: Recorder, handle: Const) -> None:
        self._real, self._recorder, self._handle = real, recorder, handle

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name.startswith("_") or not callable(attr) or name in ("spawn",):
            return attr

        def draw(*args: Any, **kwargs: Any) -> Any:
            return self._recorder.draw(self, name, args, kwargs)

        return draw

    def __repr__(self) -> str:
        return repr(self._real)


# -- the recorder -------------------------------------------------------------------------------------------------

_HERE = os.path.abspath(__file__)
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__))
_PACKAGE_DIR = os.path.dirname(_HERE)
_LITERALS = (int, float, bool, complex, str, bytes, type(None), type(Ellipsis))


def _caller() -> tuple[str, str]:
    """``(file:line, module)`` of the innermost frame outside this module and numpy: who made the call."""
    frame: Any = sys._getframe(2)
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        if name != _HERE and not name.startswith(_NUMPY_DIR + os.sep):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}", frame.f_globals.get("__name__", "")
        frame = frame.f_back
    return "<unknown>", ""


_TENSOR_READERS = frozenset({"item", "__bool__", "__float__", "__int__", "tolist"})


def _reading_frame() -> Any:
    """The learner's frame, when the read is one of Tensor's accessors (``loss.item()``) called from there."""
    frame: Any = sys._getframe(2)
    while frame is not None and (os.path.abspath(frame.f_code.co_filename) == _HERE or
                                 os.path.abspath(frame.f_code.co_filename).startswith(_NUMPY_DIR + os.sep)):
        frame = frame.f_back
    if frame is None or frame.f_globals.get("__name__") != "tinygrad_edu.tensor" \
            or frame.f_code.co_name not in _TENSOR_READERS:
        return None
    caller = frame.f_back
    if caller is None or caller.f_globals.get("__name__", "").startswith("tinygrad_edu."):
        return None  # the engine reading its own tensor (a loss checking its input)
    return caller


class Recorder:
    """Records the numpy calls made on its ``Traced`` arrays, in order (see the module docstring)."""

    def __init__(self) -> None:
        self.values: list[Value] = []
        self.calls: list[Call] = []
        self.consts: list[Any] = []
        self._const_index: dict[int, int] = {}
        self.section = "forward"
        self.context: list[tuple[Any, ...]] = [("forward",)]
        self.busy = False
        self.base_errstate = np.geterr()
        self._memory: dict[int, int] = {}
        self._keep: list[Any] = []           # every array seen, alive until the recording is compiled
        self.traced: list[weakref.ref[Traced]] = []

    # -- the active recording ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def recording(self) -> Iterator[Recorder]:
        """Record while the block runs: numpy's creators are patched so a new array is seen too."""
        _ACTIVE.append(self)
        saved = {name: getattr(np, name) for name in _CREATORS}
        for name, real in saved.items():
            setattr(np, name, _creator(real))
        try:
            yield self
        finally:
            for name, real in saved.items():
                setattr(np, name, real)
            _ACTIVE.remove(self)

    def owns(self, x: Any) -> bool:
        """Whether ``x`` (or anything inside it) is one of this recording's traced arrays."""
        if isinstance(x, Traced):
            return x._recorder is self
        if type(x) in (tuple, list):
            return any(self.owns(i) for i in x)
        if type(x) is dict:
            return any(self.owns(v) for v in x.values())
        if type(x) is slice:
            return self.owns((x.start, x.stop, x.step))
        return False

    # -- values ------------------------------------------------------------------------------------------------
    def _new(self, plain: np.ndarray, producer: int, scalar: bool = False,
             locator: tuple[Any, ...] | None = None) -> Traced:
        self._keep.append(plain)
        root = owner_of(plain)
        self._keep.append(root)
        memory = self._memory.setdefault(id(root), len(self._memory))
        value = Value(len(self.values), plain.shape, plain.dtype, plain.strides, memory, producer, locator, scalar,
                      plain=plain)
        self.values.append(value)
        traced = plain.view(Traced)
        traced._plain, traced._index, traced._recorder = plain, value.index, self
        self.traced.append(weakref.ref(traced))
        return traced

    def external(self, array: np.ndarray, locator: tuple[Any, ...]) -> Traced:
        """Hand the step an array it reads from outside (an input, a parameter, an optimizer's state)."""
        return self._new(array, -1, locator=locator)

    def const(self, obj: Any) -> Const:
        index = self._const_index.get(id(obj))
        if index is None:
            index = self._const_index[id(obj)] = len(self.consts)
            self.consts.append(obj)
            if isinstance(obj, np.ndarray):
                self._keep.append(obj)
                root = owner_of(obj)
                self._keep.append(root)
                self._memory.setdefault(id(root), len(self._memory))
        return Const(index)

    def _split(self, x: Any) -> tuple[Any, Any]:
        """``(plain, template)``: what numpy gets, and how the call is written down."""
        if isinstance(x, Traced):
            if x._recorder is self:
                return x._plain, Ref(x._index)
            if x._plain is None:
                raise JitError(_UNFOLLOWED)
            return self._split(x._plain)
        kind = type(x)
        if kind in _LITERALS:
            return x, x
        if kind in (tuple, list):
            parts = [self._split(i) for i in x]
            return kind(p for p, _ in parts), kind(t for _, t in parts)
        if kind is dict:
            parts2 = {k: self._split(v) for k, v in x.items()}
            return {k: p for k, (p, _) in parts2.items()}, {k: t for k, (_, t) in parts2.items()}
        if kind is slice:
            (start, stop, step), (t0, t1, t2) = zip(*(self._split(i) for i in (x.start, x.stop, x.step)))
            return slice(start, stop, step), slice(t0, t1, t2)
        if isinstance(x, GeneratorProxy):
            return x._real, x._handle
        if isinstance(x, np.ndarray) or not isinstance(x, (np.generic, np.dtype, type)):
            return x, self.const(x)
        return x, x  # numpy scalars, dtypes and types are written as they are

    def _wrap(self, result: Any, producer: int) -> tuple[Any, Any]:
        """``(what the step gets, the template)`` for a call's result."""
        if isinstance(result, np.ndarray):
            traced = self._new(result, producer)
            return traced, Ref(traced._index)
        if isinstance(result, np.generic):
            # NOTE: numpy gives a scalar for a full reduction; the step gets a 0-d traced array, which every
            # numpy call treats as it treats the scalar (both are "strong", NEP 50), and the replay gets the scalar
            traced = self._new(np.asarray(result), producer, scalar=True)
            return traced, Ref(traced._index)
        if type(result) in (tuple, list):
            parts = [self._wrap(r, producer) for r in result]
            return type(result)(p for p, _ in parts), type(result)(t for _, t in parts)
        return result, result

    def _written(self, templates: Any) -> tuple[Any, ...]:
        found: list[Any] = []

        def visit(t: Any) -> None:
            if type(t) in (Ref, Const):
                found.append(t)
            elif type(t) in (tuple, list):
                for i in t:
                    visit(i)
        visit(templates)
        return tuple(found)

    def _record(self, kind: str, target: Any, method: str, args: Any, kwargs: dict[str, Any],
                run: Callable[..., Any], writes: Callable[[Any, Any], Any] | None = None,
                returns: Callable[[Any], Any] | None = None) -> Any:
        plain_args, t_args = self._split(args)
        plain_kwargs, t_kwargs = self._split(kwargs)
        errstate = np.geterr()
        site, _ = _caller()
        self.busy = True
        try:
            result = run(*plain_args, **plain_kwargs)
        finally:
            self.busy = False
        call = Call(kind, target, method, t_args, t_kwargs, None, (), self.section, self.context[-1],
                    None if errstate == self.base_errstate else {k: str(v) for k, v in errstate.items()}, site)
        index = len(self.calls)
        self.calls.append(call)
        if writes is not None:
            call.writes = self._written(writes(t_args, t_kwargs))
        if returns is not None:
            return returns(result)
        given, template = self._wrap(result, index)
        call.result = template
        return given

    # -- the kinds of call ------------------------------------------------------------------------------------
    def ufunc(self, ufunc: np.ufunc, method: str, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = kwargs.get("out")

        def writes(t_args: Any, t_kwargs: Any) -> Any:
            return (t_kwargs.get("out") or ()) + ((t_args[0],) if method == "at" else ())

        def given_out(result: Any) -> Any:
            if method == "at" or out is None:
                return None
            return out[0] if len(out) == 1 else out

        return self._record("ufunc", ufunc, method, inputs, kwargs, getattr(ufunc, method), writes,
                            given_out if out is not None or method == "at" else None)

    def function(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = kwargs.get("out")
        first = func in _WRITES_FIRST

        def writes(t_args: Any, t_kwargs: Any) -> Any:
            return (t_kwargs.get("out"),) if out is not None else (t_args[0],) if first else ()

        result = self._record("function", func, "", args, kwargs, func, writes,
                              (lambda r: out) if out is not None else (lambda r: None) if first else None)
        if not isinstance(result, (Traced, tuple, list)) and result is not None and out is None and not first:
            _, module = _caller()
            if isinstance(result, (bool, np.bool_)) and module.startswith("tinygrad_edu.") \
                    and not module.startswith("tinygrad_edu.jit"):
                # the engine checking its input (a loss's np.allclose): a guard every replay checks again
                call = self.calls[-1]
                value = self._new(np.asarray(result), len(self.calls) - 1, scalar=True)
                call.result = Ref(value._index)
                self.calls.append(Call("guard", "truth", "__bool__", (call.result,), {}, None, (), self.section,
                                       self.context[-1], None, call.site, bool(result)))
                return result
            raise JitError(f"jit: np.{getattr(func, '__name__', func)} gave a Python value ({result!r}) computed from "
                           f"the step's arrays; a replay runs numpy only, so Python could not use it. Keep it an "
                           f"array.")
        return result

    def method(self, obj: Traced, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        def run(this: np.ndarray, *rest: Any, **kw: Any) -> Any:
            return getattr(this, name)(*rest, **kw)

        def writes(t_args: Any, t_kwargs: Any) -> Any:
            return (t_args[0],) if name in _IN_PLACE or (name == "byteswap" and t_args[1:2] == (True,)) else ()

        returns = (lambda r: None) if name in _IN_PLACE else None
        return self._record("method", name, "", (obj,) + tuple(args), kwargs, run, writes, returns)

    def draw(self, proxy: GeneratorProxy, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        def run(*a: Any, **kw: Any) -> Any:
            return getattr(proxy._real, name)(*a, **kw)

        result = self._record("draw", proxy._handle, name, args, kwargs, run)
        return result

    def read(self, obj: Traced, name: str, result: Any) -> None:
        """The step read a traced array's data into Python (``float(x)``, ``x.item()``, ``if x:``).

        Inside the engine (a loss checking its input's range, the non-finite watch) the read becomes a guard that
        every replay checks, falling back to one eager step when the outcome would differ. Anywhere else it is a
        mistake in a jitted step, refused here with the way out.
        """
        site, module = _caller()
        frame = _reading_frame()
        if frame is not None:  # loss.item(), float(loss), if loss: the Tensor hands its array's value to the learner
            self.user_read(obj, name, f"{frame.f_code.co_filename}:{frame.f_lineno}")
        if not module.startswith("tinygrad_edu.") or module.startswith("tinygrad_edu.jit"):
            self.user_read(obj, name, site)
        expected: bool | int
        if isinstance(result, (bool, np.bool_)):
            kind, expected = "truth", bool(result)
        elif isinstance(result, (float, np.floating)) and name in ("item", "__float__"):
            kind, expected = "finite", math.isfinite(result)
        elif isinstance(result, (int, np.integer)) and name in ("item", "__int__", "__index__"):
            kind, expected = "equal", int(result)
        else:
            return  # a message being written (repr, tolist): it changes nothing the step computes
        self.calls.append(Call("guard", kind, name, (Ref(obj._index),), {}, None, (), self.section,
                               self.context[-1], None, site, expected))

    def user_read(self, obj: Traced, name: str, site: str) -> None:
        what = {"__bool__": "a truth value (if x:, while x:, and, or)", "__float__": "float(x)",
                "__int__": "int(x)", "__index__": "an index", "item": ".item()", "tolist": ".tolist()",
                "__repr__": "print or repr", "__str__": "print or str", "__format__": "an f-string",
                }.get(name, f".{name}()")
        raise JitError(
            f"jit: the step reads an array's values into Python ({what}) at {site}. A replay runs the recorded "
            f"numpy calls only, not your Python, so this line would run on the recorded calls and never again "
            f"(a branch on data would keep the first call's choice; a print would print twice). Return the "
            f"value instead and read it outside the step (loss = step(x, y); print(loss.item())), or take the "
            f"branch outside. (If the branch must stay, do not jit this step.)")

    # -- context for the source's notes ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def note(self, *context: Any) -> Iterator[None]:
        self.context.append(context)
        try:
            yield
        finally:
            self.context.pop()

    def hint(self, x: Any, priority: int, name: str | Callable[[], str]) -> None:
        """Suggest a name for the value behind ``x`` (a traced array), for the source."""
        if isinstance(x, Traced) and x._recorder is self:
            self.values[x._index].hints.append((priority, name))

    def value_of(self, x: Any) -> Value | None:
        if isinstance(x, Traced) and x._recorder is self:
            return self.values[x._index]
        return None


_UNFOLLOWED = ("jit: the step made an array from a traced one in a way the recorder could not follow (e.g. "
               "ndarray.real or .flat); use an array method or a numpy function instead, or do not jit this step.")


# numpy functions that write into their first argument
_WRITES_FIRST = frozenset({np.copyto, np.put, np.place, np.putmask, np.fill_diagonal, np.put_along_axis})

# numpy's creators: an array made from nothing during the step is recorded (a write into it is part of the step)
_CREATORS = ("empty", "zeros", "ones", "full", "empty_like", "zeros_like", "ones_like", "full_like", "array",
             "asarray", "asanyarray", "ascontiguousarray", "copy")


def _creator(real: Callable[..., Any]) -> Callable[..., Any]:
    name = real.__name__

    def make(*args: Any, **kwargs: Any) -> Any:
        rec = active()
        if rec is None or rec.busy:
            return real(*_deep_plain(args), **_deep_plain(kwargs))
        if name in ("asarray", "asanyarray", "ascontiguousarray", "array", "copy") and not rec.owns(args[:1]):
            return real(*_deep_plain(args), **_deep_plain(kwargs))  # data from outside the step: a constant
        if name in ("asarray", "asanyarray") and len(args) == 1 and isinstance(args[0], Traced):
            dtype = kwargs.get("dtype")
            if set(kwargs) <= {"dtype"} and (dtype is None or np.dtype(dtype) == args[0].dtype):
                return args[0]  # numpy would give the same array back
        if name == "ascontiguousarray" and len(args) == 1 and not kwargs and isinstance(args[0], Traced) \
                and args[0].flags.c_contiguous:
            return args[0]
        return rec.function(real, args, kwargs)

    make.__name__ = name
    make.__wrapped__ = real  # type: ignore[attr-defined]
    return make
