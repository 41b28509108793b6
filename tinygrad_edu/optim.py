"""Optimizers: ``SGD`` (with momentum, dampening, Nesterov and weight decay), ``RMSprop`` and ``Adam`` (optionally
AMSGrad), each as PyTorch defines it.

An optimizer holds the parameters (leaf tensors) it updates. ``step()`` moves each parameter that has a
gradient, in place with numpy on ``.data`` (nothing is recorded in the graph), and assigns it back through the
``data`` setter so the engine stamps the change. ``zero_grad()`` sets every ``.grad`` to None.

``state_dict()`` returns everything ``step()`` will use next (the settings and each parameter's running
state: SGD's velocity, Adam's moments and step counts) as a flat dict of numpy arrays, ready for ``np.savez``;
``load_state_dict()`` puts it back, so training continues exactly where it stopped.

>>> import numpy as np
>>> from tinygrad_edu import Tensor
>>> w = Tensor(np.array([1.0, -2.0]), requires_grad=True, name="w")
>>> opt = SGD([w], lr=0.1)
>>> (w * w).sum().backward()
>>> opt.step()
>>> w.data.tolist()  # w - 0.1 * 2w
[0.8, -1.6]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from .nn import Module
from .parameters import named_items
from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam"]

ParamsLike = Iterable[Tensor] | Iterable[tuple[str, Tensor]] | Mapping[str, Tensor]


def _collect(params: Any, who: str) -> tuple[list[str], list[Tensor]]:
    """Check and list the parameters: leaf float tensors that require grad, each once."""
    if isinstance(params, Tensor):
        raise TypeError(f"{who}: params must be a list of tensors; wrap a single one: {who}([w], lr=...).")
    if isinstance(params, Module):
        raise TypeError(f"{who}: pass the model's parameters, not the model: {who}(model.parameters(), lr=...).")
    items = named_items(params, who)
    if not items:
        raise ValueError(f"{who}: got an empty list of parameters, so step() would change nothing. Did the model "
                         f"store its tensors with requires_grad=True?")
    names: list[str] = []
    tensors: list[Tensor] = []
    seen: dict[int, str] = {}
    for k, (name, p) in enumerate(items):
        label = repr(name or getattr(p, "name", None) or f"parameter {k}")
        if not isinstance(p, Tensor):
            raise TypeError(f"{who}: {label} is a {type(p).__name__}, not a Tensor; pass tensors or "
                            f"(name, tensor) pairs, e.g. model.parameters() or model.named_parameters().")
        if not p.is_leaf:
            assert p.op is not None  # a tensor with parents knows the op that made it
            raise ValueError(f"{who}: {label} is not a leaf: it was computed from other tensors by "
                             f"{p.op.name}, so changing it would not change them (and the next forward pass "
                             f"would recompute it). Pass the leaves you created, e.g. model.parameters().")
        if not p.requires_grad:
            raise ValueError(f"{who}: {label} does not require grad, so backward() never gives it a gradient and "
                             f"step() could not move it. Create it with requires_grad=True (or leave it out).")
        if id(p) in seen:
            raise ValueError(f"{who}: {label} appears twice (also as {seen[id(p)]}); it would be updated twice "
                             f"per step. Pass each parameter once.")
        seen[id(p)] = label
        names.append(name)
        tensors.append(p)
    return names, tensors


def _check_number(value: Any, label: str, who: str, low: float, high: float = math.inf,
                  high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{who}: {label} must be a number, got {type(value).__name__}.")
    value = float(value)
    if not (low <= value and (value < high if high_open else value <= high)):
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise ValueError(f"{who}: {label} must lie in {bound}, got {value}.")
    return value


class Optimizer:
    """Base class: holds ``params`` (and their ``names``, "" when none were given) and ``lr``."""

    def __init__(self, params: ParamsLike, lr: float) -> None:
        who = type(self).__name__
        self.names, self.params = _collect(params, who)
        self.lr = _check_number(lr, "lr", who, 0.0)
        # NOTE: scratch arrays, one per parameter, made on first use: step() runs thousands of times per epoch
        # and should not allocate fresh temporaries for every parameter every time.
        self._scratch: list[np.ndarray | None] = [None] * len(self.params)
        self._decayed: list[np.ndarray | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``grad`` becomes None, and step() skips it until it has one)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        raise NotImplementedError

    # -- saving and loading ---------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """The hyperparameters by name (``lr`` and the subclass's own), as ``state_dict()`` stores them."""
        return {"lr": self.lr}

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of the optimizer's state as named numpy arrays (PyTorch's method name; a flat layout).

        ``type`` is the class name, then one entry per setting (``lr``, ``momentum``, ...), then the running
        state as ``<kind>.<i>`` for parameter ``i`` (in the order the parameters were given), only for the
        parameters that have taken a step. Later steps do not change the copy.

        >>> w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
        >>> opt = SGD([w], lr=0.1, momentum=0.9)
        >>> sorted(opt.state_dict())  # no velocity yet: w has not taken a step
        ['dampening', 'lr', 'momentum', 'nesterov', 'type', 'weight_decay']
        >>> w.grad = np.ones(2); opt.step()
        >>> opt.state_dict()["velocity.0"].tolist()
        [1.0, 1.0]
        """
        state: dict[str, np.ndarray] = {"type": np.array(type(self).__name__)}
        state.update({name: np.array(value) for name, value in self.settings().items()})
        for kind, arrays in self._running_state().items():
            for i, array in enumerate(arrays):
                if array is not None:
                    state[f"{kind}.{i}"] = np.array(array, copy=True)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``: the settings and the running state, so the next step continues exactly.

        As in PyTorch, the settings (``lr``, ``momentum``, ...) are taken from ``state``. The state must come
        from the same optimizer class over parameters of the same shapes and dtypes; every problem is reported
        in one ``ValueError`` and nothing changes unless everything fits.
        """
        who = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, Mapping):
            raise TypeError(f"{who}: expected a dict of name -> numpy array (as state_dict() returns), got "
                            f"{type(state).__name__}.")
        if "type" not in state:
            raise ValueError(f"{who}: the state has no 'type' entry, so it is not an optimizer's state_dict(). "
                             f"Nothing was loaded.")
        saved_type = str(np.asarray(state["type"]))
        if saved_type != type(self).__name__:
            raise ValueError(f"{who}: the state is from {saved_type}, not {type(self).__name__}; load it into "
                             f"a {saved_type}. Nothing was loaded.")
        problems: list[str] = []
        values: dict[str, Any] = {}
        for name, current in self.settings().items():
            if name not in state:
                problems.append(f"missing setting {name!r}")
                continue
            value = np.asarray(state[name])
            if value.shape != np.shape(current):
                problems.append(f"setting {name!r} has shape {value.shape}, expected {np.shape(current)}")
            elif isinstance(current, bool):
                values[name] = bool(value)
            elif isinstance(current, tuple):
                values[name] = tuple(float(v) for v in value)
            else:
                values[name] = float(value)
        kinds = self._running_state()
        loaded: dict[str, list[np.ndarray | None]] = {kind: [None] * len(self.params) for kind in kinds}
        for key in state:
            if key == "type" or key in values or key in self.settings():
                continue
            kind, _, index = str(key).rpartition(".")
            if kind not in kinds or not index.isdigit():
                problems.append(f"unexpected entry {key!r}")
                continue
            i = int(index)
            if i >= len(self.params):
                problems.append(f"{key!r} is for parameter {i}, but this optimizer has {len(self.params)}")
                continue
            array = np.asarray(state[key])
            expected = self._state_shape(kind, self.params[i])
            if array.shape != expected[0] or array.dtype != expected[1]:
                problems.append(f"{key!r} has shape {array.shape} and dtype {array.dtype}, parameter {i} needs "
                                f"{expected[0]} and {expected[1]}")
                continue
            loaded[kind][i] = np.array(array, copy=True)
        together = self._kinds_together(values)
        for i in range(len(self.params)):  # a parameter's running state comes whole or not at all
            present = {kind for kind in kinds if loaded[kind][i] is not None}
            if present and present != together:
                problems.append(f"parameter {i} has {sorted(present)} but needs {sorted(together)} together")
        if problems:
            raise ValueError(f"{who}: {'; '.join(problems)}. Nothing was loaded.")
        self._set_settings(values)
        self._set_running_state(loaded)

    # the hooks a subclass fills in: its settings and its per-parameter state
    def _set_settings(self, values: dict[str, Any]) -> None:
        self.lr = values["lr"]

    def _running_state(self) -> dict[str, list[np.ndarray | None]]:
        """Each kind of per-parameter state (``velocity``, ``m``, ...): one array or None per parameter."""
        return {}

    def _kinds_together(self, settings: dict[str, Any]) -> set[str]:
        """The kinds of running state a parameter that has taken a step has, under these settings: all of them."""
        return set(self._running_state())

    def _state_shape(self, kind: str, p: Tensor) -> tuple[tuple[int, ...], np.dtype]:
        """The shape and dtype the running state ``kind`` has for parameter ``p``: by default, the parameter's."""
        return p.shape, p.dtype

    def _set_running_state(self, loaded: dict[str, list[np.ndarray | None]]) -> None:
        """Take the per-parameter state that ``load_state_dict`` checked, by kind as ``_running_state()``."""

    def _with_gradients(self, decay: float) -> Iterator[tuple[int, Tensor, np.ndarray, np.ndarray, np.ndarray]]:
        """The opening every ``step()`` shares: ``(i, p, p.data, d, scratch)`` for each parameter that has a gradient.

        ``d`` is the gradient plus ``decay * p.data`` (an L2 penalty's gradient, when ``decay`` is not 0); ``scratch``
        is an array of the parameter's shape and dtype, kept between steps, for the update.
        """
        for i, p in enumerate(self.params):
            g = self._gradient(i, p)
            if g is None:
                continue
            data = p.data
            out = self._buffer(i, data)
            if decay:
                g = self._decayed_gradient(i, data, g, decay)
            yield i, p, data, g, out

    def _buffer(self, i: int, data: np.ndarray) -> np.ndarray:
        buf = self._scratch[i]
        if buf is None or buf.shape != data.shape or buf.dtype != data.dtype:
            buf = self._scratch[i] = np.empty_like(data)
        return buf

    def _gradient(self, i: int, p: Tensor) -> np.ndarray | None:
        g = p.grad
        if g is not None and g.shape != p.shape:
            label = repr(self.names[i] or p.name or f"parameter {i}")
            raise ValueError(f"{type(self).__name__}.step(): the gradient of {label} has shape {g.shape} but the "
                             f"parameter has shape {p.shape}; set .grad only to arrays of the parameter's shape.")
        return g

    def _decayed_gradient(self, i: int, data: np.ndarray, g: np.ndarray, decay: float) -> np.ndarray:
        """``g + decay * data``: the gradient of the loss plus the L2 penalty (decay / 2) |w|^2."""
        d = self._decayed[i]
        if d is None or d.shape != data.shape or d.dtype != data.dtype:
            d = self._decayed[i] = np.empty_like(data)
        np.multiply(data, decay, out=d)
        d += g
        return d

    @staticmethod
    def _apply(p: Tensor, update: np.ndarray) -> None:
        """``p.data -= update`` in place, then through the setter so the change is stamped."""
        data = p.data
        if data.flags.writeable:
            data -= update
            p.data = data
        else:  # e.g. a tensor made from a read-only array: rebind instead of writing into it
            p.data = data - update


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (heavy-ball or Nesterov) and weight decay.

    With d = grad + weight_decay * p (weight decay as an L2 penalty's gradient):

    * plain:     p <- p - lr d
    * momentum:  v <- momentum v + (1 - dampening) d;  p <- p - lr v     (the first step sets v = d)
    * Nesterov:  v <- momentum v + d;  p <- p - lr (d + momentum v)     (dampening must be 0, as in PyTorch)

    This is PyTorch's convention. Nielsen's book writes v' = mu v - eta grad, w' = w + v': the same steps for a
    constant learning rate, with his v equal to -lr times ours. The deep-learning course's momentum,
    v <- beta v + (1 - beta) dW with v starting at 0, is ``dampening=beta`` with the velocity started at zero
    (``opt.velocity = [np.zeros_like(p.data) for p in opt.params]``): PyTorch's first step takes the whole
    gradient, the course's a (1 - beta) share of it.

    >>> w = Tensor(np.array([1.0]), requires_grad=True)
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad(); (w * 1.0).sum().backward(); opt.step()
    >>> round(float(w.data[0]), 6)  # 1 - 0.1 * 1 - 0.1 * (0.9 + 1)
    0.71
    """

    def __init__(self, params: ParamsLike, lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, dampening: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum = _check_number(momentum, "momentum", "SGD", 0.0)
        self.weight_decay = _check_number(weight_decay, "weight_decay", "SGD", 0.0)
        self.dampening = _check_number(dampening, "dampening", "SGD", 0.0, 1.0)
        if nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("SGD: nesterov=True needs a momentum > 0 and dampening=0 (Nesterov's look-ahead "
                             "follows the undamped velocity; PyTorch refuses the same).")
        self.nesterov = bool(nesterov)
        self.velocity: list[np.ndarray | None] = [None] * len(self.params)

    def settings(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay, "dampening": self.dampening}

    def _set_settings(self, values: dict[str, Any]) -> None:
        self.lr, self.momentum, self.nesterov, self.weight_decay, self.dampening = (
            values["lr"], values["momentum"], values["nesterov"], values["weight_decay"], values["dampening"])

    def _running_state(self) -> dict[str, list[np.ndarray | None]]:
        return {"velocity": self.velocity}

    def _set_running_state(self, loaded: dict[str, list[np.ndarray | None]]) -> None:
        self.velocity = loaded["velocity"]

    def step(self) -> None:
        lr, momentum = float(self.lr), self.momentum
        for i, p, data, g, out in self._with_gradients(self.weight_decay):
            if momentum:
                v = self.velocity[i]
                if v is None:
                    v = self.velocity[i] = np.array(g, dtype=data.dtype, copy=True)
                else:
                    v *= momentum
                    if self.dampening:
                        np.multiply(g, 1.0 - self.dampening, out=out)
                        v += out
                    else:
                        v += g
                if self.nesterov:
                    np.multiply(v, momentum, out=out)
                    out += g
                    g = out
                else:
                    g = v
            np.multiply(g, lr, out=out)
            self._apply(p, out)

    def __repr__(self) -> str:
        dampening = f", dampening={self.dampening}" if self.dampening else ""
        return (f"SGD(lr={self.lr}, momentum={self.momentum}{dampening}, nesterov={self.nesterov}, "
                f"weight_decay={self.weight_decay}, {len(self.params)} parameters)")


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e, as PyTorch implements it): each element's step divided by a running RMS.

    With d = grad + weight_decay * p:

        v <- alpha v + (1 - alpha) d^2                       (v starts at 0)
        p <- p - lr d / (sqrt(v) + eps)

    ``centered=True`` subtracts the square of a running mean of d from v (an estimate of d's variance instead
    of its second moment); ``momentum > 0`` keeps a buffer b <- momentum b + d / (sqrt(v) + eps) (from 0) and
    steps by lr b. The deep-learning course writes the same update as s = beta2 s + (1 - beta2) dW^2,
    W -= alpha dW / (sqrt(s) + eps): its beta2 is ``alpha`` here, its alpha is ``lr``.

    >>> w = Tensor(np.array([1.0, -1.0]), requires_grad=True)
    >>> opt = RMSprop([w], lr=0.01)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.data.round(4).tolist()  # the first step: lr * d / sqrt(0.01 d^2) = 0.1 per element, whatever d
    [0.9, -0.9]
    """

    def __init__(self, params: ParamsLike, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        super().__init__(params, lr)
        self.alpha = _check_number(alpha, "alpha", "RMSprop", 0.0, 1.0, high_open=True)
        self.eps = _check_number(eps, "eps", "RMSprop", 0.0)
        self.weight_decay = _check_number(weight_decay, "weight_decay", "RMSprop", 0.0)
        self.momentum = _check_number(momentum, "momentum", "RMSprop", 0.0)
        self.centered = bool(centered)
        self.square_avg: list[np.ndarray | None] = [None] * len(self.params)
        self.grad_avg: list[np.ndarray | None] = [None] * len(self.params)
        self.momentum_buffer: list[np.ndarray | None] = [None] * len(self.params)

    def settings(self) -> dict[str, Any]:
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum": self.momentum, "centered": self.centered}

    def _set_settings(self, values: dict[str, Any]) -> None:
        self.lr, self.alpha, self.eps, self.weight_decay, self.momentum, self.centered = (
            values["lr"], values["alpha"], values["eps"], values["weight_decay"], values["momentum"],
            values["centered"])

    def _running_state(self) -> dict[str, list[np.ndarray | None]]:
        return {"square_avg": self.square_avg, "grad_avg": self.grad_avg, "momentum_buffer": self.momentum_buffer}

    def _set_running_state(self, loaded: dict[str, list[np.ndarray | None]]) -> None:
        self.square_avg, self.grad_avg, self.momentum_buffer = (
            loaded["square_avg"], loaded["grad_avg"], loaded["momentum_buffer"])

    def _kinds_together(self, settings: dict[str, Any]) -> set[str]:
        return ({"square_avg"} | ({"grad_avg"} if settings.get("centered") else set())
                | ({"momentum_buffer"} if settings.get("momentum") else set()))

    def step(self) -> None:
        lr, alpha, eps, momentum = float(self.lr), self.alpha, self.eps, self.momentum
        for i, p, data, g, out in self._with_gradients(self.weight_decay):
            v = self.square_avg[i]
            if v is None:
                v = self.square_avg[i] = np.zeros_like(data)
            v *= alpha
            np.multiply(g, g, out=out)
            out *= 1.0 - alpha
            v += out
            if self.centered:
                mean = self.grad_avg[i]
                if mean is None:
                    mean = self.grad_avg[i] = np.zeros_like(data)
                mean *= alpha
                mean += (1.0 - alpha) * g
                np.multiply(mean, mean, out=out)
                np.subtract(v, out, out=out)
                np.sqrt(out, out=out)
            else:
                np.sqrt(v, out=out)
            out += eps
            np.divide(g, out, out=out)
            if momentum:
                b = self.momentum_buffer[i]
                if b is None:
                    b = self.momentum_buffer[i] = np.zeros_like(data)
                b *= momentum
                b += out
                np.multiply(b, lr, out=out)
            else:
                out *= lr
            self._apply(p, out)

    def __repr__(self) -> str:
        extra = (f", momentum={self.momentum}" if self.momentum else "") + (", centered=True" if self.centered else "")
        return (f"RMSprop(lr={self.lr}, alpha={self.alpha}, eps={self.eps}, weight_decay={self.weight_decay}"
                f"{extra}, {len(self.params)} parameters)")


class Adam(Optimizer):
    """Adam: per-element step sizes from running averages of the gradient and of its square.

    With d = grad + weight_decay * p (an L2 penalty, as PyTorch's Adam; not AdamW's decoupled decay) and t the
    number of steps this parameter has taken:

        m <- b1 m + (1 - b1) d;   v <- b2 v + (1 - b2) d^2          (m, v start at 0)
        p <- p - lr * m_hat / (sqrt(v_hat) + eps),   m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t)

    ``amsgrad=True`` (Reddi et al., 2018, as PyTorch's option) keeps the largest v seen so far,
    v_max <- max(v_max, v), and uses it in place of v: a step size never grows back after a large gradient.

    >>> w = Tensor(np.array([1.0, -1.0]), requires_grad=True)
    >>> opt = Adam([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.data.round(6).tolist()  # the first step moves each element by lr, whatever the gradient's size
    [0.9, -0.9]
    """

    def __init__(self, params: ParamsLike, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Adam: betas must be a pair (b1, b2), got {betas!r}.")
        self.betas = (_check_number(betas[0], "betas[0]", "Adam", 0.0, 1.0, high_open=True),
                      _check_number(betas[1], "betas[1]", "Adam", 0.0, 1.0, high_open=True))
        self.eps = _check_number(eps, "eps", "Adam", 0.0)
        self.weight_decay = _check_number(weight_decay, "weight_decay", "Adam", 0.0)
        self.amsgrad = bool(amsgrad)
        self.steps = [0] * len(self.params)
        self.m: list[np.ndarray | None] = [None] * len(self.params)
        self.v: list[np.ndarray | None] = [None] * len(self.params)
        self.v_max: list[np.ndarray | None] = [None] * len(self.params)

    def settings(self) -> dict[str, Any]:
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay,
                "amsgrad": self.amsgrad}

    def _set_settings(self, values: dict[str, Any]) -> None:
        self.lr, self.betas, self.eps, self.weight_decay, self.amsgrad = (
            values["lr"], values["betas"], values["eps"], values["weight_decay"], values["amsgrad"])

    def _running_state(self) -> dict[str, list[np.ndarray | None]]:
        # the step counts travel as 0-d int64 arrays, like the moments, only for parameters that have stepped
        steps = [np.array(t, dtype=np.int64) if t else None for t in self.steps]
        return {"step": steps, "m": self.m, "v": self.v, "v_max": self.v_max}

    def _set_running_state(self, loaded: dict[str, list[np.ndarray | None]]) -> None:
        self.steps = [0 if t is None else int(t) for t in loaded["step"]]
        self.m, self.v, self.v_max = loaded["m"], loaded["v"], loaded["v_max"]

    def _state_shape(self, kind: str, p: Tensor) -> tuple[tuple[int, ...], np.dtype]:
        return ((), np.dtype(np.int64)) if kind == "step" else (p.shape, p.dtype)

    def _kinds_together(self, settings: dict[str, Any]) -> set[str]:
        return {"step", "m", "v"} | ({"v_max"} if settings.get("amsgrad") else set())

    def step(self) -> None:
        lr, (b1, b2), eps = float(self.lr), self.betas, self.eps
        for i, p, data, g, out in self._with_gradients(self.weight_decay):
            m, v = self.m[i], self.v[i]
            if m is None or v is None or m.shape != data.shape:
                m = self.m[i] = np.zeros_like(data)
                v = self.v[i] = np.zeros_like(data)
                self.v_max[i] = None
            self.steps[i] = t = self.steps[i] + 1
            m *= b1
            np.multiply(g, 1.0 - b1, out=out)
            m += out
            v *= b2
            np.multiply(g, g, out=out)
            out *= 1.0 - b2
            v += out
            if self.amsgrad:
                v_max = self.v_max[i]
                if v_max is None:
                    v_max = self.v_max[i] = np.zeros_like(data)
                np.maximum(v_max, v, out=v_max)
                v = v_max
            # NOTE: lr m_hat / (sqrt(v_hat) + eps) rewritten as (lr / c1) m / (sqrt(v) / sqrt(c2) + eps) with
            # c = 1 - b^t: the same number, computed with scalar corrections instead of two more arrays.
            np.sqrt(v, out=out)
            out *= 1.0 / math.sqrt(1.0 - b2**t)
            out += eps
            np.divide(m, out, out=out)
            out *= lr / (1.0 - b1**t)
            self._apply(p, out)

    def __repr__(self) -> str:
        amsgrad = ", amsgrad=True" if self.amsgrad else ""
        return (f"Adam(lr={self.lr}, betas={self.betas}, eps={self.eps}, weight_decay={self.weight_decay}"
                f"{amsgrad}, {len(self.params)} parameters)")
