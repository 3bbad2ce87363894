"""static_rnn / dynamic_rnn: against NumPy, variable lengths, time_major, TBPTT, errors."""

import numpy as np
import pytest

import minidl
import minidl.nn as nn
from minidl import Tensor
from tests.nn.numpy_rnn import run_cell

B, T, I, H = 3, 5, 2, 4
KINDS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}


def _t(a, grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _cell(kind, seed=0):
    minidl.manual_seed(seed)
    return KINDS[kind](I, H).double()


def _params(cell):
    return tuple(p.data for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh))


def _state(kind, rng, batch=B):
    if kind == "lstm":
        return rng.standard_normal((batch, H)), rng.standard_normal((batch, H))
    return rng.standard_normal((batch, H))


def _as_tensors(state):
    return tuple(_t(s) for s in state) if isinstance(state, tuple) else _t(state)


def _assert_state_close(got, want):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.data, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", list(KINDS))
def test_dynamic_rnn_matches_numpy_and_static_rnn(kind):
    cell = _cell(kind)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, I))
    s0 = _state(kind, rng)
    want_out, want_state = run_cell(kind, x.transpose(1, 0, 2), s0, _params(cell))

    out, state = nn.dynamic_rnn(cell, _t(x), _as_tensors(s0))
    assert out.shape == (B, T, H)
    np.testing.assert_allclose(out.data, want_out.transpose(1, 0, 2), rtol=1e-12, atol=1e-12)
    _assert_state_close(state, want_state)

    outs, state = nn.static_rnn(cell, [_t(x[:, t]) for t in range(T)], _as_tensors(s0))
    assert isinstance(outs, list) and len(outs) == T
    np.testing.assert_allclose(np.stack([o.data for o in outs]), want_out, rtol=1e-12, atol=1e-12)
    _assert_state_close(state, want_state)


def test_time_major_is_the_transposed_layout():
    cell = _cell("gru")
    x = np.random.default_rng(1).standard_normal((B, T, I))
    batch_major, s1 = nn.dynamic_rnn(cell, _t(x))
    time_major, s2 = nn.dynamic_rnn(cell, _t(x.transpose(1, 0, 2)), time_major=True)
    assert time_major.shape == (T, B, H)
    np.testing.assert_allclose(time_major.data, batch_major.data.transpose(1, 0, 2), rtol=1e-14)
    np.testing.assert_allclose(s1.data, s2.data, rtol=1e-14)


@pytest.mark.parametrize("kind", list(KINDS))
def test_sequence_length_zero_outputs_and_last_real_state(kind):
    cell = _cell(kind, seed=1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((B, T, I))
    s0 = _state(kind, rng)
    lengths = np.array([T, 2, 0])
    want_out, want_state = run_cell(kind, x.transpose(1, 0, 2), s0, _params(cell), lengths)
    for time_major in (False, True):
        inputs = _t(x.transpose(1, 0, 2)) if time_major else _t(x)
        out, state = nn.dynamic_rnn(cell, inputs, _as_tensors(s0), sequence_length=lengths,
                                    time_major=time_major)
        got = out.data if time_major else out.data.transpose(1, 0, 2)
        np.testing.assert_allclose(got, want_out, rtol=1e-12, atol=1e-12)
        assert not got[2:, 1].any() and not got[:, 2].any()  # zeros past each end
        _assert_state_close(state, want_state)
    # A sequence of length 0 keeps its initial state.
    parts = state if isinstance(state, tuple) else (state,)
    initial = s0 if isinstance(s0, tuple) else (s0,)
    for p, s in zip(parts, initial):
        np.testing.assert_array_equal(p.data[2], s[2])
    outs, state = nn.static_rnn(cell, [_t(x[:, t]) for t in range(T)], _as_tensors(s0),
                                sequence_length=lengths)
    np.testing.assert_allclose(np.stack([o.data for o in outs]), want_out, rtol=1e-12, atol=1e-12)


def test_gradcheck_dynamic_rnn_lstm_with_lengths():
    minidl.manual_seed(3)
    cell = nn.LSTMCell(2, 2).double()
    rng = np.random.default_rng(3)
    x = _t(rng.standard_normal((2, 3, 2)), True)
    h, c = _t(rng.standard_normal((2, 2)), True), _t(rng.standard_normal((2, 2)), True)
    lengths = np.array([3, 1])

    def fn(x, h, c, *params):
        out, (h_n, c_n) = nn.dynamic_rnn(cell, x, (h, c), sequence_length=lengths)
        return out, h_n, c_n

    assert minidl.gradcheck(fn, [x, h, c, *cell.parameters()])


def test_gradcheck_static_rnn_gru():
    minidl.manual_seed(4)
    cell = nn.GRUCell(2, 2).double()
    rng = np.random.default_rng(4)
    xs = [_t(rng.standard_normal((2, 2)), True) for _ in range(3)]

    def fn(*args):
        outs, state = nn.static_rnn(cell, list(args[:3]))
        return (*outs, state)

    assert minidl.gradcheck(fn, [*xs, *cell.parameters()])


def test_zero_state_is_the_default_initial_state():
    cell = _cell("lstm")
    x = _t(np.random.default_rng(5).standard_normal((B, T, I)))
    a, (h1, c1) = nn.dynamic_rnn(cell, x)
    b, (h2, c2) = nn.dynamic_rnn(cell, x, cell.zero_state(B))
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(c1.data, c2.data)


def test_any_callable_cell_can_be_unrolled():
    """A cell written by hand, s(t) = tanh(U s(t-1) + V x(t)), with an explicit initial state."""
    rng = np.random.default_rng(6)
    U, V = _t(rng.standard_normal((H, H))), _t(rng.standard_normal((H, I)))
    x = rng.standard_normal((B, T, I))

    def cell(x_t, s):
        return minidl.tanh(s @ U.T + x_t @ V.T)

    out, state = nn.dynamic_rnn(cell, _t(x), initial_state=_t(np.zeros((B, H))))
    s = np.zeros((B, H))
    for t in range(T):
        s = np.tanh(s @ U.data.T + x[:, t] @ V.data.T)
        np.testing.assert_allclose(out.data[:, t], s, rtol=1e-12)
    np.testing.assert_allclose(state.data, s, rtol=1e-12)


def test_detach_state_cuts_the_graph_but_keeps_values():
    cell = nn.LSTMCell(I, H)
    out, state = nn.dynamic_rnn(cell, minidl.randn(B, T, I))
    assert state[0].grad_fn is not None
    cut = nn.detach_state(state)
    assert isinstance(cut, tuple) and all(s.grad_fn is None and not s.requires_grad for s in cut)
    assert cut[0].data is state[0].data
    assert nn.detach_state(None) is None
    assert nn.detach_state(out).grad_fn is None


def test_truncated_bptt_chunks_reproduce_the_full_forward():
    """Carrying the detached state across chunks changes the gradient, never the values."""
    cell = _cell("gru", seed=7)
    x = np.random.default_rng(7).standard_normal((B, 6, I))
    full, final = nn.dynamic_rnn(cell, _t(x))
    state, pieces = None, []
    for start in (0, 2, 4):
        out, state = nn.dynamic_rnn(cell, _t(x[:, start:start + 2]), state)
        out.sum().backward()  # each chunk's backward stops at the chunk boundary
        state = nn.detach_state(state)
        pieces.append(out.data)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full.data, rtol=1e-12)
    np.testing.assert_allclose(state.data, final.data, rtol=1e-12)


def test_bad_inputs_name_the_cell_and_shapes():
    cell = nn.LSTMCell(I, H)
    with pytest.raises(ValueError, match=r"dynamic_rnn\(LSTMCell\): expected inputs with 2 "
                                         r"features.*\(3, 5, 7\)"):
        nn.dynamic_rnn(cell, minidl.zeros(B, T, 7))
    with pytest.raises(ValueError, match=r"dynamic_rnn\(LSTMCell\): expected inputs \[batch, "
                                         r"time, features\], got \(3, 2\)"):
        nn.dynamic_rnn(cell, minidl.zeros(B, I))
    with pytest.raises(ValueError, match=r"static_rnn\(GRUCell\): expected inputs with 2"):
        nn.static_rnn(nn.GRUCell(I, H), [minidl.zeros(B, 3)])
    with pytest.raises(ValueError, match=r"static_rnn\(GRUCell\): every step.*step 1 has "
                                         r"shape \(2, 2\)"):
        nn.static_rnn(nn.GRUCell(I, H), [minidl.zeros(B, I), minidl.zeros(2, I)])
    with pytest.raises(ValueError, match=r"static_rnn\(GRUCell\): inputs must be a non-empty"):
        nn.static_rnn(nn.GRUCell(I, H), [])


def test_bad_initial_state_names_the_cell_and_shapes():
    with pytest.raises(ValueError, match=r"dynamic_rnn\(GRUCell\): expected hx of shape "
                                         r"\(3, 4\), got \(2, 4\)"):
        nn.dynamic_rnn(nn.GRUCell(I, H), minidl.zeros(B, T, I), minidl.zeros(2, H))
    with pytest.raises(ValueError, match=r"dynamic_rnn\(LSTMCell\): an LSTM hx is a pair"):
        nn.dynamic_rnn(nn.LSTMCell(I, H), minidl.zeros(B, T, I), minidl.zeros(B, H))


def test_bad_sequence_length_is_a_clear_error():
    cell = nn.RNNCell(I, H)
    x = minidl.zeros(B, T, I)
    with pytest.raises(ValueError, match=r"dynamic_rnn\(RNNCell\): sequence_length must lie "
                                         r"in \[0, 5\].*to 6"):
        nn.dynamic_rnn(cell, x, sequence_length=np.array([6, 1, 1]))
    with pytest.raises(ValueError, match=r"dynamic_rnn\(RNNCell\): sequence_length must have "
                                         r"shape \(3,\).*\(2,\)"):
        nn.dynamic_rnn(cell, x, sequence_length=np.array([1, 1]))
    with pytest.raises(TypeError, match=r"sequence_length must hold integers"):
        nn.dynamic_rnn(cell, x, sequence_length=np.array([1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"sequence_length must lie in \[0, 5\]"):
        nn.dynamic_rnn(cell, x, sequence_length=np.array([-1, 1, 1]))
    with pytest.raises(ValueError, match=r"static_rnn\(RNNCell\): sequence_length must lie "
                                         r"in \[0, 2\]"):
        nn.static_rnn(cell, [minidl.zeros(B, I)] * 2, sequence_length=np.array([3, 1, 1]))
