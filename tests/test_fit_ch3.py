"""fit's new settings: train and eval modes, dropout reproducible and resumable, patience, schedules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tinygrad_edu import LearnerWarning, datasets, losses, nn, no_grad, optim, schedules
from tinygrad_edu.train import CheckpointError, evaluate, fit

CIRCLES = datasets.load_circles()
X, Y = CIRCLES.train_x, CIRCLES.train_y.reshape(-1, 1).astype(np.float64)
TEST = (CIRCLES.test_x, CIRCLES.test_y)


def _net(seed: int = 0, p: float = 0.3) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(2, 16, init="he", rng=rng), nn.ReLU(), nn.Dropout(p, rng=rng),
                         nn.Linear(16, 1, init="he", rng=rng), nn.Sigmoid())


def test_fit_trains_in_train_mode_and_evaluates_in_eval_mode() -> None:
    net = _net()
    seen: list[bool] = []
    drop = net.layers[2]
    original = drop.forward

    def spy(x):
        seen.append(drop.training)
        return original(x)

    drop.forward = spy  # type: ignore[method-assign]
    net.eval()
    fit(net, losses.binary_cross_entropy, optim.SGD(net.parameters(), lr=0.1), (X, Y), epochs=1, batch_size=100,
        rng=0, test=TEST, progress=False)
    # three training batches in train mode, then the test set in eval mode; fit leaves the model in train mode
    assert seen == [True, True, True, False] and net.training
    net.train()
    evaluate(net, *TEST)
    assert net.training and seen[-1] is False             # evaluate switches to eval and back


def test_a_dropout_run_is_reproducible_and_resumes_bit_for_bit(tmp_path) -> None:
    def run(epochs: int, net: nn.Sequential, path=None, resume: bool = False) -> dict:
        opt = optim.SGD(net.parameters(), lr=0.5, momentum=0.9)
        return fit(net, losses.binary_cross_entropy, opt, (X, Y), epochs=epochs, batch_size=50, rng=1, test=TEST,
                   progress=False, checkpoint=path, resume=resume)

    straight, again = _net(), _net()
    history = run(4, straight)
    assert run(4, again) == history
    assert all(np.array_equal(a, b) for a, b in zip(straight.state_dict().values(), again.state_dict().values()))
    path = tmp_path / "run.npz"
    first = _net()
    run(2, first, path)
    resumed = _net()
    drop = resumed.layers[2]
    assert isinstance(drop, nn.Dropout)
    drop.rng = np.random.default_rng(999)    # the checkpoint restores the dropout generator
    assert run(4, resumed, path, resume=True) == history
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert a.tobytes() == b.tobytes(), name
    assert straight.layers[2].mask.tobytes() == drop.mask.tobytes()  # type: ignore[attr-defined]


def test_patience_stops_after_n_epochs_without_a_better_test_accuracy() -> None:
    net = _net(p=0.0)
    history = fit(net, losses.binary_cross_entropy, optim.SGD(net.parameters(), lr=0.002), (X, Y), epochs=200,
                  batch_size=300, rng=0, test=TEST, progress=False, patience=3)
    accuracy = history["test_accuracy"]
    best = int(np.argmax(accuracy))
    assert len(accuracy) == best + 4 < 200 and len(history["loss"]) == len(accuracy)
    assert schedules.early_stopping(history, 3) == len(accuracy)
    with pytest.raises(ValueError, match="patience must be a whole number of epochs >= 1"):
        fit(net, losses.binary_cross_entropy, optim.SGD(net.parameters(), lr=0.1), (X, Y), epochs=1, batch_size=300,
            test=TEST, progress=False, patience=0)
    with pytest.raises(ValueError, match="give fit a test set"):
        fit(net, losses.binary_cross_entropy, optim.SGD(net.parameters(), lr=0.1), (X, Y), epochs=1, batch_size=300,
            progress=False, patience=2)


def test_a_schedule_sets_the_rate_every_epoch_and_can_stop() -> None:
    net = _net(p=0.0)
    opt = optim.SGD(net.parameters(), lr=1.0)
    history = fit(net, losses.binary_cross_entropy, opt, (X, Y), epochs=7, batch_size=300, rng=0, progress=False,
                  schedule=schedules.course_decay(0.2, decay_rate=1.0, interval=2))
    assert history["lr"] == [0.2, 0.2, 0.2, 0.1, 0.1, 0.2 / 3, 0.2 / 3] and opt.lr == 0.2 / 3
    history = fit(net, losses.binary_cross_entropy, opt, (X, Y), epochs=9, batch_size=300, rng=0, progress=False,
                  schedule=lambda epoch, h: None if epoch == 4 else 0.1)
    assert len(history["loss"]) == 4
    with pytest.raises(ValueError, match=r"returned the learning rate -0\.1 for epoch 0"):
        fit(net, losses.binary_cross_entropy, opt, (X, Y), epochs=2, batch_size=300, progress=False,
            schedule=lambda epoch, h: -0.1)
    with pytest.raises(TypeError, match="schedule must be a function"):
        fit(net, losses.binary_cross_entropy, opt, (X, Y), epochs=2, batch_size=300, progress=False,
            schedule=0.1)  # type: ignore[arg-type]


def test_a_resume_with_other_settings_is_refused(tmp_path) -> None:
    path = tmp_path / "run.npz"

    def run(**settings) -> dict:
        net = _net(p=0.0)
        return fit(net, losses.binary_cross_entropy, optim.SGD(net.parameters(), lr=0.1), (X, Y), epochs=3,
                   batch_size=300, rng=0, test=TEST, progress=False, checkpoint=path, **settings)

    run(patience=5, schedule=schedules.course_decay(0.1, 1.0))
    with pytest.raises(CheckpointError, match="patience 5 then, 2 now"):
        run(resume=True, patience=2, schedule=schedules.course_decay(0.1, 1.0))
    with pytest.raises(CheckpointError, match=r"schedule course_decay.*then, .*nielsen_halving"):
        run(resume=True, patience=5, schedule=schedules.nielsen_halving(0.1))
    with pytest.raises(CheckpointError, match=r"schedule course_decay.* then, \(none\) now"):
        run(resume=True, patience=5)
    assert len(run(resume=True, patience=5, schedule=schedules.course_decay(0.1, 1.0))["lr"]) == 3


def test_evaluating_a_dropout_model_in_train_mode_by_hand_warns_once() -> None:
    net = _net(p=0.5)

    def evaluate_by_hand() -> None:
        with no_grad():
            net(X[:4])                                   # the learner's line: warned about once

    with pytest.warns(LearnerWarning, match=r"training mode.*model.eval\(\)"):
        evaluate_by_hand()
    with warnings.catch_warnings():
        warnings.simplefilter("error", LearnerWarning)
        evaluate_by_hand()                               # once only
        net.eval()
        with no_grad():
            a, b = net(X[:4]).data, net(X[:4]).data
    assert np.array_equal(a, b)


def test_the_cli_trains_with_the_new_flags_and_a_resume_keeps_them(tmp_path, capsys) -> None:
    from tinygrad_edu.cli import main

    path = str(tmp_path / "run.npz")
    common = ["train", "--limit", "300", "--cost", "cross_entropy", "--lr", "0.5", "--no-progress",
              "--checkpoint", path, "--sizes", "784,10,10"]
    flags = ["--lmbda", "5", "--dropout", "0.2", "--patience", "3", "--schedule", "decay:1:2"]
    assert main([*common, *flags, "--epochs", "2"]) == 0
    assert main([*common, *flags, "--epochs", "3", "--resume"]) == 0
    out = capsys.readouterr().out
    assert out.count("Epoch ") == 3 and "Epoch 2:" in out
    for changed, said in ((["--lmbda", "1"], "lmbda 5.0 then, 1.0 now"), (["--dropout", "0.3"], "dropout 0.2 then"),
                          (["--patience", "4"], "patience 3 then, 4 now"), (["--schedule", "nielsen"], "schedule")):
        other = list(flags)
        at = other.index(changed[0])
        other[at + 1] = changed[1]
        assert main([*common, *other, "--epochs", "4", "--resume"]) == 2
        assert said in capsys.readouterr().err
    for bad in (["--lmbda", "-1"], ["--dropout", "1"], ["--schedule", "decay"], ["--schedule", "nielsen:0"]):
        assert main(["train", "--epochs", "1", "--limit", "10", *bad]) == 2
        assert "tinygrad-edu train:" in capsys.readouterr().err
