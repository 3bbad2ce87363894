"""nn.RNN / nn.LSTM / nn.GRU: PyTorch's names and shapes, forward against NumPy, gradcheck."""

import math

import numpy as np
import pytest

import minidl
import minidl.nn as nn
from minidl import Tensor
from tests.nn.numpy_rnn import run_module

T, B, I, H = 4, 3, 2, 3
MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _t(a, grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _named(module):
    return {name: p.data for name, p in module.named_parameters()}


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
    text = "LSTM(2, 3, num_layers=2, batch_first=True, dropout=0.1, bidirectional=True)"
    assert text in repr(module)
    other = nn.LSTM(I, H, num_layers=2, batch_first=True, bidirectional=True)
    other.load_state_dict(module.state_dict())
    x = minidl.randn(B, T, I)
    module.eval()
    np.testing.assert_array_equal(module(x)[0].data, other(x)[0].data)


def test_bad_inputs_name_the_module_and_shapes():
    with pytest.raises(ValueError, match=r"LSTM: expected input with 2 features.*\(4, 3, 5\)"):
        nn.LSTM(I, H)(minidl.zeros(T, B, 5))
    with pytest.raises(ValueError, match=r"GRU: expected input \[batch, time, features\]"):
        nn.GRU(I, H, batch_first=True)(minidl.zeros(1, 2, 3, I))
    with pytest.raises(ValueError, match=r"RNN: input \(0, 3, 2\) has no time steps"):
        nn.RNN(I, H)(minidl.zeros(0, B, I))


def test_bad_initial_states_name_the_module_and_shapes():
    x = minidl.zeros(T, B, I)
    with pytest.raises(ValueError, match=r"GRU: expected hx of shape \(2, 3, 3\), got \(1, 3, 3\)"):
        nn.GRU(I, H, num_layers=2)(x, minidl.zeros(1, B, H))
    with pytest.raises(ValueError, match=r"LSTM: an LSTM hx is a pair"):
        nn.LSTM(I, H)(x, minidl.zeros(1, B, H))
    with pytest.raises(ValueError, match=r"LSTM: expected hx c of shape \(2, 3, 3\)"):
        nn.LSTM(I, H, bidirectional=True)(x, (minidl.zeros(2, B, H), minidl.zeros(1, B, H)))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="RNN: nonlinearity"):
        nn.RNN(I, H, nonlinearity="gelu")
    with pytest.raises(ValueError, match="LSTM: num_layers must be a positive int"):
        nn.LSTM(I, H, num_layers=0)
    with pytest.raises(ValueError, match=r"GRU: dropout probability p must be in \[0, 1\)"):
        nn.GRU(I, H, dropout=1.5)
