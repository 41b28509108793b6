"""The xor tutorial: the 2-layer XOR net (3-4-1, sigmoid, no biases, sum of squared errors), with the engine.

Run: python examples/xor.py [--epochs 1500]

The tutorial's update line ``self.weights1 = d_weights1 + 1`` is a typo for ``self.weights1 += d_weights1``
(its d_weights are already the descent direction, so the learning rate is 1). The engine twin trains with
plain gradient descent at lr 1, which is that ``+=``; the last lines show what the typo does instead.
"""

from __future__ import annotations

import argparse

import numpy as np

from tinygrad_edu import Tensor, datasets, losses, nn, optim
from tinygrad_edu.manual import xor
from tinygrad_edu.tutorials import compare, to_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(compare("xor"), end="\n\n")
    x, y = datasets.xor()
    start = xor.init_params(args.seed)  # uniform [0, 1) weights, like the tutorial's np.random.rand
    model = nn.MLP([3, 4, 1], activation="sigmoid", bias=False)
    model.load_state_dict(to_engine("xor", start))
    optimizer = optim.SGD(model.parameters(), lr=1.0)
    for _ in range(args.epochs):
        optimizer.zero_grad()
        losses.sum_squared_error(model(Tensor(x)), y).backward()
        optimizer.step()
    output = model(Tensor(x)).data
    print("engine output after", args.epochs, "epochs:", output.ravel().round(3).tolist())
    _, by_hand = xor.train(x, y, epochs=args.epochs, params=start, rng=args.seed)
    print("by hand (weights += d_weights):  ", by_hand.ravel().round(3).tolist())
    print(f"largest difference: {float(np.max(np.abs(output - by_hand))):.2g}")
    _, typo = xor.train_with_typo(x, y, epochs=args.epochs, params=start, rng=args.seed)
    print("with the typo (weights = d_weights + 1):", typo.ravel().round(3).tolist(), "(not XOR)")


if __name__ == "__main__":
    main()
