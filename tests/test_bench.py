"""The benchmark harness: its engines compute the same thing, its check catches one that does not, it runs.

No timing is asserted here (the machine is shared and noisy); `tinygrad-edu bench` prints the ratios.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from tinygrad_edu import bench


def _batches(n: int, sizes: list[int], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.uniform(0, 1, (5, sizes[0])), np.eye(sizes[-1])[rng.integers(0, sizes[-1], 5)]) for _ in range(n)]


def test_nielsen_engines_agree_and_stay_together_while_training() -> None:
    sizes = [6, 4, 3]
    engines = bench.nielsen_engines(sizes, np.float64, seed=3, per_sample=1.0)
    assert [e.name for e in engines][:5] == [
        "numpy, rows, W (out, in), as a careful programmer writes (baseline)",
        "numpy, the tutorial's matrix form (columns)", "numpy, per sample (as the tutorial; 100% timed)",
        "tinygrad_edu, nn.MLP + optim.SGD", "tinygrad_edu, the learner's step: (a @ W.T + b).sigmoid()"]
    first, *rest = _batches(4, sizes)
    before = engines[0].gradients(engines[0].batches(first))
    assert bench.check_gradients(engines, first) < 1e-12
    for batch in rest[:2]:
        for engine in engines:
            engine.run(engine.batches(batch))
    # every engine took the same SGD steps: the gradients at the new weights still agree, and they changed
    assert bench.check_gradients(engines, rest[2]) < 1e-12
    after = engines[0].gradients(engines[0].batches(first))
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(after, before)) > 1e-6


def test_a_wrong_engine_is_refused_before_it_is_timed() -> None:
    sizes = [6, 4, 3]
    engines = bench.nielsen_engines(sizes, np.float64, per_sample=0, with_torch=False)
    honest = engines[2].gradients

    def off_by_a_little(batch: object) -> list[np.ndarray]:
        grads = honest(batch)
        grads[-1] = grads[-1] + 1e-8
        return grads

    engines[2].gradients = off_by_a_little
    with pytest.raises(bench.BenchmarkError, match=r"tinygrad_edu, nn.MLP \+ optim.SGD: gradients differ .* by 1e-08"):
        bench.check_gradients(engines, _batches(1, sizes)[0])


def test_chain_engines_agree_with_the_hand_derived_chain_rule() -> None:
    rng = np.random.default_rng(1)
    batch = (rng.standard_normal((10, 10)), rng.standard_normal((10, 10)))
    engines = bench.chain_engines()
    assert bench.check_gradients(engines, batch) < 1e-12
    # and the hand-derived backward is itself right: compare one element with central differences
    x, upstream = batch
    e = np.zeros_like(x)
    e[2, 3] = 1e-6
    numeric = (np.sum(bench._chain_numpy(x + e)[-1] * upstream)
               - np.sum(bench._chain_numpy(x - e)[-1] * upstream)) / 2e-6
    analytic = bench._chain_backward_numpy(bench._chain_numpy(x), upstream)[2, 3]
    assert abs(numeric - analytic) < 1e-7


_ROW = re.compile(r"^  (?P<name>\S.*?)\s+(?P<median>[0-9.e+-]+)\s+(?P<low>[0-9.e+-]+) - (?P<high>[0-9.e+-]+)"
                  r"\s+(?P<ratio>[0-9.]+)x$")


@pytest.mark.parametrize("torch_shown", [False, True], ids=["without torch", "with torch if installed"])
def test_bench_prints_each_table_with_ratios(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                             torch_shown: bool) -> None:
    if not torch_shown:
        monkeypatch.setattr(bench, "_torch", lambda: None)  # the rows a user without torch sees
    assert bench.main(["--only", "W1,W3,memory", "--quick", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    assert all(line == line.rstrip() for line in out.splitlines())  # a trailing space once hid the last row
    tables = out.split("\n\n")
    timed = [t for t in tables if t.startswith(("W1, overhead-bound", "W3, per-op overhead"))]
    assert len(timed) == 2
    for table in timed:
        assert "gradients agree" in table
        lines = [line for line in table.splitlines()[1:] if "gradients agree" not in line]
        assert lines[0].split()[:2] == ["engine", "median"]
        rows = [m.groupdict() for m in map(_ROW.match, lines[1:]) if m]
        assert len(rows) == len(lines) - 1 >= 3  # every row under the header parses
        assert "baseline" in rows[0]["name"] and rows[0]["ratio"] == "1.00"
        assert any(r["name"].startswith("tinygrad_edu") for r in rows)
        base = float(rows[0]["median"])
        for r in rows:  # each ratio is the row's median over the baseline's, and the median lies in its range
            median = float(r["median"])
            assert float(r["low"]) <= median * (1 + 1e-2) and median <= float(r["high"]) * (1 + 1e-2)
            # medians print to 3 significant digits (each off by up to 0.5%), the ratio to 2 decimals (0.005)
            assert abs(float(r["ratio"]) - median / base) <= 1e-2 * median / base + 5e-3 + 1e-12
    if os.path.exists("/proc/self/status"):
        assert "Memory: W1 for 1000 steps" in out and "resident MiB" in out
        assert re.search(r"after 100 +after 1000 ", out)  # two different checkpoints
    else:
        assert "Memory: skipped" in out


def test_bad_workload_names_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--only", "W9"]) == 2
    assert "--only takes W1, W2, W3, W4 and memory" in capsys.readouterr().err


def test_conv_engines_agree_and_stay_together_while_training() -> None:
    rng = np.random.default_rng(2)
    batches = [(rng.uniform(0, 1, (3, 1, 28, 28)), rng.integers(0, 10, 3)) for _ in range(4)]
    engines = bench.conv_engines(3, seed=1)
    assert engines[0].name.startswith("numpy im2col by hand") and "baseline" in engines[0].name
    assert engines[1].name.startswith("tinygrad_edu")
    before = engines[0].gradients(engines[0].batches(batches[0]))
    assert bench.check_gradients(engines, batches[0]) < 1e-12
    for batch in batches[1:3]:
        for engine in engines:
            engine.run(engine.batches(batch))
    assert bench.check_gradients(engines, batches[3]) < 1e-12
    after = engines[0].gradients(engines[0].batches(batches[0]))
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(after, before)) > 1e-6


def test_conv_baseline_matches_central_differences() -> None:
    """The hand-written baseline is itself right (the engines are checked against it)."""
    rng = np.random.default_rng(4)
    x, labels = rng.uniform(0, 1, (2, 1, 28, 28)), np.array([3, 7])
    baseline = bench.conv_engines(2, seed=2, with_torch=False)[0]
    grads = baseline.gradients((x, labels))
    engine = bench.conv_engines(2, seed=2, with_torch=False)[1]
    assert bench.check_gradients([baseline, engine], (x, labels)) < 1e-12
    # the engine's own gradients are checked against finite differences in test_conv; one entry per parameter here
    from tinygrad_edu import convnet, losses
    from tinygrad_edu import Tensor, no_grad

    model = convnet.build("conv", rng=2)
    params = model.parameters()
    for p, g in zip(params, grads):
        index = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(g))), g.shape))
        values = []
        for sign in (1, -1):
            p.data[index] += sign * 1e-6
            with no_grad():
                values.append(losses.softmax_cross_entropy(model(Tensor(x)), labels).item())
            p.data[index] -= sign * 1e-6
        assert (values[0] - values[1]) / 2e-6 == pytest.approx(g[index], rel=1e-5, abs=1e-9)


def test_bench_prints_the_conv_rows(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--only", "W4", "--quick", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("W4, convolution") == 2 and "mini-batch 10," in out and "mini-batch 64," in out
    assert "MiB" in out and "gradients agree" in out
