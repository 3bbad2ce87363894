"""minidl.data.sequences: the synthetic tasks, the text corpus and the TBPTT batching."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.data import (
    CharVocab,
    adding_problem,
    batchify,
    bptt_batches,
    copy_task,
    parity,
    sine_waves,
    text_corpus,
)
from minidl.data.sequences import ADDING_BASELINE_MSE, copy_task_baseline


def test_adding_problem_targets_are_the_sum_of_the_two_marked_values():
    x, y = adding_problem(500, 20, seed=0)
    assert x.shape == (500, 20, 2) and y.shape == (500,) and x.dtype == np.float32
    markers = x[..., 1]
    np.testing.assert_array_equal(markers.sum(axis=1), 2)
    assert (markers[:, :10].sum(axis=1) == 1).all()  # one marker in each half
    for n in range(5):
        marked = np.flatnonzero(markers[n])
        assert np.isclose(y[n], x[n, marked, 0].sum())
    # The trivial answer y = 1 has mean squared error 1/6.
    assert abs(np.mean((y - 1) ** 2) - ADDING_BASELINE_MSE) < 0.02


def test_same_seed_same_data_other_seed_other_data():
    a, _ = adding_problem(10, 8, seed=3)
    b, _ = adding_problem(10, 8, seed=3)
    c, _ = adding_problem(10, 8, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(sine_waves(3, 9, seed=1), sine_waves(3, 9, seed=1))


def test_copy_task_layout():
    x, y = copy_task(4, delay=6, n_symbols=5, copy_length=3, seed=0)
    assert x.shape == y.shape == (4, 3 + 6 + 3)
    np.testing.assert_array_equal(y[:, -3:], x[:, :3])  # the symbols come back at the end
    assert ((x[:, :3] >= 1) & (x[:, :3] <= 5)).all()
    assert (x[:, 3 + 6 - 1] == 6).all()  # the "go" marker right before the answer
    assert not y[:, :-3].any() and not x[:, 3:8].any() and not x[:, -3:].any()
    assert np.isclose(copy_task_baseline(6, 5, 3), 3 * np.log(5) / 12)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 5), length=st.integers(1, 30), seed=st.integers(0, 1000))
def test_parity_labels_are_the_running_xor(n, length, seed):
    x, y = parity(n, length, seed=seed)
    assert x.shape == (n, length, 1) and y.shape == (n, length)
    bits = x[..., 0].astype(np.int64)
    running = np.zeros(n, dtype=np.int64)
    for t in range(length):
        running ^= bits[:, t]
        np.testing.assert_array_equal(y[:, t], running)


def test_sine_waves_shape_and_range():
    w = sine_waves(6, 50, seed=0)
    assert w.shape == (6, 50) and w.dtype == np.float32
    assert np.abs(w).max() <= 1.2


def test_text_corpora_need_no_network():
    topics = text_corpus("pydoc_topics")
    assert len(topics) > 100_000 and "assert" in topics
    zen = text_corpus("zen")
    assert zen.startswith("The Zen of Python") and "Beautiful is better than ugly." in zen
    with pytest.raises(ValueError, match="text_corpus: unknown corpus 'shakespeare'"):
        text_corpus("shakespeare")


def test_char_vocab_round_trip_and_errors():
    vocab = CharVocab("hello world")
    assert len(vocab) == 8 and vocab.chars == sorted(set("hello world"))
    ids = vocab.encode("low")
    assert ids.dtype == np.int64 and vocab.decode(ids) == "low"
    with pytest.raises(ValueError, match=r"CharVocab.encode: characters \['z'\]"):
        vocab.encode("zoo")
    with pytest.raises(ValueError, match="CharVocab: text is empty"):
        CharVocab("")


def test_bptt_batches_are_consecutive_chunks_with_next_character_targets():
    ids = np.arange(103)
    streams = batchify(ids, 4)
    assert streams.shape == (4, 25)
    np.testing.assert_array_equal(streams[1], np.arange(25, 50))  # contiguous piece per row
    chunks = list(bptt_batches(streams, 10))
    assert [x.shape for x, _ in chunks] == [(4, 10), (4, 10), (4, 4)]
    for x, y in chunks:
        np.testing.assert_array_equal(y, x + 1)  # the target is the next id
    np.testing.assert_array_equal(np.concatenate([x for x, _ in chunks], axis=1), streams[:, :-1])


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="adding_problem: length must be a positive int"):
        adding_problem(3, 0)
    with pytest.raises(ValueError, match="copy_task: delay must be a positive int"):
        copy_task(3, delay=-1)
    with pytest.raises(ValueError, match="batchify: 5 ids are too few for 4 streams"):
        batchify(np.arange(5), 4)
    with pytest.raises(ValueError, match="bptt_batches: seq_len must be a positive int"):
        list(bptt_batches(np.zeros((2, 5), dtype=np.int64), 0))
