"""Writing a recorded step out as Python: the source that ``jit`` shows, compiles and runs.

Every recorded numpy call becomes Python that makes exactly that call: ``np.add(a, b)`` is written ``a + b``
(numpy's operator makes the same call), ``np.exp(a)`` stays ``np.exp(a)``, a method stays a method. A value used
once, right where it is made, is written inside the expression that uses it, so a rule reads as ops.py writes
it: ``grad_z2 = grad_a2 * a2 * (1 - a2)``. Python evaluates that expression in the order the calls were
recorded, so it makes the same calls in the same order. Values keep the names of the tensors they were
(``z1``, ``layers_0_weight``); a gradient is ``grad_`` and the name of what it is the gradient of. Each backward
rule is headed by its op's docstring, the local derivative (one op, one place: ops.py). A call that depends on
no input was computed once, at compile time, and is shown as a ``# once:`` comment; ``del`` frees each array
after the last line that reads it.

The result is a ``Source``: its text, and the namespace to run it in.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .trace import Call, Const, Recorder, Ref

__all__ = ["Program", "Source", "write"]


class Fallback(Exception):  # noqa: N818 (the source reads `raise Fallback`: what happens, not an error)
    """Raised inside a replay where a guard fails: the step is run eagerly instead (see ``jit``)."""


@dataclass
class Program:
    """What to write: the recording, and how the step's function meets the world around it."""

    recorder: Recorder
    title: str                                   # the jitted function's name
    params: list[tuple[int, str]]                # the function's parameters: (value index, name)
    generators: list[tuple[int, str]]            # generators it draws from, also parameters: (const index, name)
    returns: list[int]                           # the values it returns (what the step returned)
    stores: list[tuple[int, str]]                # values it hands back to be stored (a .grad): (index, where)
    eager_steps: list[str]                       # optimizers whose step() the replay calls as it is, after this
    signature: str = ""                          # the inputs' shapes, for the docstring


@dataclass
class Source:
    text: str
    namespace: dict[str, Any]
    name: str                                    # the function's name in the text


# -- operators: numpy makes the same ufunc call for the operator as for the function ---------------------------

_BINARY = {"add": ("+", 12), "subtract": ("-", 12), "multiply": ("*", 13), "divide": ("/", 13),
           "true_divide": ("/", 13), "floor_divide": ("//", 13), "remainder": ("%", 13), "matmul": ("@", 13),
           "less": ("<", 7), "less_equal": ("<=", 7), "greater": (">", 7), "greater_equal": (">=", 7),
           "equal": ("==", 7), "not_equal": ("!=", 7), "bitwise_and": ("&", 10), "bitwise_or": ("|", 8),
           "bitwise_xor": ("^", 9), "left_shift": ("<<", 11), "right_shift": (">>", 11)}
# NOTE: no `**`: numpy answers `a ** 2` with np.square, `a ** 0.5` with np.sqrt, a different call than np.power
_UNARY = {"negative": "-", "positive": "+", "invert": "~"}
_AUGMENTED = {"add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "remainder", "matmul",
              "bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift"}
_ATOM = 16
_WHOLE = 5  # a hint's priority from which its value is a tensor's whole gradient or the tensor itself
_RESERVED = {"np", "math", "Fallback", "slice", "float", "bool", "int", "step", "True", "False", "None"}


@dataclass
class _Expr:
    text: str
    precedence: int


def _paren(e: _Expr, need: bool) -> str:
    return f"({e.text})" if need else e.text


class _Writer:
    def __init__(self, program: Program) -> None:
        self.p = program
        self.rec = program.recorder
        self.namespace: dict[str, Any] = {"np": np, "math": math, "Fallback": Fallback}
        self.taken = set(_RESERVED)
        self.names: dict[int, str] = {}          # value index -> name
        self.const_names: dict[int, str] = {}
        self.uses = self._count_uses()
        self.lines: list[str] = []
        self.header_consts: list[str] = []

    # -- names ------------------------------------------------------------------------------------------------
    def fresh(self, wanted: str) -> str:
        name = re.sub(r"\W", "_", wanted).strip("_") or "t"
        if name[0].isdigit():
            name = "v" + name
        if keyword.iskeyword(name):
            name += "_"
        base, k = name, 1
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def name_of(self, index: int) -> str:
        if index not in self.names:
            hints = sorted(self.rec.values[index].hints, key=lambda h: -h[0])
            self.names[index] = self.fresh(hints[0][1] if hints else "t")
        return self.names[index]

    def bind(self, obj: Any, wanted: str) -> str:
        name = self.fresh(wanted)
        self.namespace[name] = obj
        return name

    # -- uses ----------------------------------------------------------------------------------------------------
    def _count_uses(self) -> dict[int, int]:
        uses: dict[int, int] = {}
        for call in self.rec.calls:
            for ref in _refs((call.args, call.kwargs)):
                uses[ref.index] = uses.get(ref.index, 0) + 1
        for index in self.p.returns:
            uses[index] = uses.get(index, 0) + 2  # returned: never folded into an expression
        for index, _ in self.p.stores:
            uses[index] = uses.get(index, 0) + 2
        return uses

    def foldable(self, call: Call) -> bool:
        """A call whose result can be written inside the one expression that uses it."""
        if call.kind not in ("ufunc", "function", "method") or call.writes or call.errstate or call.once:
            return False
        if type(call.result) is not Ref:
            return False
        index = call.result.index
        value = self.rec.values[index]
        return self.uses.get(index, 0) == 1 and not value.named  # a tensor the learner named keeps its line

    # -- literals and arguments ------------------------------------------------------------------------------
    def literal(self, x: Any, like: np.dtype | None = None) -> _Expr:
        if type(x) is Ref:
            return self.folded.pop(x.index, None) or _Expr(self.name_of(x.index), _ATOM)
        if type(x) is Const:
            return self.constant(x, like)
        if x is None or x is Ellipsis or isinstance(x, (bool, str, bytes)):
            return _Expr("..." if x is Ellipsis else repr(x), _ATOM)
        if isinstance(x, float):
            if math.isnan(x):
                return _Expr("np.nan", _ATOM)
            if math.isinf(x):
                return _Expr("np.inf", _ATOM) if x > 0 else _Expr("-np.inf", 14)
            return _Expr(repr(x), 14 if x < 0 or (x == 0 and math.copysign(1, x) < 0) else _ATOM)
        if isinstance(x, int):
            return _Expr(repr(x), 14 if x < 0 else _ATOM)
        if isinstance(x, complex):
            return _Expr(repr(x), _ATOM)
        if type(x) is tuple:
            parts = [self.literal(i).text for i in x]
            return _Expr(f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})", _ATOM)
        if type(x) is list:
            return _Expr(f"[{', '.join(self.literal(i).text for i in x)}]", _ATOM)
        if type(x) is slice:
            return _Expr(f"slice({self.literal(x.start).text}, {self.literal(x.stop).text}, "
                         f"{self.literal(x.step).text})", _ATOM)
        if isinstance(x, np.generic):
            return _Expr(repr(x), _ATOM)
        if isinstance(x, np.dtype) and x.isbuiltin and getattr(np, x.name, None) is x.type:
            return _Expr(f"np.{x.name}", _ATOM)
        type_name = getattr(x, "__name__", "") if isinstance(x, type) else ""
        if type_name and getattr(np, type_name, None) is x:
            return _Expr(f"np.{type_name}", _ATOM)
        if isinstance(x, type) and x in (float, int, bool, complex):
            return _Expr(x.__name__, _ATOM)
        return _Expr(self.bind(x, "obj"), _ATOM)

    def constant(self, c: Const, like: np.dtype | None) -> _Expr:
        obj = self.rec.consts[c.index]
        if isinstance(obj, np.ndarray) and obj.ndim == 0 and obj.dtype.kind == "f" and like is not None \
                and obj.dtype == like and not obj.flags.writeable:
            # NOTE: a read-only 0-d constant (the engine's cache of `x * 2`) against an array of its own dtype: a
            # literal gives the same result dtype and the same numbers (NEP 50: weak Python float, same dtype)
            return self.literal(float(obj)) if obj.dtype == np.float64 else _Expr(repr(obj[()]), _ATOM)
        if c.index not in self.const_names:
            wanted = "c"
            if isinstance(obj, np.ndarray):
                self.const_names[c.index] = self.bind(obj, wanted)
                self.header_consts.append(f"{self.const_names[c.index]}: a constant {obj.dtype} array of shape "
                                          f"{obj.shape}")
            elif callable(obj):
                self.const_names[c.index] = self.bind(obj, getattr(obj, "__name__", "f"))
            else:
                self.const_names[c.index] = self.bind(obj, "obj")
        return _Expr(self.const_names[c.index], _ATOM)

    def index_text(self, x: Any) -> str:
        """A subscript as Python writes it: ``a[1:, ..., None]``."""
        parts = x if type(x) is tuple else (x,)
        out = []
        for part in parts:
            if type(part) is slice:
                bits = ["" if b is None else self.literal(b).text for b in (part.start, part.stop, part.step)]
                out.append(f"{bits[0]}:{bits[1]}" + (f":{bits[2]}" if bits[2] else ""))
            else:
                out.append(self.literal(part).text)
        if type(x) is tuple and len(out) == 1:
            return out[0] + ","
        return ", ".join(out) if out else "()"

    # -- one call ----------------------------------------------------------------------------------------------
    def array_dtype(self, args: Sequence[Any]) -> np.dtype | None:
        """The dtype of the call's first numpy value: a constant of that dtype may be written as a number."""
        for a in args:
            if type(a) is Ref:
                return self.rec.values[a.index].dtype
        return None

    def expression(self, call: Call) -> _Expr:
        args, kwargs = call.args, call.kwargs
        if call.kind == "ufunc":
            like = self.array_dtype(args)
            name = call.target.__name__
            if call.method == "__call__" and not kwargs and _numeric(args, self):
                if name in _BINARY and len(args) == 2:
                    op, prec = _BINARY[name]
                    left, right = self.literal(args[0], like), self.literal(args[1], like)
                    right_text = _paren(right, right.precedence <= prec)
                    return _Expr(f"{_paren(left, left.precedence < prec or (prec == 7 and left.precedence == 7))} "
                                 f"{op} {right_text}", prec)
                if name in _UNARY and len(args) == 1:
                    inner = self.literal(args[0], like)
                    return _Expr(f"{_UNARY[name]}{_paren(inner, inner.precedence < 14)}", 14)
            func = self.ufunc_name(call.target) + ("" if call.method == "__call__" else f".{call.method}")
            return _Expr(f"{func}({self.arguments(args, kwargs, like)})", _ATOM)
        if call.kind == "function":
            return _Expr(f"{self.function_name(call.target)}({self.arguments(args, kwargs, None)})", _ATOM)
        if call.kind == "draw":
            gen = self.literal(call.target).text
            return _Expr(f"{gen}.{call.method}({self.arguments(args, kwargs, None)})", _ATOM)
        # a method: the object first, as Python evaluates it
        obj = self.literal(args[0])
        target = _paren(obj, obj.precedence < _ATOM)
        if call.target == "__getitem__":
            return _Expr(f"{target}[{self.index_text(args[1])}]", _ATOM)
        if call.target == "transpose" and len(args) == 1 and not kwargs:
            return _Expr(f"{target}.T", _ATOM)
        if call.target == "swapaxes" and args[1:] == (-2, -1) and not kwargs:
            return _Expr(f"{target}.mT", _ATOM)
        defaults = _DEFAULTS.get(call.target, {})
        kwargs = {k: v for k, v in kwargs.items() if not (k in defaults and type(v) is type(defaults[k])
                                                           and v == defaults[k])}
        return _Expr(f"{target}.{call.target}({self.arguments(args[1:], kwargs, None)})", _ATOM)

    def arguments(self, args: Sequence[Any], kwargs: dict[str, Any], like: np.dtype | None) -> str:
        parts = [self.literal(a, like).text for a in args]
        for key, value in kwargs.items():
            if key == "out" and type(value) is tuple and len(value) == 1:
                value = value[0]
            parts.append(f"{key}={self.literal(value, like).text}")
        return ", ".join(parts)

    def ufunc_name(self, ufunc: np.ufunc) -> str:
        if getattr(np, ufunc.__name__, None) is ufunc:
            return f"np.{ufunc.__name__}"
        return self.bind(ufunc, ufunc.__name__)

    def function_name(self, func: Any) -> str:
        name = getattr(func, "__name__", "f")
        if getattr(np, name, None) is func:
            return f"np.{name}"
        return self.bind(func, name)

    def statement(self, call: Call) -> str:
        """The line for a call that is not folded into another."""
        args, kwargs = call.args, call.kwargs
        if call.kind == "guard":
            return self.guard(call)
        if call.kind == "ufunc" and call.method == "__call__" and call.target.__name__ in _AUGMENTED \
                and set(kwargs) == {"out"} and kwargs["out"] == (args[0],) and len(args) == 2 \
                and type(args[0]) is Ref and _numeric(args, self):
            like = self.array_dtype(args)
            right = self.literal(args[1], like)
            target = self.literal(args[0]).text
            return f"{target} {_BINARY[call.target.__name__][0]}= {right.text}"
        if call.kind == "method" and call.target == "__setitem__":
            value = self.literal(args[2])  # NOTE: Python evaluates the right-hand side first, as recorded
            obj = self.literal(args[0])
            return f"{_paren(obj, obj.precedence < _ATOM)}[{self.index_text(args[1])}] = {value.text}"
        text = self.expression(call).text
        if call.result is None:
            return text
        return f"{self.targets(call.result)} = {text}"

    def targets(self, result: Any) -> str:
        if type(result) is Ref:
            return self.name_of(result.index)
        if type(result) in (tuple, list):
            parts = [self.targets(r) for r in result]
            return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"
        return "_"

    def guard(self, call: Call) -> str:
        value = self.literal(call.args[0]).text
        if call.target == "finite":
            test = f"math.isfinite({value}.{call.method}())" if call.method == "item" else f"math.isfinite({value})"
            return f"if {'not ' if call.expected else ''}{test}: raise Fallback  # {_GUARD_NOTE}"
        if call.target == "truth":
            return f"if bool({value}) is not {call.expected}: raise Fallback  # {_GUARD_NOTE}"
        return f"if int({value}) != {call.expected!r}: raise Fallback  # {_GUARD_NOTE}"

    # -- the whole function -----------------------------------------------------------------------------------
    def write(self) -> Source:
        p = self.p
        params = []
        for index, wanted in p.params:
            self.names[index] = self.fresh(wanted)
            params.append(self.names[index])
        for const, wanted in p.generators:
            self.const_names[const] = self.fresh(wanted)
            params.append(self.const_names[const])
        # the whole gradient of a tensor keeps grad_<name>; partial ones (a tensor used twice) are numbered
        for value in self.rec.values:
            if value.producer >= 0 and value.hints and max(value.hints)[0] >= _WHOLE and value.index not in self.names:
                self.name_of(value.index)
        self.folded: dict[int, _Expr] = {}
        pending: list[tuple[int, Call, _Expr]] = []  # folded values not yet used, in the order they were made
        body: list[str] = []
        section, context = "", None

        def flush() -> None:
            while pending:
                index, _call, expr = pending.pop(0)
                self.folded.pop(index, None)
                body.append(f"{self.name_of(index)} = {expr.text}")

        for call in self.rec.calls:
            if call.section != section:
                flush()
                section = call.section
                body.append("")
                body.append(f"# -- {_SECTIONS.get(section, section)} --")
                context = None
            # fold the values this call uses that were made just before it, in the order Python evaluates them
            # (only values still waiting to be folded count: a name or a parameter is not a call)
            order = [r.index for r in _refs(_evaluation_order(call)) if r.index in self.folded]
            if call.errstate or (section != "forward" and call.context is not context):
                flush()  # a new rule: its lines start afresh under its note
                order = []
            for index in reversed(order):
                if pending and pending[-1][0] == index:
                    pending.pop()
                    order.pop()
                else:
                    break
            if order:
                flush()  # a value made earlier than the ones just folded: it gets its own line first
            note = self.note(call, context)
            if note:
                body.append(note)
            context = call.context
            if call.once:
                flush()
                body.append(f"# once: {self.statement(call)}")
                for ref in _refs((call.result, call.writes)):
                    value = self.rec.values[ref.index]
                    value.plain.flags.writeable = False  # shared by every call: nothing may write into it
                    self.namespace[self.name_of(ref.index)] = value.plain[()] if value.scalar else value.plain
                continue
            if call.kind != "guard" and not call.errstate and self.foldable(call):
                index = call.result.index
                expr = self.expression(call)
                self.folded[index] = expr
                pending.append((index, call, expr))
                continue
            flush()
            line = self.statement(call)
            if call.errstate:
                changed = {k: v for k, v in call.errstate.items() if self.rec.base_errstate.get(k) != v}
                settings = ", ".join(f"{k}={v!r}" for k, v in sorted(changed.items()))
                body.append(f"with np.errstate({settings}):")
                line = "    " + line
            body.append(line)
        flush()
        if p.eager_steps:
            body.append("")
            body.append("# -- update --")
            body.append(f"# then {', '.join(f'{name}.step()' for name in p.eager_steps)} runs as it is, on the .grad "
                        f"returned here: its numbers change every step (Adam's bias correction counts the steps in "
                        f"Python)")
        returns = [self.literal(Ref(i)).text for i in p.returns]
        stores = [self.literal(Ref(i)).text for i, _ in p.stores]
        if p.stores:
            body.append("")
            body.append("# what backward() leaves in .grad (and other arrays the step stored): "
                        + ", ".join(where for _, where in p.stores))
        body.append(f"return ({', '.join(returns)}{',' if len(returns) == 1 else ''}), "
                    f"({', '.join(stores)}{',' if len(stores) == 1 else ''})")
        body = _free_dead(body, set(params))
        doc = [f'"""The step `{p.title}` as the numpy calls it makes{", " + p.signature if p.signature else ""}.']
        if self.header_consts:
            doc.append("")
            doc += self.header_consts
        if any(c.once for c in self.rec.calls):
            doc.append("")
            doc.append("Lines marked `# once:` depend on no input: they were computed once, when the step was "
                       "compiled,")
            doc.append("and every call uses their values.")
        if any(line.lstrip().startswith("del ") for line in body):
            doc.append("")
            doc.append("`del` hands an array's memory back once nothing reads it any more, as eager's walk drops a "
                       "gradient")
            doc.append("once it has passed it on.")
        doc.append('"""')
        text = f"def step({', '.join(params)}):\n" + "\n".join(
            ("    " + line if line else "") for line in doc + body) + "\n"
        return Source(text, self.namespace, "step")

    def note(self, call: Call, previous: Any) -> str:
        """The comment that heads a backward rule (the op's docstring) or the engine's own steps."""
        context = call.context
        if context is previous or call.section == "forward":
            return ""
        kind = context[0]
        if kind == "backward" and len(context) > 1 and context[1] is not None:
            op = context[1]
            doc = (op.__doc__ or "").strip().splitlines()
            return f"# {op.name}: {doc[0].strip() if doc else ''}".rstrip()
        return {"unbroadcast": "# unbroadcast: the gradient of a broadcast input is summed back to its shape",
                "add up": "# a tensor used more than once: the gradients that reach it add up",
                "accumulate": "# accumulate into the leaf's .grad",
                "start": "# the gradient of the output with respect to itself",
                }.get(kind, f"# {' '.join(str(c) for c in context)}" if kind not in ("backward", "forward", "update")
                      else "")


# keyword arguments a method takes by default: written or not, numpy makes the same computation
_REDUCTION: dict[str, Any] = {"axis": None, "keepdims": False, "dtype": None, "out": None}
_DEFAULTS = {name: _REDUCTION for name in ("sum", "mean", "max", "min", "prod", "all", "any")}
_DEFAULTS.update({"var": {**_REDUCTION, "ddof": 0}, "std": {**_REDUCTION, "ddof": 0}})

_SECTIONS = {"forward": "forward", "backward": "backward: each rule of ops.py, newest node first",
             "update": "update"}
_GUARD_NOTE = "otherwise this step runs eagerly (see jit)"


_ASSIGNED = re.compile(r"^\s*([A-Za-z_]\w*) = ")
_WORD = re.compile(r"[A-Za-z_]\w*")


def _free_dead(body: list[str], params: set[str]) -> list[str]:
    """``del`` each local after the last line that reads it (a parameter or a comment never counts)."""
    assigned = {m.group(1) for line in body if (m := _ASSIGNED.match(line))} - params
    last: dict[str, int] = {}
    for i, line in enumerate(body):
        code = line.split("#", 1)[0]
        for word in _WORD.findall(code):
            if word in assigned:
                last[word] = i
    dead: dict[int, list[str]] = {}
    for name, i in last.items():
        dead.setdefault(i, []).append(name)
    out = []
    for i, line in enumerate(body):
        out.append(line)
        if i in dead and i < len(body) - 1:  # the last line returns
            names = ", ".join(sorted(dead[i], key=line.find))
            out.append(f"del {names}")  # after a `with` block's line too: the block has ended
    return out


def _leaves(template: Any, kind: type) -> list[Any]:
    """Every ``kind`` (Ref or Const) inside a call's template of tuples, lists, dicts and slices, in order."""
    found: list[Any] = []

    def visit(t: Any) -> None:
        if type(t) is kind:
            found.append(t)
        elif type(t) in (tuple, list):
            for i in t:
                visit(i)
        elif type(t) is dict:
            for v in t.values():
                visit(v)
        elif type(t) is slice:
            visit((t.start, t.stop, t.step))
    visit(template)
    return found


def _refs(template: Any) -> list[Ref]:
    return _leaves(template, Ref)


def _consts(template: Any) -> list[Const]:
    return _leaves(template, Const)


def _evaluation_order(call: Call) -> Any:
    """The call's operands in the order Python evaluates them in the line written for it."""
    if call.kind == "method" and call.target == "__setitem__":
        return (call.args[2], call.args[0], call.args[1])
    return (call.args, call.kwargs)


def _numeric(args: Sequence[Any], writer: _Writer) -> bool:
    """An operator makes the recorded ufunc call only if an operand is a numpy value (not two Python numbers)."""
    for a in args:
        if type(a) is Ref:
            return True
        if type(a) is Const and isinstance(writer.rec.consts[a.index], np.ndarray):
            return True
        if isinstance(a, np.generic):
            return True
    return False


def write(program: Program) -> Source:
    """The step's function: its text and the namespace it runs in."""
    return _Writer(program).write()
