"""Every notebook under examples/notebooks/ runs top to bottom through a real Jupyter kernel, without errors.

Each notebook asserts its own key figures in code cells (gradients agree within 1e-10, the accuracy or cost
training reaches), so a notebook whose numbers rot fails here. The kernel is the venv's own Python: the test
writes a kernelspec for ``sys.executable`` into a temporary folder, so a ``python3`` kernel installed elsewhere
on the machine is never picked up. Cells run with the notebook's folder as working directory; the kernel's
TMPDIR is the test's temporary folder, where the notebooks write their files.

Needs the ``notebooks`` extra (nbclient, ipykernel, nbformat, ipywidgets for the progress bars); skipped
without it.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "examples" / "notebooks").glob("*.ipynb"))
TIMEOUT_S = 300  # for a whole notebook; each takes seconds, so this only stops a hung kernel
KERNEL = "tinygrad-edu-test"


def test_the_notebooks_are_there() -> None:
    assert len(NOTEBOOKS) >= 6, f"expected the tour and one notebook per tutorial, found {[p.name for p in NOTEBOOKS]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    dirty = [i for i, cell in enumerate(notebook["cells"])
             if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (f"{path.name}: code cells {dirty} hold outputs or execution counts; clear them before "
                       f"committing (Jupyter: Edit > Clear Outputs of All Cells, then save).")
    assert "widgets" not in notebook.get("metadata", {}), (
        f"{path.name} stores the state of its progress bars (metadata 'widgets'); clear it before committing "
        f"(JupyterLab: Settings > Save Widget State Automatically off, then save again).")


def _kernel_manager(kernel_dir: Path) -> Any:
    """A jupyter_client.AsyncKernelManager for a kernelspec of this very Python, written into ``kernel_dir``."""
    # imported by name: the notebooks extra is optional, also where the type checker runs
    jupyter_client = importlib.import_module("jupyter_client")
    kernelspec = importlib.import_module("jupyter_client.kernelspec")
    spec = kernel_dir / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tinygrad_edu tests", "language": "python",
    }), encoding="utf-8")
    specs = kernelspec.KernelSpecManager(kernel_dirs=[str(kernel_dir)], ensure_native_kernel=False)
    return jupyter_client.AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def _problems(notebook: Any) -> list[str]:
    """Error outputs, and warnings or tracebacks written to stderr, of an executed nbformat notebook."""
    problems = []
    for i, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                problems.append(f"cell {i}: {output.ename}: {output.evalue}")
            elif output.output_type == "stream" and output.name == "stderr" and (
                    "Warning" in output.text or "Traceback" in output.text):
                problems.append(f"cell {i} wrote to stderr: {output.text.strip()[:500]}")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("ipywidgets")  # without it tqdm's bars fall back to text and warn on stderr
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)  # a hand-edited notebook that Jupyter could not open fails here
    deadline = time.monotonic() + TIMEOUT_S
    client = nbclient.NotebookClient(
        notebook, km=_kernel_manager(tmp_path / "kernels"),
        timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),  # one budget for the notebook
        resources={"metadata": {"path": str(path.parent)}},
    )
    temp = tmp_path / "files"
    temp.mkdir()
    # One BLAS thread unless told otherwise: the kernel shares the cores with pytest and whatever else runs, and
    # BLAS threads waiting for a busy core made a notebook ten times slower here; one thread runs steadily.
    threads = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env = {**threads, **os.environ, "TMPDIR": str(temp), "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    try:
        client.execute(env=env)
    except CellExecutionError as error:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # the traceback without its terminal colours
        pytest.fail(f"{path.name} failed in a cell:\n{plain}", pytrace=False)
    except CellTimeoutError:
        pytest.fail(f"{path.name} did not finish within {TIMEOUT_S} s", pytrace=False)
    problems = _problems(notebook)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)
