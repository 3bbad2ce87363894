"""The IDX reader and writer, on bytes written here by hand from the format description."""

import gzip
import importlib
import struct

import numpy as np
import pytest

from minidl.data import read_idx, write_idx

mnist_module = importlib.import_module("minidl.data.mnist")  # the module, not the function


def idx_bytes(array, code):
    """Header written by hand from the format description, then big-endian values."""
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += b"".join(struct.pack(">I", s) for s in array.shape)
    big = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    return header + array.astype(big).tobytes()


@pytest.mark.parametrize("dtype, code", [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B),
                                         (np.int32, 0x0C), (np.float32, 0x0D),
                                         (np.float64, 0x0E)])
def test_read_idx_of_handwritten_bytes(tmp_path, dtype, code):
    a = (np.arange(24).reshape(2, 3, 4) * 3 - 20).astype(dtype)
    if dtype == np.uint8:
        a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(idx_bytes(a, code))
    got = read_idx(tmp_path / "a.idx")
    np.testing.assert_array_equal(got, a)
    assert got.dtype == np.dtype(dtype) and got.shape == (2, 3, 4)
    write_idx(tmp_path / "b.idx", a)
    assert (tmp_path / "b.idx").read_bytes() == idx_bytes(a, code)


def test_gzip_round_trip_and_mnist_header(tmp_path):
    labels = np.array([5, 0, 4, 1], dtype=np.uint8)
    write_idx(tmp_path / "l.gz", labels)
    raw = gzip.decompress((tmp_path / "l.gz").read_bytes())
    assert raw[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 4])   # magic 0x00000801, then 4 items
    np.testing.assert_array_equal(read_idx(tmp_path / "l.gz"), labels)
    assert not list(tmp_path.glob("*.tmp"))


def test_read_idx_errors(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="read_idx: .* is not an IDX file"):
        read_idx(tmp_path / "bad")
    good = idx_bytes(np.zeros((3, 2), np.uint8), 0x08)
    (tmp_path / "short").write_bytes(good[:-1])
    with pytest.raises(ValueError, match=r"read_idx: .* has 17 bytes, .* needs 18"):
        read_idx(tmp_path / "short")
    with pytest.raises(FileNotFoundError, match="read_idx: no file"):
        read_idx(tmp_path / "missing")
    with pytest.raises(ValueError, match="write_idx: IDX has no type for dtype int64"):
        write_idx(tmp_path / "x", np.zeros(2, np.int64))


def test_a_header_whose_sizes_overflow_int64_is_a_clear_error(tmp_path):
    """65536**4 = 2**64 wraps to 0 in int64 (np.prod), which would make a file holding just the
    header look complete; Python ints do not wrap."""
    header = struct.pack(">BBBB", 0, 0, 0x08, 4) + struct.pack(">IIII", *[65536] * 4)
    (tmp_path / "huge").write_bytes(header)
    with pytest.raises(ValueError, match=r"read_idx: .*huge has 20 bytes, but its header \(shape "
                                         r"\(65536, 65536, 65536, 65536\), uint8\) needs "
                                         + f"{2 ** 64 + 20:,}"):
        read_idx(tmp_path / "huge")


def test_a_header_bigger_than_memory_is_refused_before_reading_the_values(tmp_path):
    header = struct.pack(">BBBB", 0, 0, 0x0E, 3) + struct.pack(">III", *[2 ** 32 - 1] * 3)
    (tmp_path / "big").write_bytes(header + b"\0" * 64)
    with pytest.raises(ValueError, match=r"read_idx: .*big has 80 bytes, .* truncated or corrupt"):
        read_idx(tmp_path / "big")


@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_a_damaged_gzip_names_the_file_and_says_to_download_again(tmp_path, damage):
    write_idx(tmp_path / "a.gz", np.arange(5000, dtype=np.int32))
    raw = (tmp_path / "a.gz").read_bytes()
    if damage == "truncated":
        raw = raw[:len(raw) // 2]
    else:
        raw = raw[:20] + bytes(b ^ 0x55 for b in raw[20:40]) + raw[40:]
    (tmp_path / "a.gz").write_bytes(raw)
    with pytest.raises(ValueError, match=r"read_idx: .*a\.gz is a damaged gzip file .* truncated "
                                         r"or corrupted; delete it and download it again"):
        read_idx(tmp_path / "a.gz")
