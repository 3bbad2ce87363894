"""Recurrent networks: the RNN, LSTM and GRU cells, unrolling them in time, and sequence modules.

A recurrent network applies the same function at every step of a sequence,
carrying a state from one step to the next (the lecture's notation)::

    s(t) = tanh(U s(t-1) + V x(t) + b)

In PyTorch's names, which minidl uses, V is ``weight_ih`` [G*H, I], U is
``weight_hh`` [G*H, H], and the bias is split in ``bias_ih`` and ``bias_hh``
[G*H], where H is the hidden size, I the input size and G the number of gate
blocks stacked in one matrix (RNN 1, LSTM 4 in the order i, f, g, o, GRU 3 in the
order r, z, n). Stacking the gates means one matrix product per step computes
all of them.

Everything here is a composite: the cells are written with matmul, sigmoid,
tanh, multiplication and slicing, and their gradients (backpropagation through
time) come from those primitives; there is no backward in this file.

Layout of the file:

1. step functions ``rnn_tanh_step``, ``rnn_relu_step``, ``lstm_step``, ``gru_step``:
   the cell equations on one time step;
2. cell modules ``RNNCell``, ``LSTMCell``, ``GRUCell`` (one step, PyTorch's API);
3. ``static_rnn`` / ``dynamic_rnn``: unrolling a cell over a sequence (the
   lecture's TensorFlow API), with variable lengths; ``detach_state`` for
   truncated backpropagation through time;
4. sequence modules ``RNN``, ``LSTM``, ``GRU`` (PyTorch's API: layers,
   directions, dropout between layers).

A note on speed. Each op costs a few microseconds of Python on top of its NumPy
work, so the step functions keep the op count per step small (about 17 for the
LSTM), and the weights are transposed once per sequence (``StepWeights``), not
once per step. The input projection x(t) V^T is computed inside the loop, one
matmul per step, rather than for all steps at once before it: the backward of
slicing step t out of a precomputed [T, B, G*H] tensor writes a full-size
[T, B, G*H] gradient, so T slices would cost T^2 B G H, more than the matmuls.
(The same holds for the input sequence itself when it requires a gradient, as an
embedding's output does: it is sliced once per step. For long sequences, feed
one-hot inputs, or look the embedding up step by step.)
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import numpy as np

from minidl.autograd.tensor import Tensor
from minidl.nn import init
from minidl.nn.module import Module, Parameter
from minidl.ops.activation import relu, sigmoid, tanh
from minidl.ops.dropout import check_dropout_p, dropout
from minidl.ops.elementwise import where
from minidl.ops.matmul import matmul
from minidl.ops.shape import cat, permute, split, squeeze, stack, unsqueeze


# ---- 1. the cell equations on one step ----------------------------------------------
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


# ---- checks shared by the cells, the unrolling functions and the modules -------------
def _shape(x) -> tuple:
    return tuple(x.shape)


def _check_features(op: str, x, expected: int, what: str = "input") -> None:
    if x.shape[-1] != expected:
        raise ValueError(f"{op}: expected {what} with {expected} features in its last "
                         f"dimension, got shape {_shape(x)}")


def _check_state(op: str, state, expected: tuple, lstm: bool, what: str = "state") -> None:
    """The state is [*expected] (an LSTM's is a pair (h, c) of that shape)."""
    if lstm:
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
        if _shape(s) != tuple(expected):
            label = f"{what} {name}".strip()
            raise ValueError(f"{op}: expected {label} of shape {tuple(expected)}, got {_shape(s)}")


# ---- 2. cell modules -----------------------------------------------------------------
class RNNCellBase(Module):
    """Shared parts of the cells: parameters, PyTorch's init, the zero state, checks.

    Parameters (PyTorch's names and shapes): weight_ih [G*H, I], weight_hh [G*H, H],
    bias_ih [G*H], bias_hh [G*H], all initialized U(-1/sqrt(H), 1/sqrt(H)).
    """

    num_gates = 1
    is_lstm = False
    fold_biases = True

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=None):
        super().__init__()
        name = type(self).__name__
        for label, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: {label} must be a positive int, got {value!r}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
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
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def zero_state(self, batch_size: int):
        """The all-zero state for ``batch_size`` sequences: [B, H] (LSTM: a pair (h, c))."""
        dtype = self.weight_hh.dtype
        if self.is_lstm:
            return (Tensor(np.zeros((batch_size, self.hidden_size), dtype=dtype)),
                    Tensor(np.zeros((batch_size, self.hidden_size), dtype=dtype)))
        return Tensor(np.zeros((batch_size, self.hidden_size), dtype=dtype))

    def prepare_weights(self) -> StepWeights:
        """The weights transposed for ``step``; call once per sequence, not once per step."""
        return step_weights(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                            fold_biases=self.fold_biases)

    def check_state(self, state, batch_size: int, op: str | None = None) -> None:
        """Raise a clear error unless ``state`` is a valid state for ``batch_size`` sequences."""
        _check_state(op or type(self).__name__, state, (batch_size, self.hidden_size),
                     self.is_lstm, what="hx")

    def forward(self, input, hx=None):
        """One step: input [B, I] (or [I]), hx the state [B, H] (or [H]; LSTM: a pair) or None
        for zeros -> the new state (RNN, GRU: h' [B, H]; LSTM: (h', c'))."""
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: expected input of shape [batch, {self.input_size}] or "
                             f"[{self.input_size}], got {_shape(input)}")
        _check_features(name, input, self.input_size)
        unbatched = input.ndim == 1
        if unbatched:
            input = unsqueeze(input, 0)
            if hx is not None:
                _check_state(name, hx, (self.hidden_size,), self.is_lstm, what="hx")
                hx = _map_state(lambda s: unsqueeze(s, 0), hx)
        if hx is None:
            hx = self.zero_state(input.shape[0])
        self.check_state(hx, input.shape[0])
        new = self.step(input, tuple(hx) if self.is_lstm else hx, self.prepare_weights())
        return _map_state(lambda s: squeeze(s, 0), new) if unbatched else new

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            text += ", bias=False"
        return text


def _map_state(fn, state):
    """Apply ``fn`` to the state, or to both parts of an LSTM state."""
    if isinstance(state, (tuple, list)):
        return tuple(fn(s) for s in state)
    return fn(state)


class RNNCell(RNNCellBase):
    """Elman RNN cell:  h' = tanh(W_ih x + b_ih + W_hh h + b_hh)  (or ReLU).

    Args:
        input_size, hidden_size: I and H.
        bias: learn b_ih and b_hh.
        nonlinearity: "tanh" or "relu".

    Shapes: input [B, I], hx [B, H] -> h' [B, H].
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', "
                             f"got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, dtype)
        self.nonlinearity = nonlinearity

    def step(self, x, h, weights: StepWeights):
        """One step without checks (``weights`` from ``prepare_weights()``): h'."""
        if self.nonlinearity == "tanh":
            return rnn_tanh_step(x, h, weights)
        return rnn_relu_step(x, h, weights)

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


class GRUCell(RNNCellBase):
    """GRU cell (gates r, z, n, reset after the hidden matmul; see ``gru_step``).

    Shapes: input [B, I], hx [B, H] -> h' [B, H].
    """

    num_gates = 3
    fold_biases = False

    def step(self, x, h, weights: StepWeights):
        """One step without checks (``weights`` from ``prepare_weights()``): h'."""
        return gru_step(x, h, weights)


# ---- 3. unrolling a cell in time ------------------------------------------------------
def _where_alive(alive, new, old):
    """Per sequence: the new state where it is still running, the old one where it has ended."""
    if isinstance(new, tuple):
        return tuple(where(alive, n, o) for n, o in zip(new, old))
    return where(alive, new, old)


def _unroll(step, xs, state, lengths=None):
    """state <- step(x(t), state) for each x(t) in the list ``xs``.

    With ``lengths`` [B], a sequence b stops at step lengths[b]: from there on its
    state stays what it was and its outputs are zero.

    Returns:
        (list of outputs h(t), final state).
    """
    outputs = []
    first_end = len(xs) if lengths is None or not lengths.size else lengths.min()
    for t, x in enumerate(xs):
        new = step(x, state)
        if t >= first_end:  # some sequence has ended: freeze its state, zero its output
            alive = (t < lengths)[:, None]  # [B, 1], broadcast over the features
            new = _where_alive(alive, new, state)
            out = where(alive, output_of(new), 0.0)
        else:
            out = output_of(new)
        outputs.append(out)
        state = new
    return outputs, state


def _stepper(cell):
    """A function (x, state) -> new state for ``cell``, its weights prepared once."""
    if isinstance(cell, RNNCellBase):
        weights = cell.prepare_weights()
        return lambda x, state: cell.step(x, state, weights)
    return cell  # any callable cell(x, state) -> new state


def _lengths(op: str, cell_name: str, sequence_length, batch: int, steps: int):
    """sequence_length as an int array [B] with 0 <= length <= steps, or None."""
    if sequence_length is None:
        return None
    lengths = np.asarray(getattr(sequence_length, "data", sequence_length))
    if lengths.dtype.kind not in "iu":
        raise TypeError(f"{op}({cell_name}): sequence_length must hold integers, "
                        f"got dtype {lengths.dtype}")
    if lengths.shape != (batch,):
        raise ValueError(f"{op}({cell_name}): sequence_length must have shape ({batch},) "
                         f"(one length per sequence), got {lengths.shape}")
    if batch and (lengths.min() < 0 or lengths.max() > steps):
        raise ValueError(f"{op}({cell_name}): sequence_length must lie in [0, {steps}] "
                         f"(the number of time steps), got values from {lengths.min()} "
                         f"to {lengths.max()}")
    return lengths.astype(np.int64)


def _initial_state(op: str, cell, initial_state, batch: int):
    name = type(cell).__name__
    if initial_state is None:
        if not hasattr(cell, "zero_state"):
            raise ValueError(f"{op}({name}): pass initial_state (the cell has no zero_state)")
        return cell.zero_state(batch)
    if isinstance(cell, RNNCellBase):
        cell.check_state(initial_state, batch, op=f"{op}({name})")
        return tuple(initial_state) if cell.is_lstm else initial_state
    return initial_state


def static_rnn(cell, inputs, initial_state=None, sequence_length=None):
    """Unroll ``cell`` over a Python list of steps (TensorFlow's ``tf.nn.static_rnn``).

        state(0) = initial_state (zeros if None)
        state(t) = cell(x(t), state(t-1)),   output(t) = h(t)

    Args:
        cell: an RNNCell / LSTMCell / GRUCell (or any callable cell(x, state) -> state,
            with initial_state given).
        inputs: list of T tensors [B, I], one per step.
        initial_state: [B, H] (LSTM: (h, c)) or None.
        sequence_length: optional ints [B]; outputs past a sequence's end are zero and
            its final state is the one at its last real step.

    Returns:
        (outputs: list of T tensors [B, H], final state).

    In TensorFlow's graph mode "static" meant the graph held T copies of the cell,
    fixed when the graph was built. Here every call runs Python's loop anyway, so
    static and dynamic unrolling compute the same thing; they differ in how the
    sequence is handed over: a list here, one tensor in ``dynamic_rnn``.
    """
    name = type(cell).__name__
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise ValueError(f"static_rnn({name}): inputs must be a non-empty list of [batch, "
                         f"features] tensors, got {type(inputs).__name__}")
    first = inputs[0]
    for t, x in enumerate(inputs):
        if x.ndim != 2 or _shape(x) != _shape(first):
            raise ValueError(f"static_rnn({name}): every step must be [batch, features] like "
                             f"step 0 {_shape(first)}; step {t} has shape {_shape(x)}")
    if isinstance(cell, RNNCellBase):
        _check_features(f"static_rnn({name})", first, cell.input_size, what="inputs")
    batch = first.shape[0]
    lengths = _lengths("static_rnn", name, sequence_length, batch, len(inputs))
    state = _initial_state("static_rnn", cell, initial_state, batch)
    return _unroll(_stepper(cell), list(inputs), state, lengths)


def dynamic_rnn(cell, inputs, initial_state=None, sequence_length=None, time_major=False):
    """Unroll ``cell`` over a sequence held in one tensor (TensorFlow's ``tf.nn.dynamic_rnn``).

    Args:
        cell: as in ``static_rnn``.
        inputs: [B, T, I], or [T, B, I] with ``time_major=True``.
        initial_state: [B, H] (LSTM: (h, c)) or None for zeros.
        sequence_length: optional ints [B], each in [0, T]; outputs past a sequence's
            end are zero and its final state is the one at its last real step.
        time_major: TensorFlow's option (PyTorch's ``batch_first=False``): time is the
            first axis of inputs and outputs. It saves the two transposes a batch-major
            layout needs, which is why TensorFlow recommended it for speed.

    Returns:
        (outputs [B, T, H] (time_major: [T, B, H]), final state).
    """
    name = type(cell).__name__
    if not isinstance(inputs, Tensor) or inputs.ndim != 3:
        layout = "[time, batch, features]" if time_major else "[batch, time, features]"
        got = _shape(inputs) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise ValueError(f"dynamic_rnn({name}): expected inputs {layout}, got {got}")
    if isinstance(cell, RNNCellBase):
        _check_features(f"dynamic_rnn({name})", inputs, cell.input_size, what="inputs")
    time_axis = 0 if time_major else 1
    steps, batch = inputs.shape[time_axis], inputs.shape[1 - time_axis]
    if steps == 0:
        raise ValueError(f"dynamic_rnn({name}): inputs {_shape(inputs)} have no time steps")
    lengths = _lengths("dynamic_rnn", name, sequence_length, batch, steps)
    state = _initial_state("dynamic_rnn", cell, initial_state, batch)
    xs = _unstack(inputs, time_axis)
    outputs, state = _unroll(_stepper(cell), xs, state, lengths)
    return stack(outputs, dim=time_axis), state


def _unstack(x, axis: int) -> list:
    """The T slices of x along ``axis`` (0 or 1), as a list."""
    if axis == 0:
        return [x[t] for t in range(x.shape[0])]
    return [x[:, t] for t in range(x.shape[1])]


def detach_state(state):
    """Cut a state off the graph, keeping its values (truncated backpropagation through time).

    Between two chunks of a long sequence, ``state = detach_state(state)`` lets
    the next chunk start from where the last one ended while its backward stops
    at the chunk boundary (Williams & Peng 1990; Sutskever 2013, sec. 3.3).
    Works on a tensor, an LSTM pair, or None.
    """
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return tuple(detach_state(s) for s in state)
    return state.detach()


# ---- 4. sequence modules ------------------------------------------------------------
_MODES = {  # mode: (gate blocks, step function, biases folded, is LSTM)
    "RNN_TANH": (1, rnn_tanh_step, True, False),
    "RNN_RELU": (1, rnn_relu_step, True, False),
    "LSTM": (4, lstm_step, True, True),
    "GRU": (3, gru_step, False, False),
}


class RNNBase(Module):
    """Multi-layer, optionally bidirectional recurrent network over whole sequences (PyTorch's).

    Args:
        mode: "RNN_TANH", "RNN_RELU", "LSTM" or "GRU" (use the subclasses).
        input_size, hidden_size: I and H.
        num_layers: L stacked layers; layer k > 0 reads the outputs of layer k - 1.
        bias: learn the biases.
        batch_first: input and output are [B, T, *] instead of [T, B, *].
        dropout: dropout probability on the outputs of every layer but the last.
        bidirectional: D = 2 directions; a second network reads the sequence backwards
            and the outputs of both are concatenated, [.., 2H].

    Parameters per layer k and direction (suffix "" or "_reverse"):
    ``weight_ih_l{k}`` [G*H, I or D*H], ``weight_hh_l{k}`` [G*H, H], ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` [G*H]; all U(-1/sqrt(H), 1/sqrt(H)).

    forward(input, hx=None) -> (output, h_n):
        input: [T, B, I] ([B, T, I] if batch_first; [T, I] for one unbatched sequence).
        hx: [L*D, B, H] initial states (LSTM: a pair (h_0, c_0)), zeros if None.
        output: [T, B, D*H], the last layer's h(t) (batch_first: [B, T, D*H]).
        h_n: [L*D, B, H], the final state of every layer and direction (LSTM: (h_n, c_n)),
        ordered layer by layer, forward direction first.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, dtype=None):
        super().__init__()
        name = type(self).__name__
        if mode not in _MODES:
            raise ValueError(f"{name}: unknown mode {mode!r}; choose from {list(_MODES)}")
        for label, value in (("input_size", input_size), ("hidden_size", hidden_size),
                             ("num_layers", num_layers)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: {label} must be a positive int, got {value!r}")
        check_dropout_p(dropout, name)
        self.mode = mode
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.num_layers = int(num_layers)
        self.bias, self.batch_first = bias, batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        gates, self._step, self._fold_biases, self.is_lstm = _MODES[mode]
        dtype = dtype or np.float32
        directions = 2 if bidirectional else 1
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.hidden_size * directions
            for suffix in self._suffixes():
                shapes = {"weight_ih": (gates * hidden_size, layer_input),
                          "weight_hh": (gates * hidden_size, hidden_size)}
                if bias:
                    shapes.update(bias_ih=(gates * hidden_size,), bias_hh=(gates * hidden_size,))
                for kind, shape in shapes.items():
                    self.register_parameter(f"{kind}_l{layer}{suffix}",
                                            Parameter(np.zeros(shape, dtype=dtype)))
        self.reset_parameters()

    def _suffixes(self) -> tuple:
        return ("", "_reverse") if self.bidirectional else ("",)

    def reset_parameters(self) -> None:
        """Every parameter ~ U(-1/sqrt(H), 1/sqrt(H)) (PyTorch's default)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _weights(self, layer: int, suffix: str) -> StepWeights:
        get = self._parameters.get
        key = f"_l{layer}{suffix}"
        return step_weights(get("weight_ih" + key), get("weight_hh" + key),
                            get("bias_ih" + key), get("bias_hh" + key),
                            fold_biases=self._fold_biases)

    def _check_input(self, input) -> bool:
        """Check input's shape; return True for one unbatched sequence [T, I]."""
        name = type(self).__name__
        if not isinstance(input, Tensor) or input.ndim not in (2, 3):
            layout = "[batch, time, features]" if self.batch_first else "[time, batch, features]"
            got = _shape(input) if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"{name}: expected input {layout} (or [time, features]), got {got}")
        _check_features(name, input, self.input_size)
        time_axis = 1 if self.batch_first and input.ndim == 3 else 0
        if input.shape[time_axis] == 0:
            raise ValueError(f"{name}: input {_shape(input)} has no time steps")
        return input.ndim == 2

    def forward(self, input, hx=None):
        name = type(self).__name__
        unbatched = self._check_input(input)
        directions = 2 if self.bidirectional else 1
        state_shape = (self.num_layers * directions, self.hidden_size)
        if unbatched:
            if hx is not None:
                _check_state(name, hx, state_shape, self.is_lstm, what="hx")
                hx = _map_state(lambda s: unsqueeze(s, 1), hx)
            input = unsqueeze(input, 1)  # [T, 1, I]
            time_axis = 0
        else:
            time_axis = 1 if self.batch_first else 0
        batch = input.shape[1 - time_axis]
        if hx is not None:
            _check_state(name, hx, (state_shape[0], batch, state_shape[1]), self.is_lstm,
                         what="hx")
        xs = _unstack(input, time_axis)
        finals = []
        for layer in range(self.num_layers):
            per_direction = []
            for d, suffix in enumerate(self._suffixes()):
                index = layer * directions + d
                state = self._initial(hx, index, batch)
                step = partial(self._step, w=self._weights(layer, suffix))
                if d == 0:
                    outs, state = _unroll(step, xs, state)
                else:  # the reverse direction reads the sequence from its end
                    outs, state = _unroll(step, xs[::-1], state)
                    outs = outs[::-1]
                per_direction.append(outs)
                finals.append(state)
            if directions == 2:
                xs = [cat([a, b], dim=-1) for a, b in zip(*per_direction)]
            else:
                xs = per_direction[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                xs = [dropout(x, self.dropout) for x in xs]
        output = stack(xs, dim=time_axis)
        if self.is_lstm:
            h_n = (stack([h for h, _ in finals], dim=0), stack([c for _, c in finals], dim=0))
        else:
            h_n = stack(finals, dim=0)
        if unbatched:
            return squeeze(output, 1), _map_state(lambda s: squeeze(s, 1), h_n)
        return output, h_n

    def _initial(self, hx, index: int, batch: int):
        """The initial state of layer-direction ``index``: hx[index], or zeros."""
        if hx is None:
            dtype = self._parameters["weight_hh_l0"].dtype
            zeros = np.zeros((batch, self.hidden_size), dtype=dtype)
            return (Tensor(zeros), Tensor(zeros)) if self.is_lstm else Tensor(zeros)
        if self.is_lstm:
            return hx[0][index], hx[1][index]
        return hx[index]

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            text += ", nonlinearity='relu'"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


class RNN(RNNBase):
    """Elman RNN over sequences: h(t) = tanh(W_ih x(t) + b_ih + W_hh h(t-1) + b_hh) per layer.

    ``nonlinearity="relu"`` uses max(0, .) instead. See ``RNNBase`` for the arguments and shapes.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_" + nonlinearity.upper(), input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """LSTM over sequences (``lstm_step`` per layer); states are pairs (h, c).

    See ``RNNBase`` for the arguments and shapes.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype)


class GRU(RNNBase):
    """GRU over sequences (``gru_step`` per layer). See ``RNNBase`` for the arguments and shapes."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype)
