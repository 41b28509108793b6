"""The two switches every op reads: whether to record the graph, and whether to hunt for NaN and Inf.

``no_grad()`` turns recording off (evaluation, the optimizer's update), ``enable_grad()`` back on inside it, and
``detect_anomaly()`` makes every op and every backward rule stop at the first non-finite value. Each works as a
``with`` block or as a decorator, and restores the previous setting when it ends.

>>> from tinygrad_edu import Tensor
>>> w = Tensor([1.0, 2.0], requires_grad=True)
>>> with no_grad():
...     print((w * 2).requires_grad, is_grad_enabled())
False False
>>> (w * 2).requires_grad
True
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["mode", "no_grad", "enable_grad", "detect_anomaly", "is_grad_enabled", "is_anomaly_enabled"]


class _Mode:
    # NOTE: an instance with slots, because every op reads it: a SimpleNamespace costs more per op (bench row W3)
    __slots__ = ("grad_enabled", "anomaly")

    def __init__(self) -> None:
        self.grad_enabled, self.anomaly = True, False


mode = _Mode()
"""The switches as they stand now: ``mode.grad_enabled`` (record the graph), ``mode.anomaly`` (hunt NaN/Inf)."""


class _Switch(contextlib.ContextDecorator):
    """Set one switch of ``mode`` inside a ``with`` block or a decorated function; restore it on exit.

    The previous values are a stack, so one instance can be re-entered (a recursive decorated function).
    """

    _field = ""
    _value = False

    def __new__(cls, func: Any = None) -> Any:
        switch = super().__new__(cls)
        if func is None:
            return switch
        if not callable(func):
            raise TypeError(f"{cls.__name__}() takes no arguments (got {func!r}); use `with {cls.__name__}():` "
                            f"or decorate a function with @{cls.__name__}.")
        cls.__init__(switch)
        return switch(func)  # `@no_grad` without parentheses decorates the function directly

    def __init__(self, func: Any = None) -> None:
        self._saved: list[bool] = []

    def __enter__(self) -> _Switch:
        self._saved.append(getattr(mode, self._field))
        setattr(mode, self._field, self._value)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(mode, self._field, self._saved.pop())


class no_grad(_Switch):
    """Record no graph inside (a context manager or a decorator); the previous mode comes back on exit."""

    _field, _value = "grad_enabled", False


class enable_grad(_Switch):
    """Record graph again inside a ``no_grad`` block."""

    _field, _value = "grad_enabled", True


class detect_anomaly(_Switch):
    """Stop at the first NaN or Inf in any forward result or gradient, naming the op and where it was made.

    Off by default; when off it costs one attribute read per op.
    """

    _field, _value = "anomaly", True


def is_grad_enabled() -> bool:
    return mode.grad_enabled


def is_anomaly_enabled() -> bool:
    return mode.anomaly
