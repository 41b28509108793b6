"""Learning-rate schedules and early stopping for ``fit``, read from the history of the epochs so far.

A schedule is a function ``schedule(epoch, history) -> lr | None``: ``fit`` calls it before every epoch, with
``epoch`` the number of epochs complete and ``history`` what ``fit`` returns (``test_accuracy``, ``loss``, ...),
and trains the epoch at the ``lr`` it returns; ``None`` ends the training. A schedule keeps no state of its own:
everything it needs is in the history, which a checkpoint keeps, so a resumed run gets the same rates as an
uninterrupted one.

Ready-made:

- ``nielsen_halving(lr0, n=10)``: Nielsen's chapter-3 schedule (an exercise there): halve the rate each time
  the test accuracy has gone ``n`` epochs without beating its best, and stop once it would fall below lr0 / 128.
- ``course_decay(lr0, decay_rate, interval)``: the deep-learning course's lr0 / (1 + decay_rate floor(i /
  interval)), set at the end of epoch i as the course sets it (so epoch i + 1 runs at it).
- ``early_stopping(history, patience)``: the epoch at which Nielsen's no-improvement-in-``patience`` rule stops
  training (``fit(..., patience=N)``), or None.

>>> schedule = course_decay(0.1, decay_rate=1.0, interval=1000)
>>> [schedule(epoch, {}) for epoch in (0, 1, 1000, 1001, 2001)]
[0.1, 0.1, 0.1, 0.05, 0.03333333333333333]
>>> halving = nielsen_halving(0.5, n=2)
>>> [halving(epoch, {"test_accuracy": [0.90, 0.91, 0.91, 0.90, 0.92][:epoch]}) for epoch in range(6)]
[0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

__all__ = ["Schedule", "nielsen_halving", "course_decay", "early_stopping", "check_patience", "scheduled_rate"]

Schedule = Callable[[int, Mapping[str, Sequence[float]]], "float | None"]
"""``(epochs complete, history so far) -> the learning rate of the next epoch, or None to stop``."""

_WATCHED = "test_accuracy"


def check_patience(patience: object, who: str = "fit") -> int:
    """``patience`` as an int >= 1, else a ValueError that says what it counts."""
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise ValueError(f"{who}: patience must be a whole number of epochs >= 1 (stop after that many epochs "
                         f"without a better test accuracy), got {patience!r}.")
    return patience


def _stalls(accuracies: Sequence[float], n: int) -> list[int]:
    """The epochs (counted from 1) after which ``n`` epochs in a row have not beaten the best so far.

    The count restarts after each such epoch, as Nielsen's rule restarts after each halving.
    """
    found, best, since = [], -math.inf, 0
    for epoch, accuracy in enumerate(accuracies, start=1):
        if accuracy > best:
            best, since = accuracy, 0
        else:
            since += 1
        if since >= n:
            found.append(epoch)
            since = 0
    return found


def _watched(history: Mapping[str, Sequence[float]], who: str) -> Sequence[float]:
    if _WATCHED not in history:
        raise ValueError(f"{who}: watches the test accuracy after each epoch, but the history has none; give fit "
                         f"a test set (test=(x, y)).")
    return history[_WATCHED]


def early_stopping(history: Mapping[str, Sequence[float]], patience: int) -> int | None:
    """The number of epochs after which Nielsen's no-improvement-in-``patience`` rule stops, or None (not yet).

    After the best epoch so far, ``patience`` epochs without a better test accuracy: stop there.

    >>> early_stopping({"test_accuracy": [0.5, 0.7, 0.6, 0.7, 0.65]}, patience=3)
    5
    >>> early_stopping({"test_accuracy": [0.5, 0.7, 0.6, 0.8]}, patience=3) is None
    True
    """
    patience = check_patience(patience, "early_stopping")
    stalls = _stalls(_watched(history, "early_stopping"), patience)
    return stalls[0] if stalls else None


def nielsen_halving(lr0: float, n: int = 10, floor: float = 128.0) -> Schedule:
    """Halve the rate each time the test accuracy goes ``n`` epochs without beating its best; stop below lr0/floor.

    Nielsen's exercise: "halves the learning rate each time the validation accuracy satisfies the
    no-improvement-in-10 rule; and terminates when the learning rate has dropped to 1/128 of its original
    value". Here the last rate trained at is lr0 / 128; the halving after it ends the run.
    """
    _positive(lr0, "nielsen_halving: lr0")
    n = check_patience(n, "nielsen_halving")

    def schedule(epoch: int, history: Mapping[str, Sequence[float]]) -> float | None:
        accuracies = _watched(history, "nielsen_halving")[:epoch] if epoch else []
        lr = lr0 / 2 ** len(_stalls(accuracies, n))
        return None if lr < lr0 / floor else lr

    schedule.__name__ = f"nielsen_halving(lr0={lr0}, n={n})"
    return schedule


def course_decay(lr0: float, decay_rate: float, interval: int = 1) -> Schedule:
    """The course's decay: after epoch i (from 0) the rate becomes lr0 / (1 + decay_rate floor(i / interval)).

    ``interval=1`` is the course's ``update_lr`` (every epoch), ``interval=1000`` its ``schedule_lr_decay``. The
    course sets the new rate at the end of epoch i, so epoch 0 and epoch 1 both run at lr0.
    """
    _positive(lr0, "course_decay: lr0")
    if not decay_rate >= 0:
        raise ValueError(f"course_decay: decay_rate must be >= 0, got {decay_rate}.")
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise ValueError(f"course_decay: interval must be a whole number of epochs >= 1, got {interval!r}.")

    def schedule(epoch: int, history: Mapping[str, Sequence[float]]) -> float:
        if epoch == 0:
            return lr0
        return 1 / (1 + decay_rate * math.floor((epoch - 1) / interval)) * lr0

    schedule.__name__ = f"course_decay(lr0={lr0}, decay_rate={decay_rate}, interval={interval})"
    return schedule


def _positive(value: float, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise ValueError(f"{label} must be a positive, finite number, got {value!r}.")
    return float(value)


def scheduled_rate(schedule: Schedule, epoch: int, history: Mapping[str, Sequence[float]]) -> float | None:
    """``schedule(epoch, history)``, checked: None (stop) or a positive, finite rate, else a ValueError."""
    lr = schedule(epoch, history)
    if lr is None:
        return None
    name = getattr(schedule, "__name__", type(schedule).__name__)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0 or math.isinf(lr):
        raise ValueError(f"fit: the schedule {name} returned the learning rate {lr!r} for epoch {epoch} (from 0); "
                         f"a rate must be positive and finite. Return None from the schedule to stop training.")
    return float(lr)
