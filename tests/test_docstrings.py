"""Every example in the package's docstrings runs and prints what it says (visualize's are in test_visualize)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["autograd", "blas", "check", "conv_args", "convnet", "datasets", "display", "grad_mode", "gradcheck",
           "health", "jit", "losses", "manual", "nn", "node", "optim", "parameters", "schedules", "tensor", "trace",
           "train", "tutorials"]
MANUAL = ["mnist3", "nielsen", "xor", "lnet", "logreg", "network2", "initialization", "regularization",
          "gradient_checking", "optimization", "conv_loops", "conv_im2col"]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module: str) -> None:
    mod = importlib.import_module(f"tinygrad_edu.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("module", MANUAL)
def test_the_hand_derived_references_examples_run(module: str) -> None:
    mod = importlib.import_module(f"tinygrad_edu.manual.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_every_module_with_examples_is_listed() -> None:
    import pkgutil

    import tinygrad_edu

    finder = doctest.DocTestFinder()
    with_examples = {m.name for m in pkgutil.iter_modules(tinygrad_edu.__path__)
                     if m.name not in ("__main__", "visualize")
                     and any(t.examples for t in finder.find(importlib.import_module(f"tinygrad_edu.{m.name}")))}
    assert with_examples == set(MODULES)
