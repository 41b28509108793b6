"""Issue 14's pictures and issue 13's inline display: paths, hints, wording, heat-maps, clusters, Jupyter."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import Tensor, nn
from tinygrad_edu.cli import TUTORIAL_HELP, main
from tinygrad_edu.tutorials import TUTORIALS
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
    assert fit_note("c", (5, 3), (3,), "summed").startswith("broadcasting stretched c from (3,) to (5, 3)")


# -- the command line -------------------------------------------------------------------------------------------

def _help(*command: str) -> None:
    with pytest.raises(SystemExit):
        main([*command, "--help"])


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
def test_compare_and_graph_list_each_tutorial_with_a_line(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert set(TUTORIAL_HELP) == set(TUTORIALS)  # a new tutorial needs its line
    _help(command)
    out = capsys.readouterr().out
    listed = out.split("\ntutorials:\n", 1)[1]  # the list under the help, not the wrapped usage line above it
    for key in TUTORIALS:
        line = next(line for line in listed.splitlines() if line.split()[:1] == [key])
        assert line.split(None, 1)[1] == TUTORIAL_HELP[key]
    assert ("  all " in out) == (command == "compare")


@pytest.mark.parametrize("key, names", [
    ("nielsen", ["x", "x @ weight", "z1", "a1", "a1 @ weight", "z2", "a2", "y", "loss"]),
    ("mnist3", ["x", "z1", "a1", "z2", "a2", "z3", "a3", "loss"]),
    ("lnet", ["x", "x @ weight", "Z1", "A1", "A1 @ weight", "Z2", "A2", "Z4", "AL", "loss"]),
    ("xor", ["x", "z1", "layer1", "z2", "output", "loss"]),
    ("conv_loops", ["x", "Z1", "A1", "P1", "F", "F @ weight", "Z2", "loss"]),
])
def test_graph_names_the_tensors_as_the_tutorial_does(key: str, names: list[str], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", key, "-o", str(tmp_path / "g.svg"), "--html"]) == 0
    svg = (tmp_path / "g.svg").read_text(encoding="utf-8")
    drawn = set(re.findall(r"<text[^>]*>([^<]+)</text>", svg))
    drawn |= {html.unescape(text) for text in drawn}
    missing = [name for name in names if name not in drawn]
    assert not missing, f"graph {key}: {missing} not drawn"
    page = (tmp_path / "g.html").read_text(encoding="utf-8")
    assert '"name":"loss","role":"loss"' in page  # the step-through page calls the root as the drawing does


def test_draw_and_stepthrough_give_an_unnamed_root_the_same_name() -> None:
    from tinygrad_edu.visualize import to_text

    loss = small_loss()
    assert to_text(loss).startswith("loss: mean") and backprop_steps(loss)[0]["name"] == "loss"
    loss.name = "cost"
    assert to_text(loss).startswith("cost: mean") and backprop_steps(loss)[0]["name"] == "cost"


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


# -- heat-maps --------------------------------------------------------------------------------------------------

def test_heat_map_cells_are_block_means_and_small_arrays_get_none() -> None:
    from tinygrad_edu.visualize.stepthrough import HEAT_CELLS, heat_map

    rng = np.random.default_rng(5)
    a = rng.standard_normal((10, 10))
    heat = heat_map(a)
    assert heat["block"] == [1, 1] and np.allclose(heat["cells"], a, rtol=1e-3)
    assert (heat["min"], heat["max"]) == (a.min(), a.max()) and heat["mean"] == pytest.approx(a.mean())
    assert heat["scale"] == np.abs(a).max()
    big = rng.standard_normal((784, 30))
    heat = heat_map(big)
    rows, cols = len(heat["cells"]), len(heat["cells"][0])
    assert rows <= HEAT_CELLS and cols == 30 and heat["block"] == [17, 1]
    assert heat["cells"][2][5] == pytest.approx(big[34:51, 5].mean(), rel=1e-3)
    assert heat_map(np.ones((4, 4))) is None and heat_map(np.ones(100)) is None  # small, or not 2-D
    with np.errstate(invalid="ignore"):
        bad = np.array([[np.nan, 1.0, -3.0, 2.0, 0.0]] * 4)
    heat = heat_map(bad)
    assert heat["cells"][0][0] is None and heat["min"] == -3.0 and heat["scale"] == 3.0


def test_the_page_carries_heat_maps_for_steps_and_for_every_drawn_tensor(tmp_path: Path) -> None:
    import json

    rng = np.random.default_rng(2)
    w = Tensor(rng.standard_normal((10, 10)), requires_grad=True, name="w")
    x = Tensor(rng.standard_normal((3, 10)), name="x")
    loss = (x @ w).tanh().sum()
    text = Path(stepthrough(loss, tmp_path / "p.html", layout="builtin")).read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="steps">(.*?)</script>', text, re.S).group(1))
    leaf = data["steps"][-1]
    assert leaf["name"] == "w" and "heat" in leaf["upstream"] and "heat" in leaf["value"]
    loss.backward()
    np.testing.assert_allclose(leaf["upstream"]["heat"]["cells"], w.grad, rtol=1e-3, atol=1e-12)
    assert len(leaf["upstream"]["text"].splitlines()) == 10  # one line per row, not wrapped over two
    by_name = {v["name"]: v for v in data["nodes"].values()}
    assert set(by_name) >= {"x", "w", "loss"}  # inputs too: they have no step but do have a tooltip
    assert "heat" in by_name["x"]["value"] and "heat" not in by_name["loss"]["value"]


# -- layers as labelled clusters --------------------------------------------------------------------------------

def mlp_loss() -> tuple[Tensor, nn.MLP]:
    from tinygrad_edu import losses, nn

    model = nn.MLP([3, 4, 2], rng=0)
    x = Tensor(np.random.default_rng(0).standard_normal((5, 3)), name="x")
    loss = losses.quadratic_cost(model(x), np.eye(2)[[0, 1, 0, 1, 1]])
    loss.backward()
    return loss, model


def _cluster_blocks(dot: str) -> dict[str, tuple[str, list[str]]]:
    """{label text without tags: (cluster id, member node ids)} from to_dot's subgraph statements."""
    found = {}
    for cid, label, members in re.findall(r"  subgraph (\w+) \{\n    label=<(.*?)>;.*\n    (.*);\n  \}", dot):
        found[html.unescape(re.sub(r"<.*?>", "", label))] = (cid, members.split("; "))
    return found


def _titles(dot: str) -> dict[str, str]:
    """{node id: bold title} of every node statement."""
    return {m.group(1): m.group(2) for m in re.finditer(r"^  (\w+) \[.*?<B>(.*?)</B>", dot, re.M)}


def test_dot_frames_each_layer_around_its_matmul_and_add() -> None:
    from tinygrad_edu.visualize import to_dot

    loss, model = mlp_loss()
    dot = to_dot(loss, params=model)
    clusters = _cluster_blocks(dot)
    assert set(clusters) == {"layers.0: Linear(3 -> 4)", "layers.2: Linear(4 -> 2)"}
    titles = _titles(dot)
    inside = sorted(titles[m] for m in clusters["layers.0: Linear(3 -> 4)"][1])
    # its parameters, its two ops, and x @ W (used only by the add); x and the add's output stay outside
    assert inside == sorted(["layers.0.weight", "layers.0.bias", "matmul", "add", next(
        titles[m] for m in clusters["layers.0: Linear(3 -> 4)"][1] if m.startswith("t") and titles[m][0] == "t")])
    assert "x" not in inside and sum(t.startswith("t") for t in inside) == 1
    # a dict of parameters has no module to describe: the frame says the name only
    plain = _cluster_blocks(to_dot(loss, params=dict(model.named_parameters())))
    assert set(plain) == {"layers.0", "layers.2"}
    assert _cluster_blocks(to_dot(loss, params=model, collapse_modules=True)) == {}  # boxes instead of frames
    assert _cluster_blocks(to_dot(loss)) == {}  # no dotted names: no modules


def _inside(point: tuple[float, float], polygon: list[tuple[float, ...]]) -> bool:
    """Ray casting: is the point strictly inside the polygon?"""
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


@pytest.mark.parametrize("rankdir", ["TB", "LR"])
def test_builtin_layout_frames_hold_their_members_and_no_other_box(rankdir: str) -> None:
    import xml.etree.ElementTree as ET

    from tinygrad_edu.visualize import layout_svg, to_dot

    svg_ns = "{http://www.w3.org/2000/svg}"
    loss, model = mlp_loss()
    root = ET.fromstring(layout_svg(loss, params=model, rankdir=rankdir))
    members = {cid: ids for cid, ids in _cluster_blocks(to_dot(loss, params=model)).values()}
    boxes = {}
    for g in root.iter(f"{svg_ns}g"):
        if "node" in g.get("class", "").split():
            r = g.find(f"{svg_ns}rect")
            boxes[g.find(f"{svg_ns}title").text] = [float(r.get(k)) for k in ("x", "y", "width", "height")]
    frames = [g for g in root.iter(f"{svg_ns}g") if g.get("class") == "cluster"]
    assert len(frames) == 2
    for frame in frames:
        cid = frame.find(f"{svg_ns}title").text
        outline = [tuple(map(float, p.split(","))) for p in frame.find(f"{svg_ns}polygon").get("points").split()]
        label = "".join(frame.find(f"{svg_ns}text").itertext())
        assert re.fullmatch(r"layers\.\d: Linear\(\d -> \d\)", label)
        for node, (x, y, w, h) in boxes.items():
            corners = [(x + dx, y + dy) for dx in (1, w - 1) for dy in (1, h - 1)] + [(x + w / 2, y + h / 2)]
            hits = [_inside(c, outline) for c in corners]
            if node in members[cid]:
                assert all(hits), f"{node} is not inside {label}"
            else:
                assert not any(hits), f"{node} is inside {label}'s frame but not part of it"


def test_a_tensors_own_name_is_what_every_picture_shows(tmp_path: Path) -> None:
    from tinygrad_edu.visualize import layout_svg, to_dot, to_text

    w = Tensor(np.ones((2, 2)), requires_grad=True, name="W1")
    x = Tensor(np.ones((3, 2)), name="x")
    z1 = x @ w
    z1.name = "z1"
    a1 = z1.sigmoid()
    a1.name = "a1"
    loss = a1.sum()
    assert "<B>z1</B>" in to_dot(loss) and "<B>a1</B>" in to_dot(loss)
    assert ">z1</text>" in layout_svg(loss) and "a1: sigmoid" in to_text(loss)
    assert [s["name"] for s in backprop_steps(loss)][1:3] == ["a1", "z1"]


# -- inline in Jupyter ------------------------------------------------------------------------------------------

def test_stepthrough_returns_its_path_as_a_str_that_shows_the_page_inline(tmp_path: Path) -> None:
    from tinygrad_edu.visualize import StepthroughPage

    target = tmp_path / "page.html"
    result = stepthrough(small_loss(), target, layout="builtin", title='A "quoted" <title> & more')
    assert isinstance(result, str) and isinstance(result, StepthroughPage)
    # (mypy sees only the str: StepthroughPage comes through the unfollowed tinygrad_edu.visualize name)
    assert result == str(target)
    assert Path(result).read_text(encoding="utf-8") == result.page  # type: ignore[attr-defined]
    inline = result._repr_html_()  # type: ignore[attr-defined]
    match = re.fullmatch(r'<iframe srcdoc="([^"]*)" sandbox="allow-scripts" title="page.html" style="[^"]*"></iframe>',
                         inline)
    assert match, inline[:200]
    assert html.unescape(match.group(1)) == target.read_text(encoding="utf-8")  # escaped, not altered
    assert "<" not in match.group(1) and '"' not in match.group(1)


# -- pictures after optimizer.step() ----------------------------------------------------------------------------

def stepped() -> tuple[Tensor, nn.MLP]:
    from tinygrad_edu import optim

    loss, model = mlp_loss()  # forward and backward done
    optim.SGD(model.parameters(), lr=0.1).step()  # then the step: the weights are not what the forward used
    return loss, model


def test_stepthrough_after_the_step_says_what_happened_in_the_learners_terms(tmp_path: Path) -> None:
    loss, model = stepped()
    with pytest.raises(RuntimeError) as error:
        stepthrough(loss, tmp_path / "p.html", params=model)
    message = str(error.value)
    assert message.startswith("stepthrough: layers.0.weight, layers.0.bias, layers.2.weight and layers.2.bias "
                              "were changed after the forward pass that computed this loss (by optimizer.step()")
    assert "needs the values the forward pass used" in message
    assert "before optimizer.step()" in message and "run the forward pass again" in message
    assert "'weight'" not in message and "between steps" not in message
    assert not (tmp_path / "p.html").exists()
    fresh = Tensor(np.ones((2, 3)), name="x")  # the forward pass again: fine
    from tinygrad_edu import losses

    again = losses.quadratic_cost(model(fresh), np.eye(2))
    assert Path(stepthrough(again, tmp_path / "p.html", params=model)).exists()


@pytest.mark.parametrize("layout", ["dot", "builtin"])
def test_draw_after_the_step_marks_the_changed_tensors_and_warns_once(layout: str) -> None:
    import warnings
    import xml.etree.ElementTree as ET

    from tinygrad_edu.visualize import layout_svg, to_dot
    from tinygrad_edu.visualize.graph import CHANGED_COLOUR

    loss, model = mlp_loss()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # before the step: no warning, no mark
        before = to_dot(loss, params=model) if layout == "dot" else layout_svg(loss, params=model)
    assert CHANGED_COLOUR not in before
    from tinygrad_edu import optim

    optim.SGD(model.parameters(), lr=0.1).step()
    with pytest.warns(UserWarning) as caught:
        after = to_dot(loss, params=model) if layout == "dot" else layout_svg(loss, params=model)
    assert len(caught) == 1 and caught[0].filename == __file__  # one warning, at the learner's line
    text = str(caught[0].message)
    assert text.startswith("layers.0.weight, layers.0.bias, layers.2.weight, layers.2.bias changed after the "
                           "forward pass")
    assert "Draw before optimizer.step(), or run the forward pass again" in text
    if layout == "dot":
        titles = _titles(after)
        marked = {titles[m.group(1)] for m in re.finditer(r"^  (\w+) \[.*" + CHANGED_COLOUR, after, re.M)}
    else:
        svg_ns = "{http://www.w3.org/2000/svg}"
        marked = set()
        for g in ET.fromstring(after).iter(f"{svg_ns}g"):
            rect = g.find(f"{svg_ns}rect")
            if "node" in g.get("class", "").split() and rect.get("stroke") == CHANGED_COLOUR:
                assert rect.get("stroke-dasharray")
                marked.add(g.findall(f"{svg_ns}text")[0].text)
    assert marked == {"layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"}  # biases too
    assert after.count("changed after the forward pass") == 5  # four boxes and the note under the picture


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
def test_draw_itself_warns_at_the_learners_line(tmp_path: Path) -> None:
    loss, model = stepped()
    with pytest.warns(UserWarning, match="changed after the forward pass") as caught:
        draw(loss, params=model, path=tmp_path / "g.svg")
    assert len(caught) == 1 and caught[0].filename == __file__
