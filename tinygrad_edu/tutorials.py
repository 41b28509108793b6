"""The tutorial networks and the next chapters, each twice: the hand-derived numpy reference and its engine twin.

``compare("nielsen")`` starts both from the same parameters, runs them on the same mini-batch, and reports,
per parameter, how far the engine's gradients (``check_backprop``) and the parameters after a few steps
are from the hand-derived ones. The keys: ``mnist3``, ``nielsen``, ``xor``, ``lnet``, ``logreg`` (the five
tutorials), then ``network2`` (Nielsen's chapter 3), ``reg_l2``, ``reg_dropout``, ``opt_momentum``, ``opt_adam``
and ``gradcheck`` (the deep-learning course's second course), ``batchnorm`` (a batch-norm MLP,
``manual.batchnorm``), and the course's convolutional network by hand twice, ``conv_loops`` and
``conv_im2col`` (its fourth course); see ``TUTORIALS``. The optimizer twins step with their own update rule on
both sides, the others with plain gradient descent.

Each tutorial names and lays out its parameters its own way; the engine twin is an ``nn.MLP`` (for the
convolutions an ``nn.Sequential`` of ``Conv2d``, ``ReLU``, ``MaxPool2d``, ``Flatten``, ``Linear``). ``to_engine``
and ``to_reference`` translate between the two (parameters or gradients alike), in one place: ``LAYOUTS``.
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
from .manual import (batchnorm, conv_im2col, conv_loops, gradient_checking, lnet, logreg, mnist3, network2, nielsen,
                     optimization, regularization, xor)
from .tensor import Tensor

__all__ = [
    "TUTORIALS", "LAYOUTS", "Layout", "ConvLayout", "Twin", "Link", "Comparison", "Row", "build", "compare", "links",
    "to_engine", "to_reference", "layer_names", "named_forward",
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
    stride: int = 2                   # modules per layer in the twin: Linear and activation (3 with dropout)
    batchnorm: bool = False           # hidden layers: no bias, then batch norm (gamma{i}, beta{i}); biases (out,)

    def links(self, layers: int) -> list[Link]:
        weight = (_transpose, _transpose) if self.transposed else (_same, _same)
        bias = (_same, _same) if self.batchnorm else (_column, _flat)
        found = []
        for i in range(layers):
            at = self.stride * i
            number = self.first + i
            found.append(Link(f"layers.{at}.weight", self.weight.format(number), *weight))
            if self.batchnorm and i < layers - 1:
                found.append(Link(f"layers.{at + 1}.weight", f"gamma{number}"))
                found.append(Link(f"layers.{at + 1}.bias", f"beta{number}"))
            elif self.bias is not None:
                found.append(Link(f"layers.{at}.bias", self.bias.format(number), *bias))
        return found

    def count(self, names: list[str], side: str) -> int:
        """How many layers a set of parameter names holds, on the "engine" or the "manual" side."""
        if side == "manual":
            if "{}" not in self.weight:                            # a one-layer tutorial's
                return 1
            return sum(self.weight.format(self.first + i) in names for i in range(len(names)))
        weights = sum(name.endswith(".weight") for name in names)
        return (weights + 1) // 2 if self.batchnorm else weights   # a batch norm has a weight too


@dataclass(frozen=True)
class ConvLayout:
    """The course's conv net (``manual.conv_loops``) against its twin ``Sequential(Conv2d, ReLU, MaxPool2d,
    Flatten, Linear)``: ``W1`` (f, f, n_C_prev, n_C) is the twin's ``layers.0.weight`` (n_C, n_C_prev, f, f);
    ``b1`` (1, 1, 1, n_C) its bias; ``W2`` (n_flat, classes) is ``layers.4.weight`` with its rows reordered,
    because the course flattens the pooled (pooled_h, pooled_w, n_C) maps channels last and the engine's NCHW
    maps flatten channel first; ``b2`` (1, classes) is ``layers.4.bias``."""

    filters: int
    pooled: tuple[int, int]           # the pooled maps' height and width
    bias: str | None = "b{}"          # (every parameter has a bias: to_engine counts layers as for an MLP)

    def links(self, layers: int) -> list[Link]:
        h, w, c = self.pooled[0], self.pooled[1], self.filters

        def rows_to_engine(a: np.ndarray) -> np.ndarray:   # rows (h, w, c) -> (c, h, w)
            return a.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)

        def rows_to_manual(a: np.ndarray) -> np.ndarray:   # rows (c, h, w) -> (h, w, c)
            return a.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)

        return [Link("layers.0.weight", "W1", lambda a: a.transpose(2, 3, 1, 0), lambda a: a.transpose(3, 2, 0, 1)),
                Link("layers.0.bias", "b1", lambda a: a.reshape(1, 1, 1, -1), _flat),
                Link("layers.4.weight", "W2", rows_to_manual, rows_to_engine),
                Link("layers.4.bias", "b2", lambda a: a.reshape(1, -1), _flat)]

    def count(self, names: list[str], side: str) -> int:
        """Two layers, the conv and the dense one, whatever the names (``links`` has them by name)."""
        return 2


_CONV = ConvLayout(filters=3, pooled=(12, 12))  # 3 filters 5x5 on 28x28 images, 2x2 max-pool: 12x12 maps

LAYOUTS: dict[str, Layout | ConvLayout] = {
    "mnist3": Layout("w{}", None),                                   # w1, w2, w3: (in, out), no biases
    "nielsen": Layout("w{}", "b{}", first=0, transposed=True),       # nielsen.params_of: w0, b0, w1, b1
    "xor": Layout("weights{}", None),                                # weights1, weights2: (in, out)
    "lnet": Layout("W{}", "b{}", transposed=True),                   # the course: W1 (n1, n0), b1 (n1, 1)
    "logreg": Layout("w", "b"),                                      # w (n_x, 1), b (1, 1)
    "network2": Layout("w{}", "b{}", first=0, transposed=True),      # network2.params_of: as nielsen
    "reg_l2": Layout("W{}", "b{}", transposed=True),                 # the course's W1..W3, b1..b3
    "reg_dropout": Layout("W{}", "b{}", transposed=True, stride=3),  # Linear, ReLU, Dropout per hidden layer
    "opt_momentum": Layout("W{}", "b{}", transposed=True),
    "opt_adam": Layout("W{}", "b{}", transposed=True),
    "gradcheck": Layout("W{}", "b{}", transposed=True),
    "batchnorm": Layout("w{}", "b{}", stride=3, batchnorm=True),    # w1, gamma1, beta1, ..., wL, bL (out,)
    "conv_loops": _CONV,                                             # the course's W1 (f, f, n_C_prev, n_C), ...
    "conv_im2col": _CONV,
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


def _layout(key: str) -> Layout | ConvLayout:
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
    # an optimizer twin: the engine's optimizer, and the reference's update (params, grads) -> new params
    optimizer: Callable[[list[Tensor]], optim.Optimizer] | None = None
    manual_update: Callable[[Params, Params], Params] | None = None

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
        """One step of the reference: its own update rule, or gradient descent p -= lr * dL/dp (the tutorials')."""
        loss, grads = self.manual_gradients(self.params, self.x, self.y)
        if self.manual_update is not None:
            self.params = self.manual_update(self.params, grads)
            return loss, grads
        for name, g in grads.items():
            self.params[name] = self.params[name] - self.lr * g
        return loss, grads


# -- names ----------------------------------------------------------------------------------------------------

_COURSE_NETS = ("reg_l2", "reg_dropout", "opt_momentum", "opt_adam", "gradcheck")


def layer_names(key: str, layers: int) -> list[tuple[str, str]]:
    """What tutorial ``key`` calls each layer's weighted input and its activation, first layer first.

    >>> layer_names("nielsen", 2), layer_names("lnet", 3)[-1], layer_names("xor", 2)[-1], layer_names("logreg", 1)
    ([('z1', 'a1'), ('z2', 'a2')], ('Z3', 'AL'), ('z2', 'output'), [('z', 'a')])
    """
    _layout(key)  # an unknown key is refused with the list of known ones
    if key == "logreg":                                   # z = w^T x + b, a = sigmoid(z): one unit, no number
        return [("z", "a")]
    if key in _COURSE_NETS:                               # the course's second course: Z1, A1, ..., A3
        return [(f"Z{k}", f"A{k}") for k in range(1, layers + 1)]
    if key == "lnet":                                     # the course's Z1, A1, ..., AL
        return [(f"Z{k}", "AL" if k == layers else f"A{k}") for k in range(1, layers + 1)]
    if key == "xor":                                      # the tutorial names only the activations
        return [(f"z{k}", "output" if k == layers else f"layer{k}") for k in range(1, layers + 1)]
    if key.startswith("conv"):                            # the course's Z1, A1 (its pools P1, its flatten F)
        return [(f"Z{k}", f"A{k}") for k in range(1, layers + 1)]
    return [(f"z{k}", f"a{k}") for k in range(1, layers + 1)]


def named_forward(key: str, model: nn.Module, x: np.ndarray) -> Tensor:
    """The twin ``model``'s forward pass on the batch ``x`` (rows), its tensors named as tutorial ``key`` does.

    Each ``Linear`` (or ``Conv2d``) layer's output is the weighted input (``z1``), the activation after it ``a1``;
    the product before a bias is ``x @ weight`` (``a1 @ weight`` for the next layer); a batch norm between them
    gives ``z1_bn`` (its stages keep their own names, ``mean``, ``x_hat``, ...). A pool's output is ``P1``
    (after layer 1), a flatten's ``F``. The model computes exactly as ``model(x)``: only names are added.

    >>> net = nn.MLP([4, 3, 2], rng=0)
    >>> out = named_forward("nielsen", net, np.ones((5, 4)))
    >>> out.name, out.parents[0].name, out.parents[0].parents[0].name
    ('a2', 'z2', 'a1 @ weight')
    """
    modules = list(model.layers) if isinstance(model, nn.Sequential) else [model]
    names = iter(layer_names(key, sum(isinstance(m, (nn.Linear, nn.Conv2d)) for m in modules)))
    a = Tensor(x, name="x")
    z_name, a_name = "", ""
    for module in modules:
        out = module(a)
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            z_name, a_name = next(names)
            if isinstance(module, nn.Linear) and module.bias is not None and out.parents:
                out.parents[0].name = f"{a.name} @ weight"
            out.name = z_name
        elif isinstance(module, nn.BatchNorm1d):
            out.name = f"{z_name}_bn"
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            out.name = "P" + z_name[1:]
        elif isinstance(module, nn.Flatten):
            out.name = "F"
        else:
            out.name = a_name
        a = out
    return a


# -- the tutorials ---------------------------------------------------------------------------------------------

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


# -- the next chapters: Nielsen's chapter 3 and the course's second course ------------------------------------

def _points(points: datasets.Points) -> tuple[np.ndarray, np.ndarray]:
    """Rows x (m, 2) and a column of 0/1 targets (m, 1), in the engine's layout."""
    return points.train_x, points.train_y.astype(np.float64).reshape(-1, 1)


def _course_net(sizes: list[int], keep_prob: float = 1.0) -> tuple[nn.Sequential, list[nn.Dropout]]:
    """The course's LINEAR -> RELU (-> DROPOUT) -> ... -> LINEAR -> SIGMOID, with its dropout layers."""
    layers: list[nn.Module] = []
    dropouts: list[nn.Dropout] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out, init="zeros"))  # the reference's weights are loaded in build()
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if keep_prob < 1:
                dropouts.append(nn.Dropout(1 - keep_prob, rng=i))
                layers.append(dropouts[-1])
    layers.append(nn.Sigmoid())
    return nn.Sequential(*layers), dropouts


def _network2(rng: np.random.Generator) -> Twin:
    x, y = _mnist_batch(10, rng)
    params = network2.params_of(network2.Network([784, 30, 10], rng=rng))
    model = nn.MLP([784, 30, 10], activation="sigmoid", rng=rng)
    lmbda, n = 5.0, 50_000   # n: the training set's size, whatever the batch's

    def manual(p: Params, xs: np.ndarray, ys: np.ndarray) -> tuple[float, Params]:
        return network2.gradients(p, xs, ys, lmbda=lmbda, n=n)

    def engine_loss(m: nn.Module) -> Tensor:
        return losses.sigmoid_cross_entropy(named_forward("network2", m, x), Tensor(y, name="y")) + \
            losses.l2_penalty(m, lmbda, n)

    return Twin("network2", "Nielsen's network2, [784, 30, 10], cross-entropy, L2 lmbda = 5 over n = 50,000, "
                "N(0, 1/n_in) start", "Nielsen, chapter 3 (src/network2.py)", params, model, links("network2", 2),
                x.T.copy(), y.T.copy(), manual, engine_loss, lr=0.5)


def _reg_l2(rng: np.random.Generator) -> Twin:
    x, y = _points(datasets.load_circles())
    params = regularization.initialize_parameters([2, 20, 3, 1])
    model, _ = _course_net([2, 20, 3, 1])
    lambd, m = 0.7, len(x)    # the course's lambda / (2m), m the examples of its full batch

    def manual(p: Params, xs: np.ndarray, ys: np.ndarray) -> tuple[float, Params]:
        return regularization.gradients_l2(p, xs, ys, lambd)

    def engine_loss(net: nn.Module) -> Tensor:
        return losses.binary_cross_entropy(named_forward("reg_l2", net, x), Tensor(y, name="Y")) + \
            losses.l2_penalty(net, lambd, m)

    return Twin("reg_l2", "the course's three-layer ReLU net [2, 20, 3, 1] with L2, lambda = 0.7 over m = 300, on "
                "the circles", "the course, Regularization (compute_cost_with_regularization)", params, model,
                links("reg_l2", 3), x.T.copy(), y.T.copy(), manual, engine_loss, lr=0.3)


def _reg_dropout(rng: np.random.Generator) -> Twin:
    x, y = _points(datasets.load_circles())
    params = regularization.initialize_parameters([2, 20, 3, 1])
    keep_prob = 0.86
    model, dropouts = _course_net([2, 20, 3, 1], keep_prob)

    def engine_loss(net: nn.Module) -> Tensor:
        # NOTE: the course reseeds its generator in every forward pass, so every step uses the same two masks;
        # reseeding the dropout layers does the same here, and the reference takes the masks they drew
        for i, layer in enumerate(dropouts):
            layer.rng = np.random.default_rng(i)
        return losses.binary_cross_entropy(named_forward("reg_dropout", net, x), Tensor(y, name="Y"))

    def manual(p: Params, xs: np.ndarray, ys: np.ndarray) -> tuple[float, Params]:
        masks = [layer.mask.T for layer in dropouts if layer.mask is not None]
        return regularization.gradients_dropout(p, xs, ys, masks, keep_prob)

    engine_loss(model)   # one pass draws the masks the reference will use
    return Twin("reg_dropout", "the course's three-layer ReLU net [2, 20, 3, 1] with inverted dropout on both hidden "
                "layers, keep_prob = 0.86 (nn.Dropout(0.14)), on the circles",
                "the course, Regularization (forward/backward_propagation_with_dropout)", params, model,
                links("reg_dropout", 3), x.T.copy(), y.T.copy(), manual, engine_loss, lr=0.3)


def _moons_batch() -> tuple[np.ndarray, np.ndarray]:
    """The course's first mini-batch of its first epoch (64 columns, its own shuffle), as engine rows."""
    moons = datasets.load_moons()
    X, Y = moons.train_x.T, moons.train_y.reshape(1, -1).astype(np.float64)
    xb, yb = optimization.random_mini_batches(X, Y, 64, seed=11)[0]
    return xb.T.copy(), yb.T.copy()


def _opt_momentum(rng: np.random.Generator) -> Twin:
    x, y = _moons_batch()
    params = optimization.initialize_parameters([2, 5, 2, 1])
    model, _ = _course_net([2, 5, 2, 1])
    beta, lr = 0.9, 0.1
    velocity = optimization.initialize_velocity(params)

    def update(p: Params, grads: Params) -> Params:
        nonlocal velocity
        p, velocity = optimization.update_parameters_with_momentum(p, {"d" + k: g for k, g in grads.items()},
                                                                   velocity, beta, lr)
        return p

    def optimizer(parameters: list[Tensor]) -> optim.Optimizer:
        sgd = optim.SGD(parameters, lr=lr, momentum=beta, dampening=beta)
        sgd.velocity = [np.zeros_like(p.data) for p in parameters]   # the course's v starts at 0
        return sgd

    return Twin("opt_momentum", "the course's ReLU net [2, 5, 2, 1] on a mini-batch of the moons, momentum "
                "v = 0.9 v + 0.1 dW (SGD with dampening = momentum, velocity from 0)",
                "the course, Optimization methods (update_parameters_with_momentum)", params, model,
                links("opt_momentum", 3), x.T.copy(), y.T.copy(), optimization.gradients,
                _engine_loss("opt_momentum", losses.binary_cross_entropy, x, y), lr=lr, optimizer=optimizer,
                manual_update=update)


def _opt_adam(rng: np.random.Generator) -> Twin:
    x, y = _moons_batch()
    params = optimization.initialize_parameters([2, 5, 2, 1])
    model, _ = _course_net([2, 5, 2, 1])
    lr = 0.01
    v, s = optimization.initialize_adam(params)
    t = 0

    def update(p: Params, grads: Params) -> Params:
        nonlocal v, s, t
        t += 1
        p, v, s = optimization.update_parameters_with_adam(p, {"d" + k: g for k, g in grads.items()}, v, s, t, lr)
        return p

    return Twin("opt_adam", "the course's ReLU net [2, 5, 2, 1] on a mini-batch of the moons, Adam with bias "
                "correction (lr 0.01, betas 0.9 and 0.999, eps 1e-8)",
                "the course, Optimization methods (update_parameters_with_adam)", params, model,
                links("opt_adam", 3), x.T.copy(), y.T.copy(), optimization.gradients,
                _engine_loss("opt_adam", losses.binary_cross_entropy, x, y), lr=lr,
                optimizer=lambda parameters: optim.Adam(parameters, lr=lr, betas=(0.9, 0.999), eps=1e-8),
                manual_update=update)


def _gradcheck(rng: np.random.Generator) -> Twin:
    X, Y, params = gradient_checking.gradient_check_n_test_case()
    x, y = X.T.copy(), Y.reshape(-1, 1).astype(np.float64)
    model, _ = _course_net([4, 5, 3, 1])
    return Twin("gradcheck", "the course's gradient-checking net [4, 5, 3, 1] on its three examples, the "
                "corrected backward_propagation_n", "the course, Gradient Checking (gradient_check_n)", params,
                model, links("gradcheck", 3), X, Y.reshape(1, -1).astype(np.float64), gradient_checking.gradients,
                _engine_loss("gradcheck", losses.binary_cross_entropy, x, y), lr=0.1)


def _batchnorm(rng: np.random.Generator) -> Twin:
    x, y = _mnist_batch(32, rng)
    sizes = [784, 64, 32, 10]
    params = batchnorm.init_params(rng, sizes)
    model = nn.MLP(sizes, activation="sigmoid", batchnorm=True, rng=rng)
    return Twin("batchnorm", "batch-norm MLP 784-64-32-10: linear, batch norm, sigmoid; sigmoid + cross-entropy",
                "Ioffe and Szegedy 2015, Algorithm 1; CS231n assignment 2 (batchnorm_backward, _alt)", params,
                model, links("batchnorm", len(sizes) - 1), x, y, batchnorm.gradients,
                _engine_loss("batchnorm", losses.sigmoid_cross_entropy, x, y), lr=0.5)


def _conv(key: str, rng: np.random.Generator) -> Twin:
    """The course's conv net (``manual.conv_loops``), its backprop by hand in loops or vectorised (im2col)."""
    module = conv_loops if key == "conv_loops" else conv_im2col
    x, y = _mnist_batch(4, rng)                     # 4 digits: the loops visit every window of every one
    images = x.reshape(-1, 28, 28, 1)               # the course's batch: channels last, (m, n_H, n_W, n_C)
    params = module.init_params(rng, f=5, n_C=_CONV.filters)
    model = nn.Sequential(nn.Conv2d(1, _CONV.filters, 5, rng=rng), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(_CONV.filters * 12 * 12, 10, rng=rng))
    how = "in loops, one window at a time" if key == "conv_loops" else "vectorised with im2col"
    return Twin(key, f"the course's conv net, conv 5x5 x{_CONV.filters} + ReLU + 2x2 max-pool + dense + softmax, "
                     f"backprop {how}", "course 4, 'Convolution model, step by step'", params, model,
                links(key, 2), images, y, module.gradients,
                _engine_loss(key, losses.softmax_cross_entropy, images.transpose(0, 3, 1, 2), y), lr=0.1)


TUTORIALS: dict[str, Callable[[np.random.Generator], Twin]] = {
    "mnist3": _mnist3, "nielsen": _nielsen, "xor": _xor, "lnet": _lnet, "logreg": _logreg,
    "network2": _network2, "reg_l2": _reg_l2, "reg_dropout": _reg_dropout, "opt_momentum": _opt_momentum,
    "opt_adam": _opt_adam, "gradcheck": _gradcheck, "batchnorm": _batchnorm,
    "conv_loops": lambda rng: _conv("conv_loops", rng), "conv_im2col": lambda rng: _conv("conv_im2col", rng),
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
    parameters = twin.model.parameters()
    optimizer = twin.optimizer(parameters) if twin.optimizer is not None else optim.SGD(parameters, lr=twin.lr)
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
