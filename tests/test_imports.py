"""The package's modules import each other without a circle, so they can be read in an order where each one uses
only the modules read before it (ops, node, grad_mode, diagnostics, inplace, autograd, tensor, ...).

Every import counts wherever it stands: at the top, inside a function, at the bottom of a file, and under
``if TYPE_CHECKING:`` (it never runs, but a reader still has to know the module it names). The modules that
tensor.py imports name a tensor as ``node.Node`` in their type hints, never as ``Tensor``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the installed package: tinygrad_edu/, and visualize/ installed as tinygrad_edu.visualize
FOLDERS = {"tinygrad_edu": ROOT / "tinygrad_edu", "tinygrad_edu.visualize": ROOT / "visualize"}


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its ``__init__.py``)."""
    found = {}
    for prefix, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = [prefix, *path.relative_to(folder).with_suffix("").parts]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports, wherever the import stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: set[str] = set()
        if isinstance(node, ast.Import):
            targets = {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, up level - 1 packages
                base = name.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from package import module` imports that module; `from module import name` the module itself
            targets = {f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                       for alias in node.names}
        found |= {t for t in targets if t in known and t != name}
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports (``[a, b, ..., a]``), or None: an iterative depth-first search."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(edges):
        if start in state:
            continue
        path, stack = [start], [iter(sorted(edges[start]))]
        state[start] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(step) == 1:
                return path[path.index(step):] + [step]
            elif step not in state:
                state[step] = 1
                path.append(step)
                stack.append(iter(sorted(edges[step])))
    return None


def test_no_module_of_the_package_imports_another_in_a_circle() -> None:
    edges = graph()
    cycle = find_cycle(edges)
    assert cycle is None, "these modules import each other in a circle: " + " -> ".join(cycle or [])


def test_the_check_sees_imports_in_functions_and_at_the_bottom_and_names_the_circle(tmp_path: Path) -> None:
    files = {"__init__": "", "a": "from . import b\n", "b": "def f():\n    from .c import g\n",
             "c": "x = 1\nfrom pkg import a  # at the bottom\n",
             "d": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\n"}
    (tmp_path / "pkg").mkdir()
    paths = {}
    for stem, text in files.items():
        paths["pkg" if stem == "__init__" else f"pkg.{stem}"] = tmp_path / "pkg" / f"{stem}.py"
        (tmp_path / "pkg" / f"{stem}.py").write_text(text)
    edges = {name: imports(name, path, set(paths)) for name, path in paths.items()}
    assert edges == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": {"pkg.a"}, "pkg.d": {"pkg.a"}}
    assert find_cycle(edges) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]


def test_the_core_reads_bottom_up() -> None:
    # the engine a learner reads, in an order where each module imports only modules before it
    order = ["ops", "node", "grad_mode", "diagnostics", "inplace", "constants", "display", "autograd", "tensor"]
    edges = graph()
    for i, module in enumerate(order):
        later = {f"tinygrad_edu.{m}" for m in order[i:]}
        assert not edges[f"tinygrad_edu.{module}"] & later, (module, edges[f"tinygrad_edu.{module}"] & later)
