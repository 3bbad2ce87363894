"""Global switches of the autograd engine: gradient recording, anomaly detection, profiling.

``grad_enabled`` is read by ``Function.apply`` on every op; ``no_grad()`` turns
it off for evaluation code so no graph is built. ``detect_anomaly()`` makes
every forward and backward check its result for NaN/Inf and name the op that
first produced one. ``profiler`` is the active ``minidl.autograd.profiler.profile``
(or None), which times every forward and backward. Either one sets ``watching``,
the single flag the hot paths test before they call an op through ``run_op``.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

grad_enabled = True
anomaly_enabled = False
profiler = None  # the active profile (minidl/autograd/profiler.py), if any
watching = False  # anomaly_enabled or a profiler: ops go through run_op


class AnomalyError(FloatingPointError):
    """Raised in anomaly mode when an op produces NaN or Inf."""


@contextlib.contextmanager
def no_grad():
    """Context manager (and decorator) under which no graph is recorded."""
    global grad_enabled
    previous, grad_enabled = grad_enabled, False
    try:
        yield
    finally:
        grad_enabled = previous


@contextlib.contextmanager
def enable_grad():
    """Re-enable graph recording inside a ``no_grad`` block."""
    global grad_enabled
    previous, grad_enabled = grad_enabled, True
    try:
        yield
    finally:
        grad_enabled = previous


def set_grad_enabled(enabled: bool) -> None:
    global grad_enabled
    grad_enabled = bool(enabled)


def is_grad_enabled() -> bool:
    return grad_enabled


@contextlib.contextmanager
def detect_anomaly():
    """Check every forward output and every backward gradient for NaN/Inf.

    Slow (one ``isfinite`` per op), meant for debugging: the error names the op
    that produced the first non-finite value, e.g. ``Log.forward produced NaN/Inf``.
    """
    global anomaly_enabled
    previous, anomaly_enabled = anomaly_enabled, True
    _update_watching()
    try:
        yield
    finally:
        anomaly_enabled = previous
        _update_watching()


def set_profiler(active) -> None:
    """Make ``active`` (a profile, or None) the one that run_op reports to."""
    global profiler
    profiler = active
    _update_watching()


def _update_watching() -> None:
    global watching
    watching = anomaly_enabled or profiler is not None


def run_op(method, args, kwargs, name: str, phase: str):
    """``method(*args, **kwargs)`` (an op's forward or backward) while watching: timed for
    the profiler if one is active, checked for NaN/Inf in anomaly mode."""
    timer = profiler
    start = time.perf_counter() if timer is not None else 0.0
    try:
        if anomaly_enabled:
            return run_checked(method, args, kwargs, f"{name}.{phase}")
        return method(*args, **kwargs)
    finally:  # an op that raised took its time too
        if timer is not None:
            timer.record(name, phase, time.perf_counter() - start)


def run_checked(method, args, kwargs, where: str):
    """Anomaly mode: call ``method(*args, **kwargs)`` and raise AnomalyError naming ``where``
    (e.g. ``Log.forward``) if any array it returns holds NaN or Inf.

    NumPy's own floating-point warnings are silenced during the call: the
    AnomalyError says more (which op, forward or backward), and a warning
    turned into an error (``python -W error``) would hide it.
    """
    with np.errstate(all="ignore"):
        result = method(*args, **kwargs)
    for array in result if isinstance(result, tuple) else (result,):
        check_finite(array, where)
    return result


def check_finite(array, where: str) -> None:
    """Raise AnomalyError if a floating-point ``array`` holds NaN or Inf."""
    if array is None:
        return
    array = np.asarray(array)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise AnomalyError(
            f"{where} produced NaN/Inf in {bad} of {array.size} elements (shape {array.shape})"
        )
