"""The MNIST loader, on small files written here. No network: downloads are tested with a
fake ``urlopen`` and a patched table of SHA-256 sums."""

import gzip
import hashlib
import importlib
import io
import urllib.error

import numpy as np
import pytest

from minidl.data import mnist, write_idx
from tests.data.test_idx import idx_bytes

mnist_module = importlib.import_module("minidl.data.mnist")  # the module, not the function


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")
    monkeypatch.setattr(mnist_module, "urlopen", refuse)


def write_fake_mnist(folder, split="train", n=6, gz=True):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    prefix = "train" if split == "train" else "t10k"
    ext = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_a_folder(tmp_path, gz):
    images, labels = write_fake_mnist(tmp_path, "test", gz=gz)
    x, y = mnist(tmp_path, split="test")
    assert x.shape == (6, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x[:, 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    x, _ = mnist(tmp_path, split="test", kind="fashion")
    assert len(x) == 6


def test_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        mnist(tmp_path / "nowhere", split="train")
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and str(tmp_path / "nowhere") in message
    assert "download=True" in message


def test_default_root_is_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert mnist_module.default_root("fashion") == tmp_path / "minidl" / "fashion-mnist"
    with pytest.raises(FileNotFoundError, match="fashion-mnist"):
        mnist(kind="fashion")


def test_bad_arguments():
    with pytest.raises(ValueError, match="mnist: kind must be 'mnist' or 'fashion'"):
        mnist(kind="kmnist")
    with pytest.raises(ValueError, match="mnist: split must be 'train' or 'test'"):
        mnist(split="val")


def gz_idx(array):
    return gzip.compress(idx_bytes(array, 0x08))


def fake_server(monkeypatch, files, fail_urls=()):
    """Serve ``files`` (name -> bytes); record every URL asked for."""
    asked = []

    def fake_urlopen(url, timeout=None):
        asked.append(url)
        if any(url.startswith(f) for f in fail_urls):
            raise urllib.error.URLError("mirror down")
        return io.BytesIO(files[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(mnist_module, "urlopen", fake_urlopen)
    return asked


def test_download_checks_sha256_and_uses_the_next_mirror(monkeypatch, tmp_path):
    images = np.full((2, 28, 28), 255, np.uint8)
    labels = np.array([3, 7], np.uint8)
    files = {"t10k-images-idx3-ubyte.gz": gz_idx(images),
             "t10k-labels-idx1-ubyte.gz": gz_idx(labels)}
    table = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    monkeypatch.setitem(mnist_module.FILES, "mnist", table)
    monkeypatch.setitem(mnist_module.MIRRORS, "mnist", ["https://a.example/", "https://b.example/"])
    asked = fake_server(monkeypatch, files, fail_urls=["https://a.example/"])

    x, y = mnist(tmp_path, split="test", download=True)
    np.testing.assert_array_equal(y, [3, 7])
    assert x.max() == 1.0
    assert asked == ["https://a.example/t10k-images-idx3-ubyte.gz",
                     "https://b.example/t10k-images-idx3-ubyte.gz",
                     "https://a.example/t10k-labels-idx1-ubyte.gz",
                     "https://b.example/t10k-labels-idx1-ubyte.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)
    # Second call: files are there, nothing is fetched.
    asked.clear()
    mnist(tmp_path, split="test", download=True)
    assert asked == []


def test_download_with_wrong_hash_keeps_nothing(monkeypatch, tmp_path):
    files = {"train-images-idx3-ubyte.gz": gz_idx(np.zeros((1, 28, 28), np.uint8)),
             "train-labels-idx1-ubyte.gz": gz_idx(np.zeros(1, np.uint8))}
    table = {name: "0" * 64 for name in files}
    monkeypatch.setitem(mnist_module.FILES, "mnist", table)
    monkeypatch.setitem(mnist_module.MIRRORS, "mnist", ["https://a.example/"])
    fake_server(monkeypatch, files)
    with pytest.raises(RuntimeError, match=r"(?s)could not download train-images.*"
                                           r"SHA-256 [0-9a-f]{64}, expected 0{64}"):
        mnist(tmp_path, split="train", download=True)
    assert list(tmp_path.iterdir()) == []


def test_check_sha256_on_a_fake_file(tmp_path):
    path = tmp_path / "fake.gz"
    path.write_bytes(b"not really mnist")
    mnist_module.check_sha256(path, hashlib.sha256(b"not really mnist").hexdigest())
    with pytest.raises(ValueError, match="check_sha256: .* has SHA-256 .* expected"):
        mnist_module.check_sha256(path, "f" * 64)


def test_hash_table_is_complete():
    for kind in ("mnist", "fashion"):
        assert set(mnist_module.FILES[kind]) == {
            "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
        for digest in mnist_module.FILES[kind].values():
            assert len(digest) == 64 and int(digest, 16) >= 0


@pytest.mark.parametrize("bad_label", [10, 255])
def test_labels_outside_0_to_9_are_a_clear_error(tmp_path, bad_label):
    _, labels = write_fake_mnist(tmp_path, "test")
    labels[3] = bad_label
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(ValueError, match=r"mnist: labels must be 0..9 .*/t10k-labels-idx1-ubyte"
                                         rf"\.gz has 1 outside, e.g. \[{bad_label}\]"):
        mnist(tmp_path, split="test")


def test_a_truncated_download_names_the_file_and_says_to_delete_it(tmp_path):
    write_fake_mnist(tmp_path, "train")
    images = tmp_path / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(ValueError, match=f"{images} is a damaged gzip file .* delete it and "
                                         "download it again"):
        mnist(tmp_path, split="train")
