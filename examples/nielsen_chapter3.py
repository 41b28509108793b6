"""Nielsen's chapter-3 runs, over several seeds, with the hand-derived ``network2`` (full length: minutes each).

Each run is one of the book's commands (``RUNS``); the book's figure is the one it prints for that command.
Every seed starts its own ``np.random.default_rng(seed)``, which draws the weights and then every epoch's order.
One JSON line per run goes to ``--out`` (appended): the run, the seed, the accuracy after every epoch, the best
and the last, and the wall time. Run with one BLAS thread, e.g.

    OPENBLAS_NUM_THREADS=1 nice -n 10 python examples/nielsen_chapter3.py --runs all --seeds 0-9 --out ch3.jsonl

and summarise a file with ``--summary ch3.jsonl``. ``--epochs 2`` stops each run early, for a first look (the
book's figures need the full count).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

import numpy as np

from tinygrad_edu import datasets
from tinygrad_edu.manual import network2


@dataclass(frozen=True)
class Run:
    sizes: tuple[int, ...]
    epochs: int
    eta: float
    lmbda: float
    init: str            # "large": chapter 1's N(0, 1); "default": N(0, 1/n_in)
    train: int           # the first `train` training images
    evaluation: str      # "test" or "validation"
    book: str            # the book's figure for this command, as it prints it


RUNS: dict[str, Run] = {
    "ce30": Run((784, 30, 10), 30, 0.5, 0.0, "large", 50_000, "test", "95.49%"),
    "ce100": Run((784, 100, 10), 30, 0.5, 0.0, "large", 50_000, "test", "96.82%"),
    "overfit1000": Run((784, 30, 10), 400, 0.5, 0.0, "large", 1_000, "test", "peak 82.27%"),
    "l2_1000": Run((784, 30, 10), 400, 0.5, 0.1, "large", 1_000, "test", "peak 87.1%"),
    "l2_30": Run((784, 30, 10), 30, 0.5, 5.0, "large", 50_000, "test", "96.49%"),
    "l2_100": Run((784, 100, 10), 30, 0.5, 5.0, "large", 50_000, "validation", "97.92%"),
    "l2_100_60": Run((784, 100, 10), 60, 0.1, 5.0, "large", 50_000, "validation", "98.04%"),
    "init_large": Run((784, 30, 10), 30, 0.1, 5.0, "large", 50_000, "validation",
                      "somewhat over 96%; under 87% after epoch 0"),
    "init_default": Run((784, 30, 10), 30, 0.1, 5.0, "default", 50_000, "validation",
                        "somewhat over 96%; almost 93% after epoch 0"),
}


def run(name: str, seed: int, epochs: int | None = None) -> dict:
    spec = RUNS[name]
    epochs = spec.epochs if epochs is None else min(epochs, spec.epochs)
    data = datasets.load_mnist()
    evaluation = (data.test_x, data.test_y) if spec.evaluation == "test" else (data.val_x, data.val_y)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    net = network2.Network(list(spec.sizes), rng=rng, init=spec.init)
    history = net.SGD(data.train_x[:spec.train], data.train_y[:spec.train], epochs, 10, spec.eta,
                      lmbda=spec.lmbda, evaluation=evaluation, rng=rng)
    accuracy = history["evaluation_accuracy"]
    return {"run": name, "seed": seed, "epochs": epochs, "book": spec.book, "evaluation": spec.evaluation,
            "best": max(accuracy), "last": accuracy[-1], "accuracy": accuracy,
            "seconds": round(time.perf_counter() - start, 1)}


def summary(path: str) -> None:
    rows: dict[str, list[dict]] = {}
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            row = json.loads(line)
            rows.setdefault(row["run"], []).append(row)
    for name, found in rows.items():
        found.sort(key=lambda r: r["seed"])
        last = [100 * r["last"] for r in found]
        best = [100 * r["best"] for r in found]
        short = {r["epochs"] for r in found if r.get("epochs", RUNS[name].epochs) < RUNS[name].epochs}
        note = f"  (stopped early: {', '.join(map(str, sorted(short)))} epochs)" if short else ""
        print(f"{name:13} book {RUNS[name].book:45} {len(found)} seeds  last {min(last):.2f}-{max(last):.2f}  "
              f"best {min(best):.2f}-{max(best):.2f}  epoch 0 {min(100 * r['accuracy'][0] for r in found):.2f}-"
              f"{max(100 * r['accuracy'][0] for r in found):.2f}  ({sum(r['seconds'] for r in found):.0f} s){note}")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return int(text)


def _seeds(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="all", help=f"comma-separated, or all: {', '.join(RUNS)}")
    parser.add_argument("--seeds", type=_seeds, default=[0], help="e.g. 0-9 or 0,3,5 (default 0)")
    parser.add_argument("--epochs", type=_positive, default=None, metavar="N",
                        help="stop each run after N epochs, for a first look (default, and at most: the book's "
                             "count for that run)")
    parser.add_argument("--out", default=None, help="append one JSON line per run to this file")
    parser.add_argument("--summary", metavar="FILE", default=None, help="summarise a file written by --out")
    args = parser.parse_args(argv)
    if args.summary:
        summary(args.summary)
        return 0
    names = list(RUNS) if args.runs == "all" else args.runs.split(",")
    for name in names:
        for seed in args.seeds:
            row = run(name, seed, args.epochs)
            print(f"{name} seed {seed}, {row['epochs']} epochs: last {row['last']:.2%}, best {row['best']:.2%} "
                  f"({row['seconds']} s)", flush=True)
            if args.out:
                with open(args.out, "a", encoding="utf-8") as stream:
                    stream.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
