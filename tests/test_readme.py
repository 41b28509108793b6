"""README.md is the first tutorial: its op cheat sheet matches the op table, and its Python examples run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
