"""The lnet tutorial: the L-layer network kept in a params dict (W1, b1, ...), with the engine.

Run: python examples/lnet.py [--iterations 2500] [--lr 0.0075] [--dims 12288,20,7,5,1]

The tutorial's network: sigmoid layers, the cross-entropy cost J = -1/m sum [Y log AL + (1 - Y) log(1 - AL)],
parameters drawn as randn * 0.01 with zero biases, full-batch gradient descent on the cat pictures. Both
forms start from the same params dict (``tinygrad_edu.manual.lnet.init_params``); the engine twin is an
``nn.MLP`` whose weights are the transposes (one sample per row instead of per column).
"""

from __future__ import annotations

import argparse

import numpy as np

from tinygrad_edu import Tensor, datasets, losses, nn, optim
from tinygrad_edu.manual import lnet
from tinygrad_edu.train import accuracy
from tinygrad_edu.tutorials import compare, to_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2500)
    parser.add_argument("--lr", type=float, default=0.0075)
    parser.add_argument("--dims", default="12288,20,7,5,1")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    dims = [int(d) for d in args.dims.split(",")]

    print(compare("lnet"), end="\n\n")
    cats = datasets.load_catvnoncat()
    y = cats.train_y.reshape(-1, 1).astype(np.float64)
    params = lnet.init_params(dims, args.seed)
    model = nn.MLP(dims, activation="sigmoid")
    model.load_state_dict(to_engine("lnet", params))  # W1 -> layers.0.weight (transposed), b1 -> layers.0.bias
    optimizer = optim.SGD(model.parameters(), lr=args.lr)
    x = Tensor(cats.train_x)
    for i in range(args.iterations):
        optimizer.zero_grad()
        cost = losses.binary_cross_entropy(model(x), y)
        cost.backward()
        optimizer.step()
        if i % 100 == 0:
            print(f"Cost after iteration {i}: {cost.item():.6f}")
    train = accuracy(model(Tensor(cats.train_x)).data, cats.train_y)
    test = accuracy(model(Tensor(cats.test_x)).data, cats.test_y)
    print(f"train accuracy {train:.2%}, test accuracy {test:.2%}")


if __name__ == "__main__":
    main()
