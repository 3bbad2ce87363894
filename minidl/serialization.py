"""save / load of state dicts as .npz files, written atomically.

``save`` writes to a temporary file in the same folder and renames it over the
target, so a crash mid-write never leaves a half-written checkpoint where a
good one was (rename is atomic on POSIX and Windows).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from minidl.autograd.tensor import Tensor


def save(state: dict, path) -> None:
    """Save a dict of name -> array (or Tensor, or number) to ``path`` (.npz)."""
    if not isinstance(state, dict):
        raise TypeError(
            f"save: expected a dict such as module.state_dict(), got {type(state).__name__}"
        )
    arrays = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"save: keys must be strings, got {key!r}")
        arrays[key] = np.asarray(value.data if isinstance(value, Tensor) else value)
        if arrays[key].dtype == object:
            raise TypeError(f"save: value of {key!r} is not numeric ({type(value).__name__})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp made it private (0600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_npz(file, arrays: dict) -> None:
    """The .npz format of ``np.savez``: a zip of one ``<key>.npy`` per array.

    Written by hand so that any key works (``np.savez(f, **arrays)`` would
    reject a key named ``file`` or ``allow_pickle``).
    """
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, array in arrays.items():
            with archive.open(key + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load(path) -> dict:
    """Load a dict of name -> ndarray saved by ``save``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load: no checkpoint at {path}")
    with np.load(path, allow_pickle=False) as f:
        return {key: f[key] for key in f.files}
