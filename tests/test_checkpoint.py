"""Checkpoints survive a crash: a save killed half-way leaves the previous checkpoint intact and loadable.

Also: two training runs with the same seed give bit-identical parameters; a training run killed with SIGKILL
at any moment (between epochs, mid-epoch, inside the checkpoint's write) and resumed ends with the very same
checkpoint as an uninterrupted run; and a checkpoint that cannot be resumed is refused with a message, untouched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinygrad_edu import datasets, losses, nn, optim
from tinygrad_edu.train import fit

WRITER = textwrap.dedent("""
    import os, sys, time
    from tinygrad_edu import nn

    model = nn.MLP([200, 200, 10], rng=1)

    def slow_replace(source, target):                # the archive is written and synced: stall before the rename
        print("written", flush=True)
        time.sleep(60)

    os.replace = slow_replace
    model.save(sys.argv[1])
""")


def test_a_save_killed_half_way_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    previous = nn.MLP([200, 200, 10], rng=0)
    previous.save(path)
    before = path.read_bytes()
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "written"
        os.kill(child.pid, signal.SIGKILL)  # killed after writing, before os.replace
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert path.read_bytes() == before
    restored = nn.MLP([200, 200, 10], rng=5)
    restored.load(path)
    for (name, a), (_, b) in zip(restored.named_parameters(), previous.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_same_seed_same_parameters_bit_for_bit() -> None:
    mnist = datasets.load_mnist()
    x, y = mnist.train_x[:600], datasets.one_hot(mnist.train_y[:600])

    def run() -> list[np.ndarray]:
        model = nn.MLP([784, 30, 10], rng=3)
        fit(model, losses.quadratic_cost, optim.SGD(model.parameters(), lr=3.0), (x, y), epochs=2,
            batch_size=10, rng=7, progress=False)
        return [p.data.copy() for p in model.parameters()]

    first, second = run(), run()
    for a, b in zip(first, second):
        assert a.tobytes() == b.tobytes()


# -- training checkpoints: killed at any moment, resumed bit for bit ----------------------------------------

# A child Python that runs `tinygrad-edu train ...` and SIGKILLs itself on the Nth call of one function: numpy's
# write_array, os.fsync or os.replace (inside the checkpoint's write), or the optimizer's step (in the middle of
# an epoch). The product has no test hooks; the child patches numpy, the standard library or the class.
KILLER = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from tinygrad_edu import cli, optim

    target, n = sys.argv[1], int(sys.argv[2])
    calls = 0

    def killing(original):
        def call(*args, **kwargs):
            global calls
            calls += 1
            if calls == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)
        return call

    if target == "fsync":
        os.fsync = killing(os.fsync)
    elif target == "replace":
        os.replace = killing(os.replace)
    elif target == "write_array":
        np.lib.format.write_array = killing(np.lib.format.write_array)
    elif target == "step":
        optim.SGD.step = killing(optim.SGD.step)
        optim.Adam.step = killing(optim.Adam.step)
    sys.exit(cli.main(sys.argv[3:]))
""")

# 300 images in batches of 10: 30 steps per epoch, 3 epochs; each checkpoint write calls write_array once per
# entry (21 for the momentum run), then os.fsync twice (the file, then its folder) and os.replace once.
RUNS = {
    "momentum": ["--sizes", "784,10,10", "--limit", "300", "--epochs", "3", "--init", "nielsen", "--momentum", "0.9",
                 "--lr", "0.5", "--seed", "4"],
    "adam": ["--sizes", "784,10,10", "--limit", "300", "--epochs", "3", "--init", "nielsen", "--optimizer", "adam",
             "--lr", "0.01", "--cost", "cross_entropy", "--seed", "5"],
}
KILL_POINTS = [
    # (run, function, n, what the checkpoint holds after the kill: epochs complete, None for no file)
    ("momentum", "fsync", 1, None),     # the first write, before its rename: no checkpoint yet
    ("momentum", "write_array", 45, 1),  # half-way through the second archive (30 arrays each): epoch 1's is intact
    ("momentum", "fsync", 3, 1),        # the second write's file fsync: epoch 1's checkpoint is still there
    ("momentum", "replace", 2, 1),      # the second rename itself
    ("momentum", "fsync", 4, 2),        # after the second rename, syncing the folder: epoch 2's checkpoint
    ("momentum", "step", 45, 1),        # in the middle of epoch 2
    ("momentum", "step", 61, 2),        # between epochs: the first step after epoch 2's checkpoint
    ("momentum", "step", 90, 2),        # the last step of the last epoch
    ("adam", "step", 40, 1),            # Adam's moments and step counts, mid-epoch
    ("adam", "replace", 3, 2),          # Adam, the last rename
]


def _cli(args: list[str]) -> int:
    from tinygrad_edu.cli import main

    return main(["train", "--no-progress", *args])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The checkpoint of each run trained straight through, in this process."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    paths = {}
    for name, args in RUNS.items():
        paths[name] = folder / f"{name}.npz"
        assert _cli([*args, "--checkpoint", str(paths[name])]) == 0
    return paths


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _assert_bit_identical(path: Path, reference: Path) -> None:
    got, expected = _arrays(path), _arrays(reference)
    assert sorted(got) == sorted(expected)
    assert any(k.startswith("model/") for k in got) and any(k.startswith("optimizer/") for k in got)
    for name in expected:  # model/, optimizer/, and also rng/, history/ and epoch
        assert got[name].dtype == expected[name].dtype and got[name].tobytes() == expected[name].tobytes(), name
    assert path.read_bytes() == reference.read_bytes()  # no clock inside: the very same file


@pytest.mark.parametrize("run, function, n, holds", KILL_POINTS,
                         ids=[f"{r}-{f}-{n}" for r, f, n, _ in KILL_POINTS])
def test_a_run_killed_at_any_moment_resumes_bit_for_bit(run, function, n, holds, uninterrupted, tmp_path, capsys):
    path = tmp_path / "run.npz"
    args = [*RUNS[run], "--checkpoint", str(path)]
    child = subprocess.run([sys.executable, "-c", KILLER, function, str(n), "train", "--no-progress", *args],
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    before_rename = function in ("write_array", "replace") or (function == "fsync" and n % 2 == 1)
    leftovers = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert bool(leftovers) == before_rename  # killed inside a write: its temporary file is all that is left of it
    if holds is None:
        assert not path.exists()
        assert _cli([*args, "--resume"]) == 2
        assert "there is no checkpoint at" in capsys.readouterr().err
        assert _cli(args) == 0  # start over
    else:
        assert int(_arrays(path)["epoch"]) == holds  # whole and readable, from the last finished write
        assert _cli([*args, "--resume"]) == 0
        settings, printed = capsys.readouterr().out.split("\n", 1)  # train prints its settings first
        assert settings.startswith("Training ") and settings.endswith(" (resuming)")
        assert printed.startswith(f"Epoch {holds}: ") and "Epoch 2: " in printed
    _assert_bit_identical(path, uninterrupted[run])


def test_a_run_killed_from_outside_after_its_first_epoch_resumes_bit_for_bit(uninterrupted, tmp_path):
    path = tmp_path / "run.npz"
    command = [sys.executable, "-m", "tinygrad_edu", "train", "--no-progress", *RUNS["momentum"],
               "--checkpoint", str(path)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().startswith("Training ")  # the settings line
        assert child.stdout.readline().startswith("Epoch 0: ")
        os.kill(child.pid, signal.SIGKILL)  # somewhere after the first checkpoint: wherever, it must not matter
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    if int(_arrays(path)["epoch"]) < 3:
        assert subprocess.run([*command, "--resume"], capture_output=True, timeout=120).returncode == 0
    _assert_bit_identical(path, uninterrupted["momentum"])


@pytest.mark.parametrize("dtype, make", [
    (np.float64, lambda params: optim.Adam(params, lr=0.01, amsgrad=True)),
    (np.float32, lambda params: optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
], ids=["float64-AMSGrad", "float32-Nesterov"])
def test_the_python_api_resumes_too_and_can_extend_a_finished_run(dtype, make, tmp_path):
    mnist = datasets.load_mnist(dtype=dtype)
    x, y = mnist.train_x[:200], datasets.one_hot(mnist.train_y[:200], dtype=dtype)

    def run(epochs: int, path: Path, resume: bool) -> dict[str, list[float]]:
        model = nn.MLP([784, 8, 10], activation="relu", output_activation=None, init="he", rng=3, dtype=dtype)
        return fit(model, losses.softmax_cross_entropy, make(model.parameters()), (x, y), epochs=epochs,
                   batch_size=16, rng=7, progress=False, checkpoint=path, resume=resume)

    straight = run(4, tmp_path / "straight.npz", resume=False)
    run(1, tmp_path / "pieces.npz", resume=False)
    run(3, tmp_path / "pieces.npz", resume=True)
    assert run(3, tmp_path / "pieces.npz", resume=True)["loss"] == straight["loss"][:3]  # nothing left to do
    history = run(4, tmp_path / "pieces.npz", resume=True)
    assert history == straight
    _assert_bit_identical(tmp_path / "pieces.npz", tmp_path / "straight.npz")
    assert sorted(os.listdir(tmp_path)) == ["pieces.npz", "straight.npz"]  # no temporary files left


# -- bad input: a clear message, a non-zero exit, and the file untouched ------------------------------------

BASE = ["--sizes", "784,10,10", "--limit", "100", "--epochs", "1"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("finished") / "run.npz"
    assert _cli([*BASE, "--checkpoint", str(path)]) == 0
    return path


def _refused(path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> str:
    before = path.read_bytes() if path.exists() else None
    stamp = os.stat(path).st_mtime_ns if path.exists() else None
    capsys.readouterr()
    assert _cli([*args, "--checkpoint", str(path), "--resume"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err, captured.err
    assert "Epoch" not in captured.out  # refused before training
    if before is None:
        assert not path.exists()
    else:
        assert path.read_bytes() == before and os.stat(path).st_mtime_ns == stamp
    return captured.err


def _copy(source: Path, target: Path, change: Any = None) -> Path:
    data = bytearray(source.read_bytes())
    if change is not None:
        data = change(data)
    target.write_bytes(bytes(data))
    return target


def test_resume_refuses_a_truncated_file(finished, tmp_path, capsys):
    path = _copy(finished, tmp_path / "run.npz", lambda data: data[: len(data) // 2])
    _refused(path, BASE, "is truncated or corrupted", capsys)


def test_resume_refuses_a_corrupted_file(finished, tmp_path, capsys):
    arrays = _arrays(finished)
    weights = arrays["model/layers.0.weight"].tobytes()

    def flip(data: bytearray) -> bytearray:
        at = bytes(data).index(weights[:64]) + 1000  # a byte inside the first layer's weights
        data[at] ^= 0xFF
        return data

    path = _copy(finished, tmp_path / "run.npz", flip)
    _refused(path, BASE, "is truncated or corrupted", capsys)  # the zip's CRC-32 catches it


def test_resume_refuses_another_network_shape(finished, tmp_path, capsys):
    path = _copy(finished, tmp_path / "run.npz")
    message = _refused(path, [*BASE, "--sizes", "784,12,10"], "was saved from a network of another shape", capsys)
    assert "'layers.0.weight' has shape (784, 10), the model expects (784, 12)" in message


def test_resume_refuses_another_optimizer_or_its_settings(finished, tmp_path, capsys):
    path = _copy(finished, tmp_path / "run.npz")
    _refused(path, [*BASE, "--optimizer", "adam"], "saved with another optimizer: SGD, and this run uses Adam",
             capsys)
    _refused(path, [*BASE, "--momentum", "0.5"], "momentum 0.0 then, 0.5 now", capsys)
    _refused(path, [*BASE, "--lr", "1.0"], "lr 3.0 then, 1.0 now", capsys)


def test_resume_refuses_other_data_settings(finished, tmp_path, capsys):
    path = _copy(finished, tmp_path / "run.npz")
    _refused(path, [*BASE, "--batch-size", "20"], "batch_size 10 then, 20 now", capsys)
    _refused(path, [*BASE, "--limit", "50"], "train_size 100 then, 50 now", capsys)


def test_resume_without_a_file_says_so(tmp_path, capsys):
    _refused(tmp_path / "missing.npz", BASE, "there is no checkpoint at", capsys)


def test_resume_refuses_a_model_file_that_is_not_a_checkpoint(tmp_path, capsys):
    path = tmp_path / "model.npz"
    nn.MLP([784, 10, 10], rng=0).save(path)
    _refused(path, BASE, "not a training checkpoint", capsys)


def test_an_existing_checkpoint_is_not_overwritten_without_resume(finished, tmp_path, capsys):
    path = _copy(finished, tmp_path / "run.npz")
    before = path.read_bytes()
    assert _cli([*BASE, "--checkpoint", str(path)]) == 2
    assert "already exists: resume from it" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_a_checkpoint_in_a_missing_folder_is_refused_before_training(tmp_path, capsys):
    assert _cli([*BASE, "--checkpoint", str(tmp_path / "no" / "run.npz")]) == 2
    captured = capsys.readouterr()
    assert "the folder" in captured.err and "does not exist" in captured.err and "Epoch" not in captured.out


def test_resume_needs_a_checkpoint_path(capsys):
    assert _cli([*BASE, "--resume"]) == 2
    assert "--resume needs --checkpoint PATH" in capsys.readouterr().err


def test_a_checkpoint_holds_named_arrays_and_no_pickled_objects(finished):
    arrays = _arrays(finished)  # allow_pickle=False: an object array would raise here
    assert str(arrays["format"]) == "tinygrad_edu checkpoint 1" and int(arrays["epoch"]) == 1
    assert {"model/layers.0.weight", "model/layers.2.bias", "optimizer/type", "optimizer/lr",
            "rng/bit_generator", "rng/state/state", "history/loss", "history/test_accuracy"} <= set(arrays)
    assert all(array.dtype != object for array in arrays.values())
    # the 128-bit PCG64 state, as 64-bit words, gives back the generator of the next epoch
    generator = np.random.default_rng(0)
    state = generator.bit_generator.state
    words = arrays["rng/state/state"]
    assert words.dtype == np.uint64 and words.shape == (2,)
    state["state"]["state"] = int(words[0]) + (int(words[1]) << 64)
    state["state"]["inc"] = int(arrays["rng/state/inc"][0]) + (int(arrays["rng/state/inc"][1]) << 64)
    generator.bit_generator.state = state
    replay = np.random.default_rng(0)
    replay.permutation(100)  # the one permutation of the one epoch that ran (seed 0, 100 images)
    assert generator.permutation(100).tolist() == replay.permutation(100).tolist()


@pytest.mark.parametrize("args", [["--momentum", "-1"], ["--optimizer", "adam", "--momentum", "0.9"]])
def test_momentum_is_refused_where_it_makes_no_sense(args, capsys):
    assert _cli([*BASE, *args]) == 2
    assert "--momentum takes a number >= 0" in capsys.readouterr().err
