"""Training as pictures and numbers: loss and accuracy curves, first-layer weights, a per-layer health table.

matplotlib is optional (``pip install 'tinygrad_edu[plot]'``) and imported only inside the plotting
functions. They draw on a ``Figure`` with the Agg canvas directly, never through ``pyplot``, so they work on
machines without a display and do not change the backend of a notebook.

**Reading the health table** (``layer_health`` / ``health_report`` / ``plot_health``), one row per layer:

* ``act_mean``, ``act_std``: mean and standard deviation of the layer's activations over the batch. Healthy:
  a spread that neither collapses to ~0 (every unit says the same thing) nor explodes.
* ``saturated``: for sigmoid layers, the fraction of outputs above 0.99 or below 0.01 (for tanh: beyond
  ±0.99; ``tinygrad_edu.health.saturated``, the definition ``fit``'s warning uses too). There the local
  derivative s(1 - s) is below 0.01, so almost no gradient passes. Healthy: a few
  percent; above ~20 % learning slows down (smaller initial weights or Xavier init help).
* ``dead``: for ReLU layers, the fraction of units that output 0 for every sample of the batch. A dead
  unit gets no gradient and never recovers. Healthy: close to 0; above ~30 % lower the learning rate or use
  He init or leaky_relu.
* ``grad_norm``: the size (L2 norm) of the layer's parameter gradients. Healthy: similar orders of magnitude
  from layer to layer; much smaller in the first layers means vanishing gradients, inf/NaN exploding ones.
* ``update_ratio``: ``lr * grad_norm / weight_norm``, how much one plain SGD step changes the weights,
  relative to their size. A common rule of thumb: around 1e-3; below 1e-4 the layer barely learns, above
  1e-2 the steps are large enough to be unstable.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tinygrad_edu.health import saturated
from tinygrad_edu.parameters import named_items
from tinygrad_edu.tensor import Tensor

__all__ = ["plot_history", "plot_weights", "plot_filters", "layer_health", "health_report", "plot_health", "HEALTHY",
           "PngPicture"]

HEALTHY: dict[str, Any] = {
    "saturated": 0.2,        # above this fraction of saturated sigmoid/tanh outputs: warn
    "dead": 0.3,             # above this fraction of dead ReLU units: warn
    "update_ratio": (1e-4, 1e-2),  # outside this range of lr * |grad| / |w|: warn
}
"""The thresholds ``health_report`` warns at (rules of thumb, not laws)."""

_SMALLER_WEIGHTS = {
    "sigmoid": "e.g. init='nielsen', N(0, 1/fan_in) as in Nielsen's chapter 3",
    "tanh": "e.g. init='xavier', made for tanh",
}
"""What ``health_report`` suggests for saturated layers of each kind: the initialiser made for that activation."""

_INSTALL = "plotting needs matplotlib, an optional extra: pip install 'tinygrad_edu[plot]'"


def _figure(**kwargs: Any) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(_INSTALL) from error
    figure = Figure(**kwargs)
    FigureCanvasAgg(figure)  # the Agg canvas: renders to PNG without a display and without pyplot
    return figure


def _save(figure: Any, path: str | os.PathLike[str]) -> str:
    figure.savefig(os.fspath(path), dpi=110)
    return os.fspath(path)


class PngPicture:
    """A finished plot that Jupyter shows inline (``_repr_png_``); ``save(path)`` writes it as a PNG file.

    ``figure`` is the matplotlib ``Figure``, for changing the plot before showing or saving it.
    """

    def __init__(self, figure: Any) -> None:
        self.figure = figure

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=110)
        return buffer.getvalue()

    def save(self, path: str | os.PathLike[str]) -> str:
        return _save(self.figure, path)

    def __repr__(self) -> str:
        width, height = self.figure.get_size_inches()
        return f"PngPicture({width:g} x {height:g} inch plot; save(path) writes it)"


def _array(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


# -- loss and accuracy ------------------------------------------------------------------------------------------

def plot_history(history: Mapping[str, Sequence[float]], path: str | os.PathLike[str] | None = None,
                 title: str | None = None) -> str | PngPicture:
    """Curves of a training history, one point per epoch; writes a PNG to ``path`` and returns the path.

    Without ``path`` it returns a ``PngPicture``, which Jupyter shows inline (``.save(path)`` writes it later).
    ``history`` is a dict of lists, as ``tinygrad_edu.train.fit`` returns: keys containing ``loss`` go in the
    left panel, keys containing ``acc`` (``train_accuracy``, ``test_accuracy``) in the right one, on a 0..1
    scale; other keys join the loss panel. The legend shows each curve's last value. Epochs are numbered
    from 0, as Nielsen's book prints them ("Epoch 0: 9129 / 10000"), with whole-number ticks.
    """
    if not isinstance(history, Mapping):
        raise TypeError(f"plot_history: history must be a dict of lists such as {{'loss': [...]}}, not a "
                        f"{type(history).__name__}.")
    series = {}
    for key, raw in history.items():
        try:
            array = np.asarray(list(raw), dtype=float)
        except (TypeError, ValueError) as error:
            raise ValueError(f"plot_history: history[{key!r}] must be a list of numbers ({error}).") from error
        if array.ndim == 1 and array.size:
            series[str(key)] = array
    if not series:
        raise ValueError("plot_history: history has no non-empty list of numbers to plot; train first, e.g. "
                         "history = fit(...), then plot_history(history, 'history.png').")
    accuracy = {k: v for k, v in series.items() if "acc" in k.lower()}
    losses = {k: v for k, v in series.items() if k not in accuracy}
    panels = [(name, group) for name, group in (("loss", losses), ("accuracy", accuracy)) if group]
    figure = _figure(figsize=(5.2 * len(panels), 3.8), layout="constrained")
    from matplotlib.ticker import MaxNLocator

    for k, (name, group) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), k + 1)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # epoch 0, 1, 2...: never half an epoch
        for key, values in group.items():
            epochs = np.arange(len(values))
            axes.plot(epochs, values, marker="o" if len(values) <= 30 else None, markersize=3,
                      label=f"{key} (last {values[-1]:.4g})")
        axes.set_xlabel("epoch")
        axes.set_ylabel(name)
        if name == "accuracy" and all(np.nanmax(v) <= 1.0 for v in group.values()):
            axes.set_ylim(0.0, 1.0)
        elif name == "loss" and all(np.nanmin(v) > 0 for v in group.values()) and \
                max(np.nanmax(v) for v in group.values()) > 20 * min(np.nanmin(v) for v in group.values()):
            axes.set_yscale("log")  # a loss falling over decades reads better on a log scale
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    return _save(figure, path) if path is not None else PngPicture(figure)


# -- first-layer weights ----------------------------------------------------------------------------------------

def plot_weights(weight: Any, path: str | os.PathLike[str], shape: tuple[int, int] = (28, 28),
                 max_units: int = 100, title: str | None = None) -> str:
    """The weights into each hidden unit as a small image: what each unit of the first layer looks for.

    ``weight`` has shape ``(784, n_hidden)`` for MNIST (one column per hidden unit, as ``nn.Linear`` stores
    it); each column is reshaped to ``shape`` and drawn on its own symmetric colour scale (red positive, blue
    negative, white 0), in a grid of at most ``max_units`` images. Writes a PNG; returns the path.
    """
    w = _array(weight)
    pixels = int(np.prod(shape))
    if w.ndim != 2 or w.shape[0] != pixels:
        hint = (" It looks transposed (one row per unit): pass weight.T." if w.ndim == 2 and w.shape[1] == pixels
                else "")
        raise ValueError(f"plot_weights: expected a weight of shape ({pixels}, n_hidden), one column of "
                         f"{shape[0]}x{shape[1]} pixels per hidden unit, got shape {w.shape}.{hint}")
    units = min(w.shape[1], max_units)
    columns = math.ceil(math.sqrt(units))
    rows = math.ceil(units / columns)
    h, v = shape
    # One mosaic image (one imshow call) is much faster than a subplot per unit; NaN padding shows as grey.
    mosaic = np.full((rows * (h + 1) + 1, columns * (v + 1) + 1), np.nan)
    for k in range(units):
        tile = w[:, k].reshape(shape).astype(float)
        scale = np.abs(tile).max()
        r, c = divmod(k, columns)
        mosaic[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (v + 1):1 + c * (v + 1) + v] = \
            tile / scale if scale > 0 else tile
    figure = _figure(figsize=(0.75 * columns + 1.2, 0.75 * rows + 0.8), layout="constrained")
    axes = figure.add_subplot(1, 1, 1)
    import matplotlib

    colours = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#bbbbbb")
    image = axes.imshow(mosaic, cmap=colours, vmin=-1, vmax=1, interpolation="nearest")
    axes.set_axis_off()
    figure.colorbar(image, ax=axes, shrink=0.6, label="weight / max |weight| of the unit")
    axes.set_title(title or f"first-layer weights: {units} of {w.shape[1]} hidden units", fontsize=10)
    return _save(figure, path)


# -- filters and feature maps ----------------------------------------------------------------------------------

def plot_filters(weight: Any, path: str | os.PathLike[str] | None = None, *, max_images: int = 64,
                 scale: str = "each", title: str | None = None) -> str | PngPicture:
    """Filters or feature maps as a grid of small images: what each filter looks for, what each map found.

    ``weight`` is a conv layer's weight (out, in, kh, kw) (or the ``nn.Conv2d`` itself): one row per filter,
    one column per input channel (a grid of filters when there is one input channel). A 3-D array (C, H, W),
    e.g. one example's feature maps ``maps[0]``, gives one image per channel; a 2-D array one image. Red is
    positive, blue negative, white 0; ``scale="each"`` gives every image its own symmetric scale (filters),
    ``"shared"`` one scale for all (maps you want to compare). At most ``max_images`` images. Writes a PNG to
    ``path`` and returns the path, or without ``path`` returns a ``PngPicture`` (Jupyter shows it inline).
    """
    if scale not in ("each", "shared"):
        raise ValueError(f"plot_filters: scale must be 'each' or 'shared', got {scale!r}.")
    w = _array(getattr(weight, "weight", weight)).astype(float)
    if w.ndim not in (2, 3, 4) or w.size == 0:
        raise ValueError(f"plot_filters: expected filters (out, in, kh, kw), maps (C, H, W) or one image (H, W), "
                         f"got shape {w.shape}; for a batch of maps (N, C, H, W) pass one example, maps[0].")
    if w.ndim == 4 and w.shape[1] > 1:
        rows, columns = min(w.shape[0], max(1, max_images // w.shape[1])), min(w.shape[1], max_images)
        tiles = [[w[r, c] for c in range(columns)] for r in range(rows)]
        shown = f"{rows} of {w.shape[0]} filters x {columns} of {w.shape[1]} input channels"
    else:
        flat = w.reshape((-1,) + w.shape[-2:])
        count = min(len(flat), max_images)
        columns = math.ceil(math.sqrt(count))
        tiles = [list(flat[r * columns:min((r + 1) * columns, count)]) for r in range(math.ceil(count / columns))]
        shown = f"{count} of {len(flat)} {'filters' if w.ndim == 4 else 'images'}"
    h, v = w.shape[-2:]
    top = float(np.nanmax(np.abs(np.where(np.isfinite(w), w, np.nan)))) if np.isfinite(w).any() else 0.0
    # One mosaic image (one imshow call) is much faster than a subplot per tile; NaN padding shows as grey.
    mosaic = np.full((len(tiles) * (h + 1) + 1, columns * (v + 1) + 1), np.nan)
    for r, line in enumerate(tiles):
        for c, tile in enumerate(line):
            size = float(np.nanmax(np.abs(np.where(np.isfinite(tile), tile, np.nan)))) if scale == "each" and \
                np.isfinite(tile).any() else top
            mosaic[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (v + 1):1 + c * (v + 1) + v] = \
                tile / size if size > 0 else tile
    inch = 0.45 * min(max(h, v, 5), 12) / 5  # per tile: half an inch for a 5x5 filter, at most about one inch
    figure = _figure(figsize=(min(13.0, max(3.2, inch * columns + 1.8)), min(13.0, max(2.2, inch * len(tiles) + 0.9))),
                     layout="constrained")
    axes = figure.add_subplot(1, 1, 1)
    import matplotlib

    colours = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#bbbbbb")
    image = axes.imshow(mosaic, cmap=colours, vmin=-1, vmax=1, interpolation="nearest")
    axes.set_axis_off()
    label = "value / its image's max |value|" if scale == "each" else f"value / {top:.3g}"
    figure.colorbar(image, ax=axes, shrink=0.6, label=label)
    axes.set_title(title or f"{shown}, {h}x{v}", fontsize=10)
    return _save(figure, path) if path is not None else PngPicture(figure)


# -- layer health -----------------------------------------------------------------------------------------------

def _layer(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name


def _kind(activation: Any, values: np.ndarray) -> str:
    """sigmoid, tanh or relu: from the op that made the tensor if known, else from the range of the values."""
    op = activation.op if isinstance(activation, Tensor) else None
    if op is not None and op.name in ("sigmoid", "tanh", "relu", "leaky_relu", "softmax"):
        return op.name
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "unknown"
    low, high = finite.min(), finite.max()
    if low >= 0 and (finite == 0).any():
        return "relu"
    if low > 0 and high <= 1:
        return "sigmoid"
    if low >= -1 and high <= 1:
        return "tanh"
    return "unknown"


def _norm(arrays: list[np.ndarray]) -> float:
    return float(np.sqrt(sum(float(np.sum(np.square(a, dtype=np.float64))) for a in arrays)))


def layer_health(model_or_params: Any, activations: Mapping[str, Any] | None = None,
                 grads: Mapping[str, Any] | None = None, lr: float | None = None) -> list[dict[str, Any]]:
    """One dict per layer with the numbers of the module docstring (None where they cannot be computed).

    * ``model_or_params``: a model (``named_parameters()``), a dict ``{name: Tensor}`` or (name, Tensor)
      pairs. Parameters are grouped into layers by their dotted prefix (``layers.0.weight`` -> ``layers.0``).
    * ``activations``: ``{layer name: Tensor or array}``, e.g. the outputs of each activation function for
      one batch; a key equal to a layer's prefix shares its row, other keys get rows of their own. When every
      name ends in a number (``layers.0``, ``layers.1``...), rows are sorted by it, so the output of
      ``layers.1`` (an activation module) sits between ``layers.0`` and ``layers.2``.
    * ``grads``: ``{parameter name: array}``; by default each parameter's ``.grad``.
    * ``lr``: the learning rate, for ``update_ratio``.

    Keys of each row: ``layer``, ``params``, ``weight_norm``, ``grad_norm``, ``update_ratio``, ``kind``,
    ``act_mean``, ``act_std``, ``saturated``, ``dead``.

    >>> import numpy as np
    >>> from tinygrad_edu import Tensor
    >>> w = Tensor(np.ones((2, 2)), requires_grad=True)
    >>> w.grad = np.full((2, 2), 0.5)
    >>> row = layer_health({"hidden.weight": w}, activations={"hidden": np.array([[0.5, 0.999]])}, lr=0.1)[0]
    >>> row["layer"], row["grad_norm"], row["update_ratio"], row["saturated"]
    ('hidden', 1.0, 0.05, 0.5)
    """
    rows: dict[str, dict[str, Any]] = {}

    def row(layer: str) -> dict[str, Any]:
        if layer not in rows:
            rows[layer] = {"layer": layer, "params": [], "weight_norm": None, "grad_norm": None,
                           "update_ratio": None, "kind": None, "act_mean": None, "act_std": None,
                           "saturated": None, "dead": None}
        return rows[layer]

    weights: dict[str, list[np.ndarray]] = {}
    gradients: dict[str, list[np.ndarray]] = {}
    for name, p in named_items(model_or_params, "layer_health"):
        layer = _layer(name)
        row(layer)["params"].append(name[len(layer) + 1:] or name)
        weights.setdefault(layer, []).append(_array(p))
        g = grads.get(name) if grads is not None else (p.grad if isinstance(p, Tensor) else None)
        if g is not None:
            gradients.setdefault(layer, []).append(_array(g))
    for layer, arrays in weights.items():
        r = rows[layer]
        r["weight_norm"] = _norm(arrays)
        if layer in gradients:
            r["grad_norm"] = _norm(gradients[layer])
            if lr is not None and r["weight_norm"] > 0:
                r["update_ratio"] = float(lr) * r["grad_norm"] / r["weight_norm"]
    for name, activation in (activations or {}).items():
        values = np.asarray(_array(activation), dtype=np.float64)
        r = row(str(name))
        kind = _kind(activation, values)
        r["kind"] = kind
        r["act_mean"], r["act_std"] = float(values.mean()), float(values.std())
        if kind in ("sigmoid", "softmax", "tanh"):
            r["saturated"] = float(np.mean(saturated(values, kind)))
        elif kind in ("relu", "leaky_relu"):
            per_unit = values.reshape(-1, values.shape[-1]) if values.ndim > 1 else values.reshape(-1, 1)
            r["dead"] = float(np.mean(np.all(per_unit <= 0, axis=0)))
    for r in rows.values():
        r["params"] = ", ".join(r["params"])
    result = list(rows.values())
    if all(r["layer"].rsplit(".", 1)[-1].isdigit() for r in result):
        # layers.0 (Linear), layers.1 (its Sigmoid), layers.2...: put activations between their layers
        result.sort(key=lambda r: [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in r["layer"].split(".")])
    return result


def _cell(value: Any, percent: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if percent:
        return f"{100 * value:.1f}%"
    return f"{value:.3g}"


def health_report(model_or_params: Any, activations: Mapping[str, Any] | None = None,
                  grads: Mapping[str, Any] | None = None, lr: float | None = None) -> str:
    """``layer_health`` as a text table, followed by a warning for every number outside the healthy range."""
    rows = layer_health(model_or_params, activations, grads, lr)
    header = ["layer", "params", "kind", "act mean", "act std", "saturated", "dead", "|grad|", "|w|",
              "lr*|grad|/|w|"]
    table = [[r["layer"], r["params"] or "-", r["kind"] or "-", _cell(r["act_mean"]), _cell(r["act_std"]),
              _cell(r["saturated"], True), _cell(r["dead"], True), _cell(r["grad_norm"]), _cell(r["weight_norm"]),
              _cell(r["update_ratio"])] for r in rows]
    widths = [max(len(line[k]) for line in [header] + table) for k in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header] + table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    warnings = []
    low, high = HEALTHY["update_ratio"]
    for r in rows:
        name = r["layer"]
        if r["saturated"] is not None and r["saturated"] > HEALTHY["saturated"]:
            warnings.append(f"{name}: {100 * r['saturated']:.0f}% of {r['kind']} outputs are saturated; their "
                            f"local derivative is below 0.01, so little gradient gets through (try smaller "
                            f"initial weights, {_SMALLER_WEIGHTS.get(r['kind'], 'e.g. init=' + repr('xavier'))}).")
        if r["dead"] is not None and r["dead"] > HEALTHY["dead"]:
            warnings.append(f"{name}: {100 * r['dead']:.0f}% of ReLU units are dead (0 for every sample) and get "
                            f"no gradient (try a smaller learning rate, init='he', or leaky_relu).")
        if r["grad_norm"] is not None and not np.isfinite(r["grad_norm"]):
            warnings.append(f"{name}: the gradient is not finite (exploding); lower the learning rate.")
        elif r["grad_norm"] == 0.0:
            warnings.append(f"{name}: the gradient is exactly 0: no gradient reaches this layer.")
        ratio = r["update_ratio"]
        if ratio is not None and np.isfinite(ratio) and ratio > 0 and not low <= ratio <= high:
            # NOTE: a large ratio is not wrong by itself: Nielsen's eta = 3.0 starts far above the range and
            # trains well, as the gradients shrink. What says "too large" is a loss that jumps or grows.
            advice = ("barely learns (raise the learning rate)" if ratio < low else
                      f"takes large steps: one moves its weights by {ratio:.0%} of their size. Fine while the "
                      f"loss falls (large steps early on are common); if it jumps or grows, lower the learning "
                      f"rate")
            warnings.append(f"{name}: lr*|grad|/|w| = {ratio:.2g} is outside {low:g}..{high:g}: the layer {advice}.")
    if warnings:
        lines += [""] + [f"! {w}" for w in warnings]
    else:
        lines += ["", "no warnings: every number is within the usual healthy range"]
    return "\n".join(lines)


def plot_health(model_or_params: Any, path: str | os.PathLike[str], activations: Mapping[str, Any] | None = None,
                grads: Mapping[str, Any] | None = None, lr: float | None = None) -> str:
    """``layer_health`` as three bar charts (gradient norm, update ratio with its healthy band, saturated
    and dead fractions); writes a PNG and returns the path."""
    rows = layer_health(model_or_params, activations, grads, lr)
    if not rows:
        raise ValueError("plot_health: no parameters and no activations given, so there is nothing to plot.")
    figure = _figure(figsize=(12, 3.8), layout="constrained")
    names = [r["layer"] for r in rows]
    positions = np.arange(len(rows))

    def bars(axes: Any, key: str, colour: str) -> None:
        values = [r[key] if r[key] is not None and np.isfinite(r[key]) and r[key] > 0 else np.nan for r in rows]
        axes.bar(positions, values, color=colour)
        if any(np.isfinite(values)):
            axes.set_yscale("log")
        axes.set_xticks(positions, names, rotation=30, ha="right", fontsize=8)

    first = figure.add_subplot(1, 3, 1)
    bars(first, "grad_norm", "#4c72b0")
    first.set_title("gradient norm |grad|", fontsize=10)
    second = figure.add_subplot(1, 3, 2)
    bars(second, "update_ratio", "#55a868")
    low, high = HEALTHY["update_ratio"]
    second.axhspan(low, high, color="#55a868", alpha=0.12, label=f"healthy {low:g}..{high:g}")
    second.axhline(1e-3, color="#55a868", linestyle="--", linewidth=1)
    second.set_title("update ratio lr*|grad|/|w|" + ("" if lr is not None else " (pass lr=)"), fontsize=10)
    second.legend(fontsize=8)
    third = figure.add_subplot(1, 3, 3)
    width = 0.4
    saturated = [r["saturated"] if r["saturated"] is not None else np.nan for r in rows]
    dead = [r["dead"] if r["dead"] is not None else np.nan for r in rows]
    third.bar(positions - width / 2, saturated, width, color="#dd8452", label="saturated (sigmoid/tanh)")
    third.bar(positions + width / 2, dead, width, color="#8172b3", label="dead (ReLU)")
    third.axhline(HEALTHY["saturated"], color="#dd8452", linestyle="--", linewidth=1)
    third.set_ylim(0, 1)
    third.set_xticks(positions, names, rotation=30, ha="right", fontsize=8)
    third.set_title("activations: fraction saturated / dead", fontsize=10)
    third.legend(fontsize=8)
    return _save(figure, path)
