"""minidl.utils.jit: numba's cache goes beside the kernels when that folder is writable, to a
user folder when it is not (read-only system install), and kernels compile lazily."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from minidl.utils import jit


@pytest.fixture
def user_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "minidl" / "numba"


def test_writable_package_folder_keeps_the_cache_beside_the_sources(tmp_path, user_home):
    package = tmp_path / "kernels"
    package.mkdir()
    assert jit.choose_cache_dir(package) is None
    assert (package / "__pycache__").is_dir()
    assert not user_home.exists()


def test_a_failing_write_sends_the_cache_to_the_user_folder(tmp_path, user_home, monkeypatch):
    package = tmp_path / "kernels"
    package.mkdir()

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    assert jit.choose_cache_dir(package) == user_home
    assert user_home.is_dir()


def test_a_package_folder_where_no_pycache_can_be_made(tmp_path, user_home):
    not_a_folder = tmp_path / "file.py"
    not_a_folder.write_text("")
    assert jit.choose_cache_dir(not_a_folder) == user_home


def test_an_unwritable_user_folder_falls_back_to_the_temp_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "cache"
    blocker.write_text("")  # XDG_CACHE_HOME is a file: nothing can be created under it
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    not_a_folder = tmp_path / "file.py"
    not_a_folder.write_text("")
    assert jit.choose_cache_dir(not_a_folder) == tmp_path / "tmp" / "minidl-numba"


def test_load_numba_sets_the_cache_dir_before_importing_numba(tmp_path):
    """In a fresh interpreter (numba reads NUMBA_CACHE_DIR at import): simulate a read-only
    package folder and check numba's configuration."""
    code = (
        "import minidl.utils.jit as jit, sys\n"
        "assert 'numba' not in sys.modules\n"
        "jit.choose_cache_dir = lambda package: jit.user_cache_dir() / 'numba'\n"
        "numba = jit.load_numba()\n"
        "print(numba.config.CACHE_DIR)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "minidl" / "numba")


def test_kernels_compile_lazily_and_keep_the_python_loop():
    from minidl.kernels import conv

    assert callable(conv.im2col.py_func)
    assert "im2col" in repr(conv.im2col)
