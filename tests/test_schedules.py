"""tinygrad_edu.schedules: the ready-made learning-rate schedules and the early-stopping rule, against their sources."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from tinygrad_edu import schedules
from tinygrad_edu.manual import optimization


@pytest.mark.parametrize("interval", [1, 3, 1000])
def test_course_decay_gives_the_rate_the_course_trains_each_epoch_with(interval: int) -> None:
    """The course's loop: epoch i runs at `learning_rate`, then sets learning_rate = decay(lr0, i, rate)."""
    decay = (optimization.update_lr if interval == 1 else
             lambda lr0, i, rate: optimization.schedule_lr_decay(lr0, i, rate, interval))
    schedule = schedules.course_decay(0.1, decay_rate=0.3, interval=interval)
    learning_rate, expected = 0.1, []
    for epoch in range(2500):
        expected.append(learning_rate)
        learning_rate = decay(0.1, epoch, 0.3)
    assert [schedule(epoch, {}) for epoch in range(2500)] == expected


def test_nielsen_halving_matches_the_reference_and_stops_below_one_128th() -> None:
    rng = np.random.default_rng(0)
    accuracies = list(np.round(0.9 + 0.01 * rng.random(400), 3))
    schedule = schedules.nielsen_halving(0.5, n=4)
    rates = []
    for epoch in range(400):
        rate = schedule(epoch, {"test_accuracy": accuracies})
        if rate is None:
            break
        rates.append(rate)
    # the rule by hand: a counter of epochs since the best, reset by every halving
    expected, lr, best, since = [], 0.5, -math.inf, 0
    for accuracy in accuracies:
        expected.append(lr)
        best, since = (accuracy, 0) if accuracy > best else (best, since + 1)
        if since == 4:
            lr, since = lr / 2, 0
            if lr < 0.5 / 128:
                break
    assert rates == expected and rates[-1] == 0.5 / 128 and len(set(rates)) == 8


def test_early_stopping_is_no_improvement_in_n() -> None:
    # best at epoch 2 (0.7); epochs 3, 4, 5 do not beat it: stop after epoch 5
    assert schedules.early_stopping({"test_accuracy": [0.5, 0.7, 0.7, 0.6, 0.69]}, 3) == 5
    assert schedules.early_stopping({"test_accuracy": [0.5, 0.7, 0.7, 0.6, 0.71, 0.7]}, 3) is None
    assert schedules.early_stopping({"test_accuracy": [0.9, 0.8]}, 1) == 2
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="patience must be a whole number of epochs >= 1"):
            schedules.check_patience(bad)
    with pytest.raises(ValueError, match="give fit a test set"):
        schedules.early_stopping({"loss": [1.0]}, 2)


def test_a_schedule_that_returns_a_bad_rate_is_named() -> None:
    def broken(epoch: int, history: Mapping[str, Sequence[float]]) -> float:
        return 0.1 - 0.05 * epoch

    assert schedules.scheduled_rate(broken, 1, {}) == pytest.approx(0.05)
    with pytest.raises(ValueError, match=r"schedule broken returned the learning rate 0.0 for epoch 2"):
        schedules.scheduled_rate(broken, 2, {})
    with pytest.raises(ValueError, match="positive and finite"):
        schedules.scheduled_rate(lambda e, h: math.inf, 0, {})
    assert schedules.scheduled_rate(lambda e, h: None, 0, {}) is None
    with pytest.raises(ValueError, match="lr0 must be a positive"):
        schedules.course_decay(0.0, 1.0)
    with pytest.raises(ValueError, match="interval"):
        schedules.course_decay(0.1, 1.0, interval=0)
    with pytest.raises(ValueError, match="decay_rate"):
        schedules.course_decay(0.1, -1.0)
