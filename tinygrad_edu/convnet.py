"""Nielsen's chapter-6 convolutional networks (his ``network3.py``), built with the engine, and their training.

The book trains them on 50,000 MNIST images (10,000 held out for validation) with mini-batches of 10 for 60
epochs, and reports the test accuracy of the epoch with the best validation accuracy:

* ``conv``: 20 filters 5x5 -> 2x2 max-pool -> sigmoid, then 100 sigmoid units, then 10 softmax; eta 0.1:
  98.78%.
* ``conv2``: a second conv-pool layer (40 filters 5x5 over the 20 maps) before the 100 units: 99.06%.
* ``conv2_relu``: the same with ReLU instead of sigmoid, eta 0.03 and L2 regularisation lambda 0.1: 99.23%.

As in ``network3.py`` a convolutional layer is conv -> max-pool -> activation, with the bias added before
the pool (the same numbers: a filter's bias is one number for its whole map, and max and the activation are
both increasing). The weights start as Nielsen's do: N(0, 1/n_out) with n_out the number of units a layer
feeds (out_channels * kh * kw / pool area for a conv-pool layer), biases N(0, 1), the softmax layer at zero.
His L2 term is ``0.5 * lmbda * sum(w^2) / (number of mini-batches)`` added to each mini-batch's mean cost
(every weight, no bias). One difference: ``network3.py`` visits the mini-batches in the same order every
epoch; ``train`` shuffles them (with ``seed``), as the other training in this package does.

>>> model = build("conv", rng=0)
>>> [p.shape for p in model.parameters()]
[(20, 1, 5, 5), (20,), (2880, 100), (100,), (100, 10), (10,)]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from . import datasets, losses, nn, optim
from .blas import blas_threads
from .grad_mode import no_grad
from .tensor import Tensor

__all__ = ["LAYOUTS", "BOOK", "SETTINGS", "build", "l2_penalty", "train"]

LAYOUTS = ("conv", "conv2", "conv2_relu")
BOOK = {"conv": 0.9878, "conv2": 0.9906, "conv2_relu": 0.9923}
"""The test accuracy Nielsen's chapter 6 reports for each layout (60 epochs)."""
SETTINGS = {"conv": (0.1, 0.0), "conv2": (0.1, 0.0), "conv2_relu": (0.03, 0.1)}
"""The book's learning rate eta and L2 coefficient lambda for each layout."""


def build(layout: str = "conv", rng: np.random.Generator | int | None = 0, dtype: Any = np.float64) -> nn.Sequential:
    """One of Nielsen's chapter-6 networks (see the module docstring), initialised as ``network3.py`` does."""
    if layout not in LAYOUTS:
        raise ValueError(f"convnet: unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}.")
    generator = np.random.default_rng(rng)
    act = nn.ReLU if layout == "conv2_relu" else nn.Sigmoid
    layers: list[nn.Module] = [nn.Conv2d(1, 20, 5, dtype=dtype, init="zeros"), nn.MaxPool2d(2), act()]
    flat = 20 * 12 * 12
    if layout != "conv":
        layers += [nn.Conv2d(20, 40, 5, dtype=dtype, init="zeros"), nn.MaxPool2d(2), act()]
        flat = 40 * 4 * 4
    layers += [nn.Flatten(), nn.Linear(flat, 100, init="zeros", dtype=dtype), act(),
               nn.Linear(100, 10, init="zeros", dtype=dtype)]
    for layer in layers[:-1]:  # the softmax layer stays at zero, as in network3.py
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            w, b = layer.weight, layer.bias
            assert b is not None
            n_out = w.shape[0] * w.shape[2] * w.shape[3] / 4 if w.ndim == 4 else w.shape[1]
            w.data = generator.normal(0.0, np.sqrt(1.0 / n_out), size=w.shape).astype(dtype)
            b.data = generator.normal(0.0, 1.0, size=b.shape).astype(dtype)
    return nn.Sequential(*layers)


def l2_penalty(model: nn.Module, lmbda: float, n_batches: int) -> Tensor:
    """``network3.py``'s L2 term: 0.5 * lmbda * (sum of every squared weight) / n_batches (biases excluded)."""
    total = sum(((p * p).sum() for name, p in model.named_parameters() if name.endswith("weight")), Tensor(0.0))
    return total * (0.5 * lmbda / n_batches)


def _accuracy(model: nn.Module, x: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> float:
    correct = 0
    with no_grad():
        for start in range(0, len(x), batch_size):
            scores = model(Tensor(x[start:start + batch_size])).data
            correct += int(np.sum(scores.argmax(axis=1) == labels[start:start + batch_size]))
    return correct / len(x)


def train(layout: str = "conv", *, epochs: int = 60, batch_size: int = 10, lr: float | None = None,
          lmbda: float | None = None, seed: int = 0, dtype: Any = np.float64, limit: int | None = None,
          evaluate_on: int | None = None, progress: bool = True,
          report: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Train ``layout`` on the bundled MNIST as chapter 6 does; print (``report``) each epoch as the book does.

    ``limit`` trains on the first N of the 50,000 training images, ``evaluate_on`` measures on the first N
    validation and test images (both for a short run). Returns the history: per epoch ``loss``,
    ``validation_accuracy``, ``test_accuracy`` and ``seconds``; and ``best_epoch`` (best validation, the
    last of equals, as ``network3.py``) with its ``best_test_accuracy``. numpy's matrix products run on one
    BLAS thread while it trains (``blas.blas_threads``; with threadpoolctl installed).
    """
    from .train import fit

    build(layout)  # an unknown layout is refused before the data is read
    eta, decay = SETTINGS[layout]
    eta, decay = (eta if lr is None else lr), (decay if lmbda is None else lmbda)
    data = datasets.load_mnist(dtype=dtype)
    images = {"train": data.train_x[:limit], "val": data.val_x[:evaluate_on], "test": data.test_x[:evaluate_on]}
    shaped = {k: v.reshape(-1, 1, 28, 28) for k, v in images.items()}
    labels = {"train": data.train_y[:limit], "val": data.val_y[:evaluate_on], "test": data.test_y[:evaluate_on]}
    model = build(layout, seed, dtype)
    n_batches = len(shaped["train"]) // batch_size

    def loss_fn(scores: Tensor, target: Any) -> Tensor:
        loss = losses.softmax_cross_entropy(scores, target)
        return loss + l2_penalty(model, decay, n_batches) if decay else loss

    history: dict[str, Any] = {"validation_accuracy": [], "test_accuracy": [], "seconds": []}
    clock = [time.perf_counter()]

    def on_epoch(epoch: int, fitted: dict[str, list[float]]) -> None:
        history["seconds"].append(time.perf_counter() - clock[0])
        history["validation_accuracy"].append(_accuracy(model, shaped["val"], labels["val"]))
        history["test_accuracy"].append(_accuracy(model, shaped["test"], labels["test"]))
        if report is not None:
            report(f"Epoch {epoch - 1}: validation accuracy {history['validation_accuracy'][-1]:.2%}, test accuracy "
                   f"{history['test_accuracy'][-1]:.2%} ({history['seconds'][-1]:.0f} s training)")
        clock[0] = time.perf_counter()

    # numpy's default of a BLAS thread per core makes these small products wait for each other on a busy machine
    # (README, Performance: W4); one thread, for this run only
    with blas_threads(1):
        fitted = fit(model, loss_fn, optim.SGD(model.parameters(), lr=eta), (shaped["train"], labels["train"]),
                     epochs=epochs, batch_size=batch_size, rng=seed, progress=progress, on_epoch=on_epoch)
    history["loss"] = fitted["loss"]
    best = max(range(len(history["validation_accuracy"])), key=lambda i: (history["validation_accuracy"][i], i))
    history["best_epoch"], history["best_test_accuracy"] = best, history["test_accuracy"][best]
    history["model"] = model
    if report is not None:
        report(f"Best validation accuracy {history['validation_accuracy'][best]:.2%} at epoch {best}; corresponding "
               f"test accuracy {history['best_test_accuracy']:.2%} (the book, after 60 epochs on 50,000 images: "
               f"{BOOK[layout]:.2%})")
    return history
