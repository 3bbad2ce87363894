"""MNIST and Fashion-MNIST from IDX files in a folder (downloaded only when asked).

    images, labels = mnist("~/data/mnist", split="train")   # [60000, 1, 28, 28] float32, [60000]
    images, labels = mnist(kind="fashion", download=True)   # into minidl's cache folder

A folder holds the four files under their original names, gzipped or not::

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz

Nothing is fetched unless ``download=True``. A download goes to the folder
(default: ``<user cache>/minidl/mnist`` or ``.../fashion-mnist``), is checked
against the SHA-256 in ``FILES`` and only then renamed into place, so a file
that is there was complete and correct when it arrived.

MNIST: LeCun, Cortes & Burges, http://yann.lecun.com/exdb/mnist/ (mirrored
below). Fashion-MNIST: Xiao, Rasul & Vollgraf (2017), "Fashion-MNIST: a Novel
Image Dataset for Benchmarking Machine Learning Algorithms", MIT license,
https://github.com/zalandoresearch/fashion-mnist. Its classes: T-shirt/top,
Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.request import urlopen

import numpy as np

from minidl.data.idx import atomic_write_bytes, read_idx
from minidl.utils.jit import user_cache_dir

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")

# The SHA-256 of each distributed (gzipped) file.
FILES = {
    "mnist": {
        "train-images-idx3-ubyte.gz":
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz":
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz":
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz":
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion": {
        "train-images-idx3-ubyte.gz":
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz":
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz":
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz":
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}

# Tried in order until one answers with the right bytes.
MIRRORS = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"],
    "fashion": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}

SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
FOLDERS = {"mnist": "mnist", "fashion": "fashion-mnist"}


def default_root(kind: str = "mnist") -> Path:
    """Where ``mnist(download=True)`` puts the files when no root is given."""
    return user_cache_dir() / FOLDERS[kind]


def mnist(root=None, split: str = "train", kind: str = "mnist",
          download: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST (``kind='mnist'``) or Fashion-MNIST (``kind='fashion'``).

    root: the folder with the IDX files (default ``default_root(kind)``).
    split: 'train' (60,000 images) or 'test' (10,000).
    download: fetch missing files from ``MIRRORS`` and check their SHA-256.
    Returns images float32 [N, 1, 28, 28] in [0, 1] (bytes / 255) and labels int64 [N].
    """
    if kind not in FILES:
        raise ValueError(f"mnist: kind must be 'mnist' or 'fashion', got {kind!r}")
    if split not in SPLITS:
        raise ValueError(f"mnist: split must be 'train' or 'test', got {split!r}")
    root = Path(root).expanduser() if root is not None else default_root(kind)
    paths = []
    for stem in SPLITS[split]:
        path = find_file(root, stem)
        if path is None:
            if not download:
                raise FileNotFoundError(_missing_message(root, stem, kind))
            path = download_file(kind, stem + ".gz", root)
        paths.append(path)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"mnist: expected images [N, H, W] and labels [N] in {root}, got "
                         f"shapes {images.shape} and {labels.shape}")
    bad = labels[(labels < 0) | (labels > 9)]
    if bad.size:
        raise ValueError(f"mnist: labels must be 0..9 (ten classes), but {paths[1]} has "
                         f"{bad.size} outside, e.g. {sorted(set(bad.tolist()))[:5]}; the file is "
                         "corrupt or not an MNIST label file: delete it and download it again")
    return images.astype(np.float32)[:, None] / 255.0, labels.astype(np.int64)


def find_file(root: Path, stem: str) -> Path | None:
    """``root/stem.gz`` or ``root/stem`` (uncompressed), whichever exists."""
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    return None


def _missing_message(root: Path, stem: str, kind: str) -> str:
    names = ", ".join(FILES[kind])
    return (f"mnist: {stem}.gz (or {stem}) not found in {root}. Put the {kind} files there "
            f"({names}; from {MIRRORS[kind][0]}), pass root= the folder that has them, "
            "or call with download=True to fetch them (SHA-256 checked).")


def sha256_hex(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def check_sha256(path, expected: str) -> None:
    """Raise ``ValueError`` if the file's SHA-256 is not ``expected``."""
    digest = sha256_hex(Path(path).read_bytes())
    if digest != expected:
        raise ValueError(f"check_sha256: {path} has SHA-256 {digest}, expected {expected}; "
                         "the file is corrupt or a different version; delete it and download again")


def download_file(kind: str, filename: str, root: Path) -> Path:
    """Fetch ``filename`` into ``root``, trying each mirror, keeping it only if its
    SHA-256 matches ``FILES[kind][filename]``. Returns the path."""
    expected = FILES[kind][filename]
    problems = []
    for base in MIRRORS[kind]:
        url = base + filename
        try:
            with urlopen(url, timeout=60) as response:
                payload = response.read()
        except OSError as error:  # URLError, HTTPError and timeouts are all OSErrors
            problems.append(f"{url}: {error}")
            continue
        digest = sha256_hex(payload)
        if digest != expected:
            problems.append(f"{url}: SHA-256 {digest}, expected {expected}")
            continue
        atomic_write_bytes(root / filename, payload)
        return root / filename
    raise RuntimeError(f"mnist: could not download {filename} into {root}:\n  "
                       + "\n  ".join(problems))
