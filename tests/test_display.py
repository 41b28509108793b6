"""tensor_html: what a Tensor shows in Jupyter (header, values, gradient, heat-map, abbreviation, escaping)."""

from __future__ import annotations

import re

import numpy as np

from tinygrad_edu import Tensor
from tinygrad_edu.display import EDGE, array_html, tensor_html


def cells(page: str) -> list[str]:
    return re.findall(r"<td[^>]*>([^<]*)</td>", page)


def test_the_header_escapes_the_name_and_shows_shape_dtype_and_op() -> None:
    x = Tensor(np.ones((2, 3)), requires_grad=True, name="<script>alert('x')</script> & co")
    page = tensor_html(x)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in page
    assert "(2, 3)" in page and "float64" in page and "leaf" in page
    y = (x * 2).sum()
    assert f"op {y.op.name}" in tensor_html(y) and "(no name)" in tensor_html(y)


def test_the_gradient_appears_after_backward() -> None:
    w = Tensor(np.array([[1.5, -2.0], [0.25, 3.0]]), requires_grad=True, name="w")
    before = tensor_html(w)
    assert "None yet: call backward()" in before
    (w * w).sum().backward()   # grad = 2 w
    after = tensor_html(w)
    assert "call backward()" not in after
    shown = cells(after.split("grad<br>")[1])
    assert shown == [f"{v:.4g}" for v in (2 * w.data).ravel()]
    assert "requires_grad=False" in tensor_html(Tensor([1.0, 2.0]))


def test_a_large_array_shows_its_corners_and_a_summary() -> None:
    a = np.arange(10_000, dtype=np.float64).reshape(100, 100)
    page = array_html(a)
    shown = cells(page)
    assert len(shown) == (2 * EDGE + 1) ** 2
    assert shown[0] == "0" and shown[-1] == "9999" and "5050" not in shown
    assert shown.count("⋮") == 2 * EDGE and shown.count("⋯") == 2 * EDGE and shown.count("⋱") == 1
    assert "10000 values: min 0, mean 5000, max 9999" in page
    assert len(tensor_html(Tensor(a))) < 20_000


def test_the_heat_map_diverges_around_zero() -> None:
    page = array_html(np.array([[-4.0, 0.0, 2.0, 4.0]]))
    colours = re.findall(r"background:(rgb\([^)]*\))", page)
    assert colours == ["rgb(90,90,255)", "rgb(255,255,255)", "rgb(255,172,172)", "rgb(255,90,90)"]


def test_other_ranks_and_non_finite_values() -> None:
    assert "<pre" in array_html(np.zeros(3)) and "[0. 0. 0.]" in array_html(np.zeros(3))
    big = array_html(np.arange(1000.0))
    assert "..." in big and "999." in big and "500." not in big
    page = array_html(np.array([[np.nan, 1.0], [np.inf, -1.0]]))
    assert cells(page)[:1] == ["nan"] and "background:#bbb" in page


def test_images_and_filters_are_one_small_picture_per_channel() -> None:
    import base64
    import zlib

    maps = np.random.default_rng(0).standard_normal((2, 3, 6, 5))
    page = array_html(maps)
    pictures = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(pictures) == 3 and "entry 0 of 2 along axis 0" in page  # the first example's 3 channels
    data = base64.b64decode(pictures[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(data[16:20], "big") == 5  # 5 wide, 6 high
    raw = zlib.decompress(data[data.index(b"IDAT") + 4:])
    rows = [raw[r * 16 + 1:(r + 1) * 16] for r in range(6)]  # each row: a filter byte, then 5 RGB pixels
    top = np.abs(maps[0]).max()
    for r in range(6):
        for c in range(5):
            value, pixel = maps[0, 1, r, c], rows[r][3 * c:3 * c + 3]
            fade = round(255 - 165 * abs(value) / top)
            assert tuple(pixel) == ((255, fade, fade) if value > 0 else (fade, fade, 255))
    assert len(re.findall("<img", array_html(np.zeros((20, 1, 5, 5))))) == 20  # 20 filters, one channel each
    assert "<img" not in array_html(np.zeros((3, 1, 1)))  # 1x1 "images": numbers instead
