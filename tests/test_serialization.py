"""save / load: nested checkpoints restored exactly, no pickle, atomic writes, and one clear error
(CheckpointError) for every file that cannot be read or written, leaving saved files intact."""

import io
import math
import os
import pickle
import re
import signal
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import minidl
from minidl import Tensor
from minidl.optim import SGD
from minidl.serialization import CheckpointError
from tests.nn.test_module import Net

ROOT = Path(__file__).resolve().parents[1]


def same_structure(a, b):
    """Equal values *and* equal types all the way down (1 != 1.0 != True, tuple != list)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b) and [type(k) for k in a] == [type(k) for k in b]
        for key in a:
            same_structure(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same_structure(x, y)
    elif isinstance(a, Tensor):
        assert a.dtype == b.dtype and a.requires_grad == b.requires_grad
        np.testing.assert_array_equal(a.data, b.data)
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b)
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


# ---- round trips -----------------------------------------------------------------------------
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


def test_the_usual_pytorch_checkpoint_dict_round_trips(tmp_path):
    minidl.manual_seed(0)
    net = Net()
    opt = SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(Tensor(np.ones((2, 3), np.float32))).sum().backward()
    opt.step()
    checkpoint = {"epoch": 3, "model_state_dict": net.state_dict(),
                  "optimizer_state_dict": opt.state_dict(), "loss": 0.1}
    minidl.save(checkpoint, tmp_path / "ckpt.pth")
    loaded = minidl.load(tmp_path / "ckpt.pth", map_location="cpu", weights_only=True)
    same_structure(checkpoint, loaded)
    assert isinstance(loaded["model_state_dict"], OrderedDict)
    other = Net()
    other.load_state_dict(loaded["model_state_dict"])
    opt2 = SGD(other.parameters(), lr=0.5, momentum=0.9)
    opt2.load_state_dict(loaded["optimizer_state_dict"])
    assert opt2.param_groups[0]["lr"] == 0.1


def test_every_kind_of_value_comes_back_as_it_was_given(tmp_path):
    t = Tensor(np.arange(3, dtype=np.float64), requires_grad=True)
    obj = {
        "ints": [0, -7, 2 ** 70], "floats": (0.1, -0.0, math.inf, math.nan, 1e-300),
        "flags": [True, False], "nothing": None, "text": "état ✓", "empty": ([], {}, ()),
        3: "an int key", "3": "a str key beside it",
        "a/b%c": {"": np.zeros((0, 2), np.int32)},
        "tensor": t, "plain tensor": Tensor(np.ones(2, np.float32)),
        "array": np.arange(6, dtype=np.int16).reshape(2, 3), "0-d": np.array(2.5),
        "numpy scalars": [np.float32(1.5), np.int64(7), np.bool_(True)],
        "strings": np.array(["a", "bc"]), "ordered": OrderedDict([("z", 1), ("a", 2)]),
    }
    minidl.save(obj, tmp_path / "all.npz")
    loaded = minidl.load(tmp_path / "all.npz")
    same_structure(obj, loaded)
    assert loaded["tensor"] is not t and loaded["tensor"].requires_grad


def test_a_non_dict_top_level_value_round_trips(tmp_path):
    minidl.save(Tensor(np.ones(3)), tmp_path / "t.npz")
    same_structure(minidl.load(tmp_path / "t.npz"), Tensor(np.ones(3)))
    minidl.save([1, 2.5], tmp_path / "l.npz")
    same_structure(minidl.load(tmp_path / "l.npz"), [1, 2.5])


def test_the_file_is_a_plain_npz_named_by_key_paths_without_pickle(tmp_path):
    path = tmp_path / "ckpt.npz"
    minidl.save({"model": {"fc.weight": np.ones((2, 2))}, "epoch": 3}, path)
    with zipfile.ZipFile(path) as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())
    with np.load(path, allow_pickle=False) as f:
        np.testing.assert_array_equal(f["model/fc.weight"], np.ones((2, 2)))
        assert "__minidl_checkpoint__" in f.files
    flat = tmp_path / "flat.npz"
    minidl.save(OrderedDict([("fc.weight", np.ones(2)), ("fc.bias", np.zeros(1))]), flat)
    with np.load(flat, allow_pickle=False) as f:
        assert sorted(f.files) == ["__minidl_checkpoint__", "fc.bias", "fc.weight"]


def test_a_plain_npz_loads_as_a_flat_dict(tmp_path):
    np.savez(tmp_path / "old.npz", w=np.ones(3), b=np.zeros(2))
    loaded = minidl.load(tmp_path / "old.npz")
    assert sorted(loaded) == ["b", "w"]
    np.testing.assert_array_equal(loaded["w"], np.ones(3))


def test_save_accepts_any_key_and_keeps_default_permissions(tmp_path):
    path = tmp_path / "odd.npz"
    minidl.save({"file": np.arange(3), "allow_pickle": np.ones(2),
                 "__minidl_checkpoint__": np.ones(1)}, path)
    loaded = minidl.load(path)
    np.testing.assert_array_equal(loaded["file"], np.arange(3))
    np.testing.assert_array_equal(loaded["allow_pickle"], np.ones(2))
    np.testing.assert_array_equal(loaded["__minidl_checkpoint__"], np.ones(1))
    mask = os.umask(0)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~mask)


def test_map_location_and_weights_only_are_accepted():
    path = ROOT / "tests" / "_unused"  # never read: bad arguments fail first
    with pytest.raises(ValueError, match="load: map_location='cuda'.*CPU only"):
        minidl.load(path, map_location="cuda")
    with pytest.raises(ValueError, match="CPU only"):
        minidl.load(path, map_location={"cuda:0": "cuda:1"})
    with pytest.raises(TypeError, match="load: weights_only must be True or False"):
        minidl.load(path, weights_only="yes")


@pytest.mark.parametrize("map_location", [None, "cpu", "cpu:0", {"cuda:0": "cpu"},
                                          lambda storage, location: storage])
@pytest.mark.parametrize("weights_only", [True, False])
def test_load_with_pytorch_arguments_gives_the_same_data(tmp_path, map_location, weights_only):
    minidl.save({"w": np.ones(2)}, tmp_path / "c.npz")
    loaded = minidl.load(tmp_path / "c.npz", map_location=map_location,
                         weights_only=weights_only)
    same_structure(loaded, {"w": np.ones(2)})


# ---- what cannot be saved -------------------------------------------------------------------
@pytest.mark.parametrize("obj, where", [
    ({"model": {"hook": print}},
     r"""cannot save a builtin_function_or_method at \['model'\]\['hook'\]"""),
    ({"model": minidl.nn.Linear(2, 2)},
     r"""a Linear \(save its .state_dict\(\) instead\) at \['model'\]"""),
    ({"x": [1, {2.5}]}, r"""cannot save a set at \['x'\]\[1\]"""),
    ({"x": np.array([None, 1])}, r"""the array at \['x'\] holds Python objects"""),
    ({(1, 2): 3}, r"dict keys must be strings or ints, got \(1, 2\)"),
    ({"a": {True: 1}}, r"""dict keys must be strings or ints, got True in \['a'\]"""),
])
def test_unsavable_values_name_their_key_path_and_touch_no_file(tmp_path, obj, where):
    path = tmp_path / "c.npz"
    minidl.save({"w": np.ones(2)}, path)
    old = path.read_bytes()
    with pytest.raises(TypeError, match="save: .*" + where):
        minidl.save(obj, path)
    assert path.read_bytes() == old and os.listdir(tmp_path) == ["c.npz"]


def test_a_dict_that_contains_itself_is_refused(tmp_path):
    loop = {"a": 1}
    loop["self"] = [loop]
    with pytest.raises(TypeError, match=r"""save: \['self'\]\[0\] contains itself"""):
        minidl.save(loop, tmp_path / "c.npz")
    shared = np.ones(2)
    minidl.save({"a": shared, "b": [shared]}, tmp_path / "c.npz")  # shared, not a loop: fine


# ---- load: files that are not checkpoints ---------------------------------------------------
def good_checkpoint(path):
    minidl.save({"epoch": 1, "w": np.arange(1000.0)}, path)
    return path.read_bytes()


def flip_a_data_byte(raw):
    raw = bytearray(raw)
    raw[raw.index(b"\x00\x00\x00\x00\x00\x00\xf0?") + 3] ^= 0xFF  # inside w = [0, 1, 2, ...]
    return bytes(raw)


def pytorch_zip(path):
    """The member layout torch.save (PyTorch >= 1.6) writes: <name>/data.pkl, <name>/version, ..."""
    with zipfile.ZipFile(path, "w") as archive:
        for member in ("data.pkl", ".format_version", "byteorder", "data/0", "version"):
            archive.writestr(f"model/{member}", b"\x80\x02}q\x00." if member == "data.pkl"
                             else b"3")


def object_array_npz(path):
    np.savez(path, names=np.array([{"a": 1}], dtype=object))


def zip_of_text(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")


LEGACY_PYTORCH = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03."  # torch.save, < 1.6

BAD_FILES = {
    "missing": (None, r"no checkpoint at .*missing\.npz \(no such file\)"),
    "empty": (lambda p: p.write_bytes(b""), r"is empty \(0 bytes\)"),
    "truncated": (lambda p: p.write_bytes(good_checkpoint(p)[:3000]),
                  r"is damaged \(truncated or corrupted"),
    "bad CRC": (lambda p: p.write_bytes(flip_a_data_byte(good_checkpoint(p))),
                r"is damaged \(truncated or corrupted: Bad CRC-32"),
    "text": (lambda p: p.write_text("epoch,loss\n1,0.5\n"), r"not a zip archive"),
    "npy": (lambda p: np.save(open(p, "wb"), np.ones(2)), r"a single \.npy array"),
    "pickle": (lambda p: p.write_bytes(pickle.dumps({"w": [1.0]})),
               r"a Python pickle \(minidl never unpickles"),
    "PyTorch": (pytorch_zip, r"looks like a PyTorch file.*see examples/torch_bridge\.py"),
    "PyTorch legacy": (lambda p: p.write_bytes(LEGACY_PYTORCH),
                       r"looks like a PyTorch file in the legacy format.*examples/torch_bridge"),
    "object array": (object_array_npz, r"array 'names' is pickled Python objects"),
    "zip": (zip_of_text, r"members that are not \.npy arrays \(readme\.txt\)"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_load_of_a_bad_file_raises_one_clear_error(tmp_path, case):
    make, what = BAD_FILES[case]
    path = tmp_path / "missing.npz"
    if make is not None:
        make(path)
    with pytest.raises(CheckpointError, match="^load: ") as info:
        minidl.load(path)
    message = str(info.value)
    assert str(path) in message
    assert re.search(what, message), message
    assert isinstance(info.value, OSError)


def test_load_of_a_folder_and_of_a_damaged_structure_record(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        minidl.load(tmp_path)
    path = tmp_path / "c.npz"
    with zipfile.ZipFile(path, "w") as archive:
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.array('{"format": "minidl checkpoint", "root": '))
        archive.writestr("__minidl_checkpoint__.npy", buffer.getvalue())
    with pytest.raises(CheckpointError, match=r"load: .*c\.npz is damaged: its structure record"):
        minidl.load(path)


# ---- save: targets that cannot be written ---------------------------------------------------
def test_save_to_a_folder_names_the_target(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    with pytest.raises(CheckpointError, match=f"save: {folder} is a folder; give a file name"):
        minidl.save({"w": np.ones(2)}, folder)
    assert os.listdir(folder) == [] and os.listdir(tmp_path) == ["runs"]


def test_save_under_a_file_names_the_target(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me")
    target = blocker / "ckpt.npz"
    with pytest.raises(CheckpointError, match=f"save: cannot write {target}: {blocker} is a file"):
        minidl.save({"w": np.ones(2)}, target)
    assert blocker.read_text() == "keep me"


def test_save_to_a_read_only_folder_names_the_target_and_keeps_the_old_file(tmp_path,
                                                                            monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "net.npz"
    old = good_checkpoint(path)
    folder.chmod(0o555)
    if os.geteuid() == 0:
        # root ignores permission bits: make file creation in that folder fail as it would for
        # anyone else (EACCES from the kernel, naming the file it tried to create).
        real_mkstemp = minidl.serialization.tempfile.mkstemp

        def mkstemp(dir=None, **kwargs):
            if Path(dir) == folder:
                raise PermissionError(13, "Permission denied", str(folder / ".net.npz.x.tmp"))
            return real_mkstemp(dir=dir, **kwargs)

        monkeypatch.setattr(minidl.serialization.tempfile, "mkstemp", mkstemp)
    try:
        with pytest.raises(CheckpointError) as info:
            minidl.save({"w": np.zeros(2)}, path)
    finally:
        folder.chmod(0o755)
    message = str(info.value)
    assert message.startswith(f"save: cannot write {path}: cannot create a file in {folder}")
    assert "Permission denied" in message and ".tmp" not in message
    assert path.read_bytes() == old and os.listdir(folder) == ["net.npz"]


def test_failed_write_leaves_old_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "net.npz"
    minidl.save({"w": np.ones(3)}, path)
    old_bytes = path.read_bytes()

    def failing_write_array(member, array, **kwargs):
        member.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    with pytest.raises(CheckpointError, match=f"save: could not write {path} "
                                              r"\(No space left on device\); .* unchanged"):
        minidl.save({"w": np.zeros(3)}, path)
    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == ["net.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(minidl.load(path)["w"], np.ones(3))


def test_interrupted_save_leaves_old_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "net.npz"
    old = good_checkpoint(path)

    def interrupted(member, array, **kwargs):
        member.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", interrupted)
    with pytest.raises(KeyboardInterrupt):
        minidl.save({"w": np.zeros(3)}, path)
    assert path.read_bytes() == old and os.listdir(tmp_path) == ["net.npz"]


def test_a_killed_save_keeps_the_old_file_and_the_next_save_removes_its_temp_file(tmp_path):
    """kill -9 in the middle of writing: nothing can clean up, so the next save does."""
    path = tmp_path / "net.npz"
    old = good_checkpoint(path)
    code = (
        "import sys, time, numpy as np, minidl\n"
        "def slow(member, array, **kwargs):\n"
        "    member.write(b'half a checkpoint')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
        "np.lib.format.write_array = slow\n"
        "minidl.save({'w': np.zeros(3)}, sys.argv[1])\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    left = sorted(os.listdir(tmp_path))
    assert len(left) == 2 and left[0].startswith(".net.npz.saving-") and left[0].endswith(".tmp")
    assert path.read_bytes() == old
    np.testing.assert_array_equal(minidl.load(path)["w"], np.arange(1000.0))

    other = tmp_path / ".other.npz.saving-abc.tmp"  # another target's: not ours to delete
    other.write_bytes(b"")
    minidl.save({"w": np.ones(3)}, path)
    assert sorted(os.listdir(tmp_path)) == [other.name, "net.npz"]
    np.testing.assert_array_equal(minidl.load(path)["w"], np.ones(3))
