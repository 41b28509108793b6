"""Named numpy arrays written to an ``.npz`` file atomically: what ``Module.save`` and the training checkpoints write.

An ``.npz`` is a zip of ``.npy`` files, one per array, that ``np.load(path, allow_pickle=False)`` reads back
without running any code. ``save_npz`` writes it so that a program killed at any moment leaves the file whole:
the previous one or the new one, never a mix.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Mapping

import numpy as np

__all__ = ["save_npz"]


def save_npz(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an ``.npz`` at ``path``, atomically: killed at any moment, ``path`` is whole.

    The steps: write a temporary file in the same folder, flush and ``fsync`` it to the disk, rename it over
    ``path`` with ``os.replace`` (one step on POSIX and Windows), then ``fsync`` the folder so the rename itself
    is on the disk. ``path`` holds the previous checkpoint or the new one, never a mix; a write killed before
    the rename may leave its ``.<name>.*.tmp`` file behind, which nothing reads.

    The archive is the ``.npz`` layout numpy writes (one ``.npy`` per array, uncompressed, read with
    ``np.load(path, allow_pickle=False)``), except that every member carries the same fixed date (1980-01-01,
    the earliest a zip can hold) instead of the clock's: the same training state gives the same bytes.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
                for name, array in arrays.items():
                    info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                    with archive.open(info, "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); give the result the usual permissions of a saved file
        os.chmod(temporary, os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    try:  # not every platform can open a folder (Windows cannot): there the rename is as durable as it gets
        folder_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(folder_fd)
    except OSError:  # some file systems refuse to fsync a folder; the file itself is already on the disk
        pass
    finally:
        os.close(folder_fd)
