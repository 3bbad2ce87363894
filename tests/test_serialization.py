"""save / load: a model restored exactly, atomic writes, any key, default permissions."""

import os

import numpy as np
import pytest

import minidl
from minidl import Tensor
from tests.nn.test_module import Net


def test_save_load_round_trip_restores_model_exactly(tmp_path):
    minidl.manual_seed(0)
    net = Net()
    net.block.running_mean = np.arange(4, dtype=np.float32)
    path = tmp_path / "ckpt" / "net.npz"
    minidl.save(net.state_dict(), path)
    minidl.manual_seed(1)
    other = Net()
    other.load_state_dict(minidl.load(path))
    for (k, v), (k2, v2) in zip(net.state_dict().items(), other.state_dict().items()):
        assert k == k2 and v.dtype == v2.dtype
        np.testing.assert_array_equal(v, v2)
    x = Tensor(np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32))
    net.eval(), other.eval()
    np.testing.assert_array_equal(net(x).data, other(x).data)


def test_failed_save_leaves_old_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "net.npz"
    minidl.save({"w": np.ones(3)}, path)
    old_bytes = path.read_bytes()

    def failing_write_array(member, array, **kwargs):
        member.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    with pytest.raises(OSError, match="disk full"):
        minidl.save({"w": np.zeros(3)}, path)
    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == ["net.npz"]
    np.testing.assert_array_equal(minidl.load(path)["w"], np.ones(3))


def test_save_accepts_any_key_and_keeps_default_permissions(tmp_path):
    path = tmp_path / "odd.npz"
    minidl.save({"file": np.arange(3), "allow_pickle": np.ones(2)}, path)
    loaded = minidl.load(path)
    np.testing.assert_array_equal(loaded["file"], np.arange(3))
    np.testing.assert_array_equal(loaded["allow_pickle"], np.ones(2))
    mask = os.umask(0)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~mask)
