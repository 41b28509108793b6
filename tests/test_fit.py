"""What ``fit`` reports (its history, its refusals), and checkpoints that cannot be resumed: each refused with a
message that names the entry, before anything changes; all in this process and small (the kill tests that
resume bit for bit after SIGKILL live in test_checkpoint.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinygrad_edu import Tensor, losses, nn, optim
from tinygrad_edu.checkpoint import checkpoint_lock
from tinygrad_edu.npz import remove_orphans, save_npz
from tinygrad_edu.train import CheckpointError, accuracy, evaluate, fit

RNG = np.random.default_rng(21)
X = RNG.standard_normal((30, 4))
LABELS = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
Y = np.eye(2)[LABELS]
TEST = (X[:12] + 0.5, Y[:12])


def _model(seed: int = 0) -> nn.MLP:
    return nn.MLP([4, 5, 2], activation="tanh", output_activation=None, init="xavier", rng=seed)


def _fit(path: Path | None, epochs: int = 2, *, model: Any = None, optimizer: Any = None, **kwargs: Any) -> dict:
    model = model if model is not None else _model()
    optimizer = optimizer if optimizer is not None else optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    options = {"batch_size": 8, "rng": 3, "progress": False, "test": TEST, **kwargs}
    return fit(model, losses.softmax_cross_entropy, optimizer, (X, Y), epochs=epochs, checkpoint=path, **options)


# -- the history ---------------------------------------------------------------------------------------------

def test_the_history_holds_each_epochs_mean_loss_and_accuracies_weighted_by_batch_size():
    """With lr 0 nothing moves, so every number can be computed from the data: 30 samples in batches 8, 8, 8, 6."""
    model = _model()
    seen: list[tuple[int, int]] = []
    history = _fit(None, 3, model=model, optimizer=optim.SGD(model.parameters(), lr=0.0),
                   on_epoch=lambda epoch, h: seen.append((epoch, len(h["loss"]))))
    logits = model(Tensor(X)).data
    full_loss = losses.softmax_cross_entropy(Tensor(logits), LABELS).item()  # the mean over all 30 samples
    assert sorted(history) == ["loss", "test_accuracy", "train_accuracy"]
    assert history["loss"] == pytest.approx([full_loss] * 3, rel=1e-13)  # a short last batch weighs 6/30
    assert history["train_accuracy"] == pytest.approx([accuracy(logits, Y)] * 3, rel=1e-13)
    assert history["test_accuracy"] == [evaluate(model, *TEST)] * 3
    assert 0 < history["train_accuracy"][0] < 1 and history["test_accuracy"][0] != history["train_accuracy"][0]
    assert seen == [(1, 1), (2, 2), (3, 3)]  # on_epoch(epochs complete, the history so far)
    assert sorted(_fit(None, 1, test=None)) == ["loss", "train_accuracy"]


def test_the_loss_goes_down_and_the_same_seed_gives_the_same_history():
    first, second = _fit(None, 4), _fit(None, 4)
    assert first == second
    assert first["loss"][-1] < first["loss"][0]
    assert _fit(None, 4, rng=4)["loss"] != first["loss"]  # another batch order


def test_resume_needs_a_checkpoint_and_a_checkpoint_that_exists(tmp_path):
    with pytest.raises(ValueError) as error:
        _fit(None, resume=True)
    assert str(error.value) == "fit: resume=True needs checkpoint=PATH, the file to continue from."
    with pytest.raises(CheckpointError) as refused:
        _fit(tmp_path / "none.npz", resume=True)
    assert str(refused.value) == (f"there is no checkpoint at {str(tmp_path / 'none.npz')!r} to resume from; leave "
                                  f"out resume (--resume) to start a new run that writes it.")
    assert os.listdir(tmp_path) == []  # nothing written, the lock file gone


def test_a_checkpoint_needs_a_model_and_an_optimizer_with_a_state_dict(tmp_path):
    model = _model()

    class Step:
        def zero_grad(self) -> None:
            model.zero_grad()

        def step(self) -> None: ...

    with pytest.raises(TypeError) as error:
        _fit(tmp_path / "run.npz", model=model, optimizer=Step())
    assert str(error.value) == ("fit: checkpoint=... saves the optimizer's state_dict(), but the optimizer is a "
                                "Step, which has none; use optim.SGD or Adam.")
    with pytest.raises(TypeError) as error:
        _fit(tmp_path / "run.npz", model=lambda x: model(x), optimizer=optim.SGD(model.parameters(), lr=0.1))
    assert str(error.value) == ("fit: checkpoint=... saves the model's state_dict(), but the model is a function, "
                                "which has none; use an nn.Module.")
    assert os.listdir(tmp_path) == []
    _fit(None, 1, model=model, optimizer=Step())  # without a checkpoint, any optimizer does


def test_resume_refuses_a_test_set_given_to_one_run_only(tmp_path):
    path = tmp_path / "run.npz"
    _fit(path, 1, test=None)
    with pytest.raises(CheckpointError) as error:
        _fit(path, 2, resume=True)
    assert str(error.value) == (f"{str(path)!r} was written by a run with other data settings (history ['loss', "
                                f"'train_accuracy'] then, ['loss', 'test_accuracy', 'train_accuracy'] now (a test "
                                f"set given to one run only?)); resume with the same arguments, or start a new "
                                f"checkpoint.")


@pytest.mark.parametrize("bit_generator", [np.random.MT19937, np.random.SFC64, np.random.Philox, np.random.PCG64DXSM])
def test_resume_continues_every_kind_of_generator_bit_for_bit(bit_generator, tmp_path):
    def run(epochs: int, path: Path, resume: bool) -> tuple[dict, list[np.ndarray], Any]:
        model, generator = _model(), np.random.Generator(bit_generator(7))
        history = _fit(path, epochs, model=model, rng=generator, resume=resume)
        return history, [p.data for p in model.parameters()], generator.bit_generator.state

    straight = run(3, tmp_path / "straight.npz", resume=False)
    run(1, tmp_path / "pieces.npz", resume=False)
    resumed = run(3, tmp_path / "pieces.npz", resume=True)
    assert resumed[0] == straight[0]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(resumed[1], straight[1]))
    assert str(resumed[2]) == str(straight[2])  # the generator goes on from where the checkpoint left it
    assert (tmp_path / "pieces.npz").read_bytes() == (tmp_path / "straight.npz").read_bytes()


# -- a refused checkpoint changes nothing ------------------------------------------------------------------------

def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint after 1 of 3 epochs, with momentum (so the optimizer has running state)."""
    path = tmp_path_factory.mktemp("finished") / "run.npz"
    _fit(path, 1)
    return path


def _tampered(finished: Path, folder: Path, change: Any) -> Path:
    arrays = _arrays(finished)
    change(arrays)
    path = folder / "run.npz"
    save_npz(path, arrays)
    return path


def _without(*names: str) -> Any:
    return lambda arrays: [arrays.pop(name) for name in names]


def _set(name: str, value: Any) -> Any:
    return lambda arrays: arrays.__setitem__(name, value)


WORDS = np.array([1, 2, 3], dtype=np.uint64)
REFUSALS = {
    # name: (change to the checkpoint, what the message says)
    "no velocity.1": (_without("optimizer/velocity.1"),
                      "its optimizer state is refused: SGD.load_state_dict: missing 'velocity.1': has_state marks "
                      "parameter 1, whose running state is ['velocity'] together. Nothing was loaded."),
    "no has_state and no velocity.1": (_without("optimizer/has_state", "optimizer/velocity.1"),
                                       "SGD.load_state_dict: missing entry 'has_state' (one flag per parameter, True "
                                       "where its running state follows), and only parameters [0, 2, 3] have running "
                                       "state: a state saved without it must hold every parameter's or none. Nothing "
                                       "was loaded."),
    "generator state cut to nothing": (_set("rng/state/state", np.zeros(0, dtype=np.uint64)),
                                       "cannot be resumed: its entry 'rng/state/state' must hold an integer as "
                                       "64-bit words (uint64, 1-D), not uint64 of shape (0,). It was not touched."),
    "generator state too wide": (_set("rng/state/inc", WORDS),
                                 "cannot be resumed: numpy refuses the generator state in its entries rng/... "
                                 "(OverflowError: "),
    "generator state as floats": (_set("rng/state/state", np.ones(2)),
                                  "its entry 'rng/state/state' must hold an integer as 64-bit words (uint64, 1-D), "
                                  "not float64 of shape (2,)"),
    "another kind of generator": (_set("rng/bit_generator", np.array("MT19937")),
                                  "numpy refuses the generator state in its entries rng/... (ValueError: state must "
                                  "be for a PCG64 RNG)"),
    "a generator name that is not a string": (_set("rng/bit_generator", np.array(7)),
                                              "its entry 'rng/bit_generator' must hold a string, not int64 of "
                                              "shape ()"),
    "a flag too wide": (_set("rng/has_uint32", WORDS), "numpy refuses the generator state in its entries rng/... "
                                                       "(OverflowError: "),
    "no generator state": (_without("rng/state/inc"), "is incomplete: its entry 'rng/state/inc' is missing."),
    "a history of the wrong length": (_set("history/loss", np.ones(2)),
                                      "is inconsistent: 1 epochs complete but a history of [2, 1, 1] entries"),
    "a negative learning rate": (_set("optimizer/lr", np.array(-3.0)),
                                 "was saved with another optimizer (lr -3.0 then, 0.1 now)"),
    "another shape": (_set("model/layers.0.weight", np.ones((4, 6))),
                      "was saved from a network of another shape: load_state_dict: 'layers.0.weight' has shape (4, 6), "
                      "the model expects (4, 5). Nothing was loaded."),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_a_refused_checkpoint_leaves_model_optimizer_generator_and_file_as_they_were(name, finished, tmp_path):
    change, message = REFUSALS[name]
    path = _tampered(finished, tmp_path, change)
    before = path.read_bytes()
    model = _model(5)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(Tensor(X)).sum().backward()
    optimizer.step()  # a running state of its own, which a refusal must keep
    generator = np.random.default_rng(11)
    params, state, rng_state = model.state_dict(), optimizer.state_dict(), str(generator.bit_generator.state)
    with pytest.raises(CheckpointError) as error:
        _fit(path, 3, model=model, optimizer=optimizer, rng=generator, resume=True)
    assert message in str(error.value)
    assert str(error.value).startswith(repr(str(path)))
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["run.npz"]
    assert all(np.array_equal(value, params[key]) for key, value in model.state_dict().items())
    assert all(np.array_equal(value, state[key]) for key, value in optimizer.state_dict().items())
    assert sorted(optimizer.state_dict()) == sorted(state)
    assert str(generator.bit_generator.state) == rng_state


def test_the_untampered_checkpoint_resumes(finished, tmp_path):
    path = _tampered(finished, tmp_path, lambda arrays: None)
    assert len(_fit(path, 2, resume=True)["loss"]) == 2


def _refusal(path: Path) -> str:
    with pytest.raises(CheckpointError) as error:
        _fit(path, resume=True)
    return str(error.value)


def test_files_that_are_not_checkpoints_are_named_for_what_they_are(finished, tmp_path):
    npy = tmp_path / "weights.npy"
    np.save(npy, np.ones(3))
    assert _refusal(npy) == (f"{str(npy)!r} holds a single array (an .npy file), not a checkpoint: "
                             f"fit(checkpoint=...) writes an .npz archive of named arrays. It was not touched.")
    flipped = tmp_path / "flipped.npz"
    data = bytearray(finished.read_bytes())
    data[0] ^= 0xFF
    flipped.write_bytes(bytes(data))
    assert _refusal(flipped) == (f"{str(flipped)!r} is not a checkpoint: it does not begin as an .npz archive (a zip "
                                 f"file) does. Its first bytes may be damaged. It was not touched.")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    assert "it does not begin as an .npz archive (a zip file) does, it is empty. " in _refusal(empty)
    folder = tmp_path / "folder.npz"
    folder.mkdir()
    assert _refusal(folder) == (f"{str(folder)!r} cannot be read (IsADirectoryError: Is a directory); check that it "
                                f"is a file and that this user may read it. It was not touched.")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(finished.read_bytes()[:200])
    assert f"{str(truncated)!r} is truncated or corrupted, so it cannot be resumed (" in _refusal(truncated)
    model_file = tmp_path / "model.npz"
    _model().save(model_file)
    assert "is an .npz archive but not a training checkpoint" in _refusal(model_file)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads and writes whatever it likes")
def test_a_file_this_user_cannot_read_and_a_folder_it_cannot_write(finished, tmp_path):
    locked = tmp_path / "locked.npz"
    locked.write_bytes(finished.read_bytes())
    locked.chmod(0)
    try:
        assert "cannot be read (PermissionError: Permission denied)" in _refusal(locked)
    finally:
        locked.chmod(0o644)
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(CheckpointError, match="cannot write next to the checkpoint"):
            _fit(folder / "run.npz")
    finally:
        folder.chmod(0o755)


def test_a_folder_that_cannot_be_written_is_refused_before_the_first_epoch(tmp_path, monkeypatch):
    """The lock file is the first thing written: where it cannot be, no epoch runs. Faked here for root too."""
    real_open = os.open

    def refusing_open(path: Any, flags: int, *args: Any) -> int:
        if str(path).endswith(".lock"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing_open)
    epochs: list[int] = []
    with pytest.raises(CheckpointError) as error:
        _fit(tmp_path / "run.npz", on_epoch=lambda epoch, history: epochs.append(epoch))
    assert str(error.value) == (f"cannot write next to the checkpoint {str(tmp_path / 'run.npz')!r} (PermissionError: "
                                f"Permission denied); checkpoints are written there after every epoch, so the folder "
                                f"must be writable. Choose another path or fix its permissions.")
    assert epochs == []
    with pytest.raises(CheckpointError) as error:
        _fit(tmp_path / "missing" / "run.npz")
    assert str(error.value) == (f"the folder {str(tmp_path / 'missing')!r} of the checkpoint does not exist; create it "
                                f"first.")


# -- one run per checkpoint ----------------------------------------------------------------------------------------

def test_a_second_run_on_the_same_checkpoint_is_refused_while_the_first_runs(tmp_path):
    path = tmp_path / "run.npz"
    refusals: list[str] = []

    def second_run(epoch: int, history: dict) -> None:
        assert (tmp_path / "run.npz.lock").read_text() == f"{os.getpid()}\n"  # who holds it
        with pytest.raises(CheckpointError) as error:
            _fit(path, 3, resume=True)
        refusals.append(str(error.value))

    _fit(path, 2, on_epoch=second_run)
    assert refusals == [f"another run is using the checkpoint {str(path)!r} (process {os.getpid()} holds "
                        f"{str(path) + '.lock'!r}); wait for it to finish, or give this run another checkpoint "
                        f"path."] * 2
    assert sorted(os.listdir(tmp_path)) == ["run.npz"]  # the lock file goes when the run ends
    assert len(_fit(path, 3, resume=True)["loss"]) == 3  # and the next run may start


HOLDER = textwrap.dedent("""
    import sys, time
    from tinygrad_edu.checkpoint import checkpoint_lock
    with checkpoint_lock(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.readline()
""")


def test_another_process_holding_the_checkpoint_refuses_this_run(tmp_path):
    path = tmp_path / "run.npz"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(CheckpointError, match=f"another run is using the checkpoint .* \\(process {holder.pid} "):
            _fit(path)
    finally:
        holder.communicate("\n", timeout=30)
    assert not path.exists() and os.listdir(tmp_path) == []
    _fit(path, 1)  # released when the holder ended


def test_a_run_that_fails_lets_go_of_the_lock(tmp_path):
    path = tmp_path / "run.npz"

    def failing(epoch: int, history: dict) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _fit(path, 3, on_epoch=failing)
    assert sorted(os.listdir(tmp_path)) == ["run.npz"]
    assert len(_fit(path, 3, resume=True)["loss"]) == 3


def test_the_lock_survives_a_lock_file_removed_while_another_run_waits(tmp_path):
    """A lock file removed by the run that held it (as each run does at its end) is made again by the next."""
    path = tmp_path / "run.npz"
    with checkpoint_lock(path):
        (tmp_path / "run.npz.lock").unlink()  # as if the previous run had just ended
        with checkpoint_lock(path):  # a new lock file: this run may go on
            assert (tmp_path / "run.npz.lock").read_text() == f"{os.getpid()}\n"
    assert os.listdir(tmp_path) == []


# -- temporary files of killed writes --------------------------------------------------------------------------

def _dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


@pytest.mark.skipif(os.name != "posix", reason="processes are looked up by signal 0 on POSIX only")
def test_only_the_temporary_files_of_killed_writes_of_this_checkpoint_are_removed(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    orphans = [f".run.npz.{dead}.abcd_123.tmp", f".run.npz.{os.getpid()}.k2j4h6g8.tmp"]
    kept = [f".run.npz.{alive}.abcd1234.tmp",   # its writer still runs
            f".other.npz.{dead}.abcd1234.tmp",  # another checkpoint's
            f".run.npz.{dead}.abcd1234.tmp.bak", f"run.npz.{dead}.abcd1234.tmp", f".run.npz.x{dead}.abcd1234.tmp",
            f".run.npz.{dead}.ABCD1234.tmp"]    # not named as save_npz names them
    for name in orphans + kept:
        (tmp_path / name).write_bytes(b"partial")
    (tmp_path / f".run.npz.{dead}.folder000.tmp").mkdir()  # named like ours, but not a file
    os.symlink(tmp_path / kept[0], tmp_path / f".run.npz.{dead}.link0000.tmp")
    assert remove_orphans(tmp_path / "run.npz") == sorted(orphans)
    assert sorted(os.listdir(tmp_path)) == sorted(kept + [f".run.npz.{dead}.folder000.tmp",
                                                          f".run.npz.{dead}.link0000.tmp"])
    (tmp_path / orphans[0]).write_bytes(b"partial")
    _fit(tmp_path / "run.npz", 1)  # a run removes them as it starts
    assert not (tmp_path / orphans[0]).exists() and (tmp_path / kept[0]).exists()


# -- accuracy, evaluate, the progress bar, the epoch report -----------------------------------------------------

def test_accuracy_takes_the_argmax_of_several_outputs_and_thresholds_one_at_a_half():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert accuracy(scores, np.array([1, 0, 0, 0])) == 0.75  # labels
    assert accuracy(scores, np.eye(2)[[1, 0, 0, 0]]) == 0.75  # one-hot rows
    assert accuracy(np.array([[0.5], [0.51], [0.2], [0.9]]), np.array([[1.0], [1.0], [0.0], [0.0]])) == 0.5
    assert accuracy(np.array([0.5, 0.51]), np.array([0.0, 1.0])) == 1.0  # 0.5 itself counts as 0
    assert accuracy([[0.7]], [[1.0]]) == 1.0 and isinstance(accuracy([[0.7]], [[1.0]]), float)


def test_evaluate_weighs_a_short_last_batch_by_its_size_and_builds_no_graph():
    model = _model()
    calls: list[bool] = []

    def watched(x: Tensor) -> Tensor:
        out = model(x)
        calls.append(out.requires_grad)
        return out

    expected = accuracy(model(Tensor(X)).data, Y)
    assert evaluate(watched, X, Y, batch_size=7) == pytest.approx(expected, rel=1e-15)  # 7, 7, 7, 7, 2
    assert calls == [False] * 5
    assert evaluate(model, X[:1], Y[:1]) in (0.0, 1.0)


def test_the_progress_bar_shows_each_epoch_its_batches_and_its_numbers(capsys):
    model = _model()

    def slow(x: Tensor) -> Tensor:  # slow enough for the bar to redraw between batches
        import time

        time.sleep(0.12)
        return model(x)

    history = _fit(None, 2, model=slow, optimizer=optim.SGD(model.parameters(), lr=0.1), progress=True)
    text = capsys.readouterr().err
    for k in range(2):
        final = re.compile(re.escape(f"Epoch {k} (of 0-1): 100%|") + r".{10}\| 4/4 \[[^,]*,\s*[0-9.]+batch/s, "
                           + re.escape(f"loss={history['loss'][k]:.4f}, train_accuracy="
                                       f"{history['train_accuracy'][k]:.4f}, test_accuracy="
                                       f"{history['test_accuracy'][k]:.4f}]"))
        lines = [line for line in text.replace("\r", "\n").splitlines() if line.startswith(f"Epoch {k} ")]
        assert final.fullmatch(lines[-1]), lines[-1]
        assert any(line.startswith(f"Epoch {k} (of 0-1):  75%") and re.search(r"batch/s, loss=\d\.\d{4}\]$", line)
                   for line in lines), lines
    assert text.endswith("]\n")  # each bar stays on the screen when its epoch ends
    assert text.count("]\n") == 2


def test_the_epoch_report_prints_as_nielsens_book(capsys):
    from tinygrad_edu.train import epoch_report

    _fit(None, 2, on_epoch=epoch_report(12))
    history = _fit(None, 2)
    correct = [round(a * 12) for a in history["test_accuracy"]]
    assert capsys.readouterr().out == f"Epoch 0: {correct[0]} / 12\nEpoch 1: {correct[1]} / 12\n"


def test_a_checkpoint_from_before_has_state_and_dampening_resumes_bit_for_bit(finished, tmp_path):
    """Written before the optimizer saved has_state and SGD its dampening (0 then): resumed as it would have been."""
    old = _tampered(finished, tmp_path, _without("optimizer/has_state", "optimizer/dampening"))
    model, straight_model = _model(), _model()
    resumed, straight = _fit(old, 3, model=model, resume=True), _fit(None, 3, model=straight_model)
    assert resumed == straight
    assert all(a.data.tobytes() == b.data.tobytes() for a, b in zip(model.parameters(), straight_model.parameters()))
    (tmp_path / "again").mkdir()
    damped = _tampered(finished, tmp_path / "again", _without("optimizer/has_state", "optimizer/dampening"))
    with pytest.raises(CheckpointError) as error:  # a run with dampening now is another optimizer than then
        _fit(damped, 3, optimizer=optim.SGD(_model().parameters(), lr=0.1, momentum=0.9, dampening=0.5), resume=True)
    assert "was saved with another optimizer (dampening 0.0 then, 0.5 now)" in str(error.value)


def _dropout_model() -> nn.Sequential:
    rng = np.random.default_rng(4)
    return nn.Sequential(nn.Linear(4, 5, rng=rng), nn.Tanh(), nn.Dropout(0.2, rng=np.random.default_rng(8)),
                         nn.Linear(5, 2, rng=rng))


@pytest.mark.parametrize("change, message", [
    (_set("model_rng/layers.2/state/state", np.zeros(0, dtype=np.uint64)),
     "cannot be resumed: its entry 'model_rng/layers.2/state/state' must hold an integer as 64-bit words (uint64, "
     "1-D), not uint64 of shape (0,). It was not touched."),
    (_set("model_rng/layers.2/state/inc", WORDS),
     "cannot be resumed: numpy refuses the generator state in its entries model_rng/layers.2/... (OverflowError: "),
    (_without("model_rng/layers.2/state/inc"), "is incomplete: its entry 'model_rng/layers.2/state/inc' is missing."),
])
def test_a_refused_dropout_generator_leaves_everything_as_it_was(change, message, tmp_path):
    first = tmp_path / "first.npz"
    model = _dropout_model()
    _fit(first, 1, model=model)
    (tmp_path / "tampered").mkdir()
    path = _tampered(first, tmp_path / "tampered", change)
    before = path.read_bytes()
    model = _dropout_model()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    dropout_state = str(model.layers[2].rng.bit_generator.state)
    params, state = model.state_dict(), optimizer.state_dict()
    with pytest.raises(CheckpointError) as error:
        _fit(path, 3, model=model, optimizer=optimizer, resume=True)
    assert message in str(error.value) and path.read_bytes() == before
    assert str(model.layers[2].rng.bit_generator.state) == dropout_state
    assert all(np.array_equal(value, params[key]) for key, value in model.state_dict().items())
    assert all(np.array_equal(value, state[key]) for key, value in optimizer.state_dict().items())


def test_what_the_mutation_run_found_in_fit_and_accuracy(tmp_path, capsys):
    # one output per sample: (n, 1) predictions against (n,) targets compare sample by sample, and a target of
    # exactly 0.5 is class 0 (1 means "> 0.5", for predictions and targets alike)
    assert accuracy(np.array([[0.9], [0.2], [0.7]]), np.array([1.0, 1.0, 0.0])) == pytest.approx(1 / 3)
    assert accuracy(np.array([0.9, 0.2, 0.7]), np.array([[1.0], [0.0], [1.0]])) == 1.0
    assert accuracy(np.array([0.4, 0.6]), np.array([0.5, 1.0])) == 1.0
    model = _model()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    fit(model, losses.softmax_cross_entropy, optimizer, (X, Y), epochs=1, batch_size=8, rng=3)  # a bar by default
    assert "Epoch 0 (of 0-0)" in capsys.readouterr().err
    for kwargs, error, says in [
        ({"patience": 2, "test": None}, ValueError, "fit: patience=N stops when the test accuracy has not improved "
                                                    "for N epochs; give fit a test set (test=(x, y)) to watch."),
        ({"schedule": 0.1}, TypeError, "fit: schedule must be a function (epochs_complete, history) -> lr or None, "
                                       "such as schedules.course_decay(0.1, 1.0); got a float.")]:
        with pytest.raises(error) as raised:
            _fit(None, 1, **kwargs)
        assert str(raised.value) == says

    class Step:
        def zero_grad(self) -> None: ...

        def step(self) -> None: ...

    with pytest.raises(TypeError) as raised:
        _fit(None, 1, optimizer=Step(), schedule=lambda done, history: 0.1)
    assert str(raised.value) == ("fit: schedule= sets the optimizer's lr before every epoch, but the optimizer (a "
                                 "Step) has no lr attribute; use one of optim's.")
    _fit(tmp_path / "run.npz", 1)  # no patience: the checkpoint says 0, as a checkpoint from before patience means
    assert str(_arrays(tmp_path / "run.npz")["settings/patience"]) == "0"


@pytest.mark.parametrize("samples, steps", [(24, 3), (25, 4)])
def test_the_bar_counts_the_batches_of_an_epoch(samples, steps, capsys):
    """ceil(samples / batch_size) batches: 24 samples in batches of 8 are 3, 25 are 4 (the last one short)."""
    model = _model()
    fit(model, losses.softmax_cross_entropy, optim.SGD(model.parameters(), lr=0.1), (X[:samples], Y[:samples]),
        epochs=1, batch_size=8, rng=3)
    last = capsys.readouterr().err.replace("\r", "\n").rstrip().splitlines()[-1]
    assert f"| {steps}/{steps} [" in last, last


def test_a_schedule_sees_the_history_and_a_callable_object_is_named_by_its_class(tmp_path):
    seen: list[tuple[int, list[float]]] = []

    class Halving:
        def __call__(self, done: int, history: dict) -> float:
            seen.append((done, list(history["loss"])))
            return 0.1 / 2**done

    history = _fit(tmp_path / "run.npz", 2, schedule=Halving())
    assert seen == [(0, []), (1, history["loss"][:1])] and history["lr"] == [0.1, 0.05]
    assert str(_arrays(tmp_path / "run.npz")["settings/schedule"]) == "Halving"


def test_what_the_mutation_run_found_in_checkpoint(finished, tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    pickled = folder / "run.npz"
    arrays = _arrays(finished)
    np.savez(pickled, **arrays, extra=np.array([{"a": 1}], dtype=object))  # an entry only pickle could read
    message = _refusal(pickled)
    assert message.startswith(f"{str(pickled)!r} is truncated or corrupted, so it cannot be resumed (ValueError: "
                              f"Object arrays cannot be loaded when allow_pickle=False"), message
    cut = tmp_path / "cut.npz"
    cut.write_bytes(finished.read_bytes()[:-100])
    assert re.search(r"is truncated or corrupted, so it cannot be resumed \((BadZipFile|EOFError|ValueError|OSError"
                     r"|KeyError): ", _refusal(cut))
    (tmp_path / "no type").mkdir()
    untyped = _tampered(finished, tmp_path / "no type", _without("optimizer/type"))
    assert "was saved with another optimizer: (none), and this run uses SGD;" in _refusal(untyped)
    (tmp_path / "old").mkdir()  # from before fit kept its settings: no patience and no schedule then
    old = _tampered(finished, tmp_path / "old", _without("settings/patience", "settings/schedule"))
    assert len(_fit(old, 2, resume=True)["loss"]) == 2


def test_a_generator_array_of_the_right_dtype_but_another_shape_is_named(tmp_path):
    path = tmp_path / "run.npz"
    _fit(path, 1, rng=np.random.Generator(np.random.MT19937(7)))
    arrays = _arrays(path)
    arrays["rng/state/key"] = arrays["rng/state/key"][:-1]
    save_npz(path, arrays)
    with pytest.raises(CheckpointError) as error:
        _fit(path, 2, rng=np.random.Generator(np.random.MT19937(7)), resume=True)
    assert str(error.value) == (f"{str(path)!r} cannot be resumed: its entry 'rng/state/key' must hold uint32 of shape "
                                f"(624,), not uint32 of shape (623,). It was not touched.")


def test_another_pair_of_betas_is_shown_as_the_pairs(tmp_path):
    path = tmp_path / "run.npz"
    model = _model()
    _fit(path, 1, model=model, optimizer=optim.Adam(model.parameters(), lr=0.01))
    again = _model()
    with pytest.raises(CheckpointError) as error:
        _fit(path, 2, model=again, optimizer=optim.Adam(again.parameters(), lr=0.01, betas=(0.8, 0.99)), resume=True)
    assert "was saved with another optimizer (betas [0.9, 0.999] then, [0.8, 0.99] now)" in str(error.value)


def test_what_resume_says_about_other_settings_word_for_word(finished, tmp_path):
    path = tmp_path / "run.npz"
    _fit(path, 1, settings={"lmbda": 5.0, "dropout": ""})
    with pytest.raises(CheckpointError) as error:
        _fit(path, 2, resume=True, patience=3, settings={"dropout": "0.2"})
    assert str(error.value) == (f"{str(path)!r} was written by a run with other training settings (patience 0 then, "
                                f"3 now; dropout (none) then, 0.2 now; lmbda 5.0 then, (none) now); a resume keeps "
                                f"them: resume with the same values, or start a new checkpoint.")
    with pytest.raises(CheckpointError) as error:
        _fit(path, 2, resume=True, settings={"lmbda": 5.0, "dropout": "", "depth": 3})
    assert "(depth (none) then, 3 now)" in str(error.value)
    with pytest.raises(CheckpointError) as error:
        model = _model()
        fit(model, losses.softmax_cross_entropy, optim.SGD(model.parameters(), lr=0.1, momentum=0.9), (X[:20], Y[:20]),
            epochs=2, batch_size=4, rng=3, progress=False, test=TEST, checkpoint=path, resume=True,
            settings={"lmbda": 5.0, "dropout": ""})
    assert str(error.value) == (f"{str(path)!r} was written by a run with other data settings (batch_size 8 then, 4 "
                                f"now; train_size 30 then, 20 now); resume with the same arguments, or start a new "
                                f"checkpoint.")
    model = _model()
    with pytest.raises(CheckpointError) as error:
        _fit(finished, 2, model=model, optimizer=optim.Adam(model.parameters()), resume=True)
    assert str(error.value) == (f"{str(finished)!r} was saved with another optimizer: SGD, and this run uses Adam; "
                                f"resume with the same optimizer, or start a new checkpoint.")


class _Halving:
    """An optimizer of one's own: a state_dict without settings() or added_settings."""

    def __init__(self, params: list[Tensor], lr: float) -> None:
        self.params, self.lr, self.steps = params, lr, 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.steps += 1
        for p in self.params:
            if p.grad is not None:
                p.data = p.data - self.lr * p.grad

    def state_dict(self) -> dict[str, np.ndarray]:  # a dotted name is running state, not a setting
        return {"type": np.array("Halving"), "lr": np.array(self.lr), "steps.0": np.array(self.steps)}

    def load_state_dict(self, state: Any) -> None:
        self.lr, self.steps = float(state["lr"]), int(state["steps.0"])


def test_an_optimizer_of_ones_own_is_checked_by_the_entries_of_its_state_dict(tmp_path):
    path = tmp_path / "run.npz"
    model = _model()
    _fit(path, 1, model=model, optimizer=_Halving(model.parameters(), 0.1))
    again = _model()
    with pytest.raises(CheckpointError) as error:
        _fit(path, 2, model=again, optimizer=_Halving(again.parameters(), 0.2), resume=True)
    assert "was saved with another optimizer (lr 0.1 then, 0.2 now)" in str(error.value)
    assert len(_fit(path, 2, model=again, optimizer=_Halving(again.parameters(), 0.1), resume=True)["loss"]) == 2


def test_every_other_optimizer_setting_is_named(finished):
    model = _model()
    with pytest.raises(CheckpointError) as error:
        _fit(finished, 2, model=model, optimizer=optim.SGD(model.parameters(), lr=0.2, momentum=0.5), resume=True)
    assert str(error.value) == (f"{str(finished)!r} was saved with another optimizer (lr 0.1 then, 0.2 now; momentum "
                                f"0.9 then, 0.5 now); resume with the same optimizer and settings, or start a new "
                                f"checkpoint.")


def test_what_the_mutation_run_found_in_new_runs_and_their_generators(finished, tmp_path):
    with pytest.raises(CheckpointError) as error:
        _fit(finished, 2)
    assert str(error.value) == (f"{str(finished)!r} already exists: resume from it (resume=True, --resume), or "
                                f"remove it to start a new run. It was not touched.")

    class SaveOnly:  # a model of one's own that saves (a state_dict, no modules), but cannot load
        def __init__(self) -> None:
            self.inner = _model()

        def __call__(self, x: Tensor) -> Tensor:
            return self.inner(x)

        def state_dict(self) -> dict:
            return self.inner.state_dict()

    class Wrapped(SaveOnly):  # the same, and it loads
        def load_state_dict(self, state: Any) -> None:
            self.inner.load_state_dict(state)

    wrapped = Wrapped()
    _fit(tmp_path / "wrapped.npz", 1, model=wrapped, optimizer=optim.SGD(wrapped.inner.parameters(), lr=0.1))
    assert not [k for k in _arrays(tmp_path / "wrapped.npz") if k.startswith("model_rng/")]

    half = SaveOnly()
    with pytest.raises(TypeError, match=r"^fit: checkpoint=\.\.\. saves the model's state_dict\(\), but the model is "
                                        r"a SaveOnly, which has none"):
        _fit(tmp_path / "half.npz", 1, model=half, optimizer=optim.SGD(half.inner.parameters(), lr=0.1))

    shared = np.random.default_rng(8)  # two dropouts drawing from one generator: it is stored once

    class Noisy(nn.Module):  # the model itself draws from a generator: stored as model_rng/model
        def __init__(self) -> None:
            super().__init__()
            self.rng = shared
            self.net = nn.Sequential(nn.Linear(4, 5, rng=0), nn.Dropout(0.2, rng=shared), nn.Tanh(),
                                     nn.Dropout(0.1, rng=shared), nn.Linear(5, 2, rng=1))

        def forward(self, x: Tensor) -> Tensor:
            return self.net(x)

    noisy = Noisy()
    _fit(tmp_path / "noisy.npz", 1, model=noisy, optimizer=optim.SGD(noisy.parameters(), lr=0.1))
    prefixes = {"/".join(k.split("/")[:2]) for k in _arrays(tmp_path / "noisy.npz") if k.startswith("model_rng/")}
    assert prefixes == {"model_rng/model"}


def test_the_lock_file_is_a_plain_file_that_names_its_process(tmp_path):
    path = tmp_path / "run.npz"
    seen: list[tuple[int, str]] = []
    _fit(path, 1, on_epoch=lambda epoch, history: seen.append(
        (os.stat(f"{path}.lock").st_mode & 0o7777, Path(f"{path}.lock").read_text())))
    mode, text = seen[0]
    assert mode & 0o111 == 0 and mode & 0o600 == 0o600  # read and write for its owner, executable by nobody
    assert text == f"{os.getpid()}\n"
