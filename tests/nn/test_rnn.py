"""minidl/nn/rnn.py: unrolling cells (static_rnn / dynamic_rnn: against NumPy, variable
lengths, time_major, TBPTT) and the sequence modules nn.RNN / nn.LSTM / nn.GRU (PyTorch's names
and shapes, forward against NumPy, the same as the unrolled cell in values and gradients,
gradcheck, errors)."""

import math

import numpy as np
import pytest

import minidl
import minidl.nn as nn
from minidl import Tensor
from tests.nn.numpy_rnn import run_cell, run_module

T, B, I, H = 5, 3, 2, 4
KINDS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}
MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


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


def _named(module):
    return {name: p.data for name, p in module.named_parameters()}


# ---- unrolling a cell: static_rnn, dynamic_rnn, detach_state ------------------------------
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


# ---- sequence modules: nn.RNN, nn.LSTM, nn.GRU ----------------------------------------------
def test_parameter_names_follow_pytorch():
    module = nn.LSTM(I, H, num_layers=2, bidirectional=True)
    names = [name for name, _ in module.named_parameters()]
    per = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    want = [f"{p}_l{k}{s}" for k in range(2) for s in ("", "_reverse") for p in per]
    assert names == want
    assert list(module.state_dict()) == want
    assert nn.GRU(I, H, bias=False)._parameters.keys() == {"weight_ih_l0", "weight_hh_l0"}


@pytest.mark.parametrize("kind", list(MODULES))
def test_parameter_shapes_and_init(kind):
    minidl.manual_seed(0)
    module = MODULES[kind](I, H, num_layers=2, bidirectional=True)
    g = GATES[kind]
    shapes = dict((n, p.shape) for n, p in module.named_parameters())
    assert shapes["weight_ih_l0"] == (g * H, I)
    assert shapes["weight_ih_l1_reverse"] == (g * H, 2 * H)  # reads both directions
    assert shapes["weight_hh_l1"] == (g * H, H)
    assert shapes["bias_hh_l0_reverse"] == (g * H,)
    values = np.concatenate([p.data.ravel() for p in module.parameters()])
    assert np.abs(values).max() <= 1 / math.sqrt(H)
    assert np.abs(values).max() > 0.9 / math.sqrt(H)


@pytest.mark.parametrize("kind", list(MODULES))
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (2, True)])
def test_forward_matches_numpy(kind, layers, bidirectional):
    minidl.manual_seed(1)
    module = MODULES[kind](I, H, num_layers=layers, bidirectional=bidirectional).double()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I))
    d = 2 if bidirectional else 1
    h0 = rng.standard_normal((layers * d, B, H))
    c0 = rng.standard_normal((layers * d, B, H))
    hx = (_t(h0), _t(c0)) if kind == "lstm" else _t(h0)
    want = run_module(kind, _named(module), x, layers, bidirectional, h0,
                      c0 if kind == "lstm" else None)
    out, h_n = module(_t(x), hx)
    got = (out, *h_n) if kind == "lstm" else (out, h_n)
    assert out.shape == (T, B, d * H)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g.data, w, rtol=1e-11, atol=1e-12)


def test_relu_rnn_and_no_bias_match_numpy():
    minidl.manual_seed(2)
    module = nn.RNN(I, H, nonlinearity="relu", bias=False).double()
    x = np.random.default_rng(1).standard_normal((T, B, I))
    want_out, want_h = run_module("rnn", _named(module), x, 1, False, nonlinearity="relu")
    out, h_n = module(_t(x))
    np.testing.assert_allclose(out.data, want_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h_n.data, want_h, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", list(MODULES))
def test_batch_first_and_unbatched_layouts(kind):
    minidl.manual_seed(3)
    module = MODULES[kind](I, H, num_layers=2, bidirectional=True).double()
    x = np.random.default_rng(2).standard_normal((T, B, I))
    out, h_n = module(_t(x))
    module.batch_first = True
    out_bf, h_bf = module(_t(x.transpose(1, 0, 2)))
    np.testing.assert_allclose(out_bf.data, out.data.transpose(1, 0, 2), rtol=1e-13)
    one, h_one = module(_t(x.transpose(1, 0, 2)[1]))  # [T, I]: one sequence, batch_first ignored
    np.testing.assert_allclose(one.data, out.data[:, 1], rtol=1e-12, atol=1e-14)
    first = h_one[0] if kind == "lstm" else h_one
    assert first.shape == (4, H)
    np.testing.assert_allclose(first.data, (h_n[0] if kind == "lstm" else h_n).data[:, 1],
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", list(MODULES))
def test_gradcheck_two_layer_bidirectional(kind):
    minidl.manual_seed(4)
    module = MODULES[kind](2, 2, num_layers=2, bidirectional=True).double()
    rng = np.random.default_rng(3)
    x = _t(rng.standard_normal((3, 2, 2)), True)
    h0 = _t(rng.standard_normal((4, 2, 2)), True)
    if kind == "lstm":
        c0 = _t(rng.standard_normal((4, 2, 2)), True)

        def fn(x, h0, c0, *params):
            out, (h_n, c_n) = module(x, (h0, c0))
            return out, h_n, c_n

        assert minidl.gradcheck(fn, [x, h0, c0, *module.parameters()])
    else:
        def fn(x, h0, *params):
            return module(x, h0)

        assert minidl.gradcheck(fn, [x, h0, *module.parameters()])


def test_dropout_between_layers_only_in_training():
    minidl.manual_seed(5)
    module = nn.GRU(I, H, num_layers=2, dropout=0.5).double()
    plain = nn.GRU(I, H, num_layers=2).double()
    plain.load_state_dict(module.state_dict())
    x = _t(np.random.default_rng(4).standard_normal((T, B, I)))
    train_out, _ = module(x)
    assert not np.allclose(train_out.data, plain(x)[0].data)
    module.eval()
    np.testing.assert_array_equal(module(x)[0].data, plain(x)[0].data)
    # With one layer there is no "between layers": dropout changes nothing.
    single = nn.LSTM(I, H, dropout=0.5).double()
    np.testing.assert_array_equal(single(x)[0].data, single(x)[0].data)


def test_repr_and_state_dict_round_trip():
    module = nn.LSTM(I, H, num_layers=2, batch_first=True, dropout=0.1, bidirectional=True)
    text = "LSTM(2, 4, num_layers=2, batch_first=True, dropout=0.1, bidirectional=True)"
    assert text in repr(module)
    other = nn.LSTM(I, H, num_layers=2, batch_first=True, bidirectional=True)
    other.load_state_dict(module.state_dict())
    x = minidl.randn(B, T, I)
    module.eval()
    np.testing.assert_array_equal(module(x)[0].data, other(x)[0].data)


def test_bad_inputs_name_the_module_and_shapes():
    with pytest.raises(ValueError, match=r"LSTM: expected input with 2 features.*\(5, 3, 5\)"):
        nn.LSTM(I, H)(minidl.zeros(T, B, 5))
    with pytest.raises(ValueError, match=r"GRU: expected input \[batch, time, features\]"):
        nn.GRU(I, H, batch_first=True)(minidl.zeros(1, 2, 3, I))
    with pytest.raises(ValueError, match=r"RNN: input \(0, 3, 2\) has no time steps"):
        nn.RNN(I, H)(minidl.zeros(0, B, I))


def test_bad_initial_states_name_the_module_and_shapes():
    x = minidl.zeros(T, B, I)
    with pytest.raises(ValueError, match=r"GRU: expected hx of shape \(2, 3, 4\), got \(1, 3, 4\)"):
        nn.GRU(I, H, num_layers=2)(x, minidl.zeros(1, B, H))
    with pytest.raises(ValueError, match=r"LSTM: an LSTM hx is a pair"):
        nn.LSTM(I, H)(x, minidl.zeros(1, B, H))
    with pytest.raises(ValueError, match=r"LSTM: expected hx c of shape \(2, 3, 4\)"):
        nn.LSTM(I, H, bidirectional=True)(x, (minidl.zeros(2, B, H), minidl.zeros(1, B, H)))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="RNN: nonlinearity"):
        nn.RNN(I, H, nonlinearity="gelu")
    with pytest.raises(ValueError, match="LSTM: num_layers must be a positive int"):
        nn.LSTM(I, H, num_layers=0)
    with pytest.raises(ValueError, match=r"GRU: dropout probability p must be in \[0, 1\)"):
        nn.GRU(I, H, dropout=1.5)


# ---- the fused layers against the readable composite: the cells unrolled in time ----------
def unrolled(module, x, hx):
    """``module`` computed the readable way: for every layer and direction, the cell's step
    function unrolled by ``dynamic_rnn`` with the module's own Parameters (so gradients land
    on them). x: [T, B, I] time-major; hx: [L*D, B, H] (LSTM: a pair)."""
    directions = 2 if module.bidirectional else 1
    kind = "_" + type(module).__name__
    layer_input, finals = x, []
    backwards = np.arange(x.shape[0])[::-1]
    for layer in range(module.num_layers):
        outputs = []
        for d, suffix in enumerate(["", "_reverse"][:directions]):
            options = {"nonlinearity": module.nonlinearity} if kind == "_RNN" else {}
            cell = module.cell(layer_input.shape[-1], H, bias=module.bias, **options)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                setattr(cell, name, module._parameters.get(f"{name}_l{layer}{suffix}"))
            index = layer * directions + d
            state = (hx[0][index], hx[1][index]) if module.is_lstm else hx[index]
            seq = layer_input if d == 0 else layer_input[backwards]
            out, final = nn.dynamic_rnn(cell, seq, state, time_major=True)
            outputs.append(out if d == 0 else out[backwards])
            finals.append(final)
        layer_input = minidl.cat(outputs, dim=-1) if directions == 2 else outputs[0]
    if module.is_lstm:
        return layer_input, (minidl.stack([h for h, _ in finals]),
                             minidl.stack([c for _, c in finals]))
    return layer_input, minidl.stack(finals)


@pytest.mark.parametrize("make", [
    lambda: nn.RNN(I, H, num_layers=2, bidirectional=True),
    lambda: nn.RNN(I, H, nonlinearity="relu", bias=False),
    lambda: nn.LSTM(I, H, num_layers=2, bidirectional=True),
    lambda: nn.LSTM(I, H, bias=False),
    lambda: nn.GRU(I, H, num_layers=2, bidirectional=True),
    lambda: nn.GRU(I, H, bias=False),
])
def test_module_equals_its_cell_unrolled_in_values_and_gradients(make):
    minidl.manual_seed(9)
    module = make().double()
    rng = np.random.default_rng(9)
    layers = module.num_layers * (2 if module.bidirectional else 1)
    arrays = [rng.standard_normal((T, B, I)), rng.standard_normal((layers, B, H)),
              rng.standard_normal((layers, B, H))]
    weights = [rng.standard_normal((T, B, H * (2 if module.bidirectional else 1))),
               rng.standard_normal((layers, B, H)), rng.standard_normal((layers, B, H))]
    results = []
    for run in (module, lambda x, hx: unrolled(module, x, hx)):
        module.zero_grad()
        x, h0, c0 = (_t(a, True) for a in arrays)
        hx = (h0, c0) if module.is_lstm else h0
        out, h_n = run(x, hx)
        parts = [out, *h_n] if module.is_lstm else [out, h_n]
        sum((p * _t(w)).sum() for p, w in zip(parts, weights)).backward()
        grads = [x.grad, h0.grad] + ([c0.grad] if module.is_lstm else [])
        results.append([p.data for p in parts] + grads + [p.grad for p in module.parameters()])
    for fused, composite in zip(*results):
        np.testing.assert_allclose(fused, composite, rtol=1e-10, atol=1e-12)
