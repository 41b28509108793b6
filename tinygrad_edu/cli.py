"""The ``tinygrad-edu`` command line (also ``python -m tinygrad_edu``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from . import Tensor

    w = Tensor([[0.5, -1.0]], requires_grad=True, name="w")
    loss = (w @ Tensor([[2.0], [1.0]])).sigmoid().sum()
    loss.backward()
    print("loss", loss.item(), "grad of w", w.grad)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tinygrad-edu", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="the main job")
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
