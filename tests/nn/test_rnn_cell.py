"""RNNCell, LSTMCell, GRUCell: PyTorch's parameters, forward against NumPy, gradcheck, errors."""

import math

import numpy as np
import pytest

import minidl
import minidl.nn as nn
from minidl import Tensor
from tests.nn.numpy_rnn import gru_cell, lstm_cell, rnn_cell

B, I, H = 3, 4, 5
CELLS = [(nn.RNNCell, 1), (nn.LSTMCell, 4), (nn.GRUCell, 3)]


def _t(a, grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _params(cell):
    return [None if p is None else p.data for p in
            (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]


@pytest.mark.parametrize("cls,gates", CELLS)
def test_parameter_names_shapes_and_default_init(cls, gates):
    minidl.manual_seed(0)
    cell = cls(I, H)
    shapes = {name: p.shape for name, p in cell.named_parameters()}
    assert shapes == {"weight_ih": (gates * H, I), "weight_hh": (gates * H, H),
                      "bias_ih": (gates * H,), "bias_hh": (gates * H,)}
    bound = 1 / math.sqrt(H)
    for p in cell.parameters():
        assert p.dtype == np.float32
        assert np.abs(p.data).max() <= bound
        assert np.abs(p.data).max() > 0.5 * bound  # really drawn from U(-b, b), not zeros
    no_bias = cls(I, H, bias=False)
    assert [n for n, _ in no_bias.named_parameters()] == ["weight_ih", "weight_hh"]
    assert no_bias.bias_ih is None


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_rnn_cell_forward_matches_numpy(nonlinearity, bias):
    minidl.manual_seed(1)
    cell = nn.RNNCell(I, H, bias=bias, nonlinearity=nonlinearity).double()
    rng = np.random.default_rng(0)
    x, h = rng.standard_normal((B, I)), rng.standard_normal((B, H))
    got = cell(_t(x), _t(h))
    want = rnn_cell(x, h, *_params(cell), nonlinearity=nonlinearity)
    np.testing.assert_allclose(got.data, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_forward_matches_numpy(bias):
    minidl.manual_seed(2)
    cell = nn.LSTMCell(I, H, bias=bias).double()
    rng = np.random.default_rng(1)
    x, h, c = rng.standard_normal((B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    got_h, got_c = cell(_t(x), (_t(h), _t(c)))
    want_h, want_c = lstm_cell(x, h, c, *_params(cell))
    np.testing.assert_allclose(got_h.data, want_h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_c.data, want_c, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
def test_gru_cell_forward_matches_numpy(bias):
    minidl.manual_seed(3)
    cell = nn.GRUCell(I, H, bias=bias).double()
    rng = np.random.default_rng(2)
    x, h = rng.standard_normal((B, I)), rng.standard_normal((B, H))
    got = cell(_t(x), _t(h))
    np.testing.assert_allclose(got.data, gru_cell(x, h, *_params(cell)), rtol=1e-12, atol=1e-12)


def test_gru_reset_is_applied_after_the_hidden_matmul():
    """r multiplies (W_hn h + b_hn): with b_hn != 0 the two placements differ."""
    minidl.manual_seed(4)
    cell = nn.GRUCell(I, H).double()
    cell.bias_hh.data[2 * H:] = 3.0
    rng = np.random.default_rng(3)
    x, h = rng.standard_normal((B, I)), rng.standard_normal((B, H))
    w_ih, w_hh, b_ih, b_hh = _params(cell)
    got = cell(_t(x), _t(h)).data
    np.testing.assert_allclose(got, gru_cell(x, h, w_ih, w_hh, b_ih, b_hh), rtol=1e-12)
    # The other variant (reset before the matmul, as in Cho et al.'s paper) gives another answer.
    r = 1 / (1 + np.exp(-(x @ w_ih[:H].T + b_ih[:H] + h @ w_hh[:H].T + b_hh[:H])))
    z = 1 / (1 + np.exp(-(x @ w_ih[H:2 * H].T + b_ih[H:2 * H] + h @ w_hh[H:2 * H].T
                          + b_hh[H:2 * H])))
    n = np.tanh(x @ w_ih[2 * H:].T + b_ih[2 * H:] + (r * h) @ w_hh[2 * H:].T + b_hh[2 * H:])
    assert not np.allclose(got, (1 - z) * n + z * h)


@pytest.mark.parametrize("cls,gates", CELLS)
def test_missing_state_means_zeros_and_unbatched_input_works(cls, gates):
    minidl.manual_seed(5)
    cell = cls(I, H).double()
    x = np.random.default_rng(4).standard_normal((B, I))
    with_zeros = cell(_t(x), cell.zero_state(B))
    default = cell(_t(x))
    pairs = zip(with_zeros, default) if cls is nn.LSTMCell else [(with_zeros, default)]
    for a, b in pairs:
        np.testing.assert_array_equal(a.data, b.data)
    single = cell(_t(x[1]))
    first = single[0] if isinstance(single, tuple) else single
    want = default[0] if isinstance(default, tuple) else default
    assert first.shape == (H,)
    np.testing.assert_allclose(first.data, want.data[1], rtol=1e-12)


@pytest.mark.parametrize("cls", [nn.RNNCell, nn.GRUCell])
def test_gradcheck_rnn_and_gru_cells(cls):
    minidl.manual_seed(6)
    cell = cls(3, 2).double()
    rng = np.random.default_rng(5)
    x, h = _t(rng.standard_normal((2, 3)), True), _t(rng.standard_normal((2, 2)), True)
    assert minidl.gradcheck(lambda x, h, *params: cell(x, h), [x, h, *cell.parameters()])


def test_gradcheck_lstm_cell():
    minidl.manual_seed(7)
    cell = nn.LSTMCell(3, 2).double()
    rng = np.random.default_rng(6)
    x = _t(rng.standard_normal((2, 3)), True)
    h, c = _t(rng.standard_normal((2, 2)), True), _t(rng.standard_normal((2, 2)), True)
    assert minidl.gradcheck(lambda x, h, c, *params: cell(x, (h, c)),
                            [x, h, c, *cell.parameters()])


def test_gradcheck_relu_cell_away_from_the_kink():
    minidl.manual_seed(8)
    cell = nn.RNNCell(3, 2, nonlinearity="relu").double()
    x = _t(np.random.default_rng(7).standard_normal((2, 3)), True)
    pre = x.data @ cell.weight_ih.data.T + cell.bias_ih.data + cell.bias_hh.data
    assert np.abs(pre).min() > 1e-3  # finite differences are exact away from max(0, .)'s kink
    assert minidl.gradcheck(lambda x, *params: cell(x), [x, *cell.parameters()])


@pytest.mark.parametrize("cls,gates", CELLS)
def test_zero_state_shape_and_dtype(cls, gates):
    cell = cls(I, H)
    state = cell.zero_state(7)
    parts = state if isinstance(state, tuple) else (state,)
    assert len(parts) == (2 if cls is nn.LSTMCell else 1)
    for s in parts:
        assert s.shape == (7, H) and s.dtype == np.float32 and not s.data.any()
    assert cell.double().zero_state(2) is not None
    assert (cell.zero_state(2)[0] if cls is nn.LSTMCell else cell.zero_state(2)).dtype == np.float64


def test_bad_input_size_names_the_cell_and_shapes():
    cell = nn.LSTMCell(I, H)
    with pytest.raises(ValueError, match=r"LSTMCell: expected input with 4 features.*\(3, 7\)"):
        cell(minidl.zeros(3, 7))
    with pytest.raises(ValueError, match=r"GRUCell: expected input of shape"):
        nn.GRUCell(I, H)(minidl.zeros(2, 3, I))


def test_bad_state_shapes_are_clear_errors():
    with pytest.raises(ValueError, match=r"RNNCell: expected hx of shape \(3, 5\), got \(3, 4\)"):
        nn.RNNCell(I, H)(minidl.zeros(3, I), minidl.zeros(3, 4))
    with pytest.raises(ValueError, match=r"LSTMCell: an LSTM hx is a pair \(h, c\)"):
        nn.LSTMCell(I, H)(minidl.zeros(3, I), minidl.zeros(3, H))
    with pytest.raises(ValueError,
                       match=r"LSTMCell: expected hx c of shape \(3, 5\), got \(2, 5\)"):
        nn.LSTMCell(I, H)(minidl.zeros(3, I), (minidl.zeros(3, H), minidl.zeros(2, H)))
    with pytest.raises(ValueError, match=r"GRUCell: hx must be one tensor"):
        nn.GRUCell(I, H)(minidl.zeros(3, I), (minidl.zeros(3, H), minidl.zeros(3, H)))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNNCell(I, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        nn.LSTMCell(I, 0)
