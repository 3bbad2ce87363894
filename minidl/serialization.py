"""save / load checkpoints: nested dicts of arrays, numbers and strings in one .npz file.

    minidl.save({"epoch": 3,
                 "model_state_dict": model.state_dict(),
                 "optimizer_state_dict": optimizer.state_dict(),
                 "loss": 0.1}, "checkpoint.npz")
    checkpoint = minidl.load("checkpoint.npz")
    model.load_state_dict(checkpoint["model_state_dict"])

**What can be saved.** Dicts (string or int keys), lists and tuples, nested as
deep as you like, whose leaves are ndarrays, Tensors, NumPy scalars, Python
numbers, strings, bools and None. ``load`` gives back the same structure: an
ndarray comes back an ndarray, a Tensor a Tensor (with its ``requires_grad``),
a tuple a tuple, an int key an int key. Anything else (a function, a Module, an
object array) is a ``TypeError`` naming where it sits, e.g.
``save: cannot save a function at ["hooks"][0]``, raised before any file is touched.

**The file** is an ordinary ``.npz`` (a zip of ``.npy`` files; ``np.load`` opens
it). Each array is one member named by its key path joined with ``/``, so
``np.load(path)["model_state_dict/fc.weight"]`` reads one weight, and a plain
state dict's members are named by its own keys. One more member,
``__minidl_checkpoint__``, holds a JSON text that records the structure: the
containers, the Python values, and for each array whether it was a Tensor.
Nothing is pickled, so loading a file never runs code from it (a pickle can
run any code when it is loaded). A ``.npz`` without that member (``np.savez``,
or minidl before nested checkpoints) loads as a flat dict name -> ndarray.

**Writing is atomic.** ``save`` writes a temporary file beside the target,
``.<name>.saving-<random>.tmp``, flushes it to disk and renames it over the
target (a rename is atomic on POSIX and Windows): a crash mid-write never
leaves a half-written checkpoint where a good one was. A save that is killed
outright (power loss, ``kill -9``) can leave its temporary file behind; it is
always safe to delete, and the next successful ``save`` to the same target
deletes it. (So two programs must not save to the same file at the same time.)

**Errors.** Every problem with the file itself, on reading or writing, raises
``CheckpointError``, a subclass of ``OSError``, whose message names the
function, the path and what is wrong (missing, empty, truncated or corrupted,
a PyTorch file or a pickle, a folder where a file should be, a read-only
folder). The underlying error, if any, is chained as ``__cause__``.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from minidl.autograd.tensor import Tensor

MANIFEST = "__minidl_checkpoint__"
FORMAT = "minidl checkpoint"
VERSION = 1
TEMP_MARK = ".saving-"  # temporary files are .<name>.saving-<random>.tmp


class CheckpointError(OSError):
    """A checkpoint could not be read or written (missing, not a minidl checkpoint,
    damaged, or not writable). A subclass of ``OSError``: ``except OSError`` catches it."""


# ---- save ------------------------------------------------------------------------------
def save(obj, path) -> None:
    """Write ``obj`` (a state dict or a nested checkpoint dict, see the module docstring)
    to ``path`` as an ``.npz`` file, atomically. The file name is used as given."""
    arrays: dict[str, np.ndarray] = {}
    root = _encode(obj, (), arrays, set())  # TypeError for unsavable values, before any I/O
    manifest = json.dumps({"format": FORMAT, "version": VERSION, "root": root})
    members = {MANIFEST: np.array(manifest), **arrays}
    path = Path(os.fspath(path))
    _check_target(path)
    tmp = _create_temp_file(path)
    try:
        with open(tmp, "wb") as f:
            _write_npz(f, members)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp made it private (0600)
        os.replace(tmp, path)
    except OSError as error:
        _remove(tmp)
        raise CheckpointError(f"save: could not write {path} ({_reason(error)}); "
                              "the file that was there, if any, is unchanged") from error
    except BaseException:  # KeyboardInterrupt, or a bug: never leave the temp file behind
        _remove(tmp)
        raise
    _fsync_folder(path.parent)
    _remove_stale_temp_files(path)


def _encode(value, where: tuple, arrays: dict, open_containers: set):
    """The manifest node of ``value``, storing each array found in ``arrays``.

    Python values are stored as themselves (JSON), containers as
    ``{"dict": [[key, node], ...]}`` / ``{"list": [...]}`` / ``{"tuple": [...]}``,
    arrays as ``{"array": member name, "type": "ndarray" | "Tensor" | "scalar"}``.
    """
    if isinstance(value, (Tensor, np.ndarray, np.generic)):
        return _encode_array(value, where, arrays)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (Mapping, list, tuple)):
        if id(value) in open_containers:
            raise TypeError(f"save: {_show(where)} contains itself; a checkpoint is a tree")
        open_containers.add(id(value))
        try:
            return _encode_container(value, where, arrays, open_containers)
        finally:
            open_containers.discard(id(value))
    raise TypeError(f"save: cannot save {_kind(value)} at {_show(where)}; a checkpoint holds "
                    "dicts, lists and tuples of ndarrays, Tensors, numbers, strings, bools "
                    "and None")


def _encode_container(value, where: tuple, arrays: dict, open_containers: set) -> dict:
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f"save: dict keys must be strings or ints, got {key!r} "
                                f"in {_show(where)}")
            items.append([key if isinstance(key, str) else int(key),
                          _encode(item, where + (key,), arrays, open_containers)])
        node = {"dict": items}
        if isinstance(value, OrderedDict):
            node["ordered"] = True
        return node
    kind = "tuple" if isinstance(value, tuple) else "list"
    return {kind: [_encode(item, where + (i,), arrays, open_containers)
                   for i, item in enumerate(value)]}


def _encode_array(value, where: tuple, arrays: dict) -> dict:
    array = value.data if isinstance(value, Tensor) else np.asarray(value)
    if array.dtype.hasobject:
        raise TypeError(f"save: the array at {_show(where)} holds Python objects (dtype "
                        f"{array.dtype}); only numeric, bool and string arrays can be saved")
    name = _member_name(where, arrays)
    arrays[name] = array
    if isinstance(value, Tensor):
        return {"array": name, "type": "Tensor", "requires_grad": bool(value.requires_grad)}
    return {"array": name, "type": "ndarray" if isinstance(value, np.ndarray) else "scalar"}


def _member_name(where: tuple, taken: dict) -> str:
    """The key path joined with '/' ('%' and '/' inside a key escaped), made unique."""
    parts = [str(key).replace("%", "%25").replace("/", "%2F") for key in where]
    name = "/".join(parts) if parts else "value"
    unique, n = name, 1
    while unique in taken or unique == MANIFEST:  # e.g. keys 0 and "0" in one dict
        unique, n = f"{name}~{n}", n + 1
    return unique


def _show(where: tuple) -> str:
    """A key path as Python indexing: ["model"]["fc.weight"]."""
    return "".join(f"[{key!r}]" for key in where) or "the top level"


def _kind(value) -> str:
    if hasattr(value, "state_dict"):  # a Module or an optimizer
        return f"a {type(value).__name__} (save its .state_dict() instead)"
    return f"a {type(value).__name__}"


def _check_target(path: Path) -> None:
    """Refuse a target that is a folder or sits under a file, before writing anything."""
    if path.is_dir():
        raise CheckpointError(f"save: {path} is a folder; give a file name, "
                              f"e.g. {path / 'checkpoint.npz'}")
    for folder in path.parents:
        if folder.exists():
            if not folder.is_dir():
                raise CheckpointError(f"save: cannot write {path}: {folder} is a file, "
                                      "not a folder")
            break


def _create_temp_file(path: Path) -> str:
    """Create the parent folders and an empty temporary file beside ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TEMP_MARK}",
                                   suffix=".tmp")
    except OSError as error:
        raise CheckpointError(f"save: cannot write {path}: cannot create a file in "
                              f"{path.parent} ({_reason(error)})") from error
    os.close(fd)
    return tmp


def _write_npz(file, arrays: dict) -> None:
    """The .npz format of ``np.savez``: a zip of one ``<key>.npy`` per array.

    Written by hand so that any key works (``np.savez(f, **arrays)`` would
    reject a key named ``file`` or ``allow_pickle``).
    """
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, array in arrays.items():
            with archive.open(key + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _remove_stale_temp_files(path: Path) -> None:
    """Delete what saves to ``path`` that were killed mid-write left behind."""
    prefix = f".{path.name}{TEMP_MARK}"
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix) and name.endswith(".tmp"):
            _remove(path.parent / name)


def _remove(file) -> None:
    try:
        os.unlink(file)
    except OSError:
        pass


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; Windows cannot open a folder, and needs not)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reason(error: OSError) -> str:
    """The OS's words without the file name (which may be the temporary file's)."""
    return error.strerror or str(error)


# ---- load ------------------------------------------------------------------------------
def load(path, map_location=None, weights_only: bool = True):
    """Read a checkpoint written by ``save``: the same structure, arrays as they were saved.

    ``map_location`` and ``weights_only`` are PyTorch's arguments, accepted so that
    ``torch.load(path, map_location="cpu", weights_only=True)`` runs unchanged:
    minidl runs on the CPU, so ``map_location`` may be None, ``"cpu"``, a CPU device,
    a dict mapping locations to the CPU, or a function (not called: every array is
    already on the CPU). Nothing in a minidl checkpoint is pickled, so
    ``weights_only=False`` loads exactly the same data (it never enables pickle).
    """
    _check_map_location(map_location)
    if not isinstance(weights_only, bool):
        raise TypeError(f"load: weights_only must be True or False, got {weights_only!r}")
    path = Path(os.fspath(path))
    arrays = _read_arrays(path)
    if MANIFEST not in arrays:
        return arrays  # a plain .npz: name -> ndarray
    try:
        manifest = json.loads(str(arrays.pop(MANIFEST)))
        if manifest.get("format") != FORMAT:
            raise ValueError(f"unknown format {manifest.get('format')!r}")
        if manifest.get("version", 0) > VERSION:
            raise CheckpointError(f"load: {path} was written by a newer minidl (checkpoint "
                                  f"version {manifest['version']}); upgrade minidl to read it")
        return _decode(manifest["root"], arrays)
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
        raise CheckpointError(f"load: {path} is damaged: its structure record "
                              f"({MANIFEST}) cannot be read ({error})") from error


def _decode(node, arrays: dict):
    if not isinstance(node, dict):
        return node  # None, bool, int, float or str
    if "dict" in node:
        kind = OrderedDict if node.get("ordered") else dict
        return kind((key, _decode(item, arrays)) for key, item in node["dict"])
    if "list" in node:
        return [_decode(item, arrays) for item in node["list"]]
    if "tuple" in node:
        return tuple(_decode(item, arrays) for item in node["tuple"])
    array = arrays[node["array"]]
    if node["type"] == "Tensor":
        return Tensor(array, requires_grad=node["requires_grad"])
    return array if node["type"] == "ndarray" else array[()]


def _check_map_location(map_location) -> None:
    if map_location is None or callable(map_location):
        return
    locations = map_location.values() if isinstance(map_location, dict) else [map_location]
    for location in locations:
        name = location if isinstance(location, str) else getattr(location, "type", None)
        if not isinstance(name, str) or name.split(":")[0] != "cpu":
            raise ValueError(f"load: map_location={map_location!r}: minidl runs on the CPU "
                             "only; use None or 'cpu'")


# What a file that is not a zip archive probably is, by its first bytes.
_SIGNATURES = [
    (b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19", "a PyTorch file in the legacy format "
     "(torch.save before PyTorch 1.6)"),
    (b"\x93NUMPY", "a single .npy array (read it with np.load)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras .h5?)"),
    (b"\x1f\x8b", "a gzip file"),
]


def _read_arrays(path: Path) -> dict:
    """name -> ndarray for every member, after checking that this is a readable .npz."""
    head = _read_head(path)
    if head[:2] != b"PK":
        raise CheckpointError(f"load: {path} is not a minidl checkpoint: {_describe(head)}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            _check_member_names(path, names)
            return {name[:-4]: _read_member(archive, name) for name in names}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, ValueError,
            OSError) as error:
        raise CheckpointError(f"load: {path} is damaged (truncated or corrupted: {error}); "
                              "it cannot be read") from error


def _read_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except FileNotFoundError as error:
        raise CheckpointError(f"load: no checkpoint at {path} (no such file)") from error
    except IsADirectoryError as error:
        raise CheckpointError(f"load: {path} is a folder, not a checkpoint file") from error
    except OSError as error:
        raise CheckpointError(f"load: cannot read {path} ({_reason(error)})") from error
    if not head:
        raise CheckpointError(f"load: {path} is empty (0 bytes), not a checkpoint; "
                              "was its save interrupted?")
    return head


def _describe(head: bytes) -> str:
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            kind = what
            break
    else:
        if head[:1] == b"\x80" and 2 <= head[1] <= 5:
            kind = "a Python pickle (minidl never unpickles: loading a pickle can run code)"
        else:
            return (f"it is not a zip archive (a minidl checkpoint is an .npz file, a zip); "
                    f"its first bytes are {head[:8]!r}")
    if "PyTorch" in kind:
        return f"it looks like {kind}; {_FROM_TORCH}"
    return f"it looks like {kind}"


_FROM_TORCH = ("convert it where PyTorch is installed: torch.load it, then "
               "minidl.utils.torch_bridge.from_torch_state_dict (see examples/torch_bridge.py)")


def _check_member_names(path: Path, names: list) -> None:
    if any(name.endswith("data.pkl") or name.rsplit("/", 1)[-1] == "version" for name in names):
        raise CheckpointError(f"load: {path} is not a minidl checkpoint: it looks like a "
                              f"PyTorch file (torch.save); {_FROM_TORCH}")
    others = [name for name in names if not name.endswith(".npy")]
    if others:
        raise CheckpointError(f"load: {path} is not a minidl checkpoint: a zip archive with "
                              f"members that are not .npy arrays ({', '.join(others[:3])})")


def _read_member(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    raw = archive.read(name)  # checks the member's CRC-32
    try:
        return np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise CheckpointError(f"load: {archive.filename} is not a minidl checkpoint: its "
                                  f"array {name[:-4]!r} is pickled Python objects (minidl never "
                                  "unpickles: loading a pickle can run code)") from error
        raise
