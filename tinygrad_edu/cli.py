"""The ``tinygrad-edu`` command line (also ``python -m tinygrad_edu``).

Commands: ``demo`` (the main job), ``train``, ``compare``, ``check``, ``graph`` and ``bench``; ``--help`` on each.
A bare ``tinygrad-edu`` prints the list; ``--version`` the version.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .nn import MLP
    from .tensor import Tensor

__all__ = ["main", "TUTORIAL_HELP"]


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"sizes must be comma-separated integers like 784,30,10; got {text!r}") from None
    if len(sizes) < 2 or sizes[0] != 784 or sizes[-1] != 10 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"sizes for MNIST start with 784 (28x28 pixels) and end with 10 (digits), e.g. 784,30,10; got {text!r}")
    return sizes


TUTORIAL_HELP = {
    "mnist3": "3-layer MNIST net 784-64-64-10, sigmoid, no biases, cross-entropy (a course's numpy net)",
    "nielsen": "Nielsen's Network([784, 30, 10]): sigmoid, quadratic cost, mini-batch SGD (his book, ch. 1-2)",
    "xor": "2-layer XOR net 3-4-1, sigmoid, no biases, sum of squared errors (a blog post's numpy net)",
    "lnet": "L-layer net [12288, 20, 7, 5, 1] on the cat pictures, params in a dict with caches (the course)",
    "logreg": "logistic regression on the cat pictures: 12288 inputs, one sigmoid unit (the course, week 2)",
    "network2": "Nielsen's network2 [784, 30, 10]: cross-entropy, L2 weight decay, N(0, 1/n_in) start (his ch. 3)",
    "reg_l2": "the course's 3-layer ReLU net [2, 20, 3, 1] on the circles with L2 (its Regularization)",
    "reg_dropout": "the same net with inverted dropout on both hidden layers, keep_prob 0.86 (its Regularization)",
    "opt_momentum": "the course's ReLU net [2, 5, 2, 1] on the moons, momentum (its Optimization methods)",
    "opt_adam": "the same net, Adam with bias correction (its Optimization methods)",
    "gradcheck": "the course's gradient-checking net [4, 5, 3, 1] on its three examples (its Gradient Checking)",
    "conv_loops": "conv 5x5 + ReLU + max-pool + dense on MNIST, backprop by hand in loops (the course, course 4)",
    "conv_im2col": "the same conv net, its backprop by hand vectorised with im2col / col2im",
    "batchnorm": "batch-norm MLP 784-64-32-10: linear, batch norm, sigmoid (Ioffe and Szegedy 2015; manual.batchnorm)",
}
"""One line per tutorial key for ``compare --help`` and ``graph --help`` (``tutorials.TUTORIALS`` holds the
networks)."""

_NO_PROGRESS = "no progress bar: plain lines only, e.g. for a log file (the epoch lines are printed either way)"


def _tutorial_list(extra: dict[str, str] | None = None) -> str:
    lines = [f"  {key:12} {text}" for key, text in {**TUTORIAL_HELP, **(extra or {})}.items()]
    return "tutorials:\n" + "\n".join(lines)


def _positive(kind: type) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
        return value

    return parse


def _train_mnist(sizes: list[int], epochs: int, batch_size: int, lr: float, cost: str, seed: int,
                 dtype: type, init: str, limit: int | None, progress: bool, *, optimizer: str = "sgd",
                 momentum: float = 0.0, checkpoint: str | None = None, resume: bool = False,
                 describe: Callable[[int], str] | None = None, lmbda: float = 0.0, dropout: float = 0.0,
                 patience: int | None = None, schedule: str | None = None,
                 batchnorm: bool = False) -> tuple[MLP, dict[str, list[float]]]:
    """Nielsen-style training on the bundled MNIST, printing ``Epoch k: correct / n`` like the tutorial.

    With ``checkpoint`` the state is saved after every epoch; ``resume`` continues from it (``train.fit``).
    ``describe(number of training images)`` gives a line to print before training starts. ``lmbda`` adds
    Nielsen's L2 penalty lmbda / (2n) sum w^2 (n: the training images); ``dropout`` puts ``Dropout(p)`` after the
    hidden layers; ``patience`` and ``schedule`` (see ``_schedule``) go to ``fit``. ``batchnorm`` puts a batch
    norm between each hidden linear layer and its activation (``nn.MLP(..., batchnorm=True)``).
    """
    from . import datasets, losses, nn, optim
    from .train import epoch_report, fit

    data = datasets.load_mnist(dtype=dtype)
    train_x, train_y = data.train_x[:limit], datasets.one_hot(data.train_y[:limit], dtype=dtype)
    if describe is not None:
        print(describe(len(train_x)), flush=True)
    model = nn.MLP(sizes, activation="sigmoid", init=init, rng=seed, dtype=dtype, dropout=dropout,
                   batchnorm=batchnorm)
    # Nielsen's two costs: quadratic, and cross-entropy on the sigmoid outputs (averaged over the batch)
    cost_fn = losses.quadratic_cost if cost == "quadratic" else losses.sigmoid_cross_entropy
    n = len(train_x)

    def loss_fn(prediction: Tensor, target: Any) -> Tensor:
        value = cost_fn(prediction, target)
        return value + losses.l2_penalty(model, lmbda, n) if lmbda else value
    if optimizer == "adam":
        chosen: optim.Optimizer = optim.Adam(model.parameters(), lr=lr)
    else:
        chosen = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    history = fit(model, loss_fn, chosen, (train_x, train_y), epochs=epochs, batch_size=batch_size,
                  rng=seed, test=(data.test_x, data.test_y), progress=progress,
                  on_epoch=epoch_report(len(data.test_x)), checkpoint=checkpoint, resume=resume,
                  patience=patience, schedule=_schedule(schedule, lr), settings={"lmbda": lmbda, "dropout": dropout})
    return model, history


SCHEDULES = "nielsen[:N] (halve the rate after N epochs without a better test accuracy, 10 by default; stop below " \
            "1/128 of it) or decay:RATE[:INTERVAL] (the course's lr / (1 + RATE floor(epoch / INTERVAL)), INTERVAL 1 " \
            "by default)"


def _schedule(text: str | None, lr: float) -> Any:
    """``--schedule`` as a ``schedules`` function starting from ``lr``, or None; ValueError for anything else."""
    from . import schedules

    if text is None:
        return None
    name, _, rest = text.partition(":")
    parts = rest.split(":") if rest else []
    try:
        if name == "nielsen" and len(parts) <= 1:
            return schedules.nielsen_halving(lr, n=int(parts[0]) if parts else 10)
        if name == "decay" and 1 <= len(parts) <= 2:
            return schedules.course_decay(lr, decay_rate=float(parts[0]),
                                          interval=int(parts[1]) if len(parts) == 2 else 1)
    except ValueError as error:
        raise ValueError(f"--schedule {text}: {error}") from None
    raise ValueError(f"--schedule {text}: expected {SCHEDULES}.")


def _demo(args: argparse.Namespace) -> int:
    from . import tutorials

    out = args.out
    os.makedirs(out, exist_ok=True)
    print("tinygrad_edu demo: Nielsen's network [784, 30, 10] on the bundled MNIST\n")
    print("1. The engine's gradients against the hand-derived backprop of every tutorial (float64):\n")
    result = tutorials.compare("nielsen", steps=3)
    print(result, end="\n\n")
    width = max(map(len, tutorials.TUTORIALS))
    for key in tutorials.TUTORIALS:
        if key != "nielsen":
            other = tutorials.compare(key, steps=3)
            print(f"   {key:{width}} {'agree' if other.ok else 'DISAGREE'}: worst relative error {other.worst:.1e}")
    print(f"\n2. Training for {args.epochs} epochs (mini-batch 10, eta 3.0, quadratic cost):\n")
    start = time.perf_counter()
    _, history = _train_mnist([784, 30, 10], args.epochs, 10, 3.0, "quadratic", args.seed, np.float64,
                              "normal", None, progress=not args.no_progress)
    print(f"   best test accuracy {max(history['test_accuracy']):.2%} in {time.perf_counter() - start:.0f} s")
    print("\n3. Pictures of the first training step (from the initial weights) and of the training:\n")
    paths = _pictures(args.seed, history, out)
    for path in paths:
        print(f"   {path}")
    return 0 if result.ok else 1


def _pictures(seed: int, history: dict[str, list[float]], out: str) -> list[str]:
    """The graph of the first training step, its backprop step-through, and the training curves (if possible).

    The step is drawn from the initial weights (the network the training started from, made again from
    ``seed``), where the gradients' heat-maps show a pattern to read; drawn after the training, they came out
    all white.
    """
    from . import datasets, losses, nn, tutorials
    from .tensor import Tensor

    paths: list[str] = []
    try:
        from .visualize import draw, stepthrough
    except ImportError as error:  # the visualize package is optional at run time
        print(f"   (no pictures: {error})")
        return paths
    data = datasets.load_mnist()
    x, y = data.train_x[:10], datasets.one_hot(data.train_y[:10])
    model = nn.MLP([784, 30, 10], activation="sigmoid", rng=seed)  # as _train_mnist makes it, before training
    loss = losses.quadratic_cost(tutorials.named_forward("nielsen", model, x), Tensor(y, name="y"))
    loss.backward()
    graph_path = os.path.join(out, "nielsen_graph.svg")
    draw(loss, path=graph_path, params=model)
    paths.append(graph_path)
    html_path = os.path.join(out, "nielsen_backprop.html")
    stepthrough(loss, path=html_path, params=model)
    paths.append(html_path)
    try:
        from .visualize import plot_history

        curve_path = os.path.join(out, "nielsen_history.png")
        plot_history(history, curve_path)
        paths.append(curve_path)
    except ImportError:
        print("   (training curves need matplotlib: pip install 'tinygrad_edu[plot]')")
    return paths


def _settings(args: argparse.Namespace, lr: float, images: int) -> str:
    """The run's settings in one line, printed before it starts (a log then says what produced it)."""
    optimizer = args.optimizer + (f" with momentum {args.momentum:g}" if args.momentum else "")
    epochs = f"{args.epochs} epoch" + ("s" if args.epochs != 1 else "")
    line = (f"Training {args.sizes} on {images} MNIST images for {epochs}: mini-batch "
            f"{args.batch_size}, {optimizer}, lr {lr:g}, {args.cost} cost, init {args.init}, seed {args.seed}, "
            f"{args.dtype}")
    extras = [f"lmbda {args.lmbda:g}" if args.lmbda else "", f"dropout {args.dropout:g}" if args.dropout else "",
              f"patience {args.patience}" if args.patience else "",
              f"schedule {args.schedule}" if args.schedule else "",
              "batch norm after each hidden linear layer" if args.batchnorm else ""]
    line += "".join(f", {extra}" for extra in extras if extra)
    if args.checkpoint:
        line += f", checkpoint {args.checkpoint}" + (" (resuming)" if args.resume else "")
    return line


def _train_convnet(args: argparse.Namespace) -> int:
    """``train --net conv`` (or conv2, conv2_relu): Nielsen's chapter-6 network, as ``convnet.train`` runs it."""
    from . import convnet

    mlp_only = {"--sizes": args.sizes != [784, 30, 10], "--optimizer": args.optimizer != "sgd",
                "--momentum": args.momentum != 0, "--cost": args.cost != "quadratic", "--init": args.init != "normal",
                "--lmbda": args.lmbda != 0, "--dropout": args.dropout != 0, "--patience": args.patience is not None,
                "--schedule": args.schedule is not None, "--checkpoint": args.checkpoint is not None,
                "--resume": args.resume, "--batchnorm": args.batchnorm}
    refused = [flag for flag, given in mlp_only.items() if given]
    if refused:
        verb = "sets" if len(refused) == 1 else "set"
        print(f"tinygrad-edu train: {', '.join(refused)} {verb} the MLP's training; --net {args.net} trains Nielsen's "
              f"chapter-6 network as his network3.py does (plain SGD, softmax and log-likelihood, his initial "
              f"weights; conv2_relu with his L2 term), without checkpoints. Leave "
              f"{'it' if len(refused) == 1 else 'them'} out.", file=sys.stderr)
        return 2
    lr = args.lr if args.lr is not None else convnet.SETTINGS[args.net][0]
    epochs = f"{args.epochs} epoch" + ("s" if args.epochs != 1 else "")
    print(f"Training Nielsen's chapter-6 network {args.net!r} on {args.limit or 50_000} MNIST images for {epochs}: "
          f"mini-batch {args.batch_size}, sgd, lr {lr:g}, seed {args.seed}, {args.dtype}", flush=True)
    # its last line: the test accuracy at the epoch of the best validation accuracy, as the book reports it
    convnet.train(args.net, epochs=args.epochs, batch_size=args.batch_size, lr=lr, seed=args.seed,
                  dtype=np.float32 if args.dtype == "float32" else np.float64, limit=args.limit,
                  progress=not args.no_progress)
    return 0


def _train(args: argparse.Namespace) -> int:
    from .train import CheckpointError

    if args.net != "mlp":
        return _train_convnet(args)

    if args.resume and not args.checkpoint:
        print("tinygrad-edu train: --resume needs --checkpoint PATH, the file to continue from.", file=sys.stderr)
        return 2
    if args.momentum < 0 or (args.momentum and args.optimizer != "sgd"):
        print(f"tinygrad-edu train: --momentum takes a number >= 0 (got {args.momentum}), for --optimizer sgd only.",
              file=sys.stderr)
        return 2
    if args.lmbda < 0 or not 0 <= args.dropout < 1:
        print(f"tinygrad-edu train: --lmbda takes a number >= 0 (got {args.lmbda}) and --dropout a drop probability "
              f"in [0, 1) (got {args.dropout}).", file=sys.stderr)
        return 2
    dtype = np.float32 if args.dtype == "float32" else np.float64
    lr = args.lr if args.lr is not None else (3.0 if args.optimizer == "sgd" else 1e-3)
    if args.batchnorm:
        from .datasets import load_mnist

        images = len(load_mnist(dtype=dtype).train_x[:args.limit])
        if images % args.batch_size == 1:
            print(f"tinygrad-edu train: with --batchnorm, {images} images in mini-batches of {args.batch_size} "
                  f"leave a last mini-batch of 1 image, and batch norm cannot normalise one sample by its own "
                  f"statistics; choose another --batch-size or --limit.", file=sys.stderr)
            return 2
    try:
        _schedule(args.schedule, lr)
    except ValueError as error:
        print(f"tinygrad-edu train: {error}", file=sys.stderr)
        return 2
    try:
        _, history = _train_mnist(args.sizes, args.epochs, args.batch_size, lr, args.cost, args.seed, dtype,
                                  args.init, args.limit, progress=not args.no_progress, optimizer=args.optimizer,
                                  momentum=args.momentum, checkpoint=args.checkpoint, resume=args.resume,
                                  describe=lambda images: _settings(args, lr, images), lmbda=args.lmbda,
                                  dropout=args.dropout, patience=args.patience, schedule=args.schedule,
                                  batchnorm=args.batchnorm)
    except CheckpointError as error:
        print(f"tinygrad-edu train: {error}", file=sys.stderr)
        return 2
    print(f"best test accuracy {max(history['test_accuracy']):.2%}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from . import tutorials

    keys = list(tutorials.TUTORIALS) if args.tutorial == "all" else [args.tutorial]
    ok = True
    for key in keys:
        result = tutorials.compare(key, steps=args.steps)
        print(result, end="\n\n")
        ok = ok and result.ok
    return 0 if ok else 1


def _check(args: argparse.Namespace) -> int:
    """Run a learner's file that defines ``params``, ``manual`` and ``loss``; print check_backprop's report.

    Exit 0 only when every gradient and the cost agree: 1 when they disagree, 2 when the file cannot be
    checked (it exits, raises or lacks a name while loading, or its manual or loss raises).
    """
    import runpy
    import traceback

    from .check import CodeError, check_backprop

    path = os.path.abspath(args.file)
    if not os.path.isfile(path):
        print(f"tinygrad-edu check: no file {args.file!r}.", file=sys.stderr)
        return 2
    sys.path.insert(0, os.path.dirname(path))  # so the file can import its neighbours, as `python FILE` would
    try:
        # NOTE: not run as "__main__": a training loop under `if __name__ == "__main__":` stays asleep.
        names = runpy.run_path(path, run_name="__tinygrad_edu_check__")
    except (Exception, SystemExit) as error:  # a file that exits or raises while loading never passes
        frames = [f for f in traceback.extract_tb(error.__traceback__) if os.path.abspath(f.filename) == path]
        where = f" at line {frames[-1].lineno}: `{(frames[-1].line or '').strip()}`" if frames else ""
        what = (f"called sys.exit({error.code!r})" if isinstance(error, SystemExit) else
                f"raised {type(error).__name__}: {error}")
        print(f"tinygrad-edu check: {args.file} {what} while loading{where}. The check runs the file's top level "
              f"to find params, manual and loss: put a script's own work under `if __name__ == \"__main__\":`.",
              file=sys.stderr)
        return 2
    finally:
        sys.path.remove(os.path.dirname(path))
    missing = [name for name in ("params", "manual", "loss") if name not in names]
    if missing:
        print(f"tinygrad-edu check: {args.file} does not define {', '.join(missing)}. The file must define "
              f"params (a dict of name -> numpy array), manual(params) (your backprop: returns the gradients "
              f"as a dict, or (cost, grads)) and loss(t) (the same cost written with engine operators on the "
              f"dict of Tensors t).", file=sys.stderr)
        return 2
    try:
        report = check_backprop(names["manual"], names["loss"], names["params"], tolerance=args.tolerance)
    except CodeError as error:  # the learner's own code raised: say which function, what and where
        print(f"tinygrad-edu check: {error}", file=sys.stderr)
        return 2
    except (KeyError, ValueError, TypeError) as error:  # a mistake in the gradients' keys, shapes or form
        print(f"tinygrad-edu check: {error.args[0] if error.args else error}", file=sys.stderr)
        return 1
    print(report)
    return 0 if report.ok else 1


def _graph(args: argparse.Namespace) -> int:
    from . import tutorials
    from .visualize.cli import graph_command

    twin = tutorials.build(args.tutorial)
    loss = twin.engine_loss(twin.model)
    loss.backward()
    try:
        paths = graph_command(loss, args.output, html=args.html, params=twin.model)
    except ValueError as error:
        print(f"tinygrad-edu graph: {error}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


def _parser() -> argparse.ArgumentParser:
    from . import __version__, bench, convnet, tutorials

    parser = argparse.ArgumentParser(prog="tinygrad-edu", description="A small autograd engine on numpy.",
                                     epilog="Start with `tinygrad-edu demo`; `tinygrad-edu COMMAND --help` "
                                            "explains each command.")
    parser.add_argument("--version", action="version", version=f"tinygrad-edu {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser("demo", help="the main job: compare with the hand-derived backprop, train "
                                            "Nielsen's net on MNIST, draw its graph",
                               description="The main job: the engine's gradients against the hand-derived "
                                           "backprop of every tutorial, Nielsen's network trained on the bundled "
                                           "MNIST, and pictures of one training step.")
    demo.add_argument("--epochs", type=_positive(int), default=5, help="training epochs (default 5)")
    demo.add_argument("--out", default="out", help="folder for the pictures (default ./out)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS)
    demo.set_defaults(run=_demo)

    train = commands.add_parser("train", help="train an MNIST MLP (Nielsen-style, sigmoid, SGD), or his conv net",
                                description="Train a sigmoid MLP on the bundled MNIST as in Nielsen's book, "
                                            "printing `Epoch k: correct / 10000` after each epoch; with --net conv "
                                            "his chapter-6 convolutional network, printing its validation and test "
                                            "accuracy after each epoch.")
    train.add_argument("--net", choices=["mlp", *convnet.LAYOUTS], default="mlp",
                       help="mlp (the MLP of --sizes); conv: Nielsen's ch. 6 conv-pool net, 20 filters 5x5, 2x2 "
                            "max-pool, 100 sigmoid units, softmax (98.78%% in the book after 60 epochs); conv2: two "
                            "conv-pool layers (99.06%%); conv2_relu: with ReLU and L2 (99.23%%) (default mlp)")
    train.add_argument("--sizes", type=_sizes, default=[784, 30, 10], help="layer sizes (default 784,30,10)")
    train.add_argument("--epochs", type=_positive(int), default=30,
                       help="passes over the training set, numbered from 0 as in Nielsen's book (default 30)")
    train.add_argument("--batch-size", type=_positive(int), default=10,
                       help="images per mini-batch, one step each (default 10)")
    train.add_argument("--lr", type=_positive(float), default=None,
                       help="learning rate eta (default 3.0 for sgd, 0.001 for adam; for --net conv and conv2 "
                            "0.1, conv2_relu 0.03, as in the book)")
    train.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd",
                       help="sgd, as Nielsen's book, or adam (default sgd)")
    train.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (default 0: plain SGD)")
    train.add_argument("--cost", choices=["quadratic", "cross_entropy"], default="quadratic",
                       help="quadratic (book ch. 1) or cross_entropy on the sigmoid outputs (ch. 3) "
                            "(default quadratic)")
    train.add_argument("--init", choices=["normal", "nielsen", "xavier", "he"], default="normal",
                       help="initial weights: normal = N(0, 1) as in ch. 1; nielsen = N(0, 1/fan_in) as in "
                            "ch. 3; xavier = Glorot uniform; he = N(0, 2/fan_in) (default normal)")
    train.add_argument("--batchnorm", action="store_true",
                       help="a batch norm between each hidden linear layer and its activation (those layers then "
                            "have no bias: batch norm's beta takes its place); evaluation uses its running "
                            "statistics")
    train.add_argument("--seed", type=int, default=0,
                       help="random seed for the initial weights and the batch order (default 0)")
    train.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                       help="floating-point type of data and weights; float32 is faster (default float64)")
    train.add_argument("--limit", type=_positive(int), default=None, help="use only the first N training images")
    train.add_argument("--lmbda", type=float, default=0.0, metavar="L",
                       help="L2 regularisation: add L / (2n) * sum of squared weights to the cost, n the training "
                            "images (Nielsen's ch. 3, e.g. 5.0; default 0)")
    train.add_argument("--dropout", type=float, default=0.0, metavar="P",
                       help="drop each hidden unit with probability P while training (default 0)")
    train.add_argument("--patience", type=_positive(int), default=None, metavar="N",
                       help="stop after N epochs without a better test accuracy (Nielsen's no-improvement-in-N)")
    train.add_argument("--schedule", default=None, metavar="SCHEDULE",
                       help=f"learning-rate schedule: {SCHEDULES}")
    train.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS)
    train.add_argument("--checkpoint", metavar="PATH", default=None,
                       help="save the whole training state to PATH (.npz), atomically, after every epoch")
    train.add_argument("--resume", action="store_true",
                       help="continue from --checkpoint PATH at the next epoch; with the same arguments the run "
                            "ends bit for bit as an uninterrupted one")
    train.set_defaults(run=_train)

    comp = commands.add_parser("compare", help="engine gradients vs the hand-derived backprop of a tutorial",
                               description="Compare the engine's gradients with the hand-derived backprop of "
                                           "a tutorial network.",
                               epilog=_tutorial_list({"all": "every tutorial above, one after the other"}),
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    comp.add_argument("tutorial", choices=[*tutorials.TUTORIALS, "all"], metavar="TUTORIAL",
                      help=f"which tutorial: {', '.join(tutorials.TUTORIALS)} or all (listed below)")
    comp.add_argument("--steps", type=int, default=3, help="SGD steps before comparing parameters (default 3)")
    comp.set_defaults(run=_compare)

    check = commands.add_parser("check", help="check the backprop you derived by hand: FILE.py defines params, "
                                              "manual(params) and loss(t)",
                                description="Check the backprop you derived by hand against the engine's: "
                                            "FILE.py defines params, manual(params) and loss(t); exit 0 when "
                                            "every gradient agrees.")
    check.add_argument("file", metavar="FILE.py", help="a Python file defining params, manual and loss")
    check.add_argument("--tolerance", type=_positive(float), default=None,
                       help="largest relative error that agrees (default: 1e-10 for float64 parameters, 1e-4 for "
                            "float32)")
    check.set_defaults(run=_check)

    graph = commands.add_parser("graph", help="draw the computation graph of one step of a tutorial network",
                                description="Draw the computation graph of one training step of a tutorial "
                                            "network, its tensors named as the tutorial names them.",
                                epilog=_tutorial_list(), formatter_class=argparse.RawDescriptionHelpFormatter)
    graph.add_argument("tutorial", choices=list(tutorials.TUTORIALS), metavar="TUTORIAL",
                       help=f"which tutorial: {', '.join(tutorials.TUTORIALS)} (listed below)")
    graph.add_argument("-o", "--output", default="graph.svg", help="output file (default graph.svg)")
    graph.add_argument("--html", action="store_true", help="also write the backprop step-through page")
    graph.set_defaults(run=_graph)

    bench_cmd = commands.add_parser("bench", help="speed and memory against hand-written numpy and PyTorch",
                                    description=bench.DESCRIPTION)
    bench.add_arguments(bench_cmd)
    bench_cmd.set_defaults(run=bench.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:  # a bare `tinygrad-edu`: what there is to run, not an error
        parser.print_help()
        return 0
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
