"""The five seed networks, each twice: the hand-derived numpy reference and its engine twin, and ``compare``.

``compare("nielsen")`` starts both from the same parameters, runs them on the same mini-batch, and reports,
per parameter, how far the engine's gradients (and the parameters after a few SGD steps) are from the
hand-derived ones. The keys: ``mnist3``, ``nielsen``, ``xor``, ``lnet``, ``logreg`` (see ``SEEDS``).

>>> result = compare("xor", steps=3)
>>> result.ok, result.worst < 1e-12
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import datasets, losses, nn, optim
from .manual import lnet, logreg, mnist3, nielsen, xor
from .tensor import Tensor

__all__ = ["SEEDS", "Twin", "Link", "Comparison", "Row", "build", "compare"]

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


@dataclass
class Twin:
    """A seed network in both forms, set up on one batch of its data."""

    key: str
    title: str
    seed_file: str
    params: Params                                        # the reference's parameters (its names, its layout)
    model: nn.Module                                      # the engine twin
    links: list[Link]
    x: np.ndarray                                         # the batch in the reference's layout
    y: np.ndarray
    manual_gradients: Callable[[Params, np.ndarray, np.ndarray], tuple[float, Params]]
    engine_loss: Callable[[nn.Module], Tensor]            # the same batch, in the engine's layout
    lr: float

    def load_reference_into_engine(self) -> None:
        engine = dict(self.model.named_parameters())
        for link in self.links:
            engine[link.engine].data = np.array(link.to_engine(self.params[link.manual]), dtype=np.float64)

    def manual_step(self) -> tuple[float, Params]:
        """One plain gradient-descent step of the reference: p -= lr * dL/dp (the seeds' update rule)."""
        loss, grads = self.manual_gradients(self.params, self.x, self.y)
        for name, g in grads.items():
            self.params[name] = self.params[name] - self.lr * g
        return loss, grads


# -- the five seeds -----------------------------------------------------------------------------------------

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
    links = [Link("layers.0.weight", "w1"), Link("layers.2.weight", "w2"), Link("layers.4.weight", "w3")]
    return Twin("mnist3", "3-layer MNIST net, 784-64-64-10, sigmoid, no biases, sigmoid + cross-entropy",
                "000_e4b1b14548f8685e.txt", params, model, links, x, y, mnist3.gradients,
                lambda m: losses.sigmoid_cross_entropy(m(Tensor(x, name="x")), y), lr=0.5)


def _nielsen(rng: np.random.Generator) -> Twin:
    x, y = _mnist_batch(10, rng)
    network = nielsen.Network([784, 30, 10], rng=rng)
    params = nielsen.params_of(network)
    model = nn.MLP([784, 30, 10], activation="sigmoid", rng=rng)
    links = [Link(f"layers.{2 * i}.weight", f"w{i}", _transpose, _transpose) for i in range(2)]
    links += [Link(f"layers.{2 * i}.bias", f"b{i}", _column, _flat) for i in range(2)]
    return Twin("nielsen", "Nielsen's Network([784, 30, 10]), sigmoid, quadratic cost, mini-batch SGD",
                "001_8974e2b09711c500.txt", params, model, links, x.T.copy(), y.T.copy(),
                nielsen.gradients, lambda m: losses.quadratic_cost(m(Tensor(x, name="x")), y), lr=3.0)


def _xor(rng: np.random.Generator) -> Twin:
    x, y = datasets.xor()
    params = xor.init_params(rng)
    model = nn.MLP([3, 4, 1], activation="sigmoid", bias=False, rng=rng)
    links = [Link("layers.0.weight", "weights1"), Link("layers.2.weight", "weights2")]
    return Twin("xor", "2-layer XOR net, 3-4-1, sigmoid, no biases, sum of squared errors",
                "002_0be7f9c2ed40038e.txt", params, model, links, x, y, xor.gradients,
                lambda m: losses.sum_squared_error(m(Tensor(x, name="x")), y), lr=1.0)


def _lnet(rng: np.random.Generator) -> Twin:
    x, y = _cat_batch(32, rng)
    dims = [12288, 20, 7, 5, 1]
    params = lnet.init_params(dims, rng)
    model = nn.MLP(dims, activation="sigmoid", rng=rng)
    links = [Link(f"layers.{2 * i}.weight", f"W{i + 1}", _transpose, _transpose) for i in range(len(dims) - 1)]
    links += [Link(f"layers.{2 * i}.bias", f"b{i + 1}", _column, _flat) for i in range(len(dims) - 1)]
    return Twin("lnet", "L-layer net in a params dict, [12288, 20, 7, 5, 1], sigmoid, cross-entropy",
                "003_64939f56b2e4bc34.txt", params, model, links, x.T.copy(), y.T.copy(), lnet.gradients,
                lambda m: losses.binary_cross_entropy(m(Tensor(x, name="x")), y), lr=0.0075)


def _logreg(rng: np.random.Generator) -> Twin:
    x, y = _cat_batch(64, rng)
    params = {"w": rng.standard_normal((12288, 1)) * 0.01, "b": np.full((1, 1), 0.1)}
    model = nn.MLP([12288, 1], activation="sigmoid", rng=rng)
    links = [Link("layers.0.weight", "w"), Link("layers.0.bias", "b", _column, _flat)]
    return Twin("logreg", "logistic regression on the cat images, 12288 inputs, one sigmoid unit",
                "004_a0972d99761e4873.txt", params, model, links, x.T.copy(), y.T.copy(), logreg.gradients,
                lambda m: losses.binary_cross_entropy(m(Tensor(x, name="x")), y), lr=0.005)


SEEDS: dict[str, Callable[[np.random.Generator], Twin]] = {
    "mnist3": _mnist3, "nielsen": _nielsen, "xor": _xor, "lnet": _lnet, "logreg": _logreg,
}


def build(key: str, rng: np.random.Generator | int | None = 0) -> Twin:
    """Set up seed ``key`` (reference and twin from the same parameters) on one batch of its data."""
    if key not in SEEDS:
        raise KeyError(f"unknown seed {key!r}; choose one of {', '.join(SEEDS)}.")
    twin = SEEDS[key](np.random.default_rng(rng))
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
    grad_rel: float     # the same, divided by max |reference gradient|
    param_abs: float    # max |engine - reference| of the parameters after the steps
    param_rel: float


@dataclass
class Comparison:
    key: str
    title: str
    steps: int
    tolerance: float
    rows: list[Row] = field(default_factory=list)
    losses: tuple[float, float] = (0.0, 0.0)   # engine, reference at the start

    @property
    def worst(self) -> float:
        return max(max(r.grad_rel, r.param_rel) for r in self.rows)

    @property
    def first_disagreement(self) -> Row | None:
        """The first row whose gradient disagrees; if none does, the first whose parameters drifted apart.

        Gradients come first because one wrong gradient makes every parameter drift after a few steps.
        """
        for row in self.rows:
            if row.grad_rel > self.tolerance:
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
            lines.append(f"{r.name:34} {str(r.shape):>12} {r.grad_abs:10.2e} {r.grad_rel:10.2e} "
                         f"{r.param_abs:10.2e} {r.param_rel:10.2e}{flag}")
        verdict = "agree" if bad is None else "DISAGREE"
        lines.append(f"{verdict}: worst relative error {self.worst:.2e} (tolerance {self.tolerance:.0e})")
        return "\n".join(lines)


def _errors(engine: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    # NOTE: relative to the largest reference value, not element by element: an element whose true value
    # is ~0 is only known to the reference's own rounding, and dividing by it measures that, not us.
    diff = float(np.max(np.abs(engine - reference))) if reference.size else 0.0
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    return diff, diff / scale if scale > 0 else diff


def compare(seed: str | Twin, steps: int = 3, tolerance: float = 1e-10,
            rng: np.random.Generator | int | None = 0) -> Comparison:
    """Run the engine twin and the hand-derived reference side by side; see the module docstring."""
    twin = build(seed, rng) if isinstance(seed, str) else seed
    engine = dict(twin.model.named_parameters())
    result = Comparison(twin.key, twin.title, steps, tolerance)
    optimizer = optim.SGD(twin.model.parameters(), lr=twin.lr)
    grad_errors: dict[str, tuple[float, float]] = {}
    for step in range(max(steps, 1)):
        optimizer.zero_grad()
        loss = twin.engine_loss(twin.model)
        loss.backward()
        manual_loss, manual_grads = twin.manual_step()
        if step == 0:
            result.losses = (loss.item(), float(manual_loss))
            for link in twin.links:
                grad_errors[link.engine] = _errors(link.to_manual(engine[link.engine].grad),
                                                   manual_grads[link.manual])
        if steps:
            optimizer.step()
    for link in twin.links:
        p_abs, p_rel = _errors(link.to_manual(engine[link.engine].data), twin.params[link.manual])
        if not steps:
            p_abs = p_rel = 0.0
        g_abs, g_rel = grad_errors[link.engine]
        result.rows.append(Row(f"{link.engine} <- {link.manual}", engine[link.engine].shape,
                               g_abs, g_rel, p_abs, p_rel))
    return result
