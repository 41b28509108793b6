"""The mnist3 tutorial: the 3-layer MNIST net (784-64-64-10, sigmoid, no biases), reproduced with the engine.

Run: python examples/mnist3.py [--epochs 5] [--lr 0.5] [--batch-size 64]

The tutorial's output delta is (a3 - y) / n, the gradient of the sigmoid outputs' cross-entropy:
``losses.sigmoid_cross_entropy``. First the compare table against the hand-derived backprop of
``tinygrad_edu.manual.mnist3``, then mini-batch training on the 50,000 training images (the tutorial updates on
the whole set at once; mini-batches get there in far fewer passes), printing the test accuracy per epoch.
"""

from __future__ import annotations

import argparse

from tinygrad_edu import datasets, losses, nn, optim
from tinygrad_edu.train import fit
from tinygrad_edu.tutorials import compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(compare("mnist3"), end="\n\n")
    mnist = datasets.load_mnist()
    # np.random.randn weights, no biases, sigmoid after every layer: the tutorial's network
    model = nn.MLP([784, 64, 64, 10], activation="sigmoid", bias=False, rng=args.seed)

    def report(epoch: int, history: dict[str, list[float]]) -> None:
        print(f"epoch {epoch - 1}: loss {history['loss'][-1]:.4f}, "
              f"test accuracy {history['test_accuracy'][-1]:.2%}", flush=True)

    fit(model, losses.sigmoid_cross_entropy, optim.SGD(model.parameters(), lr=args.lr),
        (mnist.train_x, datasets.one_hot(mnist.train_y)), epochs=args.epochs, batch_size=args.batch_size,
        rng=args.seed, test=(mnist.test_x, mnist.test_y), progress=False, on_epoch=report)


if __name__ == "__main__":
    main()
