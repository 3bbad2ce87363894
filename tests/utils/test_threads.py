"""minidl/utils/threads.py: NumPy's BLAS threads, and running an op's shares on threads."""

import threading
import time

import pytest

from minidl.kernels import conv as kconv
from minidl.utils import threads


@pytest.mark.parametrize("n, parts", [(10, 3), (4, 4), (3, 5), (1, 2), (7, 1)])
def test_split_evenly_cuts_consecutive_runs_of_nearly_equal_length(n, parts):
    items = list(range(n))
    runs = threads.split_evenly(items, parts)
    assert [i for run in runs for i in run] == items
    assert len(runs) == min(n, parts) and all(runs)
    lengths = [len(run) for run in runs]
    assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)


def test_run_shares_runs_the_shares_at_once_and_returns_their_results_in_order():
    started, both_started = [], threading.Barrier(2, timeout=10)

    def work(share):
        started.append(threading.get_ident())
        both_started.wait()  # only returns if the other share runs at the same time
        return [2 * x for x in share]

    assert threads.run_shares(work, [[1, 2], [3]]) == [[2, 4], [6]]
    assert len(set(started)) == 2 and threading.get_ident() in started


@pytest.mark.parametrize("failing", [0, 1])
def test_an_error_in_a_share_is_raised_after_every_share_has_finished(failing):
    finished = []

    def work(share):
        if share == failing:
            raise ValueError(f"share {share} failed")
        time.sleep(0.05)
        finished.append(share)

    with pytest.raises(ValueError, match=f"share {failing} failed"):
        threads.run_shares(work, [0, 1])
    assert finished == [1 - failing]


def test_blas_threads_can_be_read_and_set_where_numpy_uses_openblas():
    before = threads.blas_threads()
    if before is None:  # another BLAS: nothing to read, and ops never share their work
        return
    try:
        assert threads.blas_threads(1) == 1
    finally:
        threads.blas_threads(before)
    assert threads.blas_threads() == before


def test_one_blas_thread_gives_the_count_back_after_overlapping_blocks(monkeypatch):
    count = {"now": 4}

    def fake(n=None):
        if n is not None:
            count["now"] = n
        return count["now"]

    monkeypatch.setattr(threads, "blas_threads", fake)
    with threads.one_blas_thread():
        assert count["now"] == 1
        with threads.one_blas_thread():  # another thread's block, overlapping this one
            assert count["now"] == 1
        assert count["now"] == 1  # still inside the first block
    assert count["now"] == 4


def test_kernels_release_the_gil_so_that_threads_run_them_at_once():
    assert kconv.im2col.compile().targetoptions["nogil"] is True
