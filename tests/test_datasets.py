"""tinygrad_edu.datasets: the bundled files, their checks, and the small data helpers."""

from __future__ import annotations

import gzip
import io
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import datasets
from tinygrad_edu.datasets import DataError

# The widely published per-digit counts of MNIST's training and test sets.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True, header: bytes | None = None,
              cut: int = 0) -> Path:
    """Write ``array`` (uint8) as an IDX file; ``header`` replaces the real one, ``cut`` drops trailing bytes."""
    array = np.asarray(array, dtype=np.uint8)
    if header is None:
        header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.tobytes()
    if cut:
        raw = raw[:-cut]
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def write_fake_mnist(folder: Path, n_train: int = 12, n_test: int = 4, *, n_train_labels: int | None = None,
                     image_shape: tuple[int, int] = (28, 28), compress: bool = True) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    for split, n, n_labels in (("train", n_train, n_train_labels or n_train), ("t10k", n_test, n_test)):
        images = rng.integers(0, 256, (n, *image_shape))
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", images, compress=compress)
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", np.arange(n_labels) % 10, compress=compress)
    return folder


# -- MNIST, bundled -----------------------------------------------------------------------------------------

def test_mnist_default_split_shapes_dtypes_ranges() -> None:
    data = datasets.load_mnist()
    assert (data.train_x.shape, data.val_x.shape, data.test_x.shape) == ((50000, 784), (10000, 784), (10000, 784))
    assert (data.train_y.shape, data.val_y.shape, data.test_y.shape) == ((50000,), (10000,), (10000,))
    for x in (data.train_x, data.val_x, data.test_x):
        assert x.dtype == np.float64
        assert x.min() == 0.0 and x.max() == 1.0
    for y in (data.train_y, data.val_y, data.test_y):
        assert y.dtype == np.int64
        assert set(np.unique(y)) == set(range(10))
    assert data.train_y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert data.test_y[:5].tolist() == [7, 2, 1, 0, 4]
    assert "train=50000" in repr(data)


def test_mnist_label_counts_and_validation_is_the_tail_of_train() -> None:
    data = datasets.load_mnist(validation=0)
    assert (len(data.train_x), len(data.val_x), len(data.test_x)) == (60000, 0, 10000)
    assert data.val_x.shape == (0, 784)
    assert np.bincount(data.train_y).tolist() == TRAIN_COUNTS
    assert np.bincount(data.test_y).tolist() == TEST_COUNTS
    split = datasets.load_mnist(validation=10_000)
    np.testing.assert_array_equal(split.train_x, data.train_x[:50000])
    np.testing.assert_array_equal(split.val_x, data.train_x[50000:])
    np.testing.assert_array_equal(split.val_y, data.train_y[50000:])


def test_mnist_float32_and_pixel_scaling() -> None:
    data = datasets.load_mnist(dtype=np.float32, validation=5)
    assert data.train_x.dtype == np.float32 and data.test_x.dtype == np.float32
    assert data.val_x.shape == (5, 784)
    raw = datasets.read_idx(datasets.MNIST_DIR / "t10k-images-idx3-ubyte.gz")
    np.testing.assert_allclose(data.test_x[:3] * 255, raw[:3].reshape(3, 784), atol=1e-4)


def test_mnist_returns_fresh_arrays_and_uses_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    first = datasets.load_mnist()
    first.train_x[:] = -1.0
    first.train_y[:] = -1

    def no_reading(path: object) -> None:
        raise AssertionError("the cached bytes should have been used")

    monkeypatch.setattr(datasets, "read_idx", no_reading)
    second = datasets.load_mnist()
    assert second.train_x.min() == 0.0 and second.train_y[0] == 5


@pytest.mark.parametrize("validation", [-1, 60_000, 1.5, True, "10"])
def test_mnist_bad_validation(validation: object) -> None:
    with pytest.raises(ValueError, match="load_mnist: validation"):
        datasets.load_mnist(validation=validation)  # type: ignore[arg-type]


def test_mnist_needs_a_float_dtype() -> None:
    with pytest.raises(ValueError, match="floating"):
        datasets.load_mnist(dtype=np.uint8)


def test_checksums_of_every_bundled_file_pass() -> None:
    for name in datasets.SHA256:
        folder = datasets.DATA_DIR if name.endswith(".npz") else datasets.MNIST_DIR
        assert datasets.verify_file(folder / name) == folder / name


def test_verify_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    bad.write_bytes(b"not the real file")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: SHA-256 is .*expected 0b367032"):
        datasets.verify_file(bad)
    with pytest.raises(DataError, match=r"missing\.bin: data file not found"):
        datasets.verify_file(tmp_path / "missing.bin", "0" * 64)
    with pytest.raises(DataError, match="no known SHA-256"):
        datasets.verify_file(tmp_path / "train-images-idx3-ubyte.gz.bak")
    assert isinstance(DataError("x"), ValueError)


def test_corrupted_or_truncated_bundled_mnist_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_fake_mnist(tmp_path / "mnist")  # well-formed IDX, but not the bytes the checksums name
    monkeypatch.setattr(datasets, "MNIST_DIR", folder)
    with pytest.raises(DataError, match=r"ubyte\.gz: SHA-256 is .* expected .*reinstall tinygrad_edu"):
        datasets.load_mnist()
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: MNIST file not found"):
        datasets.load_mnist()


def test_truncated_copy_of_a_real_file_fails_its_checksum(tmp_path: Path) -> None:
    original = datasets.MNIST_DIR / "t10k-labels-idx1-ubyte.gz"
    copy = tmp_path / original.name
    copy.write_bytes(original.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: SHA-256"):
        datasets.verify_file(copy)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: not a valid gzip stream"):
        datasets.read_idx(copy)


# -- IDX parsing ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path: Path, compress: bool) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    result = datasets.read_idx(write_idx(tmp_path / "a.idx", array, compress=compress))
    np.testing.assert_array_equal(result, array)
    assert result.dtype == np.uint8
    assert not result.flags.writeable


def test_read_idx_truncated_data(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "short-images.gz", np.zeros((3, 28, 28)), cut=10)
    with pytest.raises(DataError, match=r"short-images\.gz: 2342 data bytes .* expected 2352 .*truncated"):
        datasets.read_idx(path)


def test_read_idx_extra_bytes(tmp_path: Path) -> None:
    path = tmp_path / "long.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 2]) + b"abc"))
    with pytest.raises(DataError, match=r"long\.gz: 3 data bytes .* expected 2 .*longer than its header says"):
        datasets.read_idx(path)


def test_read_idx_wrong_magic(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "magic.gz", np.zeros(4), header=bytes([1, 2, 8, 1, 0, 0, 0, 4]))
    with pytest.raises(DataError, match=r"magic\.gz: magic number starts with bytes 0x01 0x02, expected 0x00 0x00"):
        datasets.read_idx(path)


def test_read_idx_wrong_type_code(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "floats.gz", np.zeros(4), header=bytes([0, 0, 0x0D, 1, 0, 0, 0, 4]))
    with pytest.raises(DataError, match=r"floats.gz: IDX type code 0x0d \(float32\), expected 0x08"):
        datasets.read_idx(path)


def test_read_idx_short_header_empty_and_missing(tmp_path: Path) -> None:
    header_only = tmp_path / "header.gz"
    header_only.write_bytes(gzip.compress(bytes([0, 0, 8, 3, 0, 0])))
    with pytest.raises(DataError, match=r"header\.gz: 6 bytes, expected a 16-byte header"):
        datasets.read_idx(header_only)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty: 0 bytes, expected at least the 4-byte IDX magic"):
        datasets.read_idx(empty)
    with pytest.raises(DataError, match=r"nothing\.gz: IDX file not found"):
        datasets.read_idx(tmp_path / "nothing.gz")


def test_read_idx_corrupted_gzip(tmp_path: Path) -> None:
    raw = bytearray(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 200]) + bytes(range(200))))
    raw[20] ^= 0xFF
    path = tmp_path / "damaged.gz"
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"damaged\.gz: not a valid gzip stream"):
        datasets.read_idx(path)


# -- MNIST from a directory of one's own ---------------------------------------------------------------------

@pytest.mark.parametrize("compress", [True, False])
def test_load_mnist_from_own_directory(tmp_path: Path, compress: bool) -> None:
    folder = write_fake_mnist(tmp_path, n_train=12, n_test=4, compress=compress)
    data = datasets.load_mnist(directory=folder, validation=2, dtype=np.float32)
    assert (data.train_x.shape, data.val_x.shape, data.test_x.shape) == ((10, 784), (2, 784), (4, 784))
    assert data.train_x.dtype == np.float32 and data.val_y.tolist() == [0, 1]


def test_load_mnist_mismatched_counts(tmp_path: Path) -> None:
    folder = write_fake_mnist(tmp_path, n_train=12, n_train_labels=11)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz has 12 images but "
                                        r"train-labels-idx1-ubyte\.gz has 11 labels"):
        datasets.load_mnist(directory=folder, validation=2)


def test_load_mnist_wrong_image_shape_and_missing_directory(tmp_path: Path) -> None:
    folder = write_fake_mnist(tmp_path / "odd", image_shape=(27, 28))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: images of shape \(12, 27, 28\), "
                                        r"expected \(n, 28, 28\)"):
        datasets.load_mnist(directory=folder, validation=2)
    with pytest.raises(DataError, match="directory not found"):
        datasets.load_mnist(directory=tmp_path / "nowhere")


def test_load_mnist_rereads_a_changed_directory(tmp_path: Path) -> None:
    folder = write_fake_mnist(tmp_path, n_train=12)
    assert len(datasets.load_mnist(directory=folder, validation=2).train_x) == 10
    write_fake_mnist(tmp_path, n_train=20)
    assert len(datasets.load_mnist(directory=folder, validation=2).train_x) == 18


# -- cat vs non-cat -------------------------------------------------------------------------------------------

def test_catvnoncat_shapes_counts_and_scaling() -> None:
    cats = datasets.load_catvnoncat()
    assert cats.train_x.shape == (209, 12288) and cats.test_x.shape == (50, 12288)
    assert cats.train_x.dtype == np.float64
    assert cats.train_x.min() >= 0.0 and cats.train_x.max() <= 1.0
    assert cats.train_y.dtype == np.int64 and cats.train_y.shape == (209,) and cats.test_y.shape == (50,)
    assert int(cats.train_y.sum()) == 72 and int(cats.test_y.sum()) == 33
    assert cats.classes == ("non-cat", "cat")
    assert cats.train_images.shape == (209, 64, 64, 3) and cats.train_images.dtype == np.uint8
    assert cats.test_images.shape == (50, 64, 64, 3)
    # the rows are the images flattened in (height, width, channel) order, divided by 255
    np.testing.assert_array_equal(np.rint(cats.train_x * 255).astype(np.uint8),
                                  cats.train_images.reshape(209, -1))
    assert datasets.load_catvnoncat(dtype=np.float32).test_x.dtype == np.float32


def write_cats(path: Path, **changes: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    arrays = {"train_x": rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8), "train_y": np.array([0, 1, 1]),
              "test_x": rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8), "test_y": np.array([1, 0]),
              "classes": np.array(["non-cat", "cat"])}
    arrays.update(changes)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})  # type: ignore[arg-type]  # no allow_pickle
    return path


def write_object_member(path: Path) -> Path:
    """Add a ``classes.npy`` member whose header declares an object array (built by hand, no pickle)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|O", "fortran_order": False, "shape": (2,)})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("classes.npy", header.getvalue())
    return path


def test_catvnoncat_from_own_file(tmp_path: Path) -> None:
    cats = datasets.load_catvnoncat(path=write_cats(tmp_path / "mine.npz", classes=np.array([b"no", b"yes"])))
    assert cats.train_x.shape == (3, 12288) and cats.classes == ("no", "yes")


def test_catvnoncat_bad_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match=r"count.npz: test_x has 2 images but test_y has 3 labels"):
        datasets.load_catvnoncat(path=write_cats(tmp_path / "count.npz", test_y=np.array([1, 0, 1])))
    with pytest.raises(DataError, match=r"keys.npz: arrays classes missing"):
        datasets.load_catvnoncat(path=write_cats(tmp_path / "keys.npz", classes=None))
    with pytest.raises(DataError, match=r"shape.npz: train_x is uint8 \(3, 32, 32, 3\), expected uint8"):
        datasets.load_catvnoncat(path=write_cats(tmp_path / "shape.npz",
                                                 train_x=np.zeros((3, 32, 32, 3), np.uint8)))
    with pytest.raises(DataError, match=r"objects.npz: cannot be read \(Object arrays .*allow_pickle=False"):
        datasets.load_catvnoncat(path=write_object_member(write_cats(tmp_path / "objects.npz", classes=None)))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 but not really a zip")
    with pytest.raises(DataError, match=r"garbage\.npz: cannot be read as a \.npz archive"):
        datasets.load_catvnoncat(path=garbage)
    with pytest.raises(DataError, match=r"absent\.npz: cat / non-cat \.npz file not found"):
        datasets.load_catvnoncat(path=tmp_path / "absent.npz")
    # the bundled path is checked by SHA-256 first
    corrupted = tmp_path / "catvnoncat.npz"
    shutil.copyfile(datasets.CATVNONCAT_PATH, corrupted)
    with open(corrupted, "r+b") as stream:
        stream.seek(1000)
        stream.write(b"\x00\x01\x02")
    monkeypatch.setattr(datasets, "CATVNONCAT_PATH", corrupted)
    with pytest.raises(DataError, match=r"catvnoncat.npz: SHA-256 is .* expected f91aa59f"):
        datasets.load_catvnoncat()


# -- xor, one_hot, batches ------------------------------------------------------------------------------------

def test_xor_data() -> None:
    x, y = datasets.xor()
    assert x.shape == (4, 3) and y.shape == (4, 1) and x.dtype == y.dtype == np.float64
    assert x.tolist() == [[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]]
    assert y.ravel().tolist() == [0, 1, 1, 0]


def test_one_hot() -> None:
    out = datasets.one_hot(np.array([3, 0, 9]))
    assert out.shape == (3, 10) and out.dtype == np.float64
    np.testing.assert_array_equal(out.argmax(axis=1), [3, 0, 9])
    np.testing.assert_array_equal(out.sum(axis=1), 1)
    assert datasets.one_hot([1], num_classes=2, dtype=np.float32).dtype == np.float32
    assert datasets.one_hot(np.array([], dtype=np.int64)).shape == (0, 10)
    with pytest.raises(ValueError, match=r"one_hot: labels must lie in 0\.\.9, found 0 to 10"):
        datasets.one_hot([0, 10])
    with pytest.raises(ValueError, match="must be integers"):
        datasets.one_hot([0.5])
    with pytest.raises(ValueError, match=r"one-dimensional"):
        datasets.one_hot(np.zeros((2, 1), dtype=int))


def test_batches_are_seeded_and_cover_every_sample() -> None:
    x = np.arange(23 * 2).reshape(23, 2)
    y = np.arange(23)
    first = [yb.tolist() for _, yb in datasets.batches(x, y, 5, rng=7)]
    again = [yb.tolist() for _, yb in datasets.batches(x, y, 5, rng=np.random.default_rng(7))]
    assert first == again
    assert [len(b) for b in first] == [5, 5, 5, 5, 3]
    flat = [i for b in first for i in b]
    assert sorted(flat) == list(range(23))
    assert flat != list(range(23))  # shuffled
    for xb, yb in datasets.batches(x, y, 5, rng=7):
        np.testing.assert_array_equal(xb[:, 0], 2 * yb)  # rows stay paired with their labels


def test_batches_generator_advances_and_global_state_is_untouched() -> None:
    x = y = np.arange(50)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()  # type: ignore[index]  # the legacy form is a tuple
    gen = np.random.default_rng(0)
    epoch1 = np.concatenate([yb for _, yb in datasets.batches(x, y, 10, rng=gen)])
    epoch2 = np.concatenate([yb for _, yb in datasets.batches(x, y, 10, rng=gen)])
    assert not np.array_equal(epoch1, epoch2)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # type: ignore[index]  # a tuple


def test_batches_no_shuffle_and_drop_last() -> None:
    x, y = np.arange(7), np.arange(7)
    assert [b.tolist() for _, b in datasets.batches(x, y, 3, shuffle=False)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for _, b in datasets.batches(x, y, 3, shuffle=False, drop_last=True)] == [[0, 1, 2],
                                                                                                [3, 4, 5]]
    assert len(list(datasets.batches(x, y, 3, rng=0, drop_last=True))) == 2


@pytest.mark.parametrize("size", [0, -1, 2.5, True])
def test_batches_bad_batch_size(size: object) -> None:
    with pytest.raises(ValueError, match="batches: batch_size must be a positive integer"):
        next(datasets.batches(np.zeros(4), np.zeros(4), size))  # type: ignore[arg-type]


def test_batches_length_mismatch() -> None:
    with pytest.raises(ValueError, match="batches: x has 4 samples but y has 3"):
        next(datasets.batches(np.zeros((4, 2)), np.zeros(3), 2))


# -- pickle ---------------------------------------------------------------------------------------------------

def test_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(b"whatever is inside is never looked at"))
    for loader in (datasets.refuse_pickle, datasets.load_mnist_pkl_gz):
        with pytest.raises(DataError) as caught:
            loader(path)
        message = str(caught.value)
        assert str(path) in message
        assert "arbitrary code" in message and "load_mnist()" in message


def test_public_names() -> None:
    for name in datasets.__all__:
        assert hasattr(datasets, name), name
    assert Path(datasets.__file__).parent / "data" == datasets.DATA_DIR
