"""The tutorials' data sets, read from the files bundled with the package, and small helpers to feed them.

Everything here is plain numpy and the standard library: the MNIST digits are parsed from their original
gzip-compressed IDX files, the cat images from a ``.npz`` archive opened with ``allow_pickle=False``, and
every bundled file is checked against its SHA-256 before use. Nothing is downloaded and nothing is
unpickled.

>>> data = load_mnist()
>>> data.train_x.shape, data.val_x.shape, data.test_x.shape
((50000, 784), (10000, 784), (10000, 784))
>>> x, y = xor()
>>> y.ravel().tolist()
[0.0, 1.0, 1.0, 0.0]
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

__all__ = [
    "DataError", "DATA_DIR", "MNIST_DIR", "CATVNONCAT_PATH", "SHA256", "MNIST_FILES",
    "CIRCLES_PATH", "MOONS_PATH", "MNIST", "CatVNonCat", "Points",
    "verify_file", "read_idx", "load_mnist", "load_catvnoncat", "load_circles", "load_moons", "xor", "one_hot",
    "batches", "check_batch_size",
    "refuse_pickle", "load_mnist_pkl_gz", "clear_cache",
]

DATA_DIR: Path = Path(__file__).parent / "data"
MNIST_DIR: Path = DATA_DIR / "mnist"
CATVNONCAT_PATH: Path = DATA_DIR / "catvnoncat.npz"
CIRCLES_PATH: Path = DATA_DIR / "circles.npz"
MOONS_PATH: Path = DATA_DIR / "moons.npz"

# The MNIST files by role; the names are the original ones (LeCun et al.), compressed with ``gzip -9 -n``.
MNIST_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

# SHA-256 of each bundled file, by file name (the same values as data/README.md).
SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    "t10k-images-idx3-ubyte.gz": "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    "t10k-labels-idx1-ubyte.gz": "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
    "catvnoncat.npz": "f91aa59fa614cab833555ffff56e40a9e5a7d775e9703104869f7cb60cd5781d",
    "circles.npz": "48384119ffcfa4cf00f0e5de699478b69e7f97040381bea465c9179a596886a1",
    "moons.npz": "c9fd1b0215e3c029d4d97a5d1f21007f85fb16fa64da4ecb224e0e7def6a0c68",
}

_REINSTALL = "the file is corrupted or truncated; reinstall tinygrad_edu to restore the bundled data"
_IDX_UBYTE = 0x08
_IDX_TYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32",
                   0x0D: "float32", 0x0E: "float64"}
_GZIP_MAGIC = b"\x1f\x8b"
_MNIST_TRAIN_SIZE = 60_000

# Parsed uint8 arrays, keyed by what was read (paths, sizes, modification times): a second load is fast.
# The cached arrays are read-only; every loader returns fresh float copies.
_CACHE: dict[tuple, dict[str, np.ndarray]] = {}


class DataError(ValueError):
    """A data file is missing, truncated, corrupted, or not in the expected format.

    The message names the file, says what was expected and what was found, and how to fix it.
    """


# -- checksums and IDX --------------------------------------------------------------------------------------

def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise DataError(f"{path}: {what} not found (expected a file at this path). "
                        "If this is the bundled data, reinstall tinygrad_edu; otherwise check the path.")


def verify_file(path: str | os.PathLike[str], sha256: str | None = None) -> Path:
    """Check that ``path`` exists and that its SHA-256 is ``sha256``; return the path.

    With ``sha256=None`` the expected value is looked up by file name in ``SHA256`` (the bundled files).

    >>> verify_file(CATVNONCAT_PATH).name
    'catvnoncat.npz'
    >>> verify_file(CATVNONCAT_PATH, "0" * 64)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tinygrad_edu.datasets.DataError: .../catvnoncat.npz: SHA-256 is f91aa59f..., expected 00000000...; ...
    """
    path = Path(path)
    if sha256 is None:
        if path.name not in SHA256:
            raise DataError(f"{path}: no known SHA-256 for a file named {path.name!r}; "
                            f"verify_file knows {', '.join(sorted(SHA256))}. Pass sha256=... explicitly.")
        sha256 = SHA256[path.name]
    _require_file(path, "data file")
    found = _sha256_of(path)
    if found != sha256.lower():
        raise DataError(f"{path}: SHA-256 is {found[:8]}..., expected {sha256[:8]}... ({sha256}); {_REINSTALL}.")
    return path


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when the file starts with the gzip magic number."""
    _require_file(path, "IDX file")
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        # gzip raises EOFError for a cut-off stream and BadGzipFile (an OSError) or zlib.error for damage
        raise DataError(f"{path}: not a valid gzip stream ({error}); expected a complete gzip-compressed "
                        f"IDX file. {_REINSTALL.capitalize()}, or re-download it.") from error


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (gzip-compressed or not) into a read-only uint8 array.

    IDX layout: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions ``ndim``,
    then ``ndim`` big-endian uint32 sizes, then the data, one byte per element.

    >>> labels = read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    >>> labels.shape, labels.dtype, labels[:5].tolist()
    ((10000,), dtype('uint8'), [7, 2, 1, 0, 4])
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: {len(data)} bytes, expected at least the 4-byte IDX magic number; "
                        "the file is truncated or empty.")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: magic number starts with bytes 0x{data[0]:02x} 0x{data[1]:02x}, expected "
                        "0x00 0x00; this is not an IDX file (MNIST files are IDX, e.g. train-images-idx3-ubyte).")
    type_code, ndim = data[2], data[3]
    if type_code != _IDX_UBYTE:
        kind = _IDX_TYPE_NAMES.get(type_code, "unknown")
        raise DataError(f"{path}: IDX type code 0x{type_code:02x} ({kind}), expected 0x08 (unsigned byte); "
                        "read_idx reads only unsigned-byte IDX files such as MNIST's.")
    if ndim == 0:
        raise DataError(f"{path}: IDX header says 0 dimensions, expected at least 1.")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: {len(data)} bytes, expected a {header}-byte header for {ndim} dimensions; "
                        "the file is truncated.")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64))
    found = len(data) - header
    if found != expected:
        shape = " x ".join(str(d) for d in dims)
        problem = "truncated" if found < expected else "longer than its header says"
        raise DataError(f"{path}: {found} data bytes after the header, expected {expected} for shape "
                        f"{shape}; the file is {problem}. {_REINSTALL.capitalize()}, or re-download it.")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


# -- MNIST --------------------------------------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class MNIST:
    """MNIST split into train / validation / test.

    ``*_x`` are (n, 784) floats in [0, 1] (rows are images, pixels row by row); ``*_y`` are int64 digit
    labels (n,). Each ``load_mnist`` call returns fresh arrays, so changing them in place is safe.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    def __repr__(self) -> str:
        return (f"MNIST(train={len(self.train_x)}, val={len(self.val_x)}, test={len(self.test_x)}, "
                f"dtype={self.train_x.dtype})")


def _float_dtype(dtype: DTypeLike, caller: str) -> np.dtype:
    resolved = np.dtype(dtype)
    if resolved.kind != "f":
        raise ValueError(f"{caller}: dtype must be a floating type such as np.float64 or np.float32, "
                         f"got {resolved}.")
    return resolved


def _mnist_file(directory: Path, name: str) -> Path:
    # a user's own copy may be uncompressed; accept either name
    path = directory / name
    plain = directory / name.removesuffix(".gz")
    if not path.is_file() and plain.is_file():
        return plain
    return path


def _load_mnist_uint8(directory: Path, bundled: bool) -> dict[str, np.ndarray]:
    paths = {role: _mnist_file(directory, name) for role, name in MNIST_FILES.items()}
    for path in paths.values():
        _require_file(path, "MNIST file")
    key = tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths.values())
    if key in _CACHE:
        return _CACHE[key]
    if bundled:
        for path in paths.values():
            verify_file(path)
    arrays = {role: read_idx(path) for role, path in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        image_path, label_path = paths[f"{split}_images"], paths[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(f"{image_path}: images of shape {images.shape}, expected (n, 28, 28).")
        if labels.ndim != 1:
            raise DataError(f"{label_path}: labels of shape {labels.shape}, expected (n,).")
        if len(images) != len(labels):
            raise DataError(f"{image_path} has {len(images)} images but {label_path.name} has {len(labels)} "
                            "labels; expected the same count. The two files do not belong together.")
        if len(labels) and labels.max() > 9:
            raise DataError(f"{label_path}: label {int(labels.max())} found, expected digits 0-9.")
    _CACHE[key] = arrays
    return arrays


def _scaled(images: np.ndarray, dtype: np.dtype) -> np.ndarray:
    x = images.reshape(len(images), -1).astype(dtype)
    x /= 255
    return x


def load_mnist(*, validation: int = 10_000, dtype: DTypeLike = np.float64,
               directory: str | os.PathLike[str] | None = None) -> MNIST:
    """Load MNIST: by default the bundled files, split 50,000 / 10,000 / 10,000 as in the nielsen tutorial.

    The first ``60_000 - validation`` training images are for training, the last ``validation`` for
    validation, and the 10,000 t10k images for test. Bundled files are checked by SHA-256; a ``directory`` of
    your own (same file names, gzipped or not) is checked for IDX structure and matching counts. The parsed
    bytes are cached, so a second call only converts to floats.

    >>> data = load_mnist(validation=0, dtype=np.float32)
    >>> len(data.train_x), len(data.val_x), data.train_x.dtype, data.train_y[:5].tolist()
    (60000, 0, dtype('float32'), [5, 0, 4, 1, 9])
    >>> float(data.train_x.min()), float(data.train_x.max())
    (0.0, 1.0)
    """
    resolved = _float_dtype(dtype, "load_mnist")
    bundled = directory is None
    folder = MNIST_DIR if directory is None else Path(directory)
    if not bundled and not folder.is_dir():
        raise DataError(f"{folder}: directory not found; load_mnist(directory=...) expects a folder holding "
                        f"{', '.join(MNIST_FILES.values())}.")
    arrays = _load_mnist_uint8(folder, bundled)
    n_train = len(arrays["train_images"])
    if isinstance(validation, bool) or not isinstance(validation, (int, np.integer)) \
            or not 0 <= validation < n_train:
        raise ValueError(f"load_mnist: validation must be an integer from 0 to {n_train - 1} (the number of "
                         f"training images held out), got {validation!r}.")
    cut = n_train - int(validation)
    x = _scaled(arrays["train_images"], resolved)
    y = arrays["train_labels"].astype(np.int64)
    return MNIST(train_x=x[:cut], train_y=y[:cut], val_x=x[cut:], val_y=y[cut:],
                 test_x=_scaled(arrays["test_images"], resolved),
                 test_y=arrays["test_labels"].astype(np.int64))


def clear_cache() -> None:
    """Forget the parsed MNIST bytes (the next ``load_mnist`` reads and verifies the files again)."""
    _CACHE.clear()


# -- cat vs non-cat -----------------------------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class CatVNonCat:
    """The cat / non-cat images of the lnet and logreg tutorials.

    ``train_x`` (209, 12288) and ``test_x`` (50, 12288) hold one flattened image per row (height, width,
    channel order), scaled by 1/255; ``*_y`` are int64 labels (1 = cat); ``*_images`` are the original
    (m, 64, 64, 3) uint8 pictures; ``classes[label]`` names a label.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...]
    train_images: np.ndarray
    test_images: np.ndarray

    def __repr__(self) -> str:
        return (f"CatVNonCat(train={len(self.train_x)}, test={len(self.test_x)}, classes={self.classes}, "
                f"dtype={self.train_x.dtype})")


_NPZ_KEYS = ("train_x", "train_y", "test_x", "test_y", "classes")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in _NPZ_KEYS if k not in archive.files]
            if missing:
                raise DataError(f"{path}: arrays {', '.join(missing)} missing; expected {', '.join(_NPZ_KEYS)}, "
                                f"found {', '.join(archive.files) or 'none'}.")
            return {k: archive[k] for k in _NPZ_KEYS}
    except DataError:
        raise
    except ValueError as error:
        # np.load raises ValueError for a damaged array header, and for object arrays, which would need
        # pickle (allow_pickle stays False)
        raise DataError(f"{path}: cannot be read ({error}); expected a .npz of plain numeric and string arrays, "
                        "which tinygrad_edu loads with allow_pickle=False.") from error
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"{path}: cannot be read as a .npz archive ({error}); {_REINSTALL}.") from error


def _check_cats(path: Path, arrays: dict[str, np.ndarray]) -> None:
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (64, 64, 3):
            raise DataError(f"{path}: {split}_x is {images.dtype} {images.shape}, expected uint8 (m, 64, 64, 3).")
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise DataError(f"{path}: {split}_y is {labels.dtype} {labels.shape}, expected integer labels (m,).")
        if len(images) != len(labels):
            raise DataError(f"{path}: {split}_x has {len(images)} images but {split}_y has {len(labels)} labels; "
                            "expected the same count.")
        if len(labels) and not np.isin(labels, (0, 1)).all():
            raise DataError(f"{path}: {split}_y holds labels other than 0 and 1.")
    classes = arrays["classes"]
    if classes.ndim != 1 or classes.dtype.kind not in "US" or len(classes) != 2:
        raise DataError(f"{path}: classes is {classes.dtype} {classes.shape}, expected two class names.")


def load_catvnoncat(*, dtype: DTypeLike = np.float64,
                    path: str | os.PathLike[str] | None = None) -> CatVNonCat:
    """Load the cat / non-cat images (seed 004), flattened to rows and scaled to [0, 1].

    The bundled file is checked by SHA-256; a ``path`` of your own is checked for its arrays' shapes.

    >>> cats = load_catvnoncat()
    >>> cats.train_x.shape, cats.test_x.shape, cats.classes
    ((209, 12288), (50, 12288), ('non-cat', 'cat'))
    >>> int(cats.train_y.sum()), int(cats.test_y.sum())
    (72, 33)
    """
    resolved = _float_dtype(dtype, "load_catvnoncat")
    if path is None:
        source = verify_file(CATVNONCAT_PATH)
    else:
        source = Path(path)
        _require_file(source, "cat / non-cat .npz file")
    arrays = _read_npz(source)
    _check_cats(source, arrays)
    classes = tuple(c.decode() if isinstance(c, bytes) else str(c) for c in arrays["classes"].tolist())
    flat = {split: _scaled(arrays[f"{split}_x"], resolved) for split in ("train", "test")}
    return CatVNonCat(train_x=flat["train"], train_y=arrays["train_y"].astype(np.int64),
                      test_x=flat["test"], test_y=arrays["test_y"].astype(np.int64), classes=classes,
                      train_images=arrays["train_x"], test_images=arrays["test_x"])


# -- the course's 2-D points ---------------------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class Points:
    """Labelled points in the plane: ``*_x`` (n, 2) float64 rows, ``*_y`` int64 labels 0 / 1 (n,).

    A set without test points has ``test_x`` of shape (0, 2). Each load returns fresh arrays.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    def __repr__(self) -> str:
        return f"Points(train={len(self.train_x)}, test={len(self.test_x)})"


def _load_points(path: Path) -> Points:
    verify_file(path)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: np.array(archive[name]) for name in archive.files}
    empty_x, empty_y = np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    return Points(arrays["train_x"], arrays["train_y"], arrays.get("test_x", empty_x), arrays.get("test_y", empty_y))


def load_circles() -> Points:
    """The circles of the deep-learning course's "Initialization" assignment: 300 training and 100 test points,
    an inner circle (label 1) inside an outer one (label 0), made once with scikit-learn's ``make_circles``
    (noise 0.05, seeds 1 and 2; see ``examples/make_course_data.py``).

    >>> circles = load_circles()
    >>> circles.train_x.shape, circles.test_x.shape, int(circles.train_y.sum())
    ((300, 2), (100, 2), 150)
    """
    return _load_points(CIRCLES_PATH)


def load_moons() -> Points:
    """The moons of the course's "Optimization methods" assignment: 300 training points in two interleaved half
    circles, made once with scikit-learn's ``make_moons`` (noise 0.2, seed 3); no test set.

    >>> moons = load_moons()
    >>> moons.train_x.shape, moons.test_x.shape, int(moons.train_y.sum())
    ((300, 2), (0, 2), 150)
    """
    return _load_points(MOONS_PATH)


# -- small helpers ------------------------------------------------------------------------------------------

def xor() -> tuple[np.ndarray, np.ndarray]:
    """The XOR data of the xor tutorial: inputs (4, 3), the third column a constant 1, and targets (4, 1).

    >>> x, y = xor()
    >>> x.tolist(), y.tolist()
    ([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]], [[0.0], [1.0], [1.0], [0.0]])
    """
    x = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.float64)
    y = np.array([[0], [1], [1], [0]], dtype=np.float64)
    return x, y


def one_hot(labels: ArrayLike, num_classes: int = 10, dtype: DTypeLike = np.float64) -> np.ndarray:
    """Integer labels (n,) to one-hot rows (n, num_classes).

    >>> one_hot([2, 0], num_classes=3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"one_hot: labels must be one-dimensional (n,), got shape {array.shape}; "
                         "use labels.ravel() for a column of labels.")
    if array.size and array.dtype.kind not in "iu":
        raise ValueError(f"one_hot: labels must be integers, got dtype {array.dtype}; "
                         "convert with labels.astype(np.int64) if they are whole numbers.")
    if num_classes < 1:
        raise ValueError(f"one_hot: num_classes must be at least 1, got {num_classes}.")
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(f"one_hot: labels must lie in 0..{num_classes - 1}, found {int(array.min())} to "
                         f"{int(array.max())}; pass num_classes=... if there are more classes.")
    out = np.zeros((array.size, num_classes), dtype=dtype)
    out[np.arange(array.size), array.astype(np.intp)] = 1
    return out


def check_batch_size(batch_size: Any, caller: str) -> int:
    """``batch_size`` as an int, or a ValueError that names ``caller``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{caller}: batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, *,
            rng: np.random.Generator | int | None = None, shuffle: bool = True,
            drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(x_batch, y_batch)`` mini-batches along the first axis, once over every sample.

    The order comes from ``rng`` alone (a Generator, which advances so each epoch differs, or an int seed);
    numpy's global random state is never used. The last batch may be short unless ``drop_last``.

    >>> x, y = np.arange(10).reshape(5, 2), np.arange(5)
    >>> [yb.tolist() for _, yb in batches(x, y, 2, rng=0)]
    [[2, 4], [3, 0], [1]]
    >>> [yb.tolist() for _, yb in batches(x, y, 2, shuffle=False, drop_last=True)]
    [[0, 1], [2, 3]]
    """
    check_batch_size(batch_size, "batches")
    if len(x) != len(y):
        raise ValueError(f"batches: x has {len(x)} samples but y has {len(y)} (shapes {np.shape(x)} and "
                         f"{np.shape(y)}); samples run along the first axis of both.")
    n = len(x)
    order = np.random.default_rng(rng).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        index = order[start:start + batch_size]
        yield x[index], y[index]


# -- pickle -------------------------------------------------------------------------------------------------

def refuse_pickle(path: str | os.PathLike[str]) -> NoReturn:
    """Always raise ``DataError``: tinygrad_edu does not unpickle files (a pickle can run any code).

    >>> refuse_pickle("mnist.pkl.gz")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tinygrad_edu.datasets.DataError: mnist.pkl.gz: refusing to unpickle; ...
    """
    raise DataError(
        f"{path}: refusing to unpickle; loading a pickle can run arbitrary code, so tinygrad_edu never does it. "
        "The same MNIST digits ship with tinygrad_edu as the original IDX files: call "
        "tinygrad_edu.datasets.load_mnist(), whose default split (first 50,000 training images for training, "
        "the last 10,000 for validation, t10k for test) is the one of the nielsen tutorial.")


def load_mnist_pkl_gz(path: str | os.PathLike[str]) -> NoReturn:
    """Nielsen's ``mnist.pkl.gz`` loader, refused on purpose; see ``refuse_pickle``. Use ``load_mnist()``."""
    refuse_pickle(path)
