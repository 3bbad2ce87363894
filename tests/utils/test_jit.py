"""minidl.utils.jit: numba's cache goes beside the kernels when that folder is writable, to a
private user folder when it is not (read-only system install), nowhere when no folder is safe
(another owner, writable by others, a symbolic link), and kernels compile lazily.

We run as root here, where permission bits do not stop anything; other owners are made
honestly with os.chown to a uid that is not ours."""

import os
import stat
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
    assert jit.choose_cache_dir(package) == package / "__pycache__"
    assert (package / "__pycache__").is_dir()
    assert not user_home.exists()


def test_a_failing_write_sends_the_cache_to_the_user_folder(tmp_path, user_home, monkeypatch):
    package = tmp_path / "kernels"
    package.mkdir()

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    assert jit.choose_cache_dir(package) == user_home
    assert user_home.is_dir() and stat.S_IMODE(user_home.stat().st_mode) == 0o700


def test_a_package_folder_where_no_pycache_can_be_made(tmp_path, user_home):
    not_a_folder = tmp_path / "file.py"
    not_a_folder.write_text("")
    assert jit.choose_cache_dir(not_a_folder) == user_home


@pytest.fixture
def no_home_and_no_package(tmp_path, monkeypatch):
    """A read-only install (no __pycache__ possible) and a home where nothing can be created:
    the temp folder is the last place left. Returns (package folder, our temp cache folder)."""
    blocker = tmp_path / "cache"
    blocker.write_text("")  # XDG_CACHE_HOME is a file: nothing can be created under it
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    not_a_folder = tmp_path / "file.py"
    not_a_folder.write_text("")
    return not_a_folder, tmp_path / "tmp" / f"minidl-numba-{os.getuid()}"


def test_an_unwritable_user_folder_falls_back_to_a_private_temp_folder(no_home_and_no_package):
    package, private = no_home_and_no_package
    assert jit.choose_cache_dir(package) == private
    assert stat.S_IMODE(private.stat().st_mode) == 0o700 and private.stat().st_uid == os.getuid()
    assert jit.choose_cache_dir(package) == private  # and again, now that it exists


OTHER_UID = os.getuid() + 4242


@pytest.mark.parametrize("make_unsafe, reason", [
    (lambda f: (f.mkdir(mode=0o700), os.chown(f, OTHER_UID, -1)),
     f"belongs to another user \\(uid {OTHER_UID}; you are {os.getuid()}\\)"),
    (lambda f: (f.mkdir(), f.chmod(0o777)), "can be written by other users \\(mode 777"),
    (lambda f: (f.mkdir(), f.chmod(0o770)), "can be written by other users \\(mode 770"),
    (lambda f: (f.parent.joinpath("elsewhere").mkdir(mode=0o700),
                f.symlink_to(f.parent / "elsewhere")), "is a symbolic link"),
    (lambda f: f.write_text(""), "is not a folder"),
])
def test_an_unsafe_temp_folder_turns_the_cache_off_with_one_warning(no_home_and_no_package,
                                                                      make_unsafe, reason):
    package, private = no_home_and_no_package
    make_unsafe(private)
    before = private.lstat()
    with pytest.warns(RuntimeWarning, match=f"numba's cache is off.*{private} {reason}") as seen:
        assert jit.choose_cache_dir(package) is None
    assert len(seen) == 1
    after = private.lstat()  # refused, not "repaired": nothing about it changed
    assert (after.st_uid, after.st_mode) == (before.st_uid, before.st_mode)


def test_an_unsafe_user_folder_is_skipped_for_the_private_temp_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shared = tmp_path / "cache" / "minidl" / "numba"
    shared.mkdir(parents=True)
    shared.chmod(0o775)  # group-writable, e.g. made under umask 002
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    not_a_folder = tmp_path / "file.py"
    not_a_folder.write_text("")
    assert jit.choose_cache_dir(not_a_folder) == tmp_path / "tmp" / f"minidl-numba-{os.getuid()}"


def test_with_no_safe_folder_kernels_compile_without_a_cache(tmp_path):
    """In a fresh interpreter: read-only package, no home, and a temp cache folder owned by
    someone else. A kernel defined in ``-c`` code has no file for numba to cache beside, so it
    compiles only if caching is really off (with caching on numba raises 'no locator')."""
    (tmp_path / "tmp" / f"minidl-numba-{os.getuid()}").mkdir(parents=True, mode=0o700)
    os.chown(tmp_path / "tmp" / f"minidl-numba-{os.getuid()}", OTHER_UID, -1)
    (tmp_path / "cache").write_text("")
    code = (
        "import tempfile, warnings\n"
        "real = tempfile.TemporaryFile\n"
        "def read_only(*args, dir=None, **kwargs):\n"
        "    if dir is not None and str(dir).endswith('__pycache__'):\n"
        "        raise PermissionError(30, 'Read-only file system')\n"
        "    return real(*args, dir=dir, **kwargs)\n"
        "tempfile.TemporaryFile = read_only\n"
        "import numpy as np\n"
        "from minidl.utils import jit\n"
        "@jit.njit\n"
        "def total(x):\n"
        "    s = 0.0\n"
        "    for v in x:\n"
        "        s += v\n"
        "    return s\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        "    print(total(np.arange(4.0)), total(np.ones(3)))\n"
        "print(len(seen), jit._cache)\n"
        "print(seen[0].message)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), TMPDIR=str(tmp_path / "tmp"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "6.0 3.0" and lines[1] == "1 False"
    assert "belongs to another user" in lines[2]
    assert os.listdir(tmp_path / "tmp" / f"minidl-numba-{os.getuid()}") == []


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


@pytest.mark.parametrize("policy", [None, "ACTIVE"])
def test_numba_threads_wait_passively_unless_the_user_chose(policy):
    """In a fresh interpreter (OpenMP reads OMP_WAIT_POLICY when it loads): load_numba asks
    for sleeping idle threads before numba is imported; a policy the user set stays."""
    code = (
        "import os, sys, numpy as np\n"
        "import minidl.utils.jit as jit\n"
        "assert 'numba' not in sys.modules\n"
        "jit.load_numba()\n"
        "from minidl.kernels import norm\n"
        "x = np.ones((2, 3, 1, 4)); w = np.ones((3, 1))\n"
        "norm.group_norm_forward(x, w, w, 1e-5, np.empty_like(x), np.empty((2, 3)),\n"
        "                        np.empty((2, 3)))\n"  # a parallel kernel runs
        "print(os.environ['OMP_WAIT_POLICY'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (policy or "PASSIVE")


def test_kernels_compile_lazily_and_keep_the_python_loop():
    from minidl.kernels import conv

    assert callable(conv.im2col.py_func)
    assert "im2col" in repr(conv.im2col)
