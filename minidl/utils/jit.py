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
``NUMBA_CACHE_DIR`` at a user cache folder before numba is imported.
"""

from __future__ import annotations

import os
import sys
import tempfile
import types
from pathlib import Path

prange = range  # serial stand-in; swapped for numba.prange when a kernel compiles
_numba = None


def user_cache_dir() -> Path:
    """Where minidl keeps numba's cache (and downloads) when the package folder is read-only."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "minidl"


def choose_cache_dir(package_dir: Path) -> Path | None:
    """None if numba can cache beside the sources in ``package_dir``, else a writable folder."""
    pycache = package_dir / "__pycache__"
    try:
        pycache.mkdir(exist_ok=True)
        with tempfile.TemporaryFile(dir=pycache):
            return None
    except OSError:
        pass
    # The user folder, or (if even that cannot be created, e.g. a read-only home) a temp one.
    for folder in (user_cache_dir() / "numba", Path(tempfile.gettempdir()) / "minidl-numba"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder
    return None  # nowhere writable: leave the choice to numba's own cache locators


def load_numba():
    """Import numba once, after setting NUMBA_CACHE_DIR if the package folder is read-only."""
    global _numba
    if _numba is None:
        if "NUMBA_CACHE_DIR" not in os.environ and "numba" not in sys.modules:
            folder = choose_cache_dir(Path(__file__).resolve().parent.parent / "kernels")
            if folder is not None:
                os.environ["NUMBA_CACHE_DIR"] = str(folder)
        import numba

        _numba = numba
    return _numba


class LazyKernel:
    """A numba kernel compiled on its first call (see the module docstring)."""

    def __init__(self, py_func, parallel: bool, fastmath: bool):
        self.py_func = py_func
        self.parallel = parallel
        self.fastmath = fastmath
        self._compiled = None
        self.__name__ = py_func.__name__
        self.__doc__ = py_func.__doc__
        self.__wrapped__ = py_func

    def compile(self):
        """Compile now (numba caches the machine code on disk) and return the dispatcher."""
        if self._compiled is None:
            numba = load_numba()
            func = self._with_numba_globals(numba)
            self._compiled = numba.njit(cache=True, parallel=self.parallel,
                                        fastmath=self.fastmath)(func)
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


def njit(func=None, *, parallel: bool = False, fastmath: bool = False):
    """Mark a function as a numba kernel, compiled lazily with ``cache=True``.

    Use as ``@njit`` or ``@njit(parallel=True)``. A kernel may call other
    kernels: numba compiles the callee when it compiles the caller.
    """
    def wrap(py_func):
        return LazyKernel(py_func, parallel, fastmath)

    return wrap(func) if func is not None else wrap
