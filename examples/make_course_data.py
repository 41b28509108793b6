"""Make the two small 2-D data sets of the deep-learning course's second course, once, with its own recipe.

The course draws them with scikit-learn at the start of two assignments, from numpy's global random state:

- Initialization: ``np.random.seed(1); make_circles(n_samples=300, noise=.05)`` for training, then
  ``np.random.seed(2); make_circles(n_samples=100, noise=.05)`` for test;
- Optimization: ``np.random.seed(3); make_moons(n_samples=300, noise=.2)``, training only.

Here each call gets its own ``np.random.RandomState(seed)`` instead, which yields the same numbers without touching
global state. The arrays are written as ``.npz`` archives of plain float64 and int64 arrays (loaded with
``allow_pickle=False``), with the course's layout: one sample per row, labels 0 / 1. Their SHA-256 go into
``tinygrad_edu/datasets.py`` and ``tinygrad_edu/data/README.md``.

scikit-learn is needed only here, never at run time: ``pip install -e '.[data]'``, then
``python examples/make_course_data.py`` (add ``--check`` to compare with the bundled files instead of writing).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "tinygrad_edu" / "data"


def _arrays() -> dict[str, dict[str, np.ndarray]]:
    from sklearn.datasets import make_circles, make_moons  # the `data` extra

    train_x, train_y = make_circles(n_samples=300, noise=0.05, random_state=np.random.RandomState(1))
    test_x, test_y = make_circles(n_samples=100, noise=0.05, random_state=np.random.RandomState(2))
    moons_x, moons_y = make_moons(n_samples=300, noise=0.2, random_state=np.random.RandomState(3))
    as_int = np.int64
    return {
        "circles.npz": {"train_x": train_x, "train_y": train_y.astype(as_int),
                        "test_x": test_x, "test_y": test_y.astype(as_int)},
        "moons.npz": {"train_x": moons_x, "train_y": moons_y.astype(as_int)},
    }


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed .npz with fixed member dates, so the same arrays always give the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w") as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the bundled files, write nothing")
    args = parser.parse_args(argv)
    import sklearn

    status = 0
    for name, arrays in _arrays().items():
        data = _npz_bytes(arrays)
        digest = hashlib.sha256(data).hexdigest()
        path = DATA / name
        if args.check:
            same = path.is_file() and path.read_bytes() == data
            print(f"{name}: {'same as' if same else 'DIFFERENT from'} the bundled file (sha256 {digest})")
            status |= 0 if same else 1
        else:
            path.write_bytes(data)
            print(f"{name}: {', '.join(f'{k} {v.shape}' for k, v in arrays.items())}; sha256 {digest}")
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    return status


if __name__ == "__main__":
    sys.exit(main())
