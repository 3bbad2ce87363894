"""Recurrent networks over whole sequences: unrolling a cell in time, and nn.RNN / LSTM / GRU.

The cells and their step equations live in minidl/nn/rnn_cell.py. This file runs
them over sequences in two ways:

1. ``static_rnn`` / ``dynamic_rnn`` unroll a cell one step at a time (the
   lecture's TensorFlow API), with variable lengths; ``detach_state`` cuts the
   state off the graph for truncated backpropagation through time. Each step is
   the cell's composite step function, so every intermediate value has its own
   node in the graph (``retain_grad()`` on the outputs shows dL/dh(t)).
2. The sequence modules ``RNN``, ``LSTM``, ``GRU`` (PyTorch's API: layers,
   directions, dropout between layers) run each layer and direction through the
   cell's fused ``layer`` (minidl/ops/rnn.py): the same equations, with the input
   products of all steps done at once and a hand-written backward through time.
   They compute what unrolling the cell computes (the tests hold one against the
   other in float64, values and gradients) with a few graph nodes per layer instead
   of about 17 per step (``python -m minidl.bench --vs-torch`` has the timings).
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.tensor import Tensor
from minidl.nn.module import Module, Parameter
from minidl.nn.rnn_cell import (
    GRUCell,
    LSTMCell,
    RNNCell,
    RNNCellBase,
    check_features,
    check_nonlinearity,
    check_state_shape,
    map_state,
    output_of,
    positive_int,
    recurrent_init_,
    shape_of,
    zero_state,
)
from minidl.ops.dropout import check_dropout_p, dropout
from minidl.ops.elementwise import where
from minidl.ops.shape import cat, permute, squeeze, stack, unsqueeze


# ---- unrolling a cell in time -------------------------------------------------------------
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
        if x.ndim != 2 or shape_of(x) != shape_of(first):
            raise ValueError(f"static_rnn({name}): every step must be [batch, features] like "
                             f"step 0 {shape_of(first)}; step {t} has shape {shape_of(x)}")
    if isinstance(cell, RNNCellBase):
        check_features(f"static_rnn({name})", first, cell.input_size, what="inputs")
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
        got = shape_of(inputs) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise ValueError(f"dynamic_rnn({name}): expected inputs {layout}, got {got}")
    if isinstance(cell, RNNCellBase):
        check_features(f"dynamic_rnn({name})", inputs, cell.input_size, what="inputs")
    time_axis = 0 if time_major else 1
    steps, batch = inputs.shape[time_axis], inputs.shape[1 - time_axis]
    if steps == 0:
        raise ValueError(f"dynamic_rnn({name}): inputs {shape_of(inputs)} have no time steps")
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


# ---- sequence modules -------------------------------------------------------------------
_CELLS = {"RNN_TANH": RNNCell, "RNN_RELU": RNNCell, "LSTM": LSTMCell, "GRU": GRUCell}


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
    ``bias_hh_l{k}`` [G*H]; all U(-1/sqrt(H), 1/sqrt(H)). G comes from the cell
    (``self.cell``: RNNCell 1, LSTMCell 4, GRUCell 3).

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
        if mode not in _CELLS:
            raise ValueError(f"{name}: unknown mode {mode!r}; choose from {list(_CELLS)}")
        self.input_size = positive_int(name, "input_size", input_size)
        self.hidden_size = positive_int(name, "hidden_size", hidden_size)
        self.num_layers = positive_int(name, "num_layers", num_layers)
        check_dropout_p(dropout, name)
        self.mode, self.cell = mode, _CELLS[mode]
        self.is_lstm = self.cell.is_lstm
        self.bias, self.batch_first = bias, batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        dtype = dtype or np.float32
        directions = 2 if bidirectional else 1
        gates = self.cell.num_gates * self.hidden_size
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.hidden_size * directions
            for suffix in self._suffixes():
                shapes = {"weight_ih": (gates, layer_input), "weight_hh": (gates, hidden_size)}
                if bias:
                    shapes.update(bias_ih=(gates,), bias_hh=(gates,))
                for kind, shape in shapes.items():
                    self.register_parameter(f"{kind}_l{layer}{suffix}",
                                            Parameter(np.zeros(shape, dtype=dtype)))
        self.reset_parameters()

    def _suffixes(self) -> tuple:
        return ("", "_reverse") if self.bidirectional else ("",)

    def reset_parameters(self) -> None:
        """Every parameter ~ U(-1/sqrt(H), 1/sqrt(H)) (PyTorch's default)."""
        recurrent_init_(self.parameters(), self.hidden_size)

    def _weights(self, layer: int, suffix: str) -> tuple:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer and direction."""
        get = self._parameters.get
        key = f"_l{layer}{suffix}"
        return get("weight_ih" + key), get("weight_hh" + key), get("bias_ih" + key), \
            get("bias_hh" + key)

    def _layer(self, x, state, weights, reverse: bool):
        """One layer and direction over x [T, B, *]: the cell's fused layer."""
        return self.cell.layer(x, state, weights, reverse=reverse)

    def _check_input(self, input) -> bool:
        """Check input's shape; return True for one unbatched sequence [T, I]."""
        name = type(self).__name__
        if not isinstance(input, Tensor) or input.ndim not in (2, 3):
            layout = "[batch, time, features]" if self.batch_first else "[time, batch, features]"
            got = shape_of(input) if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"{name}: expected input {layout} (or [time, features]), got {got}")
        check_features(name, input, self.input_size)
        time_axis = 1 if self.batch_first and input.ndim == 3 else 0
        if input.shape[time_axis] == 0:
            raise ValueError(f"{name}: input {shape_of(input)} has no time steps")
        return input.ndim == 2

    def forward(self, input, hx=None):
        name = type(self).__name__
        unbatched = self._check_input(input)
        directions = 2 if self.bidirectional else 1
        state_shape = (self.num_layers * directions, self.hidden_size)
        if unbatched:
            if hx is not None:
                check_state_shape(name, hx, state_shape, self.is_lstm, what="hx")
                hx = map_state(lambda s: unsqueeze(s, 1), hx)
            input = unsqueeze(input, 1)  # [T, 1, I]
        elif self.batch_first:
            input = permute(input, 1, 0, 2)  # the layers run time-major
        batch = input.shape[1]
        if hx is not None:
            check_state_shape(name, hx, (state_shape[0], batch, state_shape[1]), self.is_lstm,
                        what="hx")
        x, finals = input, []
        for layer in range(self.num_layers):
            outputs = []
            for d, suffix in enumerate(self._suffixes()):
                state = self._initial(hx, layer * directions + d, batch)
                out, final = self._layer(x, state, self._weights(layer, suffix), d == 1)
                outputs.append(out)
                finals.append(final)
            x = cat(outputs, dim=-1) if directions == 2 else outputs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = dropout(x, self.dropout)
        if self.is_lstm:
            h_n = (stack([h for h, _ in finals], dim=0), stack([c for _, c in finals], dim=0))
        else:
            h_n = stack(finals, dim=0)
        if unbatched:
            return squeeze(x, 1), map_state(lambda s: squeeze(s, 1), h_n)
        return (permute(x, 1, 0, 2) if self.batch_first else x), h_n

    def _initial(self, hx, index: int, batch: int):
        """The initial state of layer-direction ``index``: hx[index], or zeros."""
        if hx is None:
            dtype = self._parameters["weight_hh_l0"].dtype
            return zero_state(batch, self.hidden_size, dtype, self.is_lstm)
        return map_state(lambda s: s[index], hx)

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
        check_nonlinearity("RNN", nonlinearity)
        super().__init__("RNN_" + nonlinearity.upper(), input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, dtype)
        self.nonlinearity = nonlinearity

    def _layer(self, x, state, weights, reverse: bool):
        return self.cell.layer(x, state, weights, reverse=reverse,
                               nonlinearity=self.nonlinearity)


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
