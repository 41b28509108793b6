"""Training checkpoints: the whole state of a ``fit`` run in one ``.npz``, written atomically after every epoch.

A checkpoint holds everything the next epoch depends on, as named arrays (no pickled objects, no clock times):
the parameters as ``model/<dotted name>``, the optimizer's ``state_dict()`` as ``optimizer/<name>``, the
batch-order generator's state as ``rng/...``, the state of each generator the model draws from while training
(dropout's masks) as ``model_rng/<module name>/...``, ``epoch`` (how many are complete), ``history/<key>``, the
run's ``batch_size`` and ``train_size``, and ``settings/<name>``: the choices a resume must repeat (fit's
``patience`` and ``schedule``, and its ``settings``); ``format`` says it is one of ours.
``fit(..., checkpoint=PATH)`` calls ``prepare_checkpoint`` before its first epoch (refusing a file it would
overwrite, or loading it to resume) and ``save_checkpoint`` after each one (``npz.save_npz``: killed at any
moment, the file is whole).

A checkpoint that is missing, damaged, or from another network, optimizer or run raises ``CheckpointError``
before anything is changed; the file is only read.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from .npz import save_npz

__all__ = ["CheckpointError", "CHECKPOINT_FORMAT", "prepare_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "tinygrad_edu checkpoint 1"
"""The ``format`` entry of every checkpoint ``fit`` writes (a file without it is not one of ours)."""

History = dict[str, list[float]]
PathLike = str | os.PathLike[str]


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed: missing, unreadable, or written by another model, optimizer or run."""


def prepare_checkpoint(path: PathLike, model: Any, optimizer: Any, generator: np.random.Generator,
                       history: History, batch_size: int, train_size: int, resume: bool,
                       settings: Mapping[str, str] | None = None) -> tuple[int, History]:
    """Before the first epoch: the epochs already complete and the history so far (0 and ``history`` for a new run).

    A new run refuses a file that exists (it would be overwritten) and a folder that does not (found now, not
    after the first epoch's work); ``resume=True`` loads the checkpoint into model, optimizer and generator.
    """
    _check_checkpointable(model, optimizer)
    done = 0
    if resume:
        done, history = _resume(path, model, optimizer, generator, history, batch_size, train_size, settings or {})
    elif os.path.exists(path):
        raise CheckpointError(f"{os.fspath(path)!r} already exists: resume from it (resume=True, "
                              f"--resume), or remove it to start a new run. It was not touched.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CheckpointError(f"the folder {folder!r} of the checkpoint does not exist; create it first.")
    return done, history


def save_checkpoint(path: PathLike, model: Any, optimizer: Any, generator: np.random.Generator, epoch: int,
                    history: History, batch_size: int, train_size: int,
                    settings: Mapping[str, str] | None = None) -> None:
    """After epoch number ``epoch`` (counted from 1): write the run's whole state to ``path``, atomically."""
    save_npz(path, _checkpoint_arrays(model, optimizer, generator, epoch, history, batch_size, train_size,
                                      settings or {}))


def _check_checkpointable(model: Any, optimizer: Any) -> None:
    for label, thing, example in (("model", model, "an nn.Module"), ("optimizer", optimizer, "optim.SGD or Adam")):
        if not (hasattr(thing, "state_dict") and hasattr(thing, "load_state_dict")):
            raise TypeError(f"fit: checkpoint=... saves the {label}'s state_dict(), but the {label} is a "
                            f"{type(thing).__name__}, which has none; use {example}.")


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
                       batch_size: int, train_size: int, settings: Mapping[str, str]) -> dict[str, np.ndarray]:
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


def _resume(checkpoint: PathLike, model: Any, optimizer: Any, generator: np.random.Generator,
            history: History, batch_size: int, train_size: int,
            settings: Mapping[str, str]) -> tuple[int, History]:
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
    defaults = {"patience": "0"}   # a checkpoint from before these settings existed: none of them were used
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
    names = [name for name in current if "." not in name and not (name == "lr" and settings.get("schedule"))]
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
