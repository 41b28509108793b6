"""README.md is the first tutorial: its op cheat sheet matches the op table, its Python examples run, and its
error catalogue quotes the engine's real messages."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinygrad_edu import LearnerWarning, Tensor, losses, no_grad
from tinygrad_edu.ops import OPS

README = Path(__file__).resolve().parents[1] / "README.md"


def cheat_sheet_rows() -> list[str]:
    return [f"| `{cls.name}` | {cls.__doc__.replace('|', '&#124;')} |" for cls in OPS.values()]


def test_the_cheat_sheet_lists_every_op_with_its_derivative() -> None:
    text = README.read_text()
    missing = [row for row in cheat_sheet_rows() if row not in text]
    assert not missing, "README's op cheat sheet is out of date; regenerate it with:\n" \
        "python -c 'from tests.test_readme import cheat_sheet_rows; print(*cheat_sheet_rows(), sep=chr(10))'\n" \
        + "\n".join(missing)


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_python_examples_run(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples may write pictures
    exec(compile(python_blocks()[index], f"README.md python block {index}", "exec"), {"__name__": "readme"})


def _message(make: Any) -> str:
    with pytest.raises(Exception) as info:
        make()
    return str(info.value).split(" (numpy said")[0]  # numpy's own words change between its versions


def _changed_input() -> None:
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True, name="w")
    loss = (w * w).sum()
    w.data -= 0.1
    loss.backward()


def _changed_output() -> None:
    y = Tensor(np.array([0.5, -1.0]), requires_grad=True).tanh()
    with no_grad():
        y[0] = 0.0
    y.backward(gradient=np.ones(2))


def _grad_of_wrong_shape() -> None:
    w = Tensor(np.ones((2, 3)), requires_grad=True, name="w")
    w.grad = np.ones(3)


ENGINE_ERRORS = {
    "matmul": lambda: Tensor(np.ones((3, 4)), name="x") @ Tensor(np.ones((3, 2)), name="w"),
    "broadcast": lambda: Tensor(np.ones((3, 4)), name="a") + Tensor(np.ones(3), name="b"),
    "non-scalar": lambda: (Tensor(np.ones((2, 3)), requires_grad=True) * 2).backward(),
    "no grad": lambda: Tensor(np.ones(3)).sum().backward(),
    "integers": lambda: Tensor(np.array([1, 2, 3]), name="labels").requires_grad_(),
    "gradient shape": lambda: (Tensor(np.ones((2, 3)), requires_grad=True) * 2).backward(gradient=np.ones((3, 2))),
    "changed input": _changed_input,
    "changed output": _changed_output,
    ".grad shape": _grad_of_wrong_shape,
    "ragged": lambda: Tensor([[1, 2], [3]]),
    "labels": lambda: losses.quadratic_cost(Tensor(np.full((4, 10), 0.1)), np.array([3, 1, 4, 1])),
}


def _second_pass() -> None:
    w = Tensor(np.ones(2), requires_grad=True, name="w")
    for _ in range(2):
        (w * w).sum().backward()


def _saturated_training() -> None:
    for _ in range(40):  # one backward() in 32 looks
        Tensor(np.full((8, 4), 50.0), requires_grad=True).sigmoid().sum().backward()


LEARNER_WARNINGS = {
    "second pass": _second_pass,
    "float32 meets float64": lambda: Tensor(np.ones(2, dtype=np.float32), name="x") * Tensor(np.ones(2), name="w"),
    "log(0)": lambda: Tensor(np.array([0.0, 1.0])).log(),
    "saturated": _saturated_training,
}


@pytest.mark.parametrize("case", list(LEARNER_WARNINGS))
def test_the_error_catalogue_quotes_the_real_learner_warnings(case: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LEARNER_WARNINGS[case]()
    messages = [str(w.message) for w in caught if issubclass(w.category, LearnerWarning)]
    assert len(messages) == 1, messages
    assert messages[0] in README.read_text(), f"README's error catalogue is out of date for {case!r}:\n{messages[0]}"


@pytest.mark.parametrize("case", list(ENGINE_ERRORS))
def test_the_error_catalogue_quotes_the_real_messages(case: str) -> None:
    message = _message(ENGINE_ERRORS[case])
    assert message in README.read_text(), f"README's error catalogue is out of date for {case!r}:\n{message}"
