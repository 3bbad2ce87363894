"""Read and write IDX files, the format MNIST and Fashion-MNIST come in.

Layout (LeCun et al., http://yann.lecun.com/exdb/mnist/), all integers big-endian::

    byte 0, 1   0, 0
    byte 2      type of the values: 0x08 uint8, 0x09 int8, 0x0B int16,
                0x0C int32, 0x0D float32, 0x0E float64
    byte 3      number of dimensions d
    then        d sizes, each an unsigned 32-bit integer
    then        the values, big-endian, last index changing fastest (C order)

So ``train-images-idx3-ubyte`` starts 00 00 08 03, then 60000, 28, 28. Files
ending in ``.gz`` (or starting with gzip's magic bytes) are decompressed.
"""

from __future__ import annotations

import gzip
import math
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path) -> np.ndarray:
    """Read an IDX file (plain or gzipped) into an array in native byte order.

    Raises ValueError naming the file when it is not IDX, when its gzip stream is
    truncated or corrupted, or when its size does not match its header.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"read_idx: no file at {path}")
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:
        raw = _gunzip(path, raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise ValueError(f"read_idx: {path} is not an IDX file (expected bytes 00 00 <type> "
                         f"<ndim> with type one of {sorted(hex(t) for t in IDX_TYPES)}, "
                         f"got {raw[:4].hex(' ')})")
    dtype, ndim = IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {path} is truncated inside its header")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    # Python ints: the product of up to 255 sizes below 2**32 can overflow int64 (np.prod).
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"read_idx: {path} has {len(raw):,} bytes, but its header (shape "
                         f"{shape}, {dtype.name}) needs {expected:,}; the file is truncated "
                         "or corrupt")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _gunzip(path: Path, raw: bytes) -> bytes:
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
        raise ValueError(f"read_idx: {path} is a damaged gzip file ({error}): it is truncated "
                         "or corrupted; delete it and download it again") from error


def write_idx(path, array) -> None:
    """Write ``array`` as an IDX file (gzipped if ``path`` ends in .gz), atomically."""
    array = np.asarray(array)
    codes = {dt.newbyteorder("=").str[1:]: code for code, dt in IDX_TYPES.items()}
    code = codes.get(array.dtype.str[1:])
    if code is None:
        raise ValueError(f"write_idx: IDX has no type for dtype {array.dtype}; use one of "
                         "uint8, int8, int16, int32, float32, float64")
    if array.ndim > 255:
        raise ValueError(f"write_idx: at most 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        payload = gzip.compress(payload)
    atomic_write_bytes(path, payload)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a temporary file in the same folder, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
