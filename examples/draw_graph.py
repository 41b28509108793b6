"""Draw the graph of a tiny network: x @ w + b, a sigmoid, and the quadratic cost.

Writes three files into the output folder (default ``out/``) and prints their paths:

* ``graph.svg``: the computation graph with the data and gradient of every tensor;
* ``graph.txt``: the same graph as an indented tree;
* ``backprop.html``: a page that steps through the backward pass, node by node (open it in a browser).

Run: ``python examples/draw_graph.py [out_folder]``
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from tinygrad_edu import Tensor
from tinygrad_edu.visualize import draw, stepthrough, to_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="out", help="output folder (default: out/)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    rng = np.random.default_rng(0)  # every random number comes from this seeded generator
    x = Tensor(rng.standard_normal((4, 3)), name="x")  # 4 samples, 3 features
    y = Tensor([[1.0], [0.0], [1.0], [0.0]], name="y")  # their targets
    w = Tensor(rng.standard_normal((3, 1)), requires_grad=True, name="w")
    b = Tensor([0.0], requires_grad=True, name="b")

    z = x @ w + b  # the weighted input, named as the tutorials write it, so the picture says z, not t5
    z.name = "z"
    a = z.sigmoid()  # the activation
    a.name = "a"
    loss = ((a - y) ** 2).mean() / 2  # the quadratic cost: 1/(2n) * sum of squared errors
    loss.backward()

    svg = os.path.join(args.out, "graph.svg")
    draw({"loss": loss}, path=svg)
    text = os.path.join(args.out, "graph.txt")
    with open(text, "w", encoding="utf-8") as f:
        f.write(to_text({"loss": loss}) + "\n")
    page = stepthrough(loss, os.path.join(args.out, "backprop.html"))
    for path in (svg, text, page):
        print(path)


if __name__ == "__main__":
    main()
