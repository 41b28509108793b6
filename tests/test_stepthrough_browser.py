"""The step-through page in a real headless Chromium: the buttons and the arrow keys move through the steps.

Needs selenium, Debian's ``chromium`` and ``chromium-driver``; skips cleanly without them. Selenium is given
the driver's path, so Selenium Manager never runs (it would try to download a driver).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinygrad_edu import Tensor, losses, nn
from tinygrad_edu.visualize import draw, layout_svg, stepthrough

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (os.path.isfile(CHROMIUM) and os.path.isfile(CHROMEDRIVER)):
        pytest.skip("headless Chromium needs chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1400,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _page(tmp_path: Path, layout: str) -> tuple[Path, list[dict[str, Any]]]:
    rng = np.random.default_rng(7)
    x = Tensor(rng.standard_normal((3, 2)), name="x")
    w = Tensor(rng.standard_normal((2, 1)), requires_grad=True, name="w")
    b = Tensor([0.1], requires_grad=True, name="b")
    loss = (((x @ w + b).sigmoid() - 1.0) ** 2).mean()
    path = stepthrough(loss, tmp_path / f"backprop_{layout}.html", layout=layout)
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="steps">(.*?)</script>', text, re.S).group(1))
    return Path(path), data["steps"]


def _shown(driver: Any) -> dict[str, Any]:
    return driver.execute_script(
        "const cur = Array.from(document.querySelectorAll('#graph g.node.current title'));"
        "return {counter: document.getElementById('counter').textContent,"
        " name: document.getElementById('node-name').textContent,"
        " rule: document.getElementById('rule').textContent,"
        " current: cur.map(function (t) { return t.textContent.trim(); }).sort(),"
        " next_disabled: document.getElementById('next').disabled,"
        " prev_disabled: document.getElementById('prev').disabled};")


@pytest.mark.parametrize("layout", ["builtin", "dot"])
def test_next_button_and_arrow_keys_walk_the_steps(browser: Any, tmp_path: Path, layout: str) -> None:
    if layout == "dot" and shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    path, steps = _page(tmp_path, layout)
    n = len(steps)
    browser.get(path.resolve().as_uri())
    first = _shown(browser)
    assert first["counter"] == f"step 1 / {n}"
    assert first["name"].startswith(steps[0]["name"])
    assert first["rule"] == steps[0]["rule"]
    assert first["current"] == sorted([steps[0]["id"], steps[0]["op_id"]])  # the tensor and the op making it
    assert first["prev_disabled"] and not first["next_disabled"]

    browser.find_element(By.ID, "next").click()
    second = _shown(browser)
    assert second["counter"] == f"step 2 / {n}"
    assert second["name"].startswith(steps[1]["name"]) and second["rule"] == steps[1]["rule"]
    assert second["rule"] != first["rule"]  # mean's rule, then pow's
    assert second["current"] == sorted([steps[1]["id"], steps[1]["op_id"]])

    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT)
    third = _shown(browser)
    assert third["counter"] == f"step 3 / {n}" and third["rule"] == steps[2]["rule"]
    body.send_keys(Keys.ARROW_LEFT)
    assert _shown(browser)["counter"] == f"step 2 / {n}"

    for _ in range(n + 2):  # past the end it stays on the last step
        body.send_keys(Keys.ARROW_RIGHT)
    last = _shown(browser)
    assert last["counter"] == f"step {n} / {n}" and last["next_disabled"]
    assert last["name"] == steps[-1]["name"] and last["current"] == [steps[-1]["id"]]  # a leaf: no op

    body.send_keys(Keys.HOME)
    browser.find_element(By.ID, "next").click()
    body.send_keys(Keys.ARROW_RIGHT)
    assert _shown(browser)["counter"] == f"step 3 / {n}"
    shot = tmp_path / f"stepthrough_{layout}.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    assert browser.execute_script("return document.querySelectorAll('#graph g.node.done').length") >= 2


# -- labels fit their boxes -------------------------------------------------------------------------------------

# For every text of every node: how far its rendered box (getBBox, i.e. the width the browser's own font gives)
# reaches past the node's shape (the rect, polygon, path or ellipse that the layout sized for it).
_OVERFLOW = """
const rows = [];
document.querySelectorAll('g.node').forEach(function (g) {
  const shape = g.querySelector('rect, polygon, path, ellipse');
  const title = g.querySelector('title');
  if (!shape || !title) { return; }
  const box = shape.getBBox();
  g.querySelectorAll('text').forEach(function (t) {
    const text = t.getBBox();
    const length = t.getComputedTextLength();
    const over = Math.max(box.x - text.x, text.x + text.width - (box.x + box.width),
                          length - box.width);
    rows.push({node: title.textContent.trim(), text: t.textContent, over: over, width: length});
  });
});
return rows;
"""


def _long_labels_graph() -> tuple[Tensor, Any]:
    """Nielsen-like: summaries such as 'grad min -0.01393 mean 0.0001406 max 0.01659', the widest labels."""
    model = nn.MLP([12, 7, 3], rng=3)
    x = Tensor(np.random.default_rng(3).standard_normal((5, 12)), name="x")
    loss = losses.quadratic_cost(model(x), np.eye(3)[[0, 1, 2, 0, 1]])
    loss.backward()
    return loss, model


@pytest.mark.parametrize("layout", ["builtin", "dot"])
def test_every_label_fits_inside_its_node(browser: Any, tmp_path: Path, layout: str) -> None:
    if layout == "dot" and shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    loss, model = _long_labels_graph()
    svg = tmp_path / f"graph_{layout}.svg"
    if layout == "dot":
        draw(loss, path=svg, params=model, layout="dot")
    else:
        layout_svg(loss, path=svg, params=model)
    page = Path(stepthrough(loss, tmp_path / f"page_{layout}.html", params=model, layout=layout))
    for document in (svg, page):
        browser.get(document.resolve().as_uri())
        rows = browser.execute_script(_OVERFLOW)
        assert len(rows) > 40  # every node was found and measured (the page draws the same graph)
        assert any("grad min" in r["text"] for r in rows) or document == page
        assert max(r["width"] for r in rows) > 150  # the long summaries are there
        worst = max(rows, key=lambda r: r["over"])
        assert worst["over"] <= 0.5, f"{document.name}: {worst['text']!r} runs {worst['over']:.1f}px out of " \
                                     f"{worst['node']}"


# -- arrays as heat-maps ----------------------------------------------------------------------------------------

def test_a_large_gradient_is_a_heat_map_with_its_numbers_one_click_away(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    rng = np.random.default_rng(4)
    w = Tensor(rng.standard_normal((10, 10)), requires_grad=True, name="w")
    x = Tensor(rng.standard_normal((3, 10)), name="x")
    path = stepthrough((x @ w).tanh().sum(), tmp_path / "heat.html", layout="builtin")
    browser.get(Path(path).resolve().as_uri())
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.END)
    shown = browser.execute_script(
        "const up = document.getElementById('upstream');"
        "const c = up.querySelector('.heat canvas'); const d = up.querySelector('details');"
        "const px = c.getContext('2d').getImageData(1, 1, 1, 1).data;"
        "return {w: c.width, h: c.height, stats: up.querySelector('.stats').textContent, open: d.open,"
        " visible: d.getBoundingClientRect().height,"
        " numbers: d.querySelector('pre').textContent,"
        " pixel: [px[0], px[1], px[2]], name: document.getElementById('node-name').textContent};")
    assert shown["name"] == "w" and shown["w"] == shown["h"] > 40  # 10 x 10 cells
    assert shown["stats"].startswith("min ") and " mean " in shown["stats"] and " max " in shown["stats"]
    assert not shown["open"] and shown["visible"] < 30  # the numbers are folded away (a one-line summary)...
    assert shown["pixel"] != [255, 255, 255]  # ...and the cells are coloured
    browser.find_element(By.CSS_SELECTOR, "#upstream details summary").click()
    assert browser.execute_script(
        "return document.querySelector('#upstream details').getBoundingClientRect().height") > 100
    assert len(shown["numbers"].splitlines()) == 10

    node = browser.execute_script(
        "const id = Object.keys(DATA.nodes).find(function (k) { return DATA.nodes[k].name === 'x'; });"
        "return Array.from(document.querySelectorAll('#graph g.node'))"
        ".find(function (g) { return g.querySelector('title').textContent.trim() === id; });")
    ActionChains(browser).move_to_element(node).perform()
    tip = browser.execute_script(
        "const t = document.getElementById('tip');"
        "return {display: getComputedStyle(t).display, text: t.textContent,"
        " maps: t.querySelectorAll('canvas').length};")
    assert tip["display"] == "block" and tip["text"].startswith("x (3, 10)") and tip["maps"] == 1


def test_filters_and_feature_maps_are_one_small_heat_map_per_channel(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    rng = np.random.default_rng(5)
    x = Tensor(rng.standard_normal((2, 1, 8, 8)), name="images")
    w = Tensor(rng.standard_normal((3, 1, 3, 3)), requires_grad=True, name="filters")
    path = stepthrough(x.conv2d(w).max_pool2d(2).sigmoid().sum(), tmp_path / "maps.html", layout="builtin")
    browser.get(Path(path).resolve().as_uri())
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.END)  # the last step: the filters' gradient
    shown = browser.execute_script(
        "const up = document.getElementById('upstream');"
        "const figures = Array.from(up.querySelectorAll('.heat figure'));"
        "const c = figures[0].querySelector('canvas'); const px = c.getContext('2d').getImageData(1, 1, 1, 1).data;"
        "return {name: document.getElementById('node-name').textContent, n: figures.length,"
        " labels: figures.map(function (f) { return f.querySelector('figcaption').textContent; }),"
        " w: c.width, h: c.height, pixel: [px[0], px[1], px[2]], stats: up.querySelector('.stats').textContent};")
    assert shown["name"] == "filters" and shown["n"] == 3  # (3, 1, 3, 3): one picture per filter
    assert shown["labels"] == ["[0, 0]", "[1, 0]", "[2, 0]"] and shown["w"] == shown["h"] > 9
    assert shown["pixel"] != [255, 255, 255] and "one scale" in shown["stats"]


def test_the_inline_page_works_inside_its_iframe(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    path, steps = _page(tmp_path, "builtin")
    notebook = tmp_path / "notebook.html"  # what Jupyter does with _repr_html_: put it in its own page
    from tinygrad_edu.visualize import StepthroughPage

    inline = StepthroughPage(str(path), path.read_text(encoding="utf-8"))._repr_html_()
    notebook.write_text(f"<!DOCTYPE html><html><body><h1>cell output</h1>{inline}</body></html>", encoding="utf-8")
    browser.get(notebook.resolve().as_uri())
    browser.switch_to.frame(browser.find_element(By.TAG_NAME, "iframe"))
    try:
        assert _shown(browser)["counter"] == f"step 1 / {len(steps)}"
        browser.find_element(By.ID, "next").click()
        assert _shown(browser)["counter"] == f"step 2 / {len(steps)}"
        assert browser.execute_script("return document.querySelectorAll('#graph g.node').length") > 5
    finally:
        browser.switch_to.default_content()


def test_inline_in_a_notebook_the_graph_scrolls_inside_its_frame_to_the_current_node(browser: Any,
                                                                                      tmp_path: Path) -> None:
    """Nielsen's graph in a notebook-wide frame: its scroll bars inside the frame, the current node in view from
    the first step on, the notebook around it never scrolled, and a (30,) vector wrapped to the panel."""
    from selenium.webdriver.common.by import By

    from tinygrad_edu import datasets, tutorials
    from tinygrad_edu.visualize import StepthroughPage

    mnist = datasets.load_mnist()
    model = nn.MLP([784, 30, 10], rng=0)
    loss = losses.quadratic_cost(tutorials.named_forward("nielsen", model, mnist.train_x[:10]),
                                 Tensor(datasets.one_hot(mnist.train_y[:10]), name="y"))
    path = Path(stepthrough(loss, tmp_path / "nielsen.html", params=model, layout="builtin"))
    inline = StepthroughPage(str(path), path.read_text(encoding="utf-8"))._repr_html_()
    notebook = tmp_path / "notebook.html"
    notebook.write_text(f'<!DOCTYPE html><html><body><div style="height:400px">cells above</div>'
                        f'<div style="width:940px">{inline}</div><div style="height:2000px"></div></body></html>',
                        encoding="utf-8")
    browser.get(notebook.resolve().as_uri())
    browser.execute_script("window.scrollTo(0, 380)")
    frame = browser.find_element(By.TAG_NAME, "iframe")
    browser.switch_to.frame(frame)
    seen = """
        const g = document.getElementById('graph'), v = g.getBoundingClientRect();
        const c = document.querySelector('#graph g.node.current').getBoundingClientRect();
        const vector = Array.from(document.querySelectorAll('#panel pre.array'));
        return {inside: c.left >= v.left && c.right <= v.left + g.clientWidth && c.top >= v.top
                        && c.bottom <= v.top + g.clientHeight,
                frame_holds_graph: v.bottom <= window.innerHeight + 0.5 && v.right <= window.innerWidth + 0.5,
                scrolls: g.scrollHeight > g.clientHeight && g.scrollWidth > g.clientWidth,
                wide: vector.filter(function (p) { return p.scrollWidth > p.clientWidth; }).length,
                name: document.getElementById('node-name').textContent};"""
    try:
        steps = browser.execute_script("return JSON.parse(document.getElementById('steps').textContent).steps")
        for k, step in enumerate(steps):
            shown = browser.execute_script(seen)
            assert shown["name"].startswith(step["name"]), (k, shown)
            assert shown["inside"], f"step {k + 1}: {step['name']} is out of sight"
            assert shown["frame_holds_graph"] and shown["scrolls"]  # a large graph scrolls, its scroll bars in view
            if len(step["shape"]) == 1:
                assert shown["wide"] == 0, f"step {k + 1}: a {step['shape']} vector is wider than the panel"
            browser.find_element(By.ID, "next").click()
    finally:
        browser.switch_to.default_content()
    assert browser.execute_script("return window.scrollY") == 380  # the notebook stayed where the learner was
