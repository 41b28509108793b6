"""The tutorial networks, each twice: the hand-derived numpy reference and its engine twin, and ``compare``.

``compare("nielsen")`` starts both from the same parameters, runs them on the same mini-batch, and reports,
per parameter, how far the engine's gradients (``check_backprop``) and the parameters after a few SGD steps
are from the hand-derived ones. The keys: ``mnist3``, ``nielsen``, ``xor``, ``lnet``, ``logreg`` (the five
tutorial files) and ``batchnorm`` (a batch-norm MLP, ``manual.batchnorm``); see ``TUTORIALS``.

Each tutorial names and lays out its parameters its own way; the engine twin is an ``nn.MLP``. ``to_engine`` and
``to_reference`` translate between the two (parameters or gradients alike), in one place: ``LAYOUTS``.
``named_forward`` runs a twin with its tensors named as the tutorial names them (``z1``, ``a1``, ...), so a
drawing of its graph (``tinygrad-edu graph nielsen``) reads like the tutorial.

>>> result = compare("xor", steps=3)
>>> result.ok, result.worst < 1e-12
(True, True)
>>> params = {"W1": np.ones((20, 12288)), "b1": np.zeros((20, 1)), "W2": np.ones((1, 20)), "b2": np.zeros((1, 1))}
>>> {name: a.shape for name, a in to_engine("lnet", params).items()}
{'layers.0.weight': (12288, 20), 'layers.0.bias': (20,), 'layers.2.weight': (20, 1), 'layers.2.bias': (1,)}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import datasets, losses, nn, optim
from .check import BackpropReport, check_backprop
from .manual import batchnorm, lnet, logreg, mnist3, nielsen, xor
from .tensor import Tensor

__all__ = [
    "TUTORIALS", "LAYOUTS", "Layout", "Twin", "Link", "Comparison", "Row", "build", "compare", "links", "to_engine",
    "to_reference", "layer_names", "named_forward",
]

Params = dict[str, np.ndarray]


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _transpose(a: np.ndarray) -> np.ndarray:
    return a.T


def _column(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, 1)


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1)


@dataclass(frozen=True)
class Link:
    """One engine parameter and the reference parameter it stands for, with the layout change between them."""

    engine: str
    manual: str
    to_manual: Callable[[np.ndarray], np.ndarray] = _same
    to_engine: Callable[[np.ndarray], np.ndarray] = _same


@dataclass(frozen=True)
class Layout:
    """Where a tutorial keeps its parameters, against its engine twin: an ``nn.MLP`` (Linear at layers.0, .2, ...).

    The reference's names are ``weight.format(i)`` and ``bias.format(i)`` for its layers ``i = first, ...``
    (a name without ``{}`` is a one-layer tutorial's). Its biases are columns ``(out, 1)``, the engine's ``(out,)``.
    """

    weight: str
    bias: str | None                  # None: the tutorial has no biases
    first: int = 1                    # the number of the first layer in the names
    transposed: bool = False          # weights are (out, in), one example per column (Linear's are (in, out))
    batchnorm: bool = False           # hidden layers: no bias, then batch norm (gamma{i}, beta{i}); biases (out,)

    def links(self, layers: int) -> list[Link]:
        weight = (_transpose, _transpose) if self.transposed else (_same, _same)
        bias = (_same, _same) if self.batchnorm else (_column, _flat)
        stride = 3 if self.batchnorm else 2    # Linear, [BatchNorm1d,] activation
        found = []
        for i in range(layers):
            number = self.first + i
            found.append(Link(f"layers.{stride * i}.weight", self.weight.format(number), *weight))
            if self.batchnorm and i < layers - 1:
                found.append(Link(f"layers.{stride * i + 1}.weight", f"gamma{number}"))
                found.append(Link(f"layers.{stride * i + 1}.bias", f"beta{number}"))
            elif self.bias is not None:
                found.append(Link(f"layers.{stride * i}.bias", self.bias.format(number), *bias))
        return found

    def count(self, names: list[str], side: str) -> int:
        """How many layers a set of parameter names holds, on the "engine" or the "manual" side."""
        if side == "manual":
            if "{}" not in self.weight:                            # a one-layer tutorial's
                return 1
            return sum(self.weight.format(self.first + i) in names for i in range(len(names)))
        weights = sum(name.endswith(".weight") for name in names)
        return (weights + 1) // 2 if self.batchnorm else weights   # a batch norm has a weight too


LAYOUTS: dict[str, Layout] = {
    "mnist3": Layout("w{}", None),                                   # w1, w2, w3: (in, out), no biases
    "nielsen": Layout("w{}", "b{}", first=0, transposed=True),       # nielsen.params_of: w0, b0, w1, b1
    "xor": Layout("weights{}", None),                                # weights1, weights2: (in, out)
    "lnet": Layout("W{}", "b{}", transposed=True),                   # the course: W1 (n1, n0), b1 (n1, 1)
    "logreg": Layout("w", "b"),                                      # w (n_x, 1), b (1, 1)
    "batchnorm": Layout("w{}", "b{}", batchnorm=True),               # w1, gamma1, beta1, ..., wL, bL (out,)
}


def links(key: str, layers: int) -> list[Link]:
    """The links between tutorial ``key``'s reference parameters and its twin's, for a net of ``layers`` layers."""
    return _layout(key).links(layers)


def to_engine(key: str, arrays: Params) -> dict[str, np.ndarray]:
    """Tutorial ``key``'s parameters (or gradients) in the engine twin's names and layout, for ``load_state_dict``
    (with ``strict=False`` where the twin also has buffers: a batch norm's running statistics)."""
    layout = _layout(key)
    layers = layout.count(list(arrays), "manual")
    return _convert(layout.links(layers), arrays, "engine", f"to_engine({key!r}, ...)")


def to_reference(key: str, arrays: dict[str, np.ndarray]) -> Params:
    """The reverse of ``to_engine``: the twin's parameters by name (or gradients) in tutorial ``key``'s names and
    layout."""
    layout = _layout(key)
    return _convert(layout.links(layout.count(list(arrays), "engine")), arrays, "manual",
                    f"to_reference({key!r}, ...)")


def _layout(key: str) -> Layout:
    if key not in LAYOUTS:
        raise KeyError(f"unknown tutorial {key!r}; choose one of {', '.join(LAYOUTS)}.")
    return LAYOUTS[key]


def _convert(found: list[Link], arrays: dict[str, np.ndarray], to: str, caller: str) -> dict[str, np.ndarray]:
    """Each array renamed and re-laid-out along the links, towards the "engine" or the "manual" side."""
    if to == "engine":
        moves = [(link.manual, link.engine, link.to_engine) for link in found]
    else:
        moves = [(link.engine, link.manual, link.to_manual) for link in found]
    expected = [source for source, _, _ in moves]
    if sorted(expected) != sorted(arrays):
        raise KeyError(f"{caller}: expected the arrays {', '.join(expected)}; got "
                       f"{', '.join(map(str, arrays)) or 'none'}.")
    return {target: np.array(change(arrays[source])) for source, target, change in moves}


@dataclass
class Twin:
    """A tutorial network in both forms, set up on one batch of its data."""

    key: str
    title: str
    tutorial_file: str                                    # its text in the shared seeds/ folder ("": none)
    params: Params                                        # the reference's parameters (its names, its layout)
    model: nn.Module                                      # the engine twin
    links: list[Link]
    x: np.ndarray                                         # the batch in the reference's layout
    y: np.ndarray
    manual_gradients: Callable[[Params, np.ndarray, np.ndarray], tuple[float, Params]]
    engine_loss: Callable[[nn.Module], Tensor]            # the same batch, in the engine's layout
    lr: float

    def to_engine(self, arrays: Params) -> dict[str, np.ndarray]:
        """The reference's parameters (or gradients) in the twin's names and layout."""
        return _convert(self.links, arrays, "engine", f"Twin({self.key!r}).to_engine")

    def to_reference(self, arrays: dict[str, np.ndarray]) -> Params:
        """The twin's parameters (or gradients) in the reference's names and layout."""
        return _convert(self.links, arrays, "manual", f"Twin({self.key!r}).to_reference")

    def load_reference_into_engine(self) -> None:
        engine = dict(self.model.named_parameters())
        for name, array in self.to_engine(self.params).items():
            engine[name].data = array.astype(np.float64)

    def manual_step(self) -> tuple[float, Params]:
        """One plain gradient-descent step of the reference: p -= lr * dL/dp (the tutorials' update rule)."""
        loss, grads = self.manual_gradients(self.params, self.x, self.y)
        for name, g in grads.items():
            self.params[name] = self.params[name] - self.lr * g
        return loss, grads


# -- names ----------------------------------------------------------------------------------------------------

def layer_names(key: str, layers: int) -> list[tuple[str, str]]:
    """What tutorial ``key`` calls each layer's weighted input and its activation, first layer first.

    >>> layer_names("nielsen", 2), layer_names("lnet", 3)[-1], layer_names("xor", 2)[-1], layer_names("logreg", 1)
    ([('z1', 'a1'), ('z2', 'a2')], ('Z3', 'AL'), ('z2', 'output'), [('z', 'a')])
    """
    _layout(key)  # an unknown key is refused with the list of known ones
    if key == "logreg":                                   # z = w^T x + b, a = sigmoid(z): one unit, no number
        return [("z", "a")]
    if key == "lnet":                                     # the course's Z1, A1, ..., AL
        return [(f"Z{k}", "AL" if k == layers else f"A{k}") for k in range(1, layers + 1)]
    if key == "xor":                                      # the tutorial names only the activations
        return [(f"z{k}", "output" if k == layers else f"layer{k}") for k in range(1, layers + 1)]
    return [(f"z{k}", f"a{k}") for k in range(1, layers + 1)]


def named_forward(key: str, model: nn.Module, x: np.ndarray) -> Tensor:
    """The twin ``model``'s forward pass on the batch ``x`` (rows), its tensors named as tutorial ``key`` does.

    Each ``Linear`` layer's output is the weighted input (``z1``), the activation after it ``a1``; the product
    before a bias is ``x @ weight`` (``a1 @ weight`` for the next layer); a batch norm between them gives
    ``z1_bn`` (its stages keep their own names, ``mean``, ``x_hat``, ...). The model computes exactly as
    ``model(x)``: only names are added.

    >>> net = nn.MLP([4, 3, 2], rng=0)
    >>> out = named_forward("nielsen", net, np.ones((5, 4)))
    >>> out.name, out.parents[0].name, out.parents[0].parents[0].name
    ('a2', 'z2', 'a1 @ weight')
    """
    modules = list(model.layers) if isinstance(model, nn.Sequential) else [model]
    names = iter(layer_names(key, sum(isinstance(m, nn.Linear) for m in modules)))
    a = Tensor(x, name="x")
    z_name, a_name = "", ""
    for module in modules:
        out = module(a)
        if isinstance(module, nn.Linear):
            z_name, a_name = next(names)
            if module.bias is not None and out.parents:
                out.parents[0].name = f"{a.name} @ weight"
            out.name = z_name
        elif isinstance(module, nn.BatchNorm1d):
            out.name = f"{z_name}_bn"
        else:
            out.name = a_name
        a = out
    return a


# -- the five tutorials -----------------------------------------------------------------------------------------

def _engine_loss(key: str, loss_fn: Callable[[Tensor, Tensor], Tensor], x: np.ndarray,
                 y: np.ndarray) -> Callable[[nn.Module], Tensor]:
    """The twin's loss on the batch ``x``, ``y`` (rows), its tensors named as tutorial ``key`` names them."""
    return lambda model: loss_fn(named_forward(key, model, x), Tensor(y, name="y"))


def _mnist_batch(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    data = datasets.load_mnist()
    index = rng.choice(len(data.train_x), size=n, replace=False)
    return data.train_x[index], datasets.one_hot(data.train_y[index])


def _cat_batch(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    data = datasets.load_catvnoncat()
    index = rng.choice(len(data.train_x), size=n, replace=False)
    return data.train_x[index], data.train_y[index].astype(np.float64).reshape(-1, 1)


def _mnist3(rng: np.random.Generator) -> Twin:
    x, y = _mnist_batch(16, rng)
    params = mnist3.init_params(rng)
    model = nn.MLP([784, 64, 64, 10], activation="sigmoid", bias=False, rng=rng)
    return Twin("mnist3", "3-layer MNIST net, 784-64-64-10, sigmoid, no biases, sigmoid + cross-entropy",
                "000_e4b1b14548f8685e.txt", params, model, links("mnist3", 3), x, y, mnist3.gradients,
                _engine_loss("mnist3", losses.sigmoid_cross_entropy, x, y), lr=0.5)


def _nielsen(rng: np.random.Generator) -> Twin:
    x, y = _mnist_batch(10, rng)
    network = nielsen.Network([784, 30, 10], rng=rng)
    params = nielsen.params_of(network)
    model = nn.MLP([784, 30, 10], activation="sigmoid", rng=rng)
    return Twin("nielsen", "Nielsen's Network([784, 30, 10]), sigmoid, quadratic cost, mini-batch SGD",
                "001_8974e2b09711c500.txt", params, model, links("nielsen", 2), x.T.copy(), y.T.copy(),
                nielsen.gradients, _engine_loss("nielsen", losses.quadratic_cost, x, y), lr=3.0)


def _xor(rng: np.random.Generator) -> Twin:
    x, y = datasets.xor()
    params = xor.init_params(rng)
    model = nn.MLP([3, 4, 1], activation="sigmoid", bias=False, rng=rng)
    return Twin("xor", "2-layer XOR net, 3-4-1, sigmoid, no biases, sum of squared errors",
                "002_0be7f9c2ed40038e.txt", params, model, links("xor", 2), x, y, xor.gradients,
                _engine_loss("xor", losses.sum_squared_error, x, y), lr=1.0)


def _lnet(rng: np.random.Generator) -> Twin:
    x, y = _cat_batch(32, rng)
    dims = [12288, 20, 7, 5, 1]
    params = lnet.init_params(dims, rng)
    model = nn.MLP(dims, activation="sigmoid", rng=rng)
    return Twin("lnet", "L-layer net in a params dict, [12288, 20, 7, 5, 1], sigmoid, cross-entropy",
                "003_64939f56b2e4bc34.txt", params, model, links("lnet", len(dims) - 1), x.T.copy(), y.T.copy(),
                lnet.gradients, _engine_loss("lnet", losses.binary_cross_entropy, x, y), lr=0.0075)


def _logreg(rng: np.random.Generator) -> Twin:
    x, y = _cat_batch(64, rng)
    params = {"w": rng.standard_normal((12288, 1)) * 0.01, "b": np.full((1, 1), 0.1)}
    model = nn.MLP([12288, 1], activation="sigmoid", rng=rng)
    return Twin("logreg", "logistic regression on the cat images, 12288 inputs, one sigmoid unit",
                "004_a0972d99761e4873.txt", params, model, links("logreg", 1), x.T.copy(), y.T.copy(),
                logreg.gradients, _engine_loss("logreg", losses.binary_cross_entropy, x, y), lr=0.005)


def _batchnorm(rng: np.random.Generator) -> Twin:
    x, y = _mnist_batch(32, rng)
    sizes = [784, 64, 32, 10]
    params = batchnorm.init_params(rng, sizes)
    model = nn.MLP(sizes, activation="sigmoid", batchnorm=True, rng=rng)
    return Twin("batchnorm", "batch-norm MLP 784-64-32-10: linear, batch norm, sigmoid; sigmoid + cross-entropy",
                "", params, model, links("batchnorm", len(sizes) - 1), x, y, batchnorm.gradients,
                _engine_loss("batchnorm", losses.sigmoid_cross_entropy, x, y), lr=0.5)


TUTORIALS: dict[str, Callable[[np.random.Generator], Twin]] = {
    "mnist3": _mnist3, "nielsen": _nielsen, "xor": _xor, "lnet": _lnet, "logreg": _logreg, "batchnorm": _batchnorm,
}


def build(key: str, rng: np.random.Generator | int | None = 0) -> Twin:
    """Set up tutorial ``key`` (reference and twin from the same parameters) on one batch of its data."""
    if key not in TUTORIALS:
        raise KeyError(f"unknown tutorial {key!r}; choose one of {', '.join(TUTORIALS)}.")
    twin = TUTORIALS[key](np.random.default_rng(rng))
    order = [name for name, _ in twin.model.named_parameters()]
    twin.links.sort(key=lambda link: order.index(link.engine))  # rows in the model's own order
    twin.load_reference_into_engine()
    return twin


# -- compare ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    name: str           # "engine name <- reference name"
    shape: tuple[int, ...]
    grad_abs: float     # max |engine - reference| of the gradients at the start
    grad_rel: float     # the same, divided by max |engine gradient| (check_backprop's measure)
    param_abs: float    # max |engine - reference| of the parameters after the steps
    param_rel: float    # the same, divided by max |reference parameter|
    diagnosis: str = ""  # check_backprop's, when the gradients disagree


@dataclass
class Comparison:
    key: str
    title: str
    steps: int
    tolerance: float
    rows: list[Row] = field(default_factory=list)
    losses: tuple[float, float] = (0.0, 0.0)   # engine, reference at the start
    check: BackpropReport | None = None        # the gradient comparison itself, in the engine's names

    @property
    def worst(self) -> float:
        return max(max(r.grad_rel, r.param_rel) for r in self.rows)

    @property
    def first_disagreement(self) -> Row | None:
        """The first row whose gradient disagrees; if none does, the first whose parameters drifted apart.

        Gradients come first because one wrong gradient makes every parameter drift after a few steps.
        """
        for row in self.rows:
            if row.diagnosis:
                return row
        for row in self.rows:
            if row.param_rel > self.tolerance:
                return row
        return None

    @property
    def ok(self) -> bool:
        return self.first_disagreement is None

    def __str__(self) -> str:
        head = (f"{self.key}: {self.title}\n"
                f"loss at the start: engine {self.losses[0]:.12g}, hand-derived {self.losses[1]:.12g}\n"
                f"{'parameter':34} {'shape':>12} {'grad abs':>10} {'grad rel':>10} "
                f"{'param abs':>10} {'param rel':>10}  (params after {self.steps} steps)")
        lines = [head]
        bad = self.first_disagreement
        for r in self.rows:
            flag = "  <-- first disagreement" if r is bad else ""
            lines.append(f"{r.name:34} {r.shape!s:>12} {r.grad_abs:10.2e} {r.grad_rel:10.2e} "
                         f"{r.param_abs:10.2e} {r.param_rel:10.2e}{flag}")
        verdict = "agree" if bad is None else "DISAGREE"
        lines.append(f"{verdict}: worst relative error {self.worst:.2e} (tolerance {self.tolerance:.0e})")
        lines += [f"  {r.name}: {r.diagnosis}" for r in self.rows if r.diagnosis]
        return "\n".join(lines)


def _errors(engine: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    # NOTE: relative to the largest reference value, not element by element: an element whose true value
    # is ~0 is only known to the reference's own rounding, and dividing by it measures that, not us.
    diff = float(np.max(np.abs(engine - reference))) if reference.size else 0.0
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    return diff, diff / scale if scale > 0 else diff


def compare(tutorial: str | Twin, steps: int = 3, tolerance: float = 1e-10,
            rng: np.random.Generator | int | None = 0) -> Comparison:
    """Run the engine twin and the hand-derived reference side by side; see the module docstring.

    The gradients are compared by ``check_backprop``, in the engine's names and layout: the twin's own
    parameters are the tensors it differentiates, and the reference's gradients are translated by the links.
    """
    twin = build(tutorial, rng) if isinstance(tutorial, str) else tutorial
    engine = dict(twin.model.named_parameters())

    def by_hand(arrays: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        loss, grads = twin.manual_gradients(twin.to_reference(arrays), twin.x, twin.y)
        return loss, twin.to_engine(grads)

    linked = {link.engine: engine[link.engine] for link in twin.links}
    # loss(t) needs no t: the tensors in it are the model's own parameters
    check = check_backprop(by_hand, lambda t: twin.engine_loss(twin.model), linked, tolerance)
    optimizer = optim.SGD(twin.model.parameters(), lr=twin.lr)
    for step in range(steps):
        if step > 0:  # the first step uses the gradients just checked
            optimizer.zero_grad()
            twin.engine_loss(twin.model).backward()
        optimizer.step()
        twin.manual_step()
    result = Comparison(twin.key, twin.title, steps, tolerance, check=check,
                        losses=(check.engine_cost, float("nan") if check.cost is None else check.cost))
    for link, grad_row in zip(twin.links, check.rows):
        p_abs, p_rel = _errors(link.to_manual(engine[link.engine].data), twin.params[link.manual])
        result.rows.append(Row(f"{link.engine} <- {link.manual}", engine[link.engine].shape, grad_row.abs_error,
                               grad_row.rel_error, p_abs, p_rel, grad_row.diagnosis))
    return result
