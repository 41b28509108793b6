"""Issue 14's pictures and issue 13's inline display: paths, hints, wording, heat-maps, clusters, Jupyter."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import Tensor
from tinygrad_edu.cli import SEED_HELP, _parser
from tinygrad_edu.seeds import SEEDS
from tinygrad_edu.visualize import backprop_steps, draw, plot_history, stepthrough
from tinygrad_edu.visualize import render
from tinygrad_edu.visualize.stepthrough import fit_note

HAS_DOT = shutil.which("dot") is not None


def small_loss() -> Tensor:
    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((2, 1)), requires_grad=True, name="w")
    x = Tensor(rng.standard_normal((3, 2)), name="x")
    return ((x @ w).sigmoid() ** 2).mean()


# -- draw(path=...) ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("graphviz", [True, False])
def test_draw_refuses_an_unsupported_suffix_and_lists_the_supported_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graphviz: bool) -> None:
    if graphviz and not HAS_DOT:
        pytest.skip("Graphviz's dot is not installed")
    if not graphviz:
        monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    with pytest.raises(ValueError, match=re.escape("written as .svg, .png, .pdf")) as error:
        draw(small_loss(), path=tmp_path / "g.jpg")
    assert "g.svg" in str(error.value)  # the fix, spelled out
    assert list(tmp_path.iterdir()) == []  # neither g.jpg nor g.jpg.svg
    with pytest.raises(ValueError, match="format must be one of svg, png, pdf"):
        draw(small_loss(), path=tmp_path / "g", format="gif")


def test_without_graphviz_a_png_path_says_which_svg_it_wrote_and_what_it_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    monkeypatch.setattr(render, "_hint_shown", True)  # the hint was printed earlier in this process
    (tmp_path / "graph.svg").write_text("the picture drawn before", encoding="utf-8")
    draw(small_loss(), path=tmp_path / "graph.png")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "SVG, not PNG" in out
    assert f"it replaced the {tmp_path / 'graph.svg'} that was there" in out
    assert (tmp_path / "graph.svg").read_text(encoding="utf-8").startswith("<svg")
    assert not (tmp_path / "graph.png").exists()
    draw(small_loss(), path=tmp_path / "fresh.png")
    out = capsys.readouterr().out
    assert "SVG, not PNG" in out and "replaced" not in out


def test_the_install_hint_prints_once_per_process(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    monkeypatch.setattr(render, "_hint_shown", False)
    for _ in range(3):
        draw(small_loss())
    out = capsys.readouterr().out
    assert out.count("apt-get install graphviz") == 1 and out.count("\n") == 1


# -- the step-through's words -----------------------------------------------------------------------------------

def test_a_sum_step_says_expanded_and_a_broadcast_says_summed(tmp_path: Path) -> None:
    a = Tensor([1.0, 2.0], requires_grad=True, name="a")
    b = Tensor(np.ones((3, 2)), requires_grad=True, name="b")
    loss = (a * b).sum() * a.sum()
    text = Path(stepthrough(loss, tmp_path / "p.html", layout="builtin")).read_text(encoding="utf-8")
    notes = set(re.findall(r'"fit_note":"([^"]*)"', text))
    assert notes == {
        "the rule gave shape (1,), one gradient for all of a; it is expanded (copied) to every element of (2,)",
        "the rule gave shape (1, 1), one gradient for all of t2; it is expanded (copied) to every element of (3, 2)",
        "broadcasting stretched a from (2,) to (3, 2) in the forward pass; its copies' gradients are summed "
        "back to (2,)",
    }
    assert "broadcasting is undone" not in text  # the old wording, wrong for an expansion
    assert fit_note("c", (5, 3), (3,)).startswith("broadcasting stretched c from (3,) to (5, 3)")


# -- the command line -------------------------------------------------------------------------------------------

def _help(*command: str) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args([*command, "--help"])


def test_train_help_explains_every_option_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    _help("train")
    options = capsys.readouterr().out.split("options:")[1]
    # one block per option: its line and the wrapped help lines under it, joined
    blocks = {b.split()[0]: " ".join(b.split()) for b in re.split(r"\n(?=  -)", options) if b.strip()}
    for flag, default in (("--epochs", "30"), ("--batch-size", "10"), ("--cost", "quadratic"),
                          ("--init", "normal"), ("--seed", "0"), ("--dtype", "float64")):
        words = blocks[flag].split(None, 2)[2]  # after the flag and its metavar
        assert len(words) > 30 and words.endswith(f"(default {default})"), (flag, words)


@pytest.mark.parametrize("command", ["compare", "graph"])
def test_compare_and_graph_list_each_seed_with_a_line(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert set(SEED_HELP) == set(SEEDS)  # a new seed needs its line
    _help(command)
    out = capsys.readouterr().out
    for key in SEEDS:
        line = next(line for line in out.splitlines() if line.split()[:1] == [key])
        assert line.split(None, 1)[1] == SEED_HELP[key]
    assert ("  all " in out) == (command == "compare")


# -- training history -------------------------------------------------------------------------------------------

def test_plot_history_numbers_epochs_from_0_with_whole_ticks_and_shows_inline(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    picture = plot_history({"loss": [0.9, 0.5, 0.3], "test_accuracy": [0.7, 0.8, 0.85]})
    assert not isinstance(picture, str)
    png = picture._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
    for axes in picture.figure.axes:
        assert list(axes.lines[0].get_xdata()) == [0, 1, 2]  # Epoch 0, 1, 2 as Nielsen prints them
        low, high = axes.get_xlim()
        shown = [t for t in axes.get_xticks() if low <= t <= high]
        assert shown and all(float(t).is_integer() for t in shown)
    saved = picture.save(tmp_path / "h.png")
    assert Path(saved).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_history({"loss": [1.0, 0.5]}, tmp_path / "p.png") == str(tmp_path / "p.png")  # as before
