"""Layers and networks built on the engine: ``Module``, ``Linear``, activations, ``Sequential`` and ``MLP``.

A ``Module`` finds its parameters by itself: every leaf ``Tensor`` with ``requires_grad=True`` stored in one of
its attributes (directly, inside lists, tuples and dicts, or inside another ``Module``) is a parameter, named
by the path that leads to it (``layers.0.weight``). No registration step, no ``__getattr__`` magic. State that is
saved but never trained (batch norm's running statistics) is a ``Buffer``, found the same way.

A module is in training mode after construction; ``model.eval()`` switches it and every module inside it to
evaluation mode (dropout off, batch norm on its running statistics), ``model.train()`` back.

Weights are stored **(in_features, out_features)** and a layer computes ``x @ weight + bias`` with one sample
per row of ``x``: the layout of the mnist3 tutorial (``np.dot(x, w1)``). PyTorch's ``nn.Linear`` stores the
transpose, (out_features, in_features), and computes ``x @ weight.T + bias``; Nielsen's book keeps
(out, in) weights and column-vector samples. Transpose when you move weights between them.

>>> import numpy as np
>>> from tinygrad_edu import Tensor
>>> net = MLP([2, 3, 1], activation="tanh", output_activation="sigmoid", init="xavier", rng=0)
>>> [(name, p.shape) for name, p in net.named_parameters()]
[('layers.0.weight', (2, 3)), ('layers.0.bias', (3,)), ('layers.2.weight', (3, 1)), ('layers.2.bias', (1,))]
>>> net(Tensor(np.zeros((4, 2)))).shape
(4, 1)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from . import conv_args
from .diagnostics import learner_warning
from .grad_mode import is_grad_enabled
from .npz import save_npz
from .parameters import named_items
from .tensor import Tensor

__all__ = [
    "named_items", "save_npz",  # documented here first; they live in parameters.py and npz.py
    "Module", "Buffer", "Linear", "BatchNorm1d", "batch_norm", "Conv2d", "MaxPool2d", "AvgPool2d", "Flatten",
    "Sequential", "MLP",
    "Sigmoid", "Tanh", "ReLU", "Softmax", "LogSoftmax", "Identity", "Dropout",
    "LoadResult", "INITIALISERS", "normal_init", "nielsen_init", "xavier_init", "he_init", "zeros_init",
]

RngLike = np.random.Generator | int | None
Initialiser = Callable[[tuple[int, int], np.random.Generator], np.ndarray]


# -- walking the attributes -------------------------------------------------------------------------------

def _members(obj: Any, prefix: str, on_path: set[int]) -> Iterator[tuple[str, Tensor | Module]]:
    """Tensors and Modules reachable from ``obj`` through lists, tuples and dicts (not through Modules).

    ``on_path`` holds the containers being walked, so a list that contains itself does not loop forever.
    """
    if isinstance(obj, (Tensor, Module)):
        yield prefix, obj
        return
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple: its field names read better
        items: Iterator[tuple[str, Any]] = zip(obj._fields, obj)
    elif isinstance(obj, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(obj))
    elif isinstance(obj, dict):
        items = ((str(k), v) for k, v in obj.items())
    else:
        return  # numbers, strings, arrays, functions...: not part of the parameter tree
    if id(obj) in on_path:
        return
    on_path.add(id(obj))
    for key, value in items:
        yield from _members(value, f"{prefix}.{key}", on_path)
    on_path.discard(id(obj))


def _is_parameter(t: Tensor) -> bool:
    # NOTE: only leaves: a forward pass that caches its activations (self.a1 = ..., as the tutorials do) stores
    # tensors that require grad but are computed from the parameters; they must not be trained or saved.
    return t.requires_grad and t.is_leaf


class Buffer(Tensor):
    """A tensor a module saves but never trains: in ``state_dict()`` and checkpoints, never in ``parameters()``.

    Batch norm's running mean and variance are buffers: training changes them, but not by gradient descent.
    Change one in place under ``no_grad()`` (``buffer.data[...] = new``) or give it new data (``buffer.data =``).

    >>> class Counter(Module):
    ...     def __init__(self):
    ...         self.steps = Buffer(np.zeros(()))
    >>> counter = Counter()
    >>> counter.parameters(), list(counter.state_dict())
    ([], ['steps'])
    """

    __slots__ = ()

    def __init__(self, data: Any, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(data, requires_grad=False, name=name, dtype=dtype)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad:
            raise TypeError(f"requires_grad_: {self.name or 'this buffer'} is a Buffer, state that is saved but "
                            f"never trained; make it a Tensor(..., requires_grad=True) to learn it.")
        return self


def _is_state(t: Tensor) -> bool:
    """A parameter or a buffer: what ``state_dict()`` saves."""
    return isinstance(t, Buffer) or _is_parameter(t)


class LoadResult(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped: names the model has but the state lacked, and back."""

    missing: list[str]
    unexpected: list[str]


# -- Module -------------------------------------------------------------------------------------------------

class Module:
    """Base class of layers and networks: subclasses store tensors and modules as attributes, write ``forward``.

    >>> class Affine(Module):
    ...     def __init__(self):
    ...         self.scale = Tensor(np.ones(2), requires_grad=True)
    ...         self.parts = {"shift": Tensor(np.zeros(2), requires_grad=True)}
    ...     def forward(self, x):
    ...         return x * self.scale + self.parts["shift"]
    >>> [name for name, _ in Affine().named_parameters()]
    ['scale', 'parts.shift']
    """

    training: bool = True
    """True in training mode (the default), False after ``eval()``; layers such as dropout read it."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} has no forward(): a Module subclass must define forward(self, x), the "
            f"computation that calling the module runs.")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # -- the parameter tree ---------------------------------------------------------------------------------
    def _walk(self, prefix: str, seen_tensors: set[int], seen_modules: set[int],
              state: list[tuple[str, Tensor]] | None, modules: list[tuple[str, Module]] | None) -> None:
        seen_modules.add(id(self))
        if modules is not None:
            modules.append((prefix, self))
        for attr, value in vars(self).items():
            for name, member in _members(value, f"{prefix}.{attr}" if prefix else attr, set()):
                if isinstance(member, Module):
                    if id(member) not in seen_modules:
                        member._walk(name, seen_tensors, seen_modules, state, modules)
                elif state is not None and _is_state(member) and id(member) not in seen_tensors:
                    seen_tensors.add(id(member))  # a tensor reachable twice keeps its first name
                    state.append((name, member))

    def _named_state(self) -> list[tuple[str, Tensor]]:
        """Parameters and buffers by dotted name, in attribute definition order: what ``state_dict()`` saves."""
        state: list[tuple[str, Tensor]] = []
        self._walk("", set(), set(), state, None)
        return state

    def named_parameters(self) -> list[tuple[str, Tensor]]:
        """``(dotted name, tensor)`` for every parameter, in attribute definition order, each tensor once."""
        return [(name, t) for name, t in self._named_state() if not isinstance(t, Buffer)]

    def named_buffers(self) -> list[tuple[str, Buffer]]:
        """``(dotted name, buffer)`` for every ``Buffer``, in attribute definition order, each once."""
        return [(name, t) for name, t in self._named_state() if isinstance(t, Buffer)]

    def buffers(self) -> list[Buffer]:
        """The buffers of ``named_buffers()``, without their names."""
        return [b for _, b in self.named_buffers()]

    def parameters(self) -> list[Tensor]:
        """The parameters of ``named_parameters()``, without their names: what an optimizer takes."""
        return [p for _, p in self.named_parameters()]

    def named_modules(self) -> list[tuple[str, Module]]:
        """``(dotted name, module)`` for this module (name ``""``) and every module inside it, each once."""
        modules: list[tuple[str, Module]] = []
        self._walk("", set(), set(), None, modules)
        return modules

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``grad`` becomes None)."""
        for p in self.parameters():
            p.grad = None

    # -- modes --------------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode (``mode=False``: evaluation mode) for this module and every module inside it.

        >>> net = Sequential(Linear(2, 2, rng=0), Sigmoid())
        >>> [m.training for _, m in net.eval().named_modules()], net.train().layers[1].training
        ([False, False, False], True)
        """
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode): mode must be True or False, got {mode!r}; for evaluation mode call "
                            f"model.eval().")
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode for this module and every module inside it (``train(False)``); returns the module."""
        return self.train(False)

    # -- saving and loading ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter's and buffer's values, by dotted name (later training does not change it)."""
        return {name: t.data.copy() for name, t in self._named_state()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> LoadResult:
        """Copy values from ``state`` (as ``state_dict()`` makes) into the parameters and buffers.

        Every entry must be a numpy array with the parameter's exact shape and dtype. With ``strict=True`` the
        names must match exactly too; ``strict=False`` skips missing and unexpected names and returns them.
        All problems are reported in one ``ValueError``, and nothing is changed unless everything fits.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict: expected a dict of name -> numpy array (as state_dict() returns), "
                            f"got {type(state).__name__}.")
        params = self._named_state()
        names = {name for name, _ in params}
        missing = [name for name, _ in params if name not in state]
        unexpected = [str(key) for key in state if key not in names]
        problems = []
        if strict:
            problems += [f"missing {name!r}" for name in missing]
            problems += [f"unexpected {name!r}" for name in unexpected]
        for name, p in params:
            if name not in state:
                continue
            value = state[name]
            if not isinstance(value, np.ndarray):
                problems.append(f"{name!r} is a {type(value).__name__}, the model expects a numpy array")
            elif value.shape != p.shape:
                transposed = value.ndim == 2 and value.shape[::-1] == p.shape
                hint = (" (transposed? Linear weights here are (in_features, out_features); PyTorch's are "
                        "(out, in), so pass weight.T)" if transposed else "")
                problems.append(f"{name!r} has shape {value.shape}, the model expects {p.shape}{hint}")
            elif value.dtype != p.dtype:
                problems.append(f"{name!r} has dtype {value.dtype}, the model expects {p.dtype} "
                                f"(convert it with .astype(np.{p.dtype}))")
        if problems:
            raise ValueError(f"load_state_dict: {'; '.join(problems)}. Nothing was loaded.")
        for name, p in params:
            if name in state:
                # NOTE: assigning through the setter stamps the change, so a graph built from the old
                # values refuses to backpropagate instead of silently mixing old and new numbers.
                p.data = np.array(state[name], copy=True)
        return LoadResult(missing, unexpected)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``state_dict()`` to an ``.npz`` file at exactly ``path``, atomically (see ``npz.save_npz``)."""
        save_npz(path, self.state_dict())

    def load(self, path: str | os.PathLike[str], strict: bool = True) -> LoadResult:
        """Read an ``.npz`` file written by ``save`` (without pickle) and ``load_state_dict`` it."""
        archive = np.load(os.fspath(path), allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"load: {os.fspath(path)!r} holds a single array, not an .npz archive of named "
                             f"parameters; write it with model.save(path).")
        with archive:
            state = {name: archive[name] for name in archive.files}
        return self.load_state_dict(state, strict=strict)

    # -- printing -------------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside ``Name(...)`` when printing; layers override it with their settings."""
        return ""

    def _repr(self, on_path: set[int]) -> str:
        children = [(name, m) for attr, value in vars(self).items()
                    for name, m in _members(value, attr, set()) if isinstance(m, Module)]
        header = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return header + ")"
        on_path = on_path | {id(self)}
        lines = [header]
        for name, child in children:
            text = f"{type(child).__name__}(<cycle>)" if id(child) in on_path else child._repr(on_path)
            lines.append(f"  ({name}): " + text.replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"

    def __repr__(self) -> str:
        return self._repr(set())


# -- initialisers -------------------------------------------------------------------------------------------

def normal_init(shape: tuple[int, int], rng: RngLike = None) -> np.ndarray:
    """Standard normal N(0, 1) weights, as the tutorials' ``np.random.randn`` (large: sigmoids saturate)."""
    return np.random.default_rng(rng).standard_normal(shape)


def nielsen_init(shape: tuple[int, int], rng: RngLike = None) -> np.ndarray:
    """N(0, 1) / sqrt(fan_in): the improved initialisation of Nielsen's chapter 3 (fan_in = shape[0])."""
    return np.random.default_rng(rng).standard_normal(shape) / np.sqrt(shape[0])


def xavier_init(shape: tuple[int, int], rng: RngLike = None) -> np.ndarray:
    """Glorot *uniform*: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), so Var = 2 / (fan_in + fan_out)."""
    limit = np.sqrt(6.0 / (shape[0] + shape[1]))
    return np.random.default_rng(rng).uniform(-limit, limit, size=shape)


def he_init(shape: tuple[int, int], rng: RngLike = None) -> np.ndarray:
    """He (Kaiming) *normal*: N(0, 2 / fan_in), which keeps the signal's size through ReLU layers."""
    return np.random.default_rng(rng).standard_normal(shape) * np.sqrt(2.0 / shape[0])


def zeros_init(shape: tuple[int, int], rng: RngLike = None) -> np.ndarray:
    """All zeros, as the cat-vs-non-cat logistic regression starts (fine for one layer; a hidden layer
    started at zero would keep all its units identical). ``rng`` is accepted and not used."""
    return np.zeros(shape)


INITIALISERS: dict[str, Initialiser] = {
    "normal": normal_init, "nielsen": nielsen_init, "xavier": xavier_init, "he": he_init, "zeros": zeros_init,
}
"""Initialisers by the name ``Linear(init=...)`` accepts; each maps ``(shape, rng)`` to a float64 array."""


def _as_input(x: Any, dtype: np.dtype) -> Tensor:
    """Data into the layer's dtype (so a float32 model stays float32); tensors that need gradients pass as is."""
    if isinstance(x, Tensor):
        if x.dtype == dtype or x.requires_grad:
            return x
        return Tensor(x.data.astype(dtype), name=x.name)
    return Tensor(np.asarray(x, dtype=dtype))


# -- layers -------------------------------------------------------------------------------------------------

class Linear(Module):
    """A fully connected layer: ``x @ weight + bias``, one sample per row of ``x``.

    ``weight`` has shape ``(in_features, out_features)`` (PyTorch stores the transpose) and ``bias`` shape
    ``(out_features,)``. ``init`` picks the weights: ``"normal"`` N(0, 1), as the tutorials and Nielsen's book do,
    with N(0, 1) biases too; ``"nielsen"`` N(0, 1/fan_in), ``"xavier"`` Glorot uniform, ``"he"`` N(0, 2/fan_in),
    ``"zeros"``, or a callable ``init((in_features, out_features), rng) -> array``; all but ``"normal"`` start
    the biases at zero.
    Random numbers come only from ``rng`` (a Generator, a seed, or None for a fresh unseeded Generator); the
    weights are drawn first, then the biases. Inputs that need no gradient are cast to ``dtype``.

    >>> layer = Linear(3, 2, init="he", rng=0, dtype=np.float32)
    >>> layer
    Linear(in_features=3, out_features=2, bias=True, dtype=float32)
    >>> layer(np.ones((5, 3))).dtype
    dtype('float32')
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 init: str | Initialiser = "normal", rng: RngLike = None, dtype: Any = np.float64) -> None:
        for label, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise ValueError(f"Linear: {label} must be a positive integer, got {n!r}.")
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Linear: dtype must be a floating-point type (np.float32 or np.float64), "
                            f"got {dtype}.")
        generator = np.random.default_rng(rng)
        shape = (int(in_features), int(out_features))
        if isinstance(init, str):
            if init not in INITIALISERS:
                raise ValueError(f"Linear: unknown init {init!r}; choose one of {sorted(INITIALISERS)} or pass a "
                                 f"callable init((in_features, out_features), rng) -> array.")
            weight = INITIALISERS[init](shape, generator)
        elif callable(init):
            weight = np.asarray(init(shape, generator))
            if weight.shape != shape:
                raise ValueError(f"Linear: init returned shape {weight.shape}, expected {shape} "
                                 f"(in_features, out_features).")
        else:
            raise TypeError(f"Linear: init must be a name or a callable, got {type(init).__name__}.")
        self.in_features, self.out_features = shape
        self.weight = Tensor(weight.astype(dtype), requires_grad=True, name="weight")
        self.bias: Tensor | None = None
        if bias:
            values = generator.standard_normal(shape[1]) if init == "normal" else np.zeros(shape[1])
            self.bias = Tensor(values.astype(dtype), requires_grad=True, name="bias")

    def forward(self, x: Any) -> Tensor:
        x = _as_input(x, self.weight.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            hint = (" It looks transposed (one sample per column, as in Nielsen's book): pass x.T."
                    if x.ndim == 2 and x.shape[0] == self.in_features else "")
            raise ValueError(f"Linear({self.in_features} -> {self.out_features}): the input has shape {x.shape}, "
                             f"but its last axis must hold the {self.in_features} features of each sample (one "
                             f"sample per row).{hint}")
        out = x @ self.weight
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        dtype = "" if self.weight.dtype == np.float64 else f", dtype={self.weight.dtype}"
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}{dtype}")


class Conv2d(Module):
    """A convolutional layer on images (N, C, H, W): ``x.conv2d(weight, bias, stride, padding)``.

    PyTorch's layout: ``weight`` (out_channels, in_channels, kh, kw), ``bias`` (out_channels,). ``init`` takes
    the names ``Linear`` does, with fan_in = in_channels * kh * kw (the numbers one output adds up): by default
    ``"nielsen"``, N(0, 1/fan_in), biases zero; ``"normal"`` draws N(0, 1) weights and biases. The weights are
    drawn first, then the biases, from ``rng``.

    >>> conv = Conv2d(1, 20, 5, rng=0)
    >>> conv
    Conv2d(in_channels=1, out_channels=20, kernel_size=(5, 5), stride=(1, 1), padding=(0, 0), bias=True)
    >>> conv.weight.shape
    (20, 1, 5, 5)
    >>> conv(np.zeros((10, 1, 28, 28))).shape
    (10, 20, 24, 24)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], stride: Any = 1,
                 padding: Any = 0, bias: bool = True, *, init: str | Initialiser = "nielsen", rng: RngLike = None,
                 dtype: Any = np.float64) -> None:
        for label, n in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise ValueError(f"Conv2d: {label} must be a positive integer, got {n!r}.")
        kernel = conv_args.pair(kernel_size, "kernel_size", "Conv2d", 1)
        # stride and padding checked as conv2d will check them, on an image the kernel just fits
        geometry = conv_args.conv2d((1, in_channels) + kernel, (out_channels, in_channels) + kernel, stride=stride,
                                    padding=padding)
        # NOTE: a filter is one column of a Linear layer on the flattened windows: (fan_in, out) with fan_in =
        # in_channels * kh * kw. Drawing that layer gives Conv2d Linear's initialisers, checks and bias rule.
        columns = Linear(in_channels * kernel[0] * kernel[1], out_channels, bias, init=init, rng=rng, dtype=dtype)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel
        self.stride, self.padding = geometry["stride"], geometry["padding"]
        weight = columns.weight.data.T.reshape((out_channels, in_channels) + kernel)
        self.weight = Tensor(np.ascontiguousarray(weight), requires_grad=True, name="weight")
        self.bias = None if columns.bias is None else Tensor(columns.bias.data, requires_grad=True, name="bias")

    def forward(self, x: Any) -> Tensor:
        return _as_input(x, self.weight.dtype).conv2d(self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        dtype = "" if self.weight.dtype == np.float64 else f", dtype={self.weight.dtype}"
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}{dtype}")


class _Pool2d(Module):
    def __init__(self, kernel_size: Any, stride: Any = None) -> None:
        self.kernel_size, self.stride = kernel_size, stride

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPool2d(_Pool2d):
    """The maximum of each ``kernel_size`` window, moved by ``stride`` (by default the kernel: no overlap)."""

    def forward(self, x: Any) -> Tensor:
        return _tensor(x).max_pool2d(self.kernel_size, self.stride)


class AvgPool2d(_Pool2d):
    """The mean of each ``kernel_size`` window, moved by ``stride`` (by default the kernel: no overlap)."""

    def forward(self, x: Any) -> Tensor:
        return _tensor(x).avg_pool2d(self.kernel_size, self.stride)


class Flatten(Module):
    """Axes ``start_dim`` to ``end_dim`` merged into one: (N, C, H, W) -> (N, C*H*W), for a Linear layer next."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Any) -> Tensor:
        return _tensor(x).flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


def _batch_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float, running_mean: Tensor | None,
                running_var: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """``batch_norm``'s graph, one node per stage, each named; also the mean and variance it normalised with."""
    if running_mean is None or running_var is None:
        mean = x.mean(axis=0)
        mean.name = "mean"
        centred = x - mean
        squared = centred ** 2
        squared.name = "squared"
        variance = squared.mean(axis=0)
        variance.name = "variance"
    else:
        mean, variance = running_mean, running_var
        centred = x - mean
    centred.name = "centred"
    var_eps = variance + Tensor(np.asarray(eps, dtype=x.dtype), name="eps")
    var_eps.name = "var_eps"
    inv_std = var_eps ** -0.5
    inv_std.name = "inv_std"
    x_hat = centred * inv_std
    x_hat.name = "x_hat"
    scaled = x_hat * weight
    scaled.name = "scaled"
    out = scaled + bias
    out.name = "out"
    return out, mean, variance


def _check_batch(x: Tensor, features: int, training: bool, who: str) -> None:
    if x.ndim != 2:
        rank = {0: "a scalar", 1: "1-D"}.get(x.ndim, f"{x.ndim}-D")
        hint = (" For one sample use x.reshape(1, -1), in eval mode (model.eval())." if x.ndim == 1 else
                " PyTorch's BatchNorm1d also takes (N, C, L) sequences; this one takes rows of features only."
                if x.ndim == 3 else "")
        raise ValueError(f"{who}: expected input of shape (N, C) = (batch size, {features}), one sample per row; "
                         f"got shape {x.shape} ({rank}).{hint}")
    if x.shape[1] != features:
        raise ValueError(f"{who}: the input has {x.shape[1]} features per sample (shape {x.shape}), but this layer "
                         f"normalises {features}; num_features must be the size of the input's last axis (the "
                         f"out_features of the layer before it).")
    if training and x.shape[0] < 2:
        raise ValueError(f"{who}: a batch of {x.shape[0]} in training mode has no spread to normalise by "
                         f"(each feature's variance over one value is 0): more than one value per feature is "
                         f"needed, as in PyTorch. Train on batches of 2 or more (if this is the last mini-batch "
                         f"of an epoch, pick a batch size that divides the training set), or call model.eval() "
                         f"to normalise single samples with the running statistics.")


def batch_norm(x: Any, weight: Any, bias: Any, eps: float = 1e-5, running_mean: Any = None,
               running_var: Any = None) -> Tensor:
    """Batch normalisation as a function: what ``BatchNorm1d`` computes, on tensors you pass in.

    ``x`` is (N, C); ``weight`` (gamma) and ``bias`` (beta) are (C,). Without running statistics each column
    is normalised with its batch mean and biased variance (train mode); with ``running_mean`` and
    ``running_var`` it is normalised with them (eval mode). Nothing is updated: the layer keeps the running
    statistics. Use it to write ``loss(t)`` for ``check_backprop`` when you derive batch norm by hand:

    >>> x = Tensor([[1.0, 2.0], [3.0, 6.0]], requires_grad=True)
    >>> batch_norm(x, Tensor([1.0, 1.0]), Tensor([0.0, 0.5])).data.round(4).tolist()
    [[-1.0, -0.5], [1.0, 1.5]]
    """
    x, weight, bias = _tensor(x), _tensor(weight), _tensor(bias)
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: pass both running_mean and running_var (eval mode) or neither (train mode).")
    features = x.shape[-1] if x.ndim else 0
    _check_batch(x, features, running_mean is None, "batch_norm")
    if weight.shape != (features,) or bias.shape != (features,):
        raise ValueError(f"batch_norm: weight and bias must be ({features},), one per feature of x {x.shape}; got "
                         f"{weight.shape} and {bias.shape}.")
    running = (None, None) if running_mean is None else (_tensor(running_mean), _tensor(running_var))
    return _batch_norm(x, weight, bias, eps, *running)[0]


class BatchNorm1d(Module):
    """Batch normalisation of each feature over the mini-batch (Ioffe and Szegedy, 2015), as PyTorch's.

    In training mode each column of ``x`` (N, C) is normalised with its batch mean and biased (1/N) variance,
    then scaled by ``weight`` (gamma, starts at 1) and shifted by ``bias`` (beta, starts at 0)::

        mean = x.mean(0)    centred = x - mean    squared = centred ** 2    variance = squared.mean(0)
        var_eps = variance + eps    inv_std = var_eps ** -0.5    x_hat = centred * inv_std
        scaled = x_hat * weight    out = scaled + bias

    Each stage is one of the engine's ops and its tensor carries that name, so ``draw`` and ``stepthrough``
    show every stage and its local derivative; ``tinygrad_edu.manual.batchnorm`` derives the same backward
    pass by hand. Training mode also updates the buffers ``running_mean`` and ``running_var`` as PyTorch does,
    ``running = (1 - momentum) * running + momentum * batch``, with the unbiased (1/(N - 1)) batch variance;
    evaluation mode (``model.eval()``) normalises with them instead, so single samples can be classified.

    >>> layer = BatchNorm1d(2)
    >>> out = layer(np.array([[1.0, 10.0], [3.0, 30.0]]))
    >>> out.data.round(4).tolist(), layer.running_mean.data.tolist(), layer.running_var.data.tolist()
    ([[-1.0, -1.0], [1.0, 1.0]], [0.2, 2.0], [1.1, 20.9])
    >>> [name for name, _ in layer.named_parameters()], [name for name, _ in layer.named_buffers()]
    (['weight', 'bias'], ['running_mean', 'running_var'])
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, *,
                 dtype: Any = np.float64) -> None:
        if not isinstance(num_features, (int, np.integer)) or isinstance(num_features, bool) or num_features < 1:
            raise ValueError(f"BatchNorm1d: num_features must be a positive integer (the number of features per "
                             f"sample), got {num_features!r}.")
        if not eps > 0:
            raise ValueError(f"BatchNorm1d: eps must be positive (it keeps 1/sqrt(variance + eps) finite for a "
                             f"constant feature), got {eps!r}.")
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm1d: momentum must be between 0 and 1 (the weight of each new batch in the "
                             f"running statistics; PyTorch's default 0.1), got {momentum!r}.")
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"BatchNorm1d: dtype must be a floating-point type (np.float32 or np.float64), "
                            f"got {dtype}.")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        self.weight = Tensor(np.ones(self.num_features, dtype), requires_grad=True, name="weight")
        self.bias = Tensor(np.zeros(self.num_features, dtype), requires_grad=True, name="bias")
        self.running_mean = Buffer(np.zeros(self.num_features, dtype), name="running_mean")
        self.running_var = Buffer(np.ones(self.num_features, dtype), name="running_var")

    def forward(self, x: Any) -> Tensor:
        x = _as_input(x, self.weight.dtype)
        _check_batch(x, self.num_features, self.training, f"BatchNorm1d({self.num_features})")
        if not self.training:
            return _batch_norm(x, self.weight, self.bias, self.eps, self.running_mean, self.running_var)[0]
        if not is_grad_enabled():  # no graph is being recorded: most likely an evaluation by hand
            learner_warning("batch norm in training mode", (
                f"BatchNorm1d({self.num_features}): the model is in training mode, so each sample is normalised "
                f"with the statistics of the batch it came in (its result depends on the other samples) and the "
                f"running statistics move. To evaluate, call model.eval() first (and model.train() before "
                f"training again); evaluate() and fit() switch modes themselves."))
        out, mean, variance = _batch_norm(x, self.weight, self.bias, self.eps, None, None)
        n, m = x.shape[0], self.momentum
        # NOTE: the setter (not .data[...] =) stamps the change, so a graph that read the old statistics
        # (an eval-mode forward pass) refuses to backpropagate instead of mixing old and new values.
        self.running_mean.data = (1 - m) * self.running_mean.data + m * mean.data
        self.running_var.data = (1 - m) * self.running_var.data + m * variance.data * (n / (n - 1))
        return out

    def extra_repr(self) -> str:
        dtype = "" if self.weight.dtype == np.float64 else f", dtype={self.weight.dtype}"
        return f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum:g}{dtype}"


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


class Sigmoid(Module):
    """sigmoid(x) = 1 / (1 + exp(-x)), elementwise."""

    def forward(self, x: Any) -> Tensor:
        return _tensor(x).sigmoid()


class Tanh(Module):
    """tanh(x), elementwise."""

    def forward(self, x: Any) -> Tensor:
        return _tensor(x).tanh()


class ReLU(Module):
    """max(x, 0), elementwise."""

    def forward(self, x: Any) -> Tensor:
        return _tensor(x).relu()


class Identity(Module):
    """Returns its input unchanged (a placeholder where a layer is optional)."""

    def forward(self, x: Any) -> Tensor:
        return _tensor(x)


class Softmax(Module):
    """exp(x) / sum(exp(x)) along ``axis``: each row becomes a probability distribution."""

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Tensor:
        return _tensor(x).softmax(self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Module):
    """log(softmax(x)) along ``axis``, computed stably (pair it with ``losses.nll_loss``)."""

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Tensor:
        return _tensor(x).log_softmax(self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


def _drop_probability(p: Any, who: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0 <= p < 1:
        raise ValueError(f"{who}: p is the probability of dropping a unit and must lie in [0, 1), got p={p!r}. "
                         f"The course's keep_prob is 1 - p: keep_prob = 0.86 is Dropout(0.14).")
    if p > 0.5:  # the course's keep_prob values (0.7 to 0.9) passed as p drop most units
        learner_warning("dropout p above 0.5", (
            f"{who}: p={p:g} drops {p:.0%} of the units (p is the probability of dropping, as in PyTorch). If you "
            f"meant the course's keep_prob = {p:g}, that is p = {1 - p:g}."))
    return float(p)


class Dropout(Module):
    """Inverted dropout: in training each input is zeroed with probability ``p`` and the rest divided by 1 - p.

    ``p`` is the probability of **dropping** a unit, as in PyTorch; the deep-learning course's ``keep_prob`` is
    1 - p (its keep_prob = 0.86 is ``Dropout(0.14)``; ``keep_prob=`` is refused with that translation). The
    division keeps each unit's expected value, so in eval mode (``model.eval()``; ``evaluate`` switches to it)
    the layer passes its input through unchanged. The graph
    records x * (mask / (1 - p)), an ordinary product, so backward sends the gradient through the kept units only,
    scaled the same way; ``mask`` keeps the last training pass's mask (the course's D: 1 where a unit was kept).

    The masks come from ``rng`` (a Generator, shared if given one, a seed, or None for a fresh unseeded one):
    ``MLP(..., dropout=p, rng=...)`` hands its own generator to its dropout layers, and ``fit``'s checkpoints keep
    each dropout generator's state, so a run is reproducible and resumes bit for bit.

    >>> layer = Dropout(0.5, rng=0)
    >>> layer(np.ones((2, 4))).data.tolist()
    [[2.0, 0.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]]
    >>> layer.mask.tolist()
    [[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]
    """

    def __init__(self, p: float = 0.5, rng: RngLike = None, *, keep_prob: Any = None) -> None:
        if keep_prob is not None:  # the course's word, refused with its translation
            meant = f"Dropout({1 - keep_prob:g})" if isinstance(keep_prob, (int, float)) else "Dropout(1 - keep_prob)"
            raise TypeError(f"Dropout takes p, the probability of dropping a unit (as in PyTorch), not the course's "
                            f"keep_prob: keep_prob={keep_prob!r} is {meant}.")
        self.p = _drop_probability(p, "Dropout")
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.mask: np.ndarray | None = None

    def forward(self, x: Any) -> Tensor:
        x = _tensor(x)
        if not self.training or self.p == 0:
            return x
        if not is_grad_enabled():  # no graph is being recorded: most likely an evaluation by hand
            learner_warning("dropout in training mode", (
                "Dropout: the model is in training mode, so each call drops a different random set of units and "
                "gives a different result. To evaluate, call model.eval() first (and model.train() before training "
                "again); evaluate() and fit() switch modes themselves."))
        self.mask = (self.rng.random(x.shape) >= self.p).astype(x.dtype)
        return x * Tensor(self.mask / (1 - self.p), name="dropout mask")

    def extra_repr(self) -> str:
        return f"p={self.p}"


_ACTIVATIONS: dict[str, type[Module]] = {
    "sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "identity": Identity, "softmax": Softmax,
    "log_softmax": LogSoftmax,
}


# -- containers ---------------------------------------------------------------------------------------------

class Sequential(Module):
    """Modules applied one after another; kept in the list ``layers``, so names read ``layers.0.weight``.

    >>> net = Sequential(Linear(2, 2, rng=0), Tanh())
    >>> print(net)
    Sequential(
      (layers.0): Linear(in_features=2, out_features=2, bias=True)
      (layers.1): Tanh()
    )
    """

    def __init__(self, *modules: Module) -> None:
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module; wrap plain "
                                f"functions in a Module subclass with a forward method.")
        self.layers: list[Module] = list(modules)

    def forward(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)


_SAME: Any = object()  # MLP's output_activation default: the hidden layers' activation


class MLP(Sequential):
    """A multilayer perceptron: ``Linear`` layers of the given ``sizes`` with an activation after each.

    ``activation`` is a name (``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"identity"``, ``"softmax"``,
    ``"log_softmax"``), a Module class (one instance per layer) or a Module instance (shared by every layer).
    ``output_activation`` defaults to the same activation (Nielsen's all-sigmoid network); ``None`` leaves the
    output as raw scores (logits), e.g. for ``softmax_cross_entropy``. One ``rng`` draws every layer, in order.
    ``dropout=p`` puts a ``Dropout(p)`` after every hidden layer's activation (never after the output), drawing its
    masks from the same generator; the Linear layers are then at ``layers.0``, ``.3``, ``.6``, ...
    ``batchnorm=True`` puts a ``BatchNorm1d`` between each hidden ``Linear`` and its activation; those
    ``Linear`` layers then have no bias (the batch norm's ``bias``, beta, takes its place: a bias added before
    batch norm is subtracted again with the mean, so its gradient is exactly zero).

    >>> print(MLP([784, 30, 10], output_activation=None, rng=0))
    MLP(
      (layers.0): Linear(in_features=784, out_features=30, bias=True)
      (layers.1): Sigmoid()
      (layers.2): Linear(in_features=30, out_features=10, bias=True)
    )
    >>> [name for name, _ in MLP([784, 30, 10], batchnorm=True, rng=0).named_parameters()]
    ['layers.0.weight', 'layers.1.weight', 'layers.1.bias', 'layers.3.weight', 'layers.3.bias']
    """

    def __init__(self, sizes: Sequence[int], activation: str | Module | type[Module] = "sigmoid",
                 bias: bool = True, output_activation: str | Module | type[Module] | None = _SAME,
                 init: str | Initialiser = "normal", rng: RngLike = None, dtype: Any = np.float64,
                 dropout: float = 0.0, batchnorm: bool = False) -> None:
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes must list at least the input and output sizes, e.g. [784, 30, 10]; "
                             f"got {sizes}.")
        generator = np.random.default_rng(rng)
        dropout = _drop_probability(dropout, "MLP(dropout=...)")
        layers: list[Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            normalised = batchnorm and not last
            layers.append(Linear(n_in, n_out, bias and not normalised, init=init, rng=generator, dtype=dtype))
            if normalised:
                layers.append(BatchNorm1d(n_out, dtype=dtype))
            chosen = activation if not last or output_activation is _SAME else output_activation
            if chosen is not None:
                layers.append(_activation(chosen))
            if dropout and not last:
                layers.append(Dropout(dropout, rng=generator))
        super().__init__(*layers)
        self.sizes = sizes


def _activation(spec: str | Module | type[Module]) -> Module:
    if isinstance(spec, Module):
        return spec
    if isinstance(spec, type) and issubclass(spec, Module):
        return spec()
    if isinstance(spec, str) and spec in _ACTIVATIONS:
        return _ACTIVATIONS[spec]()
    raise ValueError(f"MLP: unknown activation {spec!r}; use one of {sorted(_ACTIVATIONS)}, a Module class or a "
                     f"Module instance.")
