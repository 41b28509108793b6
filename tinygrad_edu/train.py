"""A small training loop: mini-batches, a progress bar, evaluation each epoch, a history to plot, checkpoints.

``fit(..., checkpoint=PATH)`` writes the whole training state to ``PATH`` (an ``.npz``) at the end of every
epoch, atomically; ``fit(..., checkpoint=PATH, resume=True)`` continues from it at the next epoch, and the run
ends bit for bit where an uninterrupted one would have.

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

import os
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .datasets import batches
from .nn import save_npz
from .schedules import Schedule, check_patience, early_stopping, scheduled_rate
from .tensor import Tensor, no_grad

__all__ = ["fit", "evaluate", "accuracy", "epoch_report", "CheckpointError",
           "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "tinygrad_edu checkpoint 1"
"""The ``format`` entry of every checkpoint ``fit`` writes (a file without it is not one of ours)."""

History = dict[str, list[float]]


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed: missing, unreadable, or written by another model, optimizer or run."""


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
    writes PATH atomically (see ``nn.save_npz``): the parameters as ``model/<dotted name>``, the optimizer's
    ``state_dict()`` as ``optimizer/<name>``, the batch-order generator's state as ``rng/...``, ``epoch`` (how
    many are complete), ``history/<key>``, and the run's ``batch_size`` and ``train_size``. A file that exists
    is refused unless ``resume=True``, which loads it and continues at the next epoch (up to ``epochs`` in all):
    a run killed at any moment and resumed with the same arguments ends bit for bit like an uninterrupted one.
    A checkpoint that is missing, damaged, or from another network, optimizer or run raises
    ``CheckpointError`` before anything is changed; the file is only read.
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
    kept = {"patience": str(patience or 0), "schedule": _schedule_name(schedule),
            **{str(key): str(value) for key, value in (settings or {}).items()}}
    done = 0
    if checkpoint is not None:
        _check_checkpointable(model, optimizer)
        if resume:
            done, history = _resume(checkpoint, model, optimizer, generator, history, batch_size, len(x), kept)
        elif os.path.exists(checkpoint):
            raise CheckpointError(f"{os.fspath(checkpoint)!r} already exists: resume from it (resume=True, "
                                  f"--resume), or remove it to start a new run. It was not touched.")
        folder = os.path.dirname(os.path.abspath(checkpoint))
        if not os.path.isdir(folder):  # found now, not after the first epoch's work
            raise CheckpointError(f"the folder {folder!r} of the checkpoint does not exist; create it first.")
    elif resume:
        raise ValueError("fit: resume=True needs checkpoint=PATH, the file to continue from.")
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
            state = _checkpoint_arrays(model, optimizer, generator, epoch, history, batch_size, len(x), kept)
            save_npz(checkpoint, state)
        if on_epoch is not None:
            on_epoch(epoch, history)
    return history


# -- checkpoints --------------------------------------------------------------------------------------------

def _check_checkpointable(model: Any, optimizer: Any) -> None:
    for label, thing, example in (("model", model, "an nn.Module"), ("optimizer", optimizer, "optim.SGD or Adam")):
        if not (hasattr(thing, "state_dict") and hasattr(thing, "load_state_dict")):
            raise TypeError(f"fit: checkpoint=... saves the {label}'s state_dict(), but the {label} is a "
                            f"{type(thing).__name__}, which has none; use {example}.")


def _schedule_name(schedule: Any) -> str:
    return "" if schedule is None else str(getattr(schedule, "__name__", type(schedule).__name__))


def _model_generators(model: Any) -> dict[str, np.random.Generator]:
    """The generators the model draws from while training (dropout's masks), by module name, each once."""
    found: dict[str, np.random.Generator] = {}
    seen: set[int] = set()
    for name, module in (model.named_modules() if hasattr(model, "named_modules") else []):
        generator = getattr(module, "rng", None)
        if isinstance(generator, np.random.Generator) and id(generator) not in seen:
            seen.add(id(generator))
            found[name or "model"] = generator
    return found


def _checkpoint_arrays(model: Any, optimizer: Any, generator: np.random.Generator, epoch: int, history: History,
                       batch_size: int, train_size: int, settings: dict[str, str]) -> dict[str, np.ndarray]:
    """Everything the next epoch depends on, as named arrays (no pickled objects, no clock times)."""
    arrays = {"format": np.array(CHECKPOINT_FORMAT), "epoch": np.array(epoch, dtype=np.int64),
              "run/batch_size": np.array(batch_size, dtype=np.int64),
              "run/train_size": np.array(train_size, dtype=np.int64)}
    arrays.update({f"model/{name}": value for name, value in model.state_dict().items()})
    arrays.update({f"optimizer/{name}": value for name, value in optimizer.state_dict().items()})
    arrays.update(_flatten(generator.bit_generator.state, "rng"))
    for name, module_generator in _model_generators(model).items():
        arrays.update(_flatten(module_generator.bit_generator.state, f"model_rng/{name}"))
    arrays.update({f"settings/{key}": np.array(value) for key, value in settings.items()})
    arrays.update({f"history/{key}": np.array(values, dtype=np.float64) for key, values in history.items()})
    return arrays


# NOTE: a bit generator's state is a dict of strings, ints and arrays. PCG64's (numpy's default) state and
# increment are 128-bit integers, wider than any numpy integer, so each int is stored as its 64-bit words,
# least significant first; reading it back, the generator's own (current) state says which leaf is which kind.
_WORD = 2**64


def _flatten(tree: Mapping[str, Any], prefix: str) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}"
        if isinstance(value, Mapping):
            arrays.update(_flatten(value, name))
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0:
            words, value = [], int(value)
            while True:
                words.append(value % _WORD)
                value //= _WORD
                if not value:
                    break
            arrays[name] = np.array(words, dtype=np.uint64)
        elif isinstance(value, str):
            arrays[name] = np.array(value)
        elif isinstance(value, np.ndarray):
            arrays[name] = value.copy()
        else:
            raise TypeError(f"fit: cannot store {name} of the random generator's state ({type(value).__name__}).")
    return arrays


def _unflatten(template: Mapping[str, Any], arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, like in template.items():
        name = f"{prefix}/{key}"
        if isinstance(like, Mapping):
            tree[key] = _unflatten(like, arrays, name)
            continue
        if name not in arrays:
            raise KeyError(name)
        value = arrays[name]
        if isinstance(like, (int, np.integer)):
            tree[key] = sum(int(word) * _WORD**k for k, word in enumerate(value.reshape(-1)))
        elif isinstance(like, str):
            tree[key] = str(value)
        else:
            tree[key] = np.array(value, dtype=like.dtype)
    return tree


def _read(path: str) -> dict[str, np.ndarray]:
    """Every array of the checkpoint at ``path``, read without pickle; CheckpointError if it cannot be."""
    if not os.path.exists(path):
        raise CheckpointError(f"there is no checkpoint at {path!r} to resume from; leave out resume (--resume) to "
                              f"start a new run that writes it.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise CheckpointError(f"{path!r} holds a single array, not a checkpoint (an .npz archive).")
            arrays = {name: archive[name] for name in archive.files}  # reading every entry checks its CRC
    except CheckpointError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path!r} is truncated or corrupted, so it cannot be resumed "
                              f"({type(error).__name__}: {error}). It was not touched.") from error
    if str(arrays.get("format", "")) != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path!r} is an .npz archive but not a training checkpoint (no format entry "
                              f"{CHECKPOINT_FORMAT!r}); model.save() writes parameters only, fit(checkpoint=...) "
                              f"writes checkpoints.")
    return arrays


def _section(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {name[len(prefix) + 1:]: value for name, value in arrays.items() if name.startswith(prefix + "/")}


def _resume(checkpoint: str | os.PathLike[str], model: Any, optimizer: Any, generator: np.random.Generator,
            history: History, batch_size: int, train_size: int, settings: dict[str, str]) -> tuple[int, History]:
    """Load the checkpoint into model, optimizer and generator; return the epochs done and the history so far.

    Everything is checked before anything is loaded, so a refused checkpoint leaves the model as it was.
    """
    path = os.fspath(checkpoint)
    arrays = _read(path)
    try:
        done = int(arrays["epoch"])
        saved_run = {key: int(value) for key, value in _section(arrays, "run").items()}
        saved_history = {key: [float(v) for v in values] for key, values in _section(arrays, "history").items()}
        rng_state = _unflatten(generator.bit_generator.state, arrays, "rng")
        model_generators = _model_generators(model)
        model_rng_states = {name: _unflatten(g.bit_generator.state, arrays, f"model_rng/{name}")
                            for name, g in model_generators.items()}
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path!r} is incomplete: its entry {error} is missing or unreadable. It was not "
                              f"touched.") from error
    if any(len(values) != done for values in saved_history.values()):
        raise CheckpointError(f"{path!r} is inconsistent: {done} epochs complete but a history of "
                              f"{[len(values) for values in saved_history.values()]} entries. It was not touched.")
    saved_settings = {key: str(value) for key, value in _section(arrays, "settings").items()}
    defaults = {"patience": "0"}
    other = [f"{key} {saved_settings.get(key, '(none)') or '(none)'} then, {value or '(none)'} now"
             for key, value in settings.items() if saved_settings.get(key, defaults.get(key, "")) != value]
    other += [f"{key} {value} then, (none) now" for key, value in saved_settings.items() if key not in settings]
    if other:
        raise CheckpointError(f"{path!r} was written by a run with other training settings ({'; '.join(other)}); "
                              f"a resume keeps them: resume with the same values, or start a new checkpoint.")
    run = {"batch_size": batch_size, "train_size": train_size}
    changed = [f"{key} {saved_run.get(key)} then, {value} now" for key, value in run.items()
               if saved_run.get(key) != value]
    if sorted(saved_history) != sorted(history):
        changed.append(f"history {sorted(saved_history)} then, {sorted(history)} now (a test set given to one "
                       f"run only?)")
    if changed:
        raise CheckpointError(f"{path!r} was written by a run with other data settings ({'; '.join(changed)}); "
                              f"resume with the same arguments, or start a new checkpoint.")
    saved_optimizer = _section(arrays, "optimizer")
    current = optimizer.state_dict()
    saved_type, current_type = _show(saved_optimizer.get("type")), _show(current.get("type"))
    if saved_type != current_type:
        raise CheckpointError(f"{path!r} was saved with another optimizer: {saved_type}, and this run uses "
                              f"{current_type}; resume with the same optimizer, or start a new checkpoint.")
    # a schedule sets lr every epoch: the saved lr is the schedule's, not a setting of the run
    names = [name for name in current if "." not in name and not (name == "lr" and settings["schedule"])]
    different = [f"{name} {_show(saved_optimizer.get(name))} then, {_show(current[name])} now" for name in names
                 if name not in saved_optimizer or not np.array_equal(saved_optimizer[name], current[name])]
    if different:
        raise CheckpointError(f"{path!r} was saved with another optimizer ({'; '.join(different)}); resume with "
                              f"the same optimizer and settings, or start a new checkpoint.")
    before = model.state_dict()
    try:
        model.load_state_dict(_section(arrays, "model"))
    except ValueError as error:
        raise CheckpointError(f"{path!r} was saved from a network of another shape: {error}") from error
    try:
        optimizer.load_state_dict(saved_optimizer)
        generator.bit_generator.state = rng_state
        for name, state in model_rng_states.items():
            model_generators[name].bit_generator.state = state
    except ValueError as error:
        model.load_state_dict(before)
        raise CheckpointError(f"{path!r} does not fit this run: {error}") from error
    return done, saved_history


def _show(value: np.ndarray | None) -> str:
    return "(none)" if value is None else str(value.tolist() if value.ndim else value.item())


def _progress(total: int, description: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="batch", leave=True, dynamic_ncols=True)
