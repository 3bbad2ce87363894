"""numba settings for minidl's kernels: lazy compilation and a writable cache.

Importing numba takes about half a second and compiling a kernel longer, so
neither happens at ``import minidl``. A kernel is declared with ``@njit`` from
this module::

    from minidl.utils.jit import njit, prange

    @njit(parallel=True)
    def add_rows(x, out):
        for i in prange(x.shape[0]):   # prange is range until numba compiles it
            ...

and stays a plain Python function object until its first call. Then numba is
imported and the function is compiled with ``cache=True`` (the machine code is
kept on disk, so the next run of the program skips the compile). With
``NUMBA_DISABLE_JIT=1`` numba hands back the Python function, so you can step
through a kernel with a debugger. ``kernel.py_func`` is always the plain
Python loop.

Cache location: numba writes its cache beside the source file. When the
installed package folder is read-only (a system install), we point
``NUMBA_CACHE_DIR`` at a user cache folder before numba is imported:
``~/.cache/minidl/numba`` (or under ``$XDG_CACHE_HOME``), or when that cannot
be created (a read-only home), ``<temp folder>/minidl-numba-<user id>``.

Those folders must be private. numba's cache index files are pickles, which
run code when loaded: a cache folder that another user can write lets them run
code as you, and one that another user owns (say, a shared /tmp folder made by
whoever ran minidl first) makes every kernel fail. So a cache folder is
created with mode 0700 and used only if it is a real folder (not a symbolic
link) that you own and that neither your group nor others can write. If no
folder passes, kernels are compiled without a cache (slower starts, same
results) and one RuntimeWarning says why. A ``NUMBA_CACHE_DIR`` you set
yourself is used as it is.

Threads: a ``parallel=True`` kernel shares its ``prange`` loop out among numba's
OpenMP threads. By default an OpenMP thread keeps a core busy waiting for the next
loop for a while after each one; minidl's kernels alternate with OpenBLAS's matrix
products, which need both cores right then, and on a machine running other programs
a busy-waiting thread takes a core that a working one needed. So before numba is
imported we set ``OMP_WAIT_POLICY=PASSIVE`` (idle threads sleep) unless you set it
yourself. It applies to each OpenMP runtime loaded after that point in the process.
"""

from __future__ import annotations

import getpass
import os
import stat
import sys
import tempfile
import types
import warnings
from pathlib import Path

prange = range  # serial stand-in; swapped for numba.prange when a kernel compiles
_numba = None
_cache = True  # False when no safe folder for numba's cache was found


def user_cache_dir() -> Path:
    """Where minidl keeps numba's cache (and downloads) when the package folder is read-only."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "minidl"


def choose_cache_dir(package_dir: Path) -> Path | None:
    """The folder for numba's cache: ``package_dir/__pycache__`` (beside the sources) if it
    is writable, else the first private user folder (see the module docstring), else None:
    nowhere safe, so compile without a cache (with one RuntimeWarning saying why)."""
    pycache = package_dir / "__pycache__"
    try:
        pycache.mkdir(exist_ok=True)
        with tempfile.TemporaryFile(dir=pycache):
            return pycache
    except OSError:
        pass
    refused = []
    for folder in (user_cache_dir() / "numba",
                   Path(tempfile.gettempdir()) / f"minidl-numba-{_user_id()}"):
        problem = _make_private_folder(folder)
        if problem is None:
            return folder
        refused.append(f"{folder} {problem}")
    warnings.warn("minidl: numba's cache is off, so kernels are compiled again in every "
                  "program: " + "; ".join(refused), RuntimeWarning, stacklevel=3)
    return None


def _user_id():
    """The numeric user id (POSIX), or the user name where there is none (Windows)."""
    return os.getuid() if hasattr(os, "getuid") else getpass.getuser()


def _make_private_folder(folder: Path) -> str | None:
    """Create ``folder`` with mode 0700 if missing; None if it is safe for the cache, else
    why not (for the warning)."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        pass  # something that is not a folder is there: lstat says what
    except OSError as error:
        return f"cannot be created ({error.strerror or error})"
    try:
        info = os.lstat(folder)
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a folder"
    if hasattr(os, "getuid"):  # POSIX owners and modes (a Windows temp folder is per user)
        if info.st_uid != os.getuid():
            return f"belongs to another user (uid {info.st_uid}; you are {os.getuid()})"
        if info.st_mode & 0o022:
            return (f"can be written by other users (mode {stat.S_IMODE(info.st_mode):o}; "
                    "it should be 700)")
    if not os.access(folder, os.W_OK):
        return "is not writable"
    return None


def load_numba():
    """Import numba once, after choosing its cache folder (see ``choose_cache_dir``)."""
    global _numba, _cache
    if _numba is None:
        if "NUMBA_CACHE_DIR" not in os.environ and "numba" not in sys.modules:
            package = Path(__file__).resolve().parent.parent / "kernels"
            folder = choose_cache_dir(package)
            if folder is None:
                _cache = False
            elif folder != package / "__pycache__":
                os.environ["NUMBA_CACHE_DIR"] = str(folder)
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see "Threads" above
        import numba

        _numba = numba
    return _numba


class LazyKernel:
    """A numba kernel compiled on its first call (see the module docstring)."""

    def __init__(self, py_func, parallel: bool, fastmath, error_model: str = "python"):
        self.py_func = py_func
        self.parallel = parallel
        self.fastmath = fastmath
        self.error_model = error_model
        self._compiled = None
        self.__name__ = py_func.__name__
        self.__doc__ = py_func.__doc__
        self.__wrapped__ = py_func

    def compile(self):
        """Compile now (numba caches the machine code on disk) and return the dispatcher."""
        if self._compiled is None:
            numba = load_numba()
            func = self._with_numba_globals(numba)
            self._compiled = numba.njit(cache=_cache, parallel=self.parallel,
                                        fastmath=self.fastmath,
                                        error_model=self.error_model)(func)
        return self._compiled

    def _with_numba_globals(self, numba):
        """A copy of py_func whose globals give numba what it can compile: numba's own
        ``prange`` and the compiled form of every kernel this one calls.
        (The module's globals are left as they are.)"""
        names = self.py_func.__code__.co_names
        scope = dict(self.py_func.__globals__)
        if "prange" in names and scope.get("prange") is range:
            scope["prange"] = numba.prange
        for name in names:
            if isinstance(scope.get(name), LazyKernel):
                scope[name] = scope[name].compile()
        func = types.FunctionType(self.py_func.__code__, scope, self.py_func.__name__,
                                  self.py_func.__defaults__, self.py_func.__closure__)
        func.__qualname__ = self.py_func.__qualname__
        func.__module__ = self.py_func.__module__
        func.__doc__ = self.py_func.__doc__
        return func

    def __call__(self, *args):
        compiled = self._compiled or self.compile()
        return compiled(*args)

    def __repr__(self) -> str:
        state = "compiled" if self._compiled is not None else "not compiled yet"
        return f"<numba kernel {self.__name__} ({state})>"


def njit(func=None, *, parallel: bool = False, fastmath=False, error_model: str = "python"):
    """Mark a function as a numba kernel, compiled lazily and cached on disk (module docstring).

    Use as ``@njit`` or ``@njit(parallel=True)``. A kernel may call other
    kernels: numba compiles the callee when it compiles the caller.
    ``error_model="numpy"`` (numba's option): a float division by zero gives inf or nan,
    as in NumPy, instead of raising ZeroDivisionError. The check that raising needs is a
    branch in every division, and it stops LLVM from vectorizing a loop that divides.
    """
    def wrap(py_func):
        return LazyKernel(py_func, parallel, fastmath, error_model)

    return wrap(func) if func is not None else wrap
