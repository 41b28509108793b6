"""Named numpy arrays written to an ``.npz`` file atomically: what ``Module.save`` and the training checkpoints write.

An ``.npz`` is a zip of ``.npy`` files, one per array, that ``np.load(path, allow_pickle=False)`` reads back
without running any code. ``save_npz`` writes it so that a program killed at any moment leaves the file whole:
the previous one or the new one, never a mix.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Mapping

import numpy as np

__all__ = ["save_npz", "remove_orphans"]


def save_npz(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an ``.npz`` at ``path``, atomically: killed at any moment, ``path`` is whole.

    The steps: write a temporary file in the same folder, flush and ``fsync`` it to the disk, rename it over
    ``path`` with ``os.replace`` (one step on POSIX and Windows), then ``fsync`` the folder so the rename itself
    is on the disk. ``path`` holds the previous checkpoint or the new one, never a mix; a write killed before
    the rename may leave its ``.<name>.<process id>.*.tmp`` file behind, which nothing reads and
    ``remove_orphans`` removes.

    The archive is the ``.npz`` layout numpy writes (one ``.npy`` per array, uncompressed, read with
    ``np.load(path, allow_pickle=False)``), except that every member carries the same fixed date (1980-01-01,
    the earliest a zip can hold) instead of the clock's: the same training state gives the same bytes.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=_prefix(path, os.getpid()), suffix=".tmp", dir=folder)
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


def _prefix(path: str, pid: int) -> str:
    """The start of the name of a temporary file that ``save_npz`` writes for ``path`` in process ``pid``."""
    return f".{os.path.basename(path)}.{pid}."


def remove_orphans(path: str | os.PathLike[str]) -> list[str]:
    """Remove the temporary files that killed ``save_npz`` writes of ``path`` left in its folder; return their names.

    Only stale files of ours go: a regular file named as ``save_npz`` names its temporary files for ``path``,
    whose writer (the process id in the name) no longer runs, or is this process, which is not writing ``path``
    while it calls this. Where a process cannot be looked up without side effects (not POSIX), none are removed.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.name != "posix":
        return []
    pattern = re.compile(re.escape(f".{os.path.basename(path)}.") + r"(\d+)\.[a-z0-9_]+\.tmp")
    removed = []
    for name in sorted(os.listdir(folder)):
        match = pattern.fullmatch(name)
        if match is None or _running(int(match.group(1))):
            continue
        candidate = os.path.join(folder, name)
        try:
            if stat.S_ISREG(os.lstat(candidate).st_mode):  # never a link or a folder someone named like ours
                os.remove(candidate)
                removed.append(name)
        except OSError:  # gone meanwhile, or not ours to remove: leave it
            continue
    return removed


def _running(pid: int) -> bool:
    """Whether another process with this id runs now (signal 0 checks without sending anything)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it runs, as another user
        return True
    return True
