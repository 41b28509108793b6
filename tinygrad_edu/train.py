"""A small training loop: mini-batches, a progress bar, evaluation each epoch, a history to plot, checkpoints.

``fit(..., checkpoint=PATH)`` writes the whole training state to ``PATH`` (an ``.npz``) at the end of every
epoch, atomically; ``fit(..., checkpoint=PATH, resume=True)`` continues from it at the next epoch, and the run
ends bit for bit where an uninterrupted one would have. The file format is ``checkpoint.py``'s.

>>> import numpy as np
>>> from tinygrad_edu import Tensor
>>> from tinygrad_edu.train import fit
>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((64, 3)); y = x @ np.array([[1.0], [-2.0], [0.5]])
>>> w = Tensor(np.zeros((3, 1)), requires_grad=True, name="w")
>>> class Step:  # any object with step() and zero_grad() works as the optimizer
...     def zero_grad(self): w.zero_grad()
...     def step(self): w.data -= 0.1 * w.grad
>>> history = fit(lambda xb: xb @ w, lambda p, t: ((p - t) ** 2).mean(), Step(), (x, y),
...               epochs=20, batch_size=16, rng=0, progress=False)
>>> history["loss"][-1] < 1e-3
True
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .checkpoint import CHECKPOINT_FORMAT, CheckpointError, checkpoint_lock, prepare_checkpoint, save_checkpoint
from .datasets import batches, check_batch_size
from .grad_mode import no_grad
from .health import watch_saturation
from .nn import BatchNorm1d
from .schedules import Schedule, check_patience, early_stopping, scheduled_rate
from .tensor import Tensor

__all__ = ["fit", "evaluate", "accuracy", "epoch_report", "CheckpointError",
           "CHECKPOINT_FORMAT"]  # the last two live in checkpoint.py; importable from here as documented

History = dict[str, list[float]]


def accuracy(prediction: np.ndarray, target: np.ndarray) -> float:
    """Fraction correct: argmax for several outputs, threshold 0.5 for one; targets as labels or one-hot."""
    prediction = np.asarray(prediction)
    target = np.asarray(target)
    if prediction.ndim == 2 and prediction.shape[1] > 1:
        labels = target.argmax(axis=1) if target.ndim == 2 else target
        return float(np.mean(prediction.argmax(axis=1) == labels))
    return float(np.mean((prediction.reshape(-1) > 0.5) == (target.reshape(-1) > 0.5)))


def evaluate(model: Callable[[Tensor], Tensor], x: np.ndarray, y: np.ndarray,
             batch_size: int = 1000) -> float:
    """Accuracy of ``model`` on ``(x, y)``, computed under ``no_grad`` in large batches.

    A model with train and eval modes (an ``nn.Module``) is evaluated in eval mode, so dropout keeps every
    unit, and is put back in the mode it was in.
    """
    was_training = getattr(model, "training", None)
    if was_training is not None:
        model.eval()  # type: ignore[attr-defined]
    correct = 0.0
    try:
        with no_grad():
            for start in range(0, len(x), batch_size):
                xb, yb = x[start:start + batch_size], y[start:start + batch_size]
                correct += accuracy(model(Tensor(xb)).data, yb) * len(xb)
    finally:
        if was_training is not None:
            model.train(was_training)  # type: ignore[attr-defined]
    return correct / len(x)


def epoch_report(test_size: int) -> Callable[[int, History], None]:
    """An ``on_epoch`` callback that prints ``Epoch k: correct / test_size`` after each epoch, as Nielsen's book.

    Epochs are numbered from 0 in the printout, as the book prints them ("Epoch 0: 9129 / 10000"); ``fit``
    passes the number of epochs complete (1 after the first), like the checkpoint stores it.

    >>> epoch_report(10000)(1, {"test_accuracy": [0.9129]})
    Epoch 0: 9129 / 10000
    """
    def report(epoch: int, history: History) -> None:
        correct = round(history["test_accuracy"][-1] * test_size)
        print(f"Epoch {epoch - 1}: {correct} / {test_size}", flush=True)

    return report


def fit(model: Callable[[Tensor], Tensor], loss_fn: Callable[[Tensor, Any], Tensor], optimizer: Any,
        train: tuple[np.ndarray, np.ndarray], *, epochs: int, batch_size: int,
        rng: np.random.Generator | int | None = None, test: tuple[np.ndarray, np.ndarray] | None = None,
        progress: bool = True, on_epoch: Callable[[int, History], None] | None = None,
        checkpoint: str | os.PathLike[str] | None = None, resume: bool = False, patience: int | None = None,
        schedule: Schedule | None = None, settings: Mapping[str, object] | None = None) -> History:
    """Train with mini-batch gradient descent and return the history of each epoch.

    ``history`` has ``loss`` (mean training loss of the epoch) and ``train_accuracy`` (measured on the
    batches as they were trained), plus ``test_accuracy`` when ``test`` is given. With ``progress=True`` a
    tqdm bar shows the epoch, loss and accuracy. The same ``rng`` seed gives the same run, bit for bit.
    ``on_epoch(epochs_complete, history)`` runs after each epoch. A model with train and eval modes trains in
    train mode and is evaluated in eval mode (``evaluate``).

    ``patience=N`` stops early, by Nielsen's no-improvement-in-N rule: after the best test accuracy so far, N
    epochs without a better one, and training stops (``test`` is needed; the history keeps every epoch run).
    ``schedule`` sets the optimizer's ``lr`` before every epoch to ``schedule(epochs_complete, history)`` and
    stops when it returns None; ``history["lr"]`` records the rates (see ``schedules``: Nielsen's halving, the
    course's decay). ``settings`` names other choices the run depends on that fit cannot see (the CLI's L2
    strength and dropout): a checkpoint keeps them, with the patience and the schedule, and a resume with other
    values is refused.

    With ``checkpoint=PATH`` (the model a ``Module``, the optimizer one of ``optim``'s), the end of every epoch
    writes PATH atomically: the parameters, the optimizer's state, the batch order's generator, the history
    (the format: ``checkpoint.py``). A file that exists is refused unless ``resume=True``, which loads it and
    continues at the next epoch (up to ``epochs`` in all): a run killed at any moment and resumed with the same
    arguments ends bit for bit like an uninterrupted one. A checkpoint that is missing, unreadable, damaged, or
    from another network, optimizer or run raises ``CheckpointError`` before anything is changed; the file is
    only read. While the run lasts it holds ``PATH.lock``, so a second run on the same file is refused.
    """
    generator = np.random.default_rng(rng)
    x, y = train
    history: History = {"loss": [], "train_accuracy": []}
    if test is not None:
        history["test_accuracy"] = []
    if patience is not None:
        patience = check_patience(patience)
        if test is None:
            raise ValueError("fit: patience=N stops when the test accuracy has not improved for N epochs; give fit "
                             "a test set (test=(x, y)) to watch.")
    if schedule is not None:
        if not callable(schedule):
            raise TypeError(f"fit: schedule must be a function (epochs_complete, history) -> lr or None, such as "
                            f"schedules.course_decay(0.1, 1.0); got a {type(schedule).__name__}.")
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"fit: schedule= sets the optimizer's lr before every epoch, but the optimizer (a "
                            f"{type(optimizer).__name__}) has no lr attribute; use one of optim's.")
        history["lr"] = []
    if resume and checkpoint is None:
        raise ValueError("fit: resume=True needs checkpoint=PATH, the file to continue from.")
    batch_size = check_batch_size(batch_size, "fit")
    layers = getattr(model, "named_modules", None)  # a Module's; a plain function has none
    if len(x) % batch_size == 1 and layers and any(isinstance(m, BatchNorm1d) for _, m in layers()):
        raise ValueError(f"fit: {len(x)} samples in mini-batches of {batch_size} leave a last mini-batch of 1 "
                         f"sample, and batch norm cannot normalise one sample by its own statistics; choose another "
                         f"batch_size, or leave one sample out.")
    kept = {"patience": str(patience or 0), "schedule": _schedule_name(schedule),
            **{str(key): str(value) for key, value in (settings or {}).items()}}
    done = 0
    # a second run on the same checkpoint is refused, here and in any other process, until this one ends
    with checkpoint_lock(checkpoint) if checkpoint is not None else contextlib.nullcontext():
        if checkpoint is not None:
            done, history = prepare_checkpoint(checkpoint, model, optimizer, generator, history, batch_size, len(x),
                                               resume, kept)
        steps = (len(x) + batch_size - 1) // batch_size
        for epoch in range(done + 1, epochs + 1):
            if patience is not None and early_stopping(history, patience) is not None:
                break  # also when a resumed run had already stopped
            if schedule is not None:
                lr = scheduled_rate(schedule, epoch - 1, history)
                if lr is None:
                    break
                optimizer.lr = lr
                history["lr"].append(lr)
            if getattr(model, "training", None) is not None:
                model.train()  # type: ignore[attr-defined]
            bar = _progress(steps, f"Epoch {epoch - 1} (of 0-{epochs - 1})", progress)  # from 0, as Nielsen prints
            loss_sum = correct = 0.0
            for xb, yb in batches(x, y, batch_size, rng=generator):
                prediction = model(Tensor(xb))
                loss = loss_fn(prediction, yb)
                optimizer.zero_grad()
                loss.backward()
                watch_saturation(loss)  # one step in 32 looks for hidden layers too saturated to learn
                optimizer.step()
                loss_sum += loss.item() * len(xb)
                correct += accuracy(prediction.data, yb) * len(xb)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            history["loss"].append(loss_sum / len(x))
            history["train_accuracy"].append(correct / len(x))
            if test is not None:
                history["test_accuracy"].append(evaluate(model, *test))
            if bar is not None:
                shown = {k: f"{v[-1]:.4f}" for k, v in history.items()}
                bar.set_postfix(shown, refresh=True)
                bar.close()
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, generator, epoch, history, batch_size, len(x), kept)
            if on_epoch is not None:
                on_epoch(epoch, history)
    return history


def _schedule_name(schedule: Any) -> str:
    return "" if schedule is None else str(getattr(schedule, "__name__", type(schedule).__name__))


def _progress(total: int, description: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="batch", leave=True, dynamic_ncols=True)
