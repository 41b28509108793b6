"""Pictures: DOT text, the built-in SVG layout, the text tree, draw(), the step-through page, training plots."""

from __future__ import annotations

import doctest
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinygrad_edu import Tensor
from tinygrad_edu.autograd import toposort
from tinygrad_edu.visualize import (
    GRAD_PENDING_NOTE, SvgPicture, backprop_steps, draw, health_report, layer_health, layout_svg, plot_health,
    plot_history, plot_weights, stepthrough, to_dot, to_text,
)
from tinygrad_edu.visualize import render
from tinygrad_edu.visualize.cli import graph_command

ROOT = Path(__file__).resolve().parents[1]
HAS_DOT = shutil.which("dot") is not None
SVG = "{http://www.w3.org/2000/svg}"


# -- graphs to draw -------------------------------------------------------------------------------------------

def tiny_net(seed: int = 0) -> dict[str, Tensor]:
    """x @ w + b -> sigmoid -> - y -> ** 2 -> mean: 10 tensors, 6 ops, 9 argument edges."""
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((4, 2)), name="x")
    y = Tensor(rng.standard_normal((4, 1)), name="y")
    w = Tensor(rng.standard_normal((2, 1)), requires_grad=True, name="w")
    b = Tensor(np.zeros(1), requires_grad=True, name="b")
    loss = (((x @ w + b).sigmoid() - y) ** 2).mean()
    return {"x": x, "y": y, "w": w, "b": b, "loss": loss}


def mlp(seed: int = 0) -> tuple[Tensor, dict[str, Tensor]]:
    """Two Linear layers named like nn.Sequential's parameters (layers.0.*, layers.2.*)."""
    rng = np.random.default_rng(seed)
    params = {"layers.0.weight": Tensor(rng.standard_normal((3, 4)), requires_grad=True, name="weight"),
              "layers.0.bias": Tensor(np.zeros(4), requires_grad=True, name="bias"),
              "layers.2.weight": Tensor(rng.standard_normal((4, 2)), requires_grad=True, name="weight"),
              "layers.2.bias": Tensor(np.zeros(2), requires_grad=True, name="bias")}
    x = Tensor(rng.standard_normal((5, 3)), name="x")
    hidden = (x @ params["layers.0.weight"] + params["layers.0.bias"]).sigmoid()
    out = hidden @ params["layers.2.weight"] + params["layers.2.bias"]
    return (out ** 2).mean(), params


class Dot:
    """The nodes and edges of DOT text as written by to_dot (one statement per line)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.nodes: dict[str, str] = {}
        self.edges: list[tuple[str, str, str]] = []
        for line in text.splitlines():
            edge = re.match(r"^  (\w+) -> (\w+)(.*);$", line)
            node = re.match(r"^  (\w+) \[(.*)\];$", line)
            if edge:
                self.edges.append((edge.group(1), edge.group(2), edge.group(3)))
            elif node and node.group(1) not in ("graph", "node", "edge"):
                self.nodes[node.group(1)] = node.group(2)

    def find(self, title: str) -> str:
        """The id of the node whose bold title is ``title``."""
        hits = [k for k, v in self.nodes.items() if f"<B>{title}</B>" in v]
        assert len(hits) == 1, (title, hits)
        return hits[0]

    def op_nodes(self) -> list[str]:
        return [k for k, v in self.nodes.items() if "shape=ellipse" in v]


# -- DOT --------------------------------------------------------------------------------------------------------

def test_dot_counts_nodes_and_edges_of_a_known_graph() -> None:
    g = tiny_net()
    dot = Dot(to_dot(g["loss"]))
    assert dot.text.startswith("digraph") and dot.text.rstrip().endswith("}")
    assert len(dot.nodes) == 16  # 10 tensors + 6 ops
    assert len(dot.op_nodes()) == 6
    assert len(dot.edges) == 15  # 9 argument edges + 6 op -> output edges
    matmul = [k for k in dot.op_nodes() if "<B>matmul</B>" in dot.nodes[k]]
    assert len(matmul) == 1
    into_matmul = sorted(tail for tail, head, _ in dot.edges if head == matmul[0])
    assert into_matmul == sorted([dot.find("x"), dot.find("w")])
    out_of_matmul = [head for tail, head, _ in dot.edges if tail == matmul[0]]
    assert len(out_of_matmul) == 1 and "(4, 1) float64" in dot.nodes[out_of_matmul[0]]


def test_dot_labels_show_names_shapes_dtypes_ops_and_values() -> None:
    g = tiny_net()
    g["loss"].backward()
    dot = Dot(to_dot(g["loss"]))
    for op in ("matmul", "add", "sigmoid", "sub", "pow", "mean"):
        assert f"<B>{op}</B>" in dot.text
    assert "exponent=2" in dot.nodes[next(k for k in dot.op_nodes() if "<B>pow</B>" in dot.nodes[k])]
    w_label = dot.nodes[dot.find("w")]
    assert "(2, 1) float64" in w_label
    w = g["w"].data.ravel()
    assert f"data [[{w[0]:.4g}], [{w[1]:.4g}]]" in w_label  # a tiny tensor: every value
    gw = g["w"].grad.ravel()
    assert f"grad [[{gw[0]:.4g}], [{gw[1]:.4g}]]" in w_label
    x = g["x"].data  # 8 elements: a summary instead
    assert f"min {x.min():.4g} mean {x.mean():.4g} max {x.max():.4g}" in dot.nodes[dot.find("x")]
    assert "grad" not in dot.nodes[dot.find("x")]  # inputs need no gradient
    assert GRAD_PENDING_NOTE not in dot.text


def test_dot_colours_tensors_by_role() -> None:
    g = tiny_net()
    dot = Dot(to_dot(g["loss"]))
    fills = {name: re.search(r'fillcolor="([^"]+)"', dot.nodes[dot.find(name)]).group(1)
             for name in ("x", "y", "w", "b", "loss", "t5")}
    assert fills["x"] == fills["y"] and fills["w"] == fills["b"]
    assert len({fills["x"], fills["w"], fills["t5"], fills["loss"]}) == 4  # input, parameter, intermediate, loss


def test_a_plus_a_is_drawn_with_two_edges() -> None:
    a = Tensor([1.0, 2.0], requires_grad=True, name="a")
    dot = Dot(to_dot((a + a).sum()))
    add = next(k for k in dot.op_nodes() if "<B>add</B>" in dot.nodes[k])
    assert [tail for tail, head, _ in dot.edges if head == add] == [dot.find("a"), dot.find("a")]
    assert len(dot.nodes) == 5 and len(dot.edges) == 5


def test_dot_text_is_identical_across_runs_and_separately_built_graphs() -> None:
    first = tiny_net(seed=3)
    second = tiny_net(seed=3)
    assert first["loss"] is not second["loss"]
    text = to_dot(first["loss"], rankdir="LR")
    assert to_dot(first["loss"], rankdir="LR") == text
    assert to_dot(second["loss"], rankdir="LR") == text
    assert "rankdir=LR" in text and "rankdir=TB" in to_dot(first["loss"])
    # A third run in a fresh interpreter (different object ids, different hash seeds) gives the same text too.
    script = ("import sys; sys.path.insert(0, {tests!r}); import test_visualize as t; "
              "from tinygrad_edu.visualize import to_dot; "
              "sys.stdout.write(to_dot(t.tiny_net(seed=3)['loss'], rankdir='LR'))").format(tests=str(ROOT / "tests"))
    fresh = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345", "PATH": ""})
    assert fresh.stdout == text


def test_list_and_dict_roots() -> None:
    g = tiny_net()
    pred = g["loss"].parents[0]  # (sigmoid - y) ** 2, shared with the loss
    both = Dot(to_dot([g["loss"], pred]))
    assert len(both.nodes) == 16  # the shared part is drawn once
    labelled = Dot(to_dot({"cost": g["loss"], "squared": pred}))
    assert labelled.find("cost") and labelled.find("squared")
    loss_fill = re.search(r'fillcolor="([^"]+)"', labelled.nodes[labelled.find("cost")]).group(1)
    assert re.search(r'fillcolor="([^"]+)"', labelled.nodes[labelled.find("squared")]).group(1) == loss_fill
    assert to_dot((g["loss"], pred)) == both.text
    with pytest.raises(TypeError, match="cannot draw a str"):
        to_dot("loss")


def test_graph_drawn_before_backward_says_so_instead_of_showing_gradients() -> None:
    g = tiny_net()
    before = to_dot(g["loss"])
    assert GRAD_PENDING_NOTE in before
    assert "grad " not in before.replace(GRAD_PENDING_NOTE, "")
    assert GRAD_PENDING_NOTE in to_text(g["loss"])
    g["loss"].backward()
    after = to_dot(g["loss"])
    assert GRAD_PENDING_NOTE not in after and after.count("grad ") == 8  # every tensor that needs a gradient
    # Parameters with an old gradient but a fresh graph: still "not computed yet".
    again = (((g["x"] @ g["w"] + g["b"]).sigmoid() - g["y"]) ** 2).mean()
    assert GRAD_PENDING_NOTE in to_dot(again)


def test_max_depth_elides_parents_with_an_ellipsis_node() -> None:
    g = tiny_net()
    zero = Dot(to_dot(g["loss"], max_depth=0))
    assert len(zero.nodes) == 3  # the loss, its op (mean), and "…"
    more = [k for k, v in zero.nodes.items() if 'label="…"' in v]
    assert len(more) == 1 and len(zero.edges) == 2
    two = Dot(to_dot(g["loss"], max_depth=2))
    # loss(0), t8(1), t7(2): 3 tensors, their 3 ops, one "…" above sub; sub's parents t6 and y are cut.
    assert len(two.nodes) == 7
    assert "max_depth=2" in two.text
    assert len(Dot(to_dot(g["loss"], max_depth=50)).nodes) == 16
    with pytest.raises(ValueError, match="max_depth"):
        to_dot(g["loss"], max_depth=-1)


def test_highlight_marks_the_path_from_the_loss_to_a_parameter() -> None:
    g = tiny_net()
    dot = Dot(to_dot(g["loss"], highlight=g["b"]))
    lit_nodes = {k for k, v in dot.nodes.items() if "penwidth=3" in v}
    titles = {re.search(r"<B>(.*?)</B>", dot.nodes[k]).group(1) for k in lit_nodes}
    # unnamed tensors are numbered in creation order: x, y, w, b, then t4 = x @ w, t5, ...; the one root is "loss"
    # b -> add -> t5 -> sigmoid -> t6 -> sub -> t7 -> pow -> t8 -> mean -> loss
    assert titles == {"b", "add", "t5", "sigmoid", "t6", "sub", "t7", "pow", "t8", "mean", "loss"}
    lit_edges = [(t, h) for t, h, attrs in dot.edges if "penwidth" in attrs]
    assert len(lit_edges) == 10
    assert all(t in lit_nodes and h in lit_nodes for t, h in lit_edges)
    assert to_dot(g["loss"], highlight="b") == dot.text
    with pytest.raises(ValueError, match="not in this graph"):
        to_dot(g["loss"], highlight=Tensor([1.0], requires_grad=True))
    with pytest.raises(ValueError, match="names no tensor"):
        to_dot(g["loss"], highlight="nope")


def test_collapse_modules_draws_each_module_as_one_box() -> None:
    loss, params = mlp()
    full = Dot(to_dot(loss, params=params))
    assert len(full.nodes) == 19  # x, 4 parameters, 7 computed tensors, 7 ops
    names = {re.search(r"<B>(.*?)</B>", v).group(1) for v in full.nodes.values()}
    assert {"layers.0.weight", "layers.2.bias"} <= names
    boxes = Dot(to_dot(loss, params=params, collapse_modules=True))
    modules = {k: v for k, v in boxes.nodes.items() if "dashed" in v}
    assert sorted(re.search(r"<B>(.*?)</B>", v).group(1) for v in modules.values()) == ["layers.0", "layers.2"]
    assert all("ops: matmul, add" in v for v in modules.values())
    assert "weight (3, 4)" in next(v for v in modules.values() if "<B>layers.0</B>" in v)
    # left: x, layers.0, its output, sigmoid, hidden, layers.2, its output, pow, t, mean, loss
    assert len(boxes.nodes) == 11
    assert not any("<B>matmul</B>" in v for v in boxes.nodes.values())
    assert len(boxes.edges) == 10  # a chain: every box feeds the next


def test_max_nodes_collapses_then_cuts_depth_with_a_note() -> None:
    loss, params = mlp()
    collapsed = Dot(to_dot(loss, params=params, max_nodes=12))
    assert len(collapsed.nodes) == 11 and "each module is drawn as one box" in collapsed.text
    x = Tensor(np.ones(3), requires_grad=True, name="x")
    y = x
    for _ in range(300):
        y = (y * 0.999).tanh()
    big = Dot(to_dot(y.sum(), max_nodes=40))
    assert 0 < len(big.nodes) <= 40 and "max_nodes=40" in big.text and 'label="…"' in big.text


def test_deep_chain_needs_no_recursion() -> None:
    x = Tensor(np.ones(2), requires_grad=True, name="x")
    y = x
    for _ in range(3000):
        y = y + 1.0
    # x, the shared constant 1.0, and 3000 outputs with their 3000 add ops
    assert len(Dot(to_dot(y, max_nodes=None, show_values=False)).nodes) == 2 + 3000 * 2
    assert to_text(y, show_values=False).count("\n") > 3000


def test_to_text_shows_shared_subgraphs_once() -> None:
    a = Tensor([1.0, 2.0], requires_grad=True, name="a")
    h = (a * 2.0).sigmoid()
    text = to_text((h + h).sum(), params={"alpha": a})
    lines = text.splitlines()
    assert lines[0].startswith("loss: sum -> () float64")
    assert sum("sigmoid" in line for line in lines) == 1
    assert sum("(shown above)" in line for line in lines) == 1
    assert any(line.strip().startswith("│") or "├──" in line for line in lines)
    assert any("alpha: parameter (2,) float64, data [1, 2]" in line for line in lines)


# -- the built-in SVG layout ------------------------------------------------------------------------------------

def _boxes(svg: str) -> dict[str, tuple[float, ...]]:
    root = ET.fromstring(svg)
    boxes = {}
    for group in root.iter(f"{SVG}g"):
        if "node" not in group.get("class", "").split():
            continue
        rects = group.findall(f"{SVG}rect")
        assert len(rects) == 1, "exactly one box per node"
        r = rects[0]
        title = group.find(f"{SVG}title").text
        boxes[title] = tuple(float(r.get(k)) for k in ("x", "y", "width", "height"))
    return boxes


def _no_overlaps(boxes: dict[str, tuple[float, ...]]) -> None:
    items = list(boxes.items())
    for i, (a, (ax, ay, aw, ah)) in enumerate(items):
        assert aw > 0 and ah > 0
        for b, (bx, by, bw, bh) in items[i + 1:]:
            apart = ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
            assert apart, f"{a} and {b} overlap"


@pytest.mark.parametrize("rankdir", ["TB", "LR"])
def test_layout_svg_is_xml_with_one_box_per_node_and_no_overlaps(rankdir: str) -> None:
    g = tiny_net()
    g["loss"].backward()
    svg = layout_svg(g["loss"], rankdir=rankdir)
    boxes = _boxes(svg)
    assert set(boxes) == set(Dot(to_dot(g["loss"])).nodes)
    _no_overlaps(boxes)
    root = ET.fromstring(svg)
    edges = [e for e in root.iter(f"{SVG}g") if e.get("class") == "edge"]
    assert len(edges) == 15
    width, height = float(root.get("width")), float(root.get("height"))
    assert all(x >= 0 and x + w <= width and y >= 0 and y + h <= height for x, y, w, h in boxes.values())
    # The loss is below (TB) or right of (LR) everything it was computed from.
    axis = 1 if rankdir == "TB" else 0
    loss_box = boxes["t9"]
    assert all(loss_box[axis] > box[axis] for name, box in boxes.items() if name != "t9")


def test_layout_svg_of_larger_graphs_has_no_overlaps(tmp_path: Path) -> None:
    loss, params = mlp()
    rng = np.random.default_rng(1)
    extra = [Tensor(rng.standard_normal(2), requires_grad=True, name=f"p{k}") for k in range(6)]
    tangled = sum(((extra[k] * extra[(k * 3 + 1) % 6]).exp() for k in range(6)), start=Tensor(0.0)).sum()
    for svg in (layout_svg(loss, params=params), layout_svg(loss, params=params, collapse_modules=True),
                layout_svg([loss, tangled], rankdir="LR")):
        _no_overlaps(_boxes(svg))
    path = tmp_path / "graph.svg"
    assert layout_svg(loss, path=path) == path.read_text(encoding="utf-8")


def test_layout_svg_draws_both_edges_of_a_plus_a_apart() -> None:
    a = Tensor([1.0, 2.0], requires_grad=True, name="a")
    root = ET.fromstring(layout_svg((a + a).sum()))
    paths = [e.find(f"{SVG}path").get("d") for e in root.iter(f"{SVG}g")
             if e.get("class") == "edge" and e.find(f"{SVG}title").text == "t0->op1"]
    assert len(paths) == 2 and paths[0] != paths[1]


# -- draw -------------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
def test_draw_renders_through_graphviz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = tiny_net()
    g["loss"].backward()
    picture = draw(g["loss"], path=tmp_path / "graph.svg")
    assert capsys.readouterr().out == ""  # no install hint when dot exists
    assert "image/svg+xml" in picture._repr_mimebundle_()
    root = ET.fromstring((tmp_path / "graph.svg").read_text(encoding="utf-8"))
    titles = [g_.find(f"{SVG}title").text for g_ in root.iter(f"{SVG}g") if g_.get("class") == "node"]
    assert sorted(titles) == sorted(Dot(to_dot(g["loss"])).nodes)
    draw(g["loss"], path=tmp_path / "graph.png", rankdir="LR")
    assert (tmp_path / "graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    draw(g["loss"], path=tmp_path / "graph", format="pdf")
    assert (tmp_path / "graph.pdf").read_bytes()[:5] == b"%PDF-"


def test_draw_without_graphviz_uses_the_builtin_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    monkeypatch.setattr(render, "_hint_shown", False)  # the hint prints once per process: make this the first
    g = tiny_net()
    picture = draw(g["loss"])
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "apt-get install graphviz" in out and "brew install graphviz" in out
    assert isinstance(picture, SvgPicture) and picture._repr_svg_().startswith("<svg")
    draw(g["loss"], path=tmp_path / "graph.png")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "SVG, not PNG" in out
    assert not (tmp_path / "graph.png").exists()
    _no_overlaps(_boxes((tmp_path / "graph.svg").read_text(encoding="utf-8")))
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        draw(g["loss"], layout="dot")
    with pytest.raises(ValueError, match="format"):
        draw(g["loss"], format="gif")
    monkeypatch.undo()
    draw(g["loss"], layout="builtin")  # chosen on purpose: no hint
    assert capsys.readouterr().out == ""
    draw(g["loss"], layout="builtin", path=tmp_path / "chosen.pdf")
    assert "SVG, not PDF" in capsys.readouterr().out and (tmp_path / "chosen.svg").exists()


# -- the step-through page --------------------------------------------------------------------------------------

def _steps_in(path: str | Path) -> tuple[str, list[dict[str, Any]]]:
    text = Path(path).read_text(encoding="utf-8")
    blob = re.search(r'<script type="application/json" id="steps">(.*?)</script>', text, re.S).group(1)
    return text, json.loads(blob)["steps"]


def _requiring_grad(loss: Tensor) -> list[Tensor]:
    """Every tensor in the graph that requires grad (a walk of our own, not the code under test)."""
    found, stack = {}, [loss]
    while stack:
        t = stack.pop()
        if id(t) not in found:
            found[id(t)] = t
            stack.extend(t.parents)
    return [t for t in found.values() if t.requires_grad]


@pytest.mark.parametrize("layout", ["builtin", "dot"])
@pytest.mark.parametrize("call_backward", [True, False])
def test_stepthrough_page_is_offline_and_its_gradients_are_the_engines(
        tmp_path: Path, layout: str, call_backward: bool) -> None:
    if layout == "dot" and not HAS_DOT:
        pytest.skip("Graphviz's dot is not installed")
    g = tiny_net()
    loss = g["loss"]
    if call_backward:
        loss.backward()
    text, steps = _steps_in(stepthrough(loss, tmp_path / "page.html", layout=layout))
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert not re.search(r"url\(|@import|<link|<iframe|<img", text, re.I)
    assert all("src" not in tag for tag in re.findall(r"<script[^>]*>", text))
    needing = _requiring_grad(loss)
    assert len(steps) == len(needing) == 8
    assert [s["name"] for s in steps] == ["loss", "t8", "t7", "t6", "t5", "t4", "b", "w"]  # reversed creation order
    assert "<B>loss</B>" in text or ">loss</text>" in text  # the drawing labels the root the same way
    order = list(reversed(toposort([loss])))
    assert [s["shape"] for s in steps] == [list(t.shape) for t in order]
    assert [s["rule"] for s in steps[:5]] == [t.op.__doc__.strip() for t in order[:5]]
    assert steps[0]["rule"].startswith("d mean(a)")
    # The page's SVG has a box for every step's node.
    for s in steps:
        assert f"<title>{s['id']}</title>" in text
    if not call_backward:
        loss.backward()
    for s, t in zip(steps, order):
        np.testing.assert_allclose(np.array(s["upstream"]["values"], dtype=float), t.grad, rtol=1e-12, atol=0)
    # b has shape (1,), but add's rule returned the (4, 1) upstream gradient: the engine's _fit summed it.
    add = next(s for s in steps if s["op"] == "add")
    b_entry = add["parents"][1]
    assert b_entry["name"] == "b" and b_entry["fitted"] and b_entry["raw_shape"] == [4, 1]
    np.testing.assert_allclose(b_entry["grad"]["values"], g["b"].grad, rtol=1e-12)
    sub = next(s for s in steps if s["op"] == "sub")
    assert sub["parents"][1]["name"] == "y" and sub["parents"][1]["grad"] is None


@pytest.mark.filterwarnings("ignore::tinygrad_edu.LearnerWarning")  # the mistake is made on purpose here
def test_backprop_steps_sum_the_contributions_of_a_tensor_used_twice() -> None:
    a = Tensor([1.0, -2.0], requires_grad=True, name="a")
    loss = (a * a + a).sum()
    steps = backprop_steps(loss)
    leaf = steps[-1]
    assert leaf["name"] == "a" and leaf["op"] is None and "accumulate" in leaf["rule"]
    assert len(leaf["contributions"]) == 3  # two from mul, one from add
    np.testing.assert_allclose(leaf["upstream"]["values"], 2 * a.data + 1)
    loss.backward()
    loss.backward()  # a.grad now holds two passes
    again = backprop_steps(loss)
    np.testing.assert_allclose(again[-1]["upstream"]["values"], 2 * a.data + 1)
    assert "accumulate" in again[-1]["note"]


def test_stepthrough_refuses_what_it_cannot_walk(tmp_path: Path) -> None:
    w = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=re.escape("loss.mean()")):
        stepthrough(w * 2, tmp_path / "x.html")
    with pytest.raises(ValueError, match="requires_grad=True"):
        stepthrough(Tensor(1.0), tmp_path / "x.html")
    loss = (w * w).sum()
    w.data = w.data + 1  # an optimizer step after the forward pass
    with pytest.raises(RuntimeError, match=r"^backprop_steps: .*given new data \(t.data = ...\) after mul"):
        backprop_steps(loss)


@pytest.mark.filterwarnings("ignore::tinygrad_edu.LearnerWarning")  # the mistake is made on purpose here
def test_stepthrough_keeps_non_finite_values_valid_json(tmp_path: Path) -> None:
    x = Tensor([0.0, 1.0], requires_grad=True, name="x")
    with np.errstate(divide="ignore"):
        loss = x.log().sum()
        _, steps = _steps_in(stepthrough(loss, tmp_path / "p.html", layout="builtin"))
    assert steps[0]["value"]["values"] == "-Infinity"
    assert steps[-1]["upstream"]["values"] == ["Infinity", 1.0]


# -- the command and the example --------------------------------------------------------------------------------

def test_graph_command_writes_the_svg_and_the_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = tiny_net()
    written = graph_command(g["loss"], str(tmp_path / "out" / "graph.svg"), html=True)
    assert written == [str(tmp_path / "out" / "graph.svg"), str(tmp_path / "out" / "graph.html")]
    assert ET.fromstring((tmp_path / "out" / "graph.svg").read_text(encoding="utf-8")).tag == f"{SVG}svg"
    _, steps = _steps_in(written[1])
    assert len(steps) == 8
    assert graph_command(g["loss"], str(tmp_path / "only.html"), html=True) == [str(tmp_path / "only.html")]
    assert graph_command(g["loss"], str(tmp_path / "plain.svg"), html=False) == [str(tmp_path / "plain.svg")]


def test_example_script_writes_its_three_files(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "draw_graph.py"), str(tmp_path / "pics")],
                            capture_output=True, text=True, check=True, timeout=120)
    printed = [line for line in result.stdout.splitlines() if line.endswith((".svg", ".txt", ".html"))]
    assert [Path(p).name for p in printed] == ["graph.svg", "graph.txt", "backprop.html"]
    assert all(Path(p).stat().st_size > 500 for p in printed)
    tree = Path(printed[1]).read_text(encoding="utf-8")
    assert tree.startswith("loss: truediv") and "sigmoid" in tree and "w: parameter (3, 1)" in tree


# -- training plots and health ----------------------------------------------------------------------------------

def _png(path: str | Path, minimum: int = 5_000, size: tuple[int, int] | None = None) -> None:
    """A real PNG of more than ``minimum`` bytes and, if given, exactly ``size`` = (width, height) pixels."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > minimum
    assert data[12:16] == b"IHDR"
    if size is not None:
        assert (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) == size


def test_plot_history_and_weights_write_pngs(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    history = {"loss": [0.9, 0.5, 0.3, 0.25], "train_accuracy": [0.5, 0.7, 0.8, 0.85],
               "test_accuracy": [0.45, 0.66, 0.79, 0.8]}
    # 110 dpi: one 5.2 x 3.8 inch panel per series group (loss; accuracies)
    _png(plot_history(history, tmp_path / "history.png", title="MNIST"), size=(1144, 418))
    _png(plot_history({"loss": [3.0, 2.0, 1.0]}, tmp_path / "loss.png"), size=(572, 418))
    rng = np.random.default_rng(0)
    _png(plot_weights(Tensor(rng.standard_normal((784, 30))), tmp_path / "weights.png"), 20_000)
    with pytest.raises(ValueError, match=re.escape("weight.T")):
        plot_weights(rng.standard_normal((30, 784)), tmp_path / "w.png")
    with pytest.raises(ValueError, match="no non-empty list"):
        plot_history({"loss": []}, tmp_path / "empty.png")


def test_plot_filters_draws_every_filter_and_feature_map(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from tinygrad_edu import nn
    from tinygrad_edu.visualize import plot_filters

    first, second = nn.Conv2d(1, 20, 5, rng=0), nn.Conv2d(20, 40, 5, rng=0)
    _png(plot_filters(first, tmp_path / "first.png"), 5_000)                 # a module: its weight, 20 filters
    _png(plot_filters(second.weight, tmp_path / "second.png", max_images=60), 5_000)  # 3 filters x 20 channels
    maps = first(np.random.default_rng(1).uniform(0, 1, (2, 1, 28, 28))).data
    picture = plot_filters(maps[0], scale="shared")
    assert "20 of 20 images, 24x24" in picture.figure.axes[0].get_title()
    assert plot_filters(second, max_images=60).figure.axes[0].get_title().startswith(
        "3 of 40 filters x 20 of 20 input channels")
    with pytest.raises(ValueError, match=re.escape("pass one example, maps[0]")):
        plot_filters(np.zeros((2, 3, 4, 5, 6)))
    with pytest.raises(ValueError, match="scale must be"):
        plot_filters(maps[0], scale="global")


def test_images_and_filters_are_drawn_as_one_thumbnail_per_channel() -> None:
    from tinygrad_edu.visualize.graph import THUMB_CELLS, thumbnails

    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((2, 1, 24, 24)), name="images")        # 2 grey images: one thumbnail each
    w = Tensor(rng.standard_normal((3, 1, 5, 5)), requires_grad=True, name="filters")  # 3 filters
    maps = x.conv2d(w)                                                      # (2, 3, 20, 20): example 0's 3 maps
    loss = maps.sum()
    loss.backward()
    images, filters = thumbnails(x.data), thumbnails(w.data)
    assert len(images) == 2 and len(images[0]) == len(images[0][0]) == THUMB_CELLS  # 24x24 in 3x3 blocks
    assert len(filters) == 3 and len(filters[0]) == 5                                # 5x5 as it is
    block = x.data[0, 0, :3, :3].mean()
    top = max(np.abs(x.data[i, 0].reshape(8, 3, 8, 3).mean(axis=(1, 3))).max() for i in range(2))
    fade = round(255 - 165 * abs(block) / top)
    assert images[0][0][0] == (f"#ff{fade:02x}{fade:02x}" if block > 0 else f"#{fade:02x}{fade:02x}ff")
    nan = x.data.copy()
    nan[0, 0, :3, :3] = np.nan
    assert thumbnails(nan)[0][0][0] == "#bbbbbb" and thumbnails(np.zeros((3, 1, 1))) == []
    cells = 2 * 8 * 8 + 3 * 5 * 5 + 3 * 7 * 7  # images 24x24 in 3x3 blocks, filters 5x5, maps 20x20 in 3x3 blocks
    assert to_dot(loss).count('FIXEDSIZE="TRUE"></TD>') == cells   # Graphviz: a table of coloured cells each
    assert layout_svg(loss).count('class="thumb"') == cells          # the built-in layout: rectangles
    assert "FIXEDSIZE" not in to_dot(loss, show_values=False)


def test_plots_explain_how_to_get_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'tinygrad_edu[plot]'")):
        plot_history({"loss": [1.0]}, tmp_path / "h.png")


def test_layer_health_numbers() -> None:
    w0 = Tensor(np.full((2, 2), 2.0), requires_grad=True)  # |w| = 4
    b0 = Tensor(np.zeros(2), requires_grad=True)
    w0.grad, b0.grad = np.full((2, 2), 0.5), np.zeros(2)  # |grad| = 1
    w1 = Tensor(np.ones((2, 3)), requires_grad=True)
    sigmoid_out = Tensor(np.array([[-10.0, 0.0], [0.0, 10.0]])).sigmoid()  # 2 of 4 saturated
    relu_out = np.array([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]])  # unit 0 is 0 for every sample: 1 of 3 dead
    rows = layer_health({"l0.weight": w0, "l0.bias": b0, "l1.weight": w1},
                        activations={"l0": sigmoid_out, "l1": relu_out}, lr=0.01)
    first, second = rows
    assert first["layer"] == "l0" and first["params"] == "weight, bias" and first["kind"] == "sigmoid"
    assert first["weight_norm"] == pytest.approx(4.0) and first["grad_norm"] == pytest.approx(1.0)
    assert first["update_ratio"] == pytest.approx(0.01 * 1.0 / 4.0)
    assert first["saturated"] == pytest.approx(0.5) and first["dead"] is None
    assert first["act_mean"] == pytest.approx(0.5)
    assert second["kind"] == "relu" and second["dead"] == pytest.approx(1 / 3) and second["saturated"] is None
    assert second["grad_norm"] is None and second["update_ratio"] is None  # w1 has no gradient yet
    report = health_report({"l0.weight": w0, "l0.bias": b0, "l1.weight": w1},
                           activations={"l0": sigmoid_out, "l1": relu_out}, lr=0.01)
    assert report.splitlines()[0].split()[:3] == ["layer", "params", "kind"]
    assert "50% of sigmoid outputs are saturated" in report and "33% of ReLU units are dead" in report
    assert "lr*|grad|/|w| = 0.0025" not in report  # 2.5e-3 is within the healthy range
    tanh = layer_health({}, activations={"h": np.array([0.999, 0.5, -0.995, 0.0])})[0]
    assert tanh["kind"] == "tanh" and tanh["saturated"] == pytest.approx(0.5)


def test_health_report_advice_fits_the_activation_and_does_not_overrule_a_working_learning_rate() -> None:
    # saturated sigmoids: the initialiser made for them (Nielsen's chapter 3); saturated tanh: Xavier's
    sigmoid = health_report({}, activations={"h": Tensor(np.array([[-10.0, 10.0], [9.0, 0.0]])).sigmoid()})
    assert "init='nielsen'" in sigmoid and "xavier" not in sigmoid
    tanh = health_report({}, activations={"h": Tensor(np.array([[-10.0, 10.0], [9.0, 0.0]])).tanh()})
    assert "init='xavier'" in tanh and "nielsen" not in tanh
    # Nielsen's eta = 3.0 takes steps far above the rule of thumb and trains well: say when to lower it
    w = Tensor(np.ones((2, 2)), requires_grad=True)
    w.grad = np.full((2, 2), 0.1)
    report = health_report({"l.weight": w}, lr=3.0)
    assert "lr*|grad|/|w| = 0.3 is outside" in report and "moves its weights by 30% of their size" in report
    assert "if it jumps or grows, lower the learning rate" in report
    assert "(lower the learning rate)" not in report


def test_layer_health_reads_a_module_like_object_and_plots(tmp_path: Path) -> None:
    loss, params = mlp()
    loss.backward()

    class Model:
        def named_parameters(self) -> list[tuple[str, Tensor]]:
            return list(params.items())

    rows = layer_health(Model(), lr=0.1)
    assert [r["layer"] for r in rows] == ["layers.0", "layers.2"]
    expected = np.sqrt(sum(np.sum(params[f"layers.0.{k}"].grad ** 2) for k in ("weight", "bias")))
    assert rows[0]["grad_norm"] == pytest.approx(expected)
    pytest.importorskip("matplotlib")
    hidden = loss.parents[0].parents[0].parents[0].parents[0]  # the sigmoid output
    assert hidden.op.name == "sigmoid"
    _png(plot_health(Model(), tmp_path / "health.png", activations={"layers.1": hidden}, lr=0.1), size=(1320, 418))


# -- docstring examples -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("module", ["graph", "layout", "render", "stepthrough", "training", "cli"])
def test_docstring_examples_run(module: str) -> None:
    import importlib

    mod = importlib.import_module(f"tinygrad_edu.visualize.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
