"""Checkpoints survive a crash: a save killed half-way leaves the previous checkpoint intact and loadable.

Also: two training runs with the same seed give bit-identical parameters.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from tinygrad_edu import datasets, losses, nn, optim
from tinygrad_edu.train import fit

WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from tinygrad_edu import nn

    model = nn.MLP([200, 200, 10], rng=1)
    original = np.savez

    def slow_savez(file, **arrays):                  # write, then stall before the rename can happen
        original(file, **arrays)
        print("written", flush=True)
        time.sleep(60)

    np.savez = slow_savez
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
