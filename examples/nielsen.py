"""The nielsen tutorial: Nielsen's Network([784, 30, 10]) with mini-batch SGD, reproduced with the engine.

Run: python examples/nielsen.py [--epochs 30] [--hidden 30] [--eta 3.0]

First the compare table (the engine's gradients against the hand-derived backprop of
``tinygrad_edu.manual.nielsen``), then training as in the tutorial: one ``Epoch k: correct / 10000`` line per
epoch on the test images (the book reports 95.42% best for 30 hidden units, 96.59% for 100).
"""

from __future__ import annotations

import argparse

from tinygrad_edu import datasets, losses, nn, optim
from tinygrad_edu.train import epoch_report, fit
from tinygrad_edu.tutorials import compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=30)
    parser.add_argument("--eta", type=float, default=3.0)
    parser.add_argument("--cost", choices=["quadratic", "cross_entropy"], default="quadratic")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(compare("nielsen"), end="\n\n")
    mnist = datasets.load_mnist()
    model = nn.MLP([784, args.hidden, 10], activation="sigmoid", rng=args.seed)  # N(0, 1) init, as the tutorial
    cost = losses.quadratic_cost if args.cost == "quadratic" else losses.sigmoid_cross_entropy
    history = fit(model, cost, optim.SGD(model.parameters(), lr=args.eta),
                  (mnist.train_x, datasets.one_hot(mnist.train_y)), epochs=args.epochs, batch_size=10,
                  rng=args.seed, test=(mnist.test_x, mnist.test_y), progress=False,
                  on_epoch=epoch_report(len(mnist.test_x)))
    print(f"best test accuracy: {max(history['test_accuracy']):.2%}")


if __name__ == "__main__":
    main()
