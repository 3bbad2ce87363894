"""Recurrent cells: the equations of one time step, and the RNNCell, LSTMCell, GRUCell modules.

A recurrent network applies the same function at every step of a sequence,
carrying a state from one step to the next (the lecture's notation)::

    s(t) = tanh(U s(t-1) + V x(t) + b)

In PyTorch's names, which minidl uses, V is ``weight_ih`` [G*H, I], U is
``weight_hh`` [G*H, H], and the bias is split in ``bias_ih`` and ``bias_hh``
[G*H], where H is the hidden size, I the input size and G the number of gate
blocks stacked in one matrix (RNN 1, LSTM 4 in the order i, f, g, o, GRU 3 in the
order r, z, n). Stacking the gates means one matrix product per step computes
all of them.

The step functions are composites: written with matmul, sigmoid, tanh,
multiplication and slicing, their gradients (backpropagation through time) come
from those primitives. They are the readable reference: ``static_rnn`` /
``dynamic_rnn`` (minidl/nn/rnn.py) unroll them, and the fused layers behind
``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (minidl/ops/rnn.py) are tested against them.

Each cell class says everything about its kind in one place: how many gate
blocks it stacks (``num_gates``), whether its state is a pair (``is_lstm``),
whether its two biases may be added once (``fold_biases``), its step function
(``step``) and the fused layer that runs it over a whole sequence (``layer``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from minidl.autograd.tensor import Tensor
from minidl.nn import init
from minidl.nn.module import Module, Parameter
from minidl.ops.activation import relu, sigmoid, tanh
from minidl.ops.matmul import matmul
from minidl.ops.rnn import gru_layer, lstm_layer, rnn_layer
from minidl.ops.shape import permute, split, squeeze, unsqueeze


# ---- the cell equations on one step ----------------------------------------------------
class StepWeights(NamedTuple):
    """A cell's weights in the form the step functions use, made once per sequence.

    w_ih_t: weight_ih^T [I, G*H];  w_hh_t: weight_hh^T [H, G*H];
    b_ih, b_hh: [G*H] or None. For the RNN and the LSTM, whose two biases are
    always added together, ``b_ih`` holds their sum and ``b_hh`` is None.
    """

    w_ih_t: Tensor
    w_hh_t: Tensor
    b_ih: Tensor | None
    b_hh: Tensor | None


def step_weights(weight_ih, weight_hh, bias_ih=None, bias_hh=None,
                 fold_biases: bool = True) -> StepWeights:
    """Transpose the weights (once) and, if ``fold_biases``, add the two biases (once)."""
    w_ih_t, w_hh_t = permute(weight_ih, 1, 0), permute(weight_hh, 1, 0)
    if fold_biases and bias_ih is not None and bias_hh is not None:
        return StepWeights(w_ih_t, w_hh_t, bias_ih + bias_hh, None)
    return StepWeights(w_ih_t, w_hh_t, bias_ih, bias_hh)


def _affine(x, w_t, b):
    """x @ w_t + b, where w_t = W^T (b may be None)."""
    out = matmul(x, w_t)
    return out if b is None else out + b


def _gates(x, h, w: StepWeights):
    """x(t) W_ih^T + h(t-1) W_hh^T + b: all gate pre-activations of a step, [B, G*H]."""
    pre = matmul(x, w.w_ih_t) + matmul(h, w.w_hh_t)
    if w.b_ih is not None:
        pre = pre + w.b_ih
    if w.b_hh is not None:
        pre = pre + w.b_hh
    return pre


def rnn_tanh_step(x, h, w: StepWeights):
    """Elman RNN step:  h(t) = tanh(W_ih x(t) + b_ih + W_hh h(t-1) + b_hh).

    x: [B, I], h: [B, H] -> [B, H].
    """
    return tanh(_gates(x, h, w))


def rnn_relu_step(x, h, w: StepWeights):
    """RNN step with ReLU:  h(t) = max(0, W_ih x(t) + b_ih + W_hh h(t-1) + b_hh)."""
    return relu(_gates(x, h, w))


def lstm_step(x, state, w: StepWeights):
    """LSTM step (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000), PyTorch's form::

        i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      input gate
        f = sigmoid(W_if x + b_if + W_hf h + b_hf)      forget gate
        g =    tanh(W_ig x + b_ig + W_hg h + b_hg)      candidate cell
        o = sigmoid(W_io x + b_io + W_ho h + b_ho)      output gate
        c' = f * c + i * g
        h' = o * tanh(c')

    All four blocks come from the same two products, x W_ih^T and h W_hh^T, each
    [B, 4H], cut in the order i, f, g, o.
    The cell c' is a sum, not a squashing of the previous cell: its gradient
    dc'/dc = f passes through time without shrinking while f is near 1.

    x: [B, I], state = (h, c) with h, c: [B, H] -> (h', c').
    """
    h, c = state
    i, f, g, o = split(_gates(x, h, w), h.shape[-1], dim=-1)
    c = sigmoid(f) * c + sigmoid(i) * tanh(g)
    return sigmoid(o) * tanh(c), c


def gru_step(x, h, w: StepWeights):
    """GRU step (Cho et al. 2014), PyTorch's form with the reset applied after the matmul::

        r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)        reset gate
        z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)        update gate
        n  =    tanh(W_in x + b_in + r * (W_hn h + b_hn))  candidate
        h' = (1 - z) * n + z * h  =  n + z * (h - n)

    The two biases cannot be summed here, because r multiplies b_hn but not b_in.

    x: [B, I], h: [B, H] -> h': [B, H].
    """
    gi = _affine(x, w.w_ih_t, w.b_ih)  # [B, 3H]: r, z, n blocks of the input part
    gh = _affine(h, w.w_hh_t, w.b_hh)  # [B, 3H]: same blocks of the recurrent part
    hidden = h.shape[-1]
    i_rz, i_n = split(gi, [2 * hidden, hidden], dim=-1)
    h_rz, h_n = split(gh, [2 * hidden, hidden], dim=-1)
    r, z = split(sigmoid(i_rz + h_rz), hidden, dim=-1)
    n = tanh(i_n + r * h_n)
    return n + z * (h - n)


def output_of(state):
    """The output h of a cell state: the state itself, or h of an LSTM's (h, c)."""
    return state[0] if isinstance(state, tuple) else state


def map_state(fn, state):
    """Apply ``fn`` to the state, or to both parts of an LSTM state."""
    if isinstance(state, (tuple, list)):
        return tuple(fn(s) for s in state)
    return fn(state)


# ---- what the cells and the sequence modules share --------------------------------------
def positive_int(owner: str, name: str, value) -> int:
    """``value`` as an int, or a ValueError naming ``owner`` unless it is an int >= 1."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return int(value)


def recurrent_init_(parameters, hidden_size: int) -> None:
    """Every parameter ~ U(-1/sqrt(H), 1/sqrt(H)), PyTorch's default for recurrent layers."""
    bound = 1.0 / math.sqrt(hidden_size)
    for p in parameters:
        init.uniform_(p, -bound, bound)


def zero_state(batch_size: int, hidden_size: int, dtype, is_lstm: bool):
    """The all-zero state of ``batch_size`` sequences: [B, H] (an LSTM's: a pair (h, c))."""
    def zeros():
        return Tensor(np.zeros((batch_size, hidden_size), dtype=dtype))

    return (zeros(), zeros()) if is_lstm else zeros()


def shape_of(x) -> tuple:
    return tuple(x.shape)


def check_features(op: str, x, expected: int, what: str = "input") -> None:
    if x.shape[-1] != expected:
        raise ValueError(f"{op}: expected {what} with {expected} features in its last "
                         f"dimension, got shape {shape_of(x)}")


def check_state_shape(op: str, state, expected: tuple, is_lstm: bool,
                      what: str = "state") -> None:
    """The state is [*expected] (an LSTM's is a pair (h, c) of that shape)."""
    if is_lstm:
        if not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise ValueError(f"{op}: an LSTM {what} is a pair (h, c), got {type(state).__name__}")
        parts = (("h", state[0]), ("c", state[1]))
    else:
        if isinstance(state, (tuple, list)):
            raise ValueError(f"{op}: {what} must be one tensor of shape {expected}, got a "
                             f"{type(state).__name__} (only LSTM states are pairs)")
        parts = (("", state),)
    for name, s in parts:
        if not isinstance(s, Tensor):
            raise TypeError(f"{op}: {what} {name} must be a Tensor, got {type(s).__name__}")
        if shape_of(s) != tuple(expected):
            label = f"{what} {name}".strip()
            raise ValueError(f"{op}: expected {label} of shape {tuple(expected)}, "
                             f"got {shape_of(s)}")


# ---- cell modules -----------------------------------------------------------------------
class RNNCellBase(Module):
    """Shared parts of the cells: parameters, PyTorch's init, the zero state, checks.

    Parameters (PyTorch's names and shapes): weight_ih [G*H, I], weight_hh [G*H, H],
    bias_ih [G*H], bias_hh [G*H], all initialized U(-1/sqrt(H), 1/sqrt(H)).
    """

    num_gates = 1  # gate blocks stacked in the weights
    is_lstm = False  # the state is a pair (h, c)
    fold_biases = True  # bias_ih + bias_hh may be added once per sequence

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=None):
        super().__init__()
        name = type(self).__name__
        self.input_size = positive_int(name, "input_size", input_size)
        self.hidden_size = positive_int(name, "hidden_size", hidden_size)
        self.bias = bias
        dtype = dtype or np.float32
        gh = self.num_gates * self.hidden_size
        self.weight_ih = Parameter(np.zeros((gh, self.input_size), dtype=dtype))
        self.weight_hh = Parameter(np.zeros((gh, self.hidden_size), dtype=dtype))
        if bias:
            self.bias_ih = Parameter(np.zeros(gh, dtype=dtype))
            self.bias_hh = Parameter(np.zeros(gh, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter ~ U(-1/sqrt(H), 1/sqrt(H)), PyTorch's default for recurrent layers."""
        recurrent_init_(self.parameters(), self.hidden_size)

    def zero_state(self, batch_size: int):
        """The all-zero state for ``batch_size`` sequences: [B, H] (LSTM: a pair (h, c))."""
        return zero_state(batch_size, self.hidden_size, self.weight_hh.dtype, self.is_lstm)

    def prepare_weights(self) -> StepWeights:
        """The weights transposed for ``step``; call once per sequence, not once per step."""
        return step_weights(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                            fold_biases=self.fold_biases)

    def check_state(self, state, batch_size: int, op: str | None = None) -> None:
        """Raise a clear error unless ``state`` is a valid state for ``batch_size`` sequences."""
        check_state_shape(op or type(self).__name__, state, (batch_size, self.hidden_size),
                    self.is_lstm, what="hx")

    def forward(self, input, hx=None):
        """One step: input [B, I] (or [I]), hx the state [B, H] (or [H]; LSTM: a pair) or None
        for zeros -> the new state (RNN, GRU: h' [B, H]; LSTM: (h', c'))."""
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: expected input of shape [batch, {self.input_size}] or "
                             f"[{self.input_size}], got {shape_of(input)}")
        check_features(name, input, self.input_size)
        unbatched = input.ndim == 1
        if unbatched:
            input = unsqueeze(input, 0)
            if hx is not None:
                check_state_shape(name, hx, (self.hidden_size,), self.is_lstm, what="hx")
                hx = map_state(lambda s: unsqueeze(s, 0), hx)
        if hx is None:
            hx = self.zero_state(input.shape[0])
        self.check_state(hx, input.shape[0])
        new = self.step(input, tuple(hx) if self.is_lstm else hx, self.prepare_weights())
        return map_state(lambda s: squeeze(s, 0), new) if unbatched else new

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            text += ", bias=False"
        return text


def check_nonlinearity(owner: str, nonlinearity: str) -> None:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"{owner}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


class RNNCell(RNNCellBase):
    """Elman RNN cell:  h' = tanh(W_ih x + b_ih + W_hh h + b_hh)  (or ReLU).

    Args:
        input_size, hidden_size: I and H.
        bias: learn b_ih and b_hh.
        nonlinearity: "tanh" or "relu".

    Shapes: input [B, I], hx [B, H] -> h' [B, H].
    """

    num_gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", dtype=None):
        check_nonlinearity("RNNCell", nonlinearity)
        super().__init__(input_size, hidden_size, bias, dtype)
        self.nonlinearity = nonlinearity

    def step(self, x, h, weights: StepWeights):
        """One step without checks (``weights`` from ``prepare_weights()``): h'."""
        if self.nonlinearity == "tanh":
            return rnn_tanh_step(x, h, weights)
        return rnn_relu_step(x, h, weights)

    @staticmethod
    def layer(x, h0, weights, reverse=False, nonlinearity="tanh"):
        """The fused layer over x [T, B, I]: (outputs [T, B, H], final h)."""
        return rnn_layer(x, h0, *weights, reverse=reverse, nonlinearity=nonlinearity)

    def extra_repr(self) -> str:
        text = super().extra_repr()
        if self.nonlinearity != "tanh":
            text += f", nonlinearity={self.nonlinearity!r}"
        return text


class LSTMCell(RNNCellBase):
    """LSTM cell (gates i, f, g, o; see ``lstm_step`` for the equations).

    Shapes: input [B, I], hx = (h, c) with h, c: [B, H] -> (h', c').
    """

    num_gates = 4
    is_lstm = True

    def step(self, x, state, weights: StepWeights):
        """One step without checks (``weights`` from ``prepare_weights()``): (h', c')."""
        return lstm_step(x, state, weights)

    @staticmethod
    def layer(x, state, weights, reverse=False):
        """The fused layer over x [T, B, I] from (h0, c0): (outputs [T, B, H], (h, c))."""
        return lstm_layer(x, *state, *weights, reverse=reverse)


class GRUCell(RNNCellBase):
    """GRU cell (gates r, z, n, reset after the hidden matmul; see ``gru_step``).

    Shapes: input [B, I], hx [B, H] -> h' [B, H].
    """

    num_gates = 3
    fold_biases = False

    def step(self, x, h, weights: StepWeights):
        """One step without checks (``weights`` from ``prepare_weights()``): h'."""
        return gru_step(x, h, weights)

    @staticmethod
    def layer(x, h0, weights, reverse=False):
        """The fused layer over x [T, B, I]: (outputs [T, B, H], final h)."""
        return gru_layer(x, h0, *weights, reverse=reverse)
