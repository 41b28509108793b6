"""The logreg tutorial: logistic regression on the cat pictures (12288 inputs, one sigmoid unit), with the engine.

Run: python examples/logreg.py [--iterations 2000] [--lr 0.005]

Zero initialisation, full-batch gradient descent, the tutorial's equations (1)-(9). The published figures for
this setup are 99.04% train and 70.0% test accuracy. The engine twin is ``nn.Linear(12288, 1)`` followed by
a sigmoid, trained on ``losses.binary_cross_entropy``; the hand-written ``tinygrad_edu.manual.logreg`` runs
beside it.
"""

from __future__ import annotations

import argparse

import numpy as np

from tinygrad_edu import Tensor, datasets, losses, nn, optim
from tinygrad_edu.manual import logreg
from tinygrad_edu.train import accuracy
from tinygrad_edu.tutorials import compare, to_reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=0.005)
    args = parser.parse_args()

    print(compare("logreg"), end="\n\n")
    cats = datasets.load_catvnoncat()
    y_train = cats.train_y.reshape(-1, 1).astype(np.float64)
    model = nn.MLP([12288, 1], activation="sigmoid", init="zeros")  # w = 0, b = 0, as the tutorial
    optimizer = optim.SGD(model.parameters(), lr=args.lr)
    x = Tensor(cats.train_x)
    for i in range(args.iterations):
        optimizer.zero_grad()
        cost = losses.binary_cross_entropy(model(x), y_train)
        cost.backward()
        optimizer.step()
        if i % 100 == 0:
            print(f"Cost after iteration {i}: {cost.item():.6f}")
    train = accuracy(model(Tensor(cats.train_x)).data, cats.train_y)
    test = accuracy(model(Tensor(cats.test_x)).data, cats.test_y)
    print(f"engine:  train accuracy {train:.2%}, test accuracy {test:.2%}")
    by_hand = logreg.model(cats.train_x.T, cats.train_y.reshape(1, -1), cats.test_x.T, cats.test_y.reshape(1, -1),
                           num_iterations=args.iterations, learning_rate=args.lr)
    print(f"by hand: train accuracy {by_hand['train_accuracy']:.2%}, test accuracy {by_hand['test_accuracy']:.2%}")
    weight = to_reference("logreg", model.state_dict())["w"]
    print(f"largest difference between the two w: {float(np.max(np.abs(weight - by_hand['w']))):.1e}")


if __name__ == "__main__":
    main()
