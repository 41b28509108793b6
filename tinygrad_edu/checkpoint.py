"""Training checkpoints: the whole state of a ``fit`` run in one ``.npz``, written atomically after every epoch.

A checkpoint holds everything the next epoch depends on, as named arrays (no pickled objects, no clock times):
the parameters as ``model/<dotted name>``, the optimizer's ``state_dict()`` as ``optimizer/<name>``, the
batch-order generator's state as ``rng/...``, the state of each generator the model draws from while training
(dropout's masks) as ``model_rng/<module name>/...``, ``epoch`` (how many are complete), ``history/<key>``, the
run's ``batch_size`` and ``train_size``, and ``settings/<name>``: the choices a resume must repeat (fit's
``patience`` and ``schedule``, and its ``settings``); ``format`` says it is one of ours.
``fit(..., checkpoint=PATH)`` holds ``checkpoint_lock(PATH)`` for the whole run (a second run on the same file
is refused; temporary files of killed writes are removed), calls ``prepare_checkpoint`` before its first epoch
(refusing a file it would overwrite, or loading it to resume) and ``save_checkpoint`` after each one
(``npz.save_npz``: killed at any moment, the file is whole).

A checkpoint that is missing, unreadable, damaged, or from another network, optimizer or run raises
``CheckpointError`` (a ``ValueError``) before anything is changed; the file is only read.
"""

from __future__ import annotations

import contextlib
import os
import sys
import zipfile
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .npz import remove_orphans, save_npz

__all__ = ["CheckpointError", "CHECKPOINT_FORMAT", "checkpoint_lock", "prepare_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "tinygrad_edu checkpoint 1"
"""The ``format`` entry of every checkpoint ``fit`` writes (a file without it is not one of ours)."""

History = dict[str, list[float]]
PathLike = str | os.PathLike[str]


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed: missing, unreadable, or written by another model, optimizer or run."""


@contextlib.contextmanager
def checkpoint_lock(path: PathLike) -> Iterator[None]:
    """Hold ``PATH.lock``, an exclusive lock file next to the checkpoint, for a whole run on ``path``.

    Found before the first epoch's work: a folder that does not exist or cannot be written, and another run
    (in any process) that holds the lock, each a ``CheckpointError``. Holding it, the temporary files that
    killed writes of ``path`` left behind are removed (``npz.remove_orphans``). The operating system lets the
    lock go when its process ends, however it ends; the file is removed when the run finishes.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CheckpointError(f"the folder {folder!r} of the checkpoint does not exist; create it first.")
    lock_path = f"{os.fspath(path)}.lock"
    fd = _lock(lock_path, os.fspath(path))
    try:
        remove_orphans(path)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(lock_path)  # removed while still locked: a run waiting on this file sees it is gone
        os.close(fd)


def _lock(lock_path: str, path: str) -> int:
    """Open and lock ``lock_path``; the open file's descriptor. The lock is the file that is on the disk now."""
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise CheckpointError(f"cannot write next to the checkpoint {path!r} ({type(error).__name__}: "
                                  f"{error.strerror}); checkpoints are written there after every epoch, so the "
                                  f"folder must be writable. Choose another path or fix its permissions.") from error
        if not _try_lock(fd):
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            raise CheckpointError(f"another run is using the checkpoint {path!r} (process {holder or '?'} holds "
                                  f"{lock_path!r}); wait for it to finish, or give this run another checkpoint "
                                  f"path.")
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)  # the run that held it removed it as we locked it: lock the file that is there now


def _try_lock(fd: int) -> bool:
    """Lock the open file ``fd`` for this process without waiting: False when another holds it."""
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def prepare_checkpoint(path: PathLike, model: Any, optimizer: Any, generator: np.random.Generator,
                       history: History, batch_size: int, train_size: int, resume: bool,
                       settings: Mapping[str, str] | None = None) -> tuple[int, History]:
    """Before the first epoch: the epochs already complete and the history so far (0 and ``history`` for a new run).

    A new run refuses a file that exists (it would be overwritten); ``resume=True`` loads the checkpoint into
    model, optimizer and generator, and refuses a missing one. Called under ``checkpoint_lock(path)``, which
    has already checked the folder.
    """
    _check_checkpointable(model, optimizer)
    done = 0
    if resume:
        done, history = _resume(path, model, optimizer, generator, history, batch_size, train_size, settings or {})
    elif os.path.exists(path):
        raise CheckpointError(f"{os.fspath(path)!r} already exists: resume from it (resume=True, "
                              f"--resume), or remove it to start a new run. It was not touched.")
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
    """The tree ``_flatten`` stored under ``prefix``, shaped as ``template``: KeyError for a missing entry,
    ValueError naming one of the wrong kind."""
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
            if value.dtype != np.uint64 or value.ndim != 1 or not value.size:
                raise ValueError(f"its entry {name!r} must hold an integer as 64-bit words (uint64, 1-D), not "
                                 f"{value.dtype} of shape {value.shape}")
            tree[key] = sum(int(word) * _WORD**k for k, word in enumerate(value))
        elif isinstance(like, str):
            if value.dtype.kind != "U" or value.ndim:
                raise ValueError(f"its entry {name!r} must hold a string, not {value.dtype} of shape {value.shape}")
            tree[key] = str(value)
        else:
            if value.dtype != like.dtype or value.shape != like.shape:
                raise ValueError(f"its entry {name!r} must hold {like.dtype} of shape {like.shape}, not "
                                 f"{value.dtype} of shape {value.shape}")
            tree[key] = value.copy()
    return tree


def _generator_state(generator: np.random.Generator, arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, Any]:
    """The state stored under ``prefix``, tried on a scratch generator of its kind, so setting it cannot fail.

    KeyError for a missing entry; ValueError naming ``prefix`` when an entry is of the wrong kind, or numpy
    refuses the state.
    """
    state = _unflatten(generator.bit_generator.state, arrays, prefix)
    scratch = type(generator.bit_generator)()
    try:
        scratch.state = state
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"numpy refuses the generator state in its entries {prefix}/... "
                         f"({type(error).__name__}: {error})") from error
    return state


_ZIP, _NPY = b"PK\x03\x04", b"\x93NUMPY"  # how an .npz (a zip archive) and an .npy file begin


def _read(path: str) -> dict[str, np.ndarray]:
    """Every array of the checkpoint at ``path``, read without pickle; CheckpointError if it cannot be."""
    if not os.path.exists(path):
        raise CheckpointError(f"there is no checkpoint at {path!r} to resume from; leave out resume (--resume) to "
                              f"start a new run that writes it.")
    try:
        with open(path, "rb") as handle:
            start = handle.read(len(_NPY))
    except OSError as error:
        raise CheckpointError(f"{path!r} cannot be read ({type(error).__name__}: {error.strerror}); check that it "
                              f"is a file and that this user may read it. It was not touched.") from error
    if start == _NPY:
        raise CheckpointError(f"{path!r} holds a single array (an .npy file), not a checkpoint: fit(checkpoint=...) "
                              f"writes an .npz archive of named arrays. It was not touched.")
    if not start.startswith(_ZIP):
        raise CheckpointError(f"{path!r} is not a checkpoint: it does not begin as an .npz archive (a zip file) "
                              f"does{', it is empty' if not start else ''}. Its first bytes may be damaged. It "
                              f"was not touched.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}  # reading every entry checks its CRC
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

    Everything is checked before anything is loaded: the generator's state on a scratch generator, then the
    model's and the optimizer's by their own ``load_state_dict`` (each loads all or nothing; when the optimizer
    refuses, the model gets its values back). A refused checkpoint leaves model, optimizer and generator as
    they were.
    """
    path = os.fspath(checkpoint)
    arrays = _read(path)
    try:
        done = int(arrays["epoch"])
        saved_run = {key: int(value) for key, value in _section(arrays, "run").items()}
        saved_history = {key: [float(v) for v in values] for key, values in _section(arrays, "history").items()}
        rng_state = _generator_state(generator, arrays, "rng")
        model_generators = _model_generators(model)
        model_rng_states = {name: _generator_state(g, arrays, f"model_rng/{name}")
                            for name, g in model_generators.items()}
    except KeyError as error:
        raise CheckpointError(f"{path!r} is incomplete: its entry {error} is missing. It was not touched.") from error
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path!r} cannot be resumed: {error}. It was not touched.") from error
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
    # the settings are the optimizer's own (its settings()); one added later (SGD's dampening) is taken, when
    # missing, at the value that reproduces how the older run stepped
    names = list(optimizer.settings()) if hasattr(optimizer, "settings") else [n for n in current if "." not in n]
    added = {name: np.array(value) for name, value in getattr(optimizer, "added_settings", {}).items()}
    saved_values = {name: saved_optimizer.get(name, added.get(name)) for name in names}
    # a schedule sets lr every epoch: the saved lr is the schedule's, not a setting of the run
    different = [f"{name} {_show(saved)} then, {_show(current[name])} now" for name in names
                 if not (name == "lr" and settings.get("schedule"))
                 and ((saved := saved_values[name]) is None or not np.array_equal(saved, current[name]))]
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
    except ValueError as error:
        model.load_state_dict(before)
        raise CheckpointError(f"{path!r} cannot be resumed, its optimizer state is refused: {error} It was not "
                              f"touched.") from error
    generator.bit_generator.state = rng_state  # checked above: these cannot fail
    for name, state in model_rng_states.items():
        model_generators[name].bit_generator.state = state
    return done, saved_history


def _show(value: np.ndarray | None) -> str:
    return "(none)" if value is None else str(value.tolist() if value.ndim else value.item())
