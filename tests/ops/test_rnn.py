"""The fused recurrent layers (rnn_layer, lstm_layer, gru_layer): forward against an independent
NumPy loop, float64 gradcheck over every element (inputs, states, weights, biases), both
directions, without biases, float32 in and out, an empty batch. (nn.RNN / LSTM / GRU are held
against the unrolled composite cells in tests/nn/test_rnn.py.)"""

import numpy as np
import pytest

from minidl import Tensor
from minidl.ops.rnn import gru_layer, lstm_layer, rnn_layer
from minidl.testing import check_op
from tests.nn.numpy_rnn import cell_step

T, B, I, H = 4, 2, 3, 2
RNG = np.random.default_rng(31)
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def numpy_layer(kind, x, state, params, reverse=False, nonlinearity="tanh"):
    """(outputs [T, B, H] in time order, final state) with the NumPy cells of numpy_rnn."""
    outputs = np.zeros(x.shape[:2] + (params[1].shape[1],))
    for t in (range(len(x) - 1, -1, -1) if reverse else range(len(x))):
        state = cell_step(kind, x[t], state, params, nonlinearity)
        outputs[t] = state[0] if kind == "lstm" else state
    return outputs, state


def _arrays(kind, bias=True, batch=B):
    G = GATES[kind]
    arrays = [RNG.standard_normal((T, batch, I)), RNG.standard_normal((batch, H))]
    if kind == "lstm":
        arrays.append(RNG.standard_normal((batch, H)))
    arrays += [RNG.standard_normal((G * H, I)), RNG.standard_normal((G * H, H))]
    if bias:
        arrays += [RNG.standard_normal(G * H), RNG.standard_normal(G * H)]
    return arrays


def _fused(kind, reverse, nonlinearity="tanh"):
    """The layer as a function of its arrays, returning (outputs, final state parts...)."""
    def run(*args):
        if kind == "lstm":
            out, (h, c) = lstm_layer(*args, reverse=reverse)
            return out, h, c
        if kind == "gru":
            return gru_layer(*args, reverse=reverse)
        return rnn_layer(*args, reverse=reverse, nonlinearity=nonlinearity)
    return run


def _reference(kind, reverse, nonlinearity="tanh"):
    def run(x, *rest):
        state = tuple(rest[:2]) if kind == "lstm" else rest[0]
        params = list(rest[2:] if kind == "lstm" else rest[1:]) + [None, None]
        out, final = numpy_layer(kind, x, state, params[:4], reverse, nonlinearity)
        return (out, *final) if kind == "lstm" else (out, final)
    return run


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_layer_matches_numpy_and_gradcheck(kind, reverse, bias):
    check_op(_fused(kind, reverse), _reference(kind, reverse), _arrays(kind, bias))


@pytest.mark.parametrize("reverse", [False, True])
def test_relu_rnn_layer_matches_numpy_and_gradcheck(reverse):
    arrays = _arrays("rnn")
    arrays[0] = arrays[0] + np.sign(arrays[0]) * 0.1  # keep pre-activations off the kink
    check_op(_fused("rnn", reverse, "relu"), _reference("rnn", reverse, "relu"), arrays)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_float32_stays_float32_and_an_empty_batch_works(kind):
    for batch in (B, 0):
        tensors = [Tensor(a.astype(np.float32), requires_grad=True)
                   for a in _arrays(kind, batch=batch)]
        out, *final = _fused(kind, False)(*tensors)
        assert out.shape == (T, batch, H) and out.dtype == np.float32
        (out.sum() + sum(f.sum() for f in final)).backward()
        for t in tensors:
            assert t.grad.shape == t.shape and t.grad.dtype == np.float32
        if batch == 0:
            assert not tensors[-1].grad.any()  # nothing flowed: the bias gradient is zero


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_float32_layers_match_the_float64_reference(kind):
    """float32 runs the gates' tanh through the rational kernel (minidl/kernels/rnn.py):
    the outputs stay within float32 rounding of the float64 NumPy loop."""
    arrays = _arrays(kind)
    arrays[0] = arrays[0] * 3  # pre-activations over the whole range of the fit
    got = _fused(kind, False)(*[Tensor(a.astype(np.float32)) for a in arrays])
    want = _reference(kind, False)(*arrays)
    for g, w in zip(got, want):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g.data, w, rtol=2e-5, atol=2e-6)
