"""The per-op timer (minidl/autograd/profiler.py): what it counts, that its times are the
ops' own, and that it leaves the engine as it found it."""

import time

import numpy as np
import pytest

import minidl
from minidl import Tensor
from minidl.autograd import Function, mode, profiler


class Sleepy(Function):
    """y = x, with a forward that takes 20 ms and a backward that takes 10 ms."""

    def forward(ctx, x):
        time.sleep(0.02)
        return x.copy()

    def backward(ctx, grad):
        time.sleep(0.01)
        return grad


def test_each_op_is_counted_once_per_phase():
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.full(3, 2.0), requires_grad=True)
    with profiler.profile() as prof:
        (a * b).sum().backward()
        with minidl.no_grad():
            a * b  # a forward without a graph is still an op
    calls = {row.name: row.calls for row in prof.key_averages()}
    assert calls == {"Mul.forward": 2, "Sum.forward": 1, "Sum.backward": 1, "Mul.backward": 1}


def test_the_times_are_the_ops_own_and_add_up_to_at_most_the_wall_clock():
    x = Tensor(np.ones(4), requires_grad=True)
    with profiler.profile() as prof:
        for _ in range(2):
            Sleepy.apply(x).sum().backward()
        time.sleep(0.03)  # outside any op
    rows = {row.name: row for row in prof.key_averages()}
    assert rows["Sleepy.forward"].calls == 2 and rows["Sleepy.forward"].seconds >= 0.04
    assert rows["Sleepy.backward"].seconds >= 0.02
    assert rows["Sleepy.forward"].seconds < 0.04 + 0.03  # the sleep outside is not counted
    events = prof.key_averages()
    assert events[0].name == "Sleepy.forward"  # largest first
    assert sum(r.seconds for r in events) <= events.wall_seconds
    assert events.outside_ops >= 0.03


def test_the_table_names_every_op_and_the_time_outside_them():
    x = Tensor(np.ones(4), requires_grad=True)
    with profiler.profile() as prof:
        Sleepy.apply(x).sum().backward()
    table = prof.key_averages().table()
    for name in ("Sleepy.forward", "Sleepy.backward", "Sum.forward", "outside the ops",
                 "wall clock of the block"):
        assert name in table
    short = prof.key_averages().table(row_limit=1)
    assert "Sleepy.forward" in short and "3 more ops" in short and "Sum.forward" not in short
    assert prof.table(sort_by="name").index("Sleepy.backward") < \
        prof.table(sort_by="name").index("Sum.forward")
    with pytest.raises(ValueError, match="table: sort_by must be one of"):
        prof.table(sort_by="memory")


def test_the_engine_is_left_as_it_was_even_after_an_error():
    with pytest.raises(ZeroDivisionError):
        with profiler.profile():
            assert mode.watching and mode.profiler is not None
            raise ZeroDivisionError
    assert mode.profiler is None and not mode.watching


def test_profiles_do_not_nest_and_a_disabled_one_records_nothing():
    with profiler.profile():
        with pytest.raises(RuntimeError, match="profile: another profile is already active"):
            with profiler.profile():
                pass
    with profiler.profile(enabled=False) as prof:
        assert not mode.watching
        (Tensor(np.ones(2), requires_grad=True) * 2).sum().backward()
    assert prof.key_averages() == [] and prof.wall_seconds == 0.0


def test_anomaly_mode_still_names_the_op_while_profiling():
    x = Tensor(np.array([-1.0, 4.0]), requires_grad=True)
    with profiler.profile() as prof, minidl.detect_anomaly():
        with pytest.raises(minidl.AnomalyError, match="Log.forward"):
            x.log()
    assert mode.watching is False
    assert [row.name for row in prof.key_averages()] == ["Log.forward"]
