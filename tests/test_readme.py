"""README.md is the first tutorial, and its Python examples run. The reference it points to lives in notebooks:
the op cheat sheet (``07_reference.ipynb``) matches the op table, and the error catalogue
(``06_when_something_goes_wrong.ipynb``) quotes the engine's real messages word for word, up to numpy's own words
("(numpy said: ...)"), which change between numpy versions. The notebook checks its quotes itself as it runs; this
file checks them without a kernel."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinygrad_edu import LearnerWarning, Tensor, gradcheck, losses, nn, no_grad, optim
from tinygrad_edu.ops import OPS
from tinygrad_edu.train import fit

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CHEAT_SHEET = ROOT / "examples" / "notebooks" / "07_reference.ipynb"
CATALOGUE = ROOT / "examples" / "notebooks" / "06_when_something_goes_wrong.ipynb"


def markdown(notebook: Path) -> str:
    """The text of a notebook's markdown cells, as stored (the notebooks are stored without outputs)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return "\n\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")


def cheat_sheet_rows() -> list[str]:
    return [f"| `{cls.name}` | {cls.__doc__.replace('|', '&#124;')} |" for cls in OPS.values()]


def test_the_cheat_sheet_lists_every_op_with_its_derivative() -> None:
    text = markdown(CHEAT_SHEET)
    missing = [row for row in cheat_sheet_rows() if row not in text]
    assert not missing, f"the op cheat sheet in {CHEAT_SHEET.name} is out of date; regenerate it with:\n" \
        "python -c 'from tests.test_readme import cheat_sheet_rows; print(*cheat_sheet_rows(), sep=chr(10))'\n" \
        + "\n".join(missing)


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_python_examples_run(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples may write pictures
    exec(compile(python_blocks()[index], f"README.md python block {index}", "exec"), {"__name__": "readme"})


def _message(make: Any) -> str:
    """The exception ``make()`` raises, as the catalogue quotes it: ``> TypeName: message``."""
    with pytest.raises(Exception) as info:
        make()
    message = str(info.value).split(" (numpy said")[0]  # numpy's own words change between its versions
    return f"> {type(info.value).__name__}: {message}"


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


def _stale_checkpoint() -> None:
    model = nn.MLP([2, 3, 1], rng=0)
    state = model.state_dict()
    del state["layers.2.bias"]
    state["extra"] = np.zeros(1)
    state["layers.0.weight"] = state["layers.0.weight"].T.copy()
    model.load_state_dict(state)


def _attribute_typo() -> None:
    layer: Any = nn.Linear(2, 3)  # Any: the typo is the point, so the type checker must let it through
    _ = layer.wieght


ENGINE_ERRORS = {
    "matmul": lambda: Tensor(np.ones((3, 4)), name="x") @ Tensor(np.ones((3, 2)), name="w"),
    "broadcast": lambda: Tensor(np.ones((3, 4)), name="a") + Tensor(np.ones(3), name="b"),
    "non-scalar": lambda: (Tensor(np.ones((2, 3)), requires_grad=True) * 2).backward(),
    "no grad": lambda: Tensor(np.ones(3)).sum().backward(),
    "integers": lambda: Tensor(np.array([1, 2, 3]), name="labels").requires_grad_(),
    "gradient shape": lambda: (Tensor(np.ones((2, 3)), requires_grad=True) * 2).backward(gradient=np.ones((3, 2))),
    "changed input": _changed_input,
    ".grad shape": _grad_of_wrong_shape,
    "changed output": _changed_output,
    "attribute typo": _attribute_typo,
    "stale checkpoint": _stale_checkpoint,
    "computed parameter": lambda: optim.SGD([Tensor(np.ones(2), requires_grad=True) * 2], lr=0.1),
    "ragged": lambda: Tensor([[1, 2], [3]]),
    "labels": lambda: losses.quadratic_cost(Tensor(np.full((4, 10), 0.1)), np.array([3, 1, 4, 1])),
}


def _second_pass() -> None:
    w = Tensor(np.ones(2), requires_grad=True, name="w")
    for _ in range(2):
        (w * w).sum().backward()


def _saturated_training() -> None:
    w = Tensor(np.ones((4, 2)), requires_grad=True)  # fit looks on one step in 32: 40 steps of one batch
    fit(lambda xb: xb.sigmoid() @ w, lambda p, _: p.sum(), optim.SGD([w], lr=0.0), (np.full((8, 4), 50.0),
        np.zeros((8, 2))), epochs=40, batch_size=8, progress=False)


def _gradcheck_in_float32() -> None:
    x32 = Tensor(np.array([0.5, 1.5], dtype=np.float32), requires_grad=True)
    gradcheck(lambda a: (a * a).sum(), [x32], eps=1e-3, atol=1e-2, rtol=1e-2)


WARNINGS: dict[str, tuple[type[Warning], Any]] = {
    "gradcheck in float32": (UserWarning, _gradcheck_in_float32),
    "second pass": (LearnerWarning, _second_pass),
    "float32 meets float64": (LearnerWarning,
                              lambda: Tensor(np.ones(2, dtype=np.float32), name="x") * Tensor(np.ones(2), name="w")),
    "log(0)": (LearnerWarning, lambda: Tensor(np.array([0.0, 1.0])).log()),
    "saturated": (LearnerWarning, _saturated_training),
}


@pytest.mark.parametrize("case", list(WARNINGS))
def test_the_error_catalogue_quotes_the_real_warnings(case: str) -> None:
    category, make = WARNINGS[case]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make()
    messages = [f"> {w.category.__name__}: {w.message}" for w in caught if w.category is category]
    assert len(messages) == 1, messages
    assert messages[0] in markdown(CATALOGUE), f"the error catalogue in {CATALOGUE.name} is out of date for " \
        f"{case!r}:\n{messages[0]}"


@pytest.mark.parametrize("case", list(ENGINE_ERRORS))
def test_the_error_catalogue_quotes_the_real_messages(case: str) -> None:
    message = _message(ENGINE_ERRORS[case])
    assert message in markdown(CATALOGUE), f"the error catalogue in {CATALOGUE.name} is out of date for " \
        f"{case!r}:\n{message}"


def test_every_entry_of_the_error_catalogue_is_checked_here() -> None:
    quoted = re.findall(r"^> \w+: ", markdown(CATALOGUE), flags=re.M)
    assert len(quoted) == len(ENGINE_ERRORS) + len(WARNINGS), (
        f"{CATALOGUE.name} quotes {len(quoted)} messages and this file checks {len(ENGINE_ERRORS) + len(WARNINGS)}: "
        f"add a case to ENGINE_ERRORS or WARNINGS for each new entry")
