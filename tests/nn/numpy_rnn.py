"""Independent NumPy versions of the recurrent equations, written from PyTorch's documentation.

Each gate gets its own weight block and its own product (no fused matmul, no
slicing of a stacked pre-activation), so these share no code or layout tricks
with minidl.nn.rnn.
"""

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _blocks(w, n):
    """Cut the rows of a stacked [n*H, ...] weight (or [n*H] bias) into n blocks."""
    h = w.shape[0] // n
    return [w[k * h:(k + 1) * h] for k in range(n)]


def _lin(x, w, b):
    out = np.einsum("bi,hi->bh", x, w)
    return out if b is None else out + b


def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    act = np.tanh if nonlinearity == "tanh" else (lambda a: np.maximum(a, 0))
    return act(_lin(x, w_ih, b_ih) + _lin(h, w_hh, b_hh))


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    wi, wf, wg, wo = _blocks(w_ih, 4)
    ui, uf, ug, uo = _blocks(w_hh, 4)
    bi, bf, bg, bo = _blocks(b_ih, 4) if b_ih is not None else [None] * 4
    ci, cf, cg, co = _blocks(b_hh, 4) if b_hh is not None else [None] * 4
    i = sigmoid(_lin(x, wi, bi) + _lin(h, ui, ci))
    f = sigmoid(_lin(x, wf, bf) + _lin(h, uf, cf))
    g = np.tanh(_lin(x, wg, bg) + _lin(h, ug, cg))
    o = sigmoid(_lin(x, wo, bo) + _lin(h, uo, co))
    c_new = f * c + i * g
    return o * np.tanh(c_new), c_new


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    wr, wz, wn = _blocks(w_ih, 3)
    ur, uz, un = _blocks(w_hh, 3)
    br, bz, bn = _blocks(b_ih, 3) if b_ih is not None else [None] * 3
    cr, cz, cn = _blocks(b_hh, 3) if b_hh is not None else [None] * 3
    r = sigmoid(_lin(x, wr, br) + _lin(h, ur, cr))
    z = sigmoid(_lin(x, wz, bz) + _lin(h, uz, cz))
    n = np.tanh(_lin(x, wn, bn) + r * _lin(h, un, cn))
    return (1 - z) * n + z * h


def cell_step(kind, x, state, params, nonlinearity="tanh"):
    """One step of ``kind`` ('rnn', 'lstm', 'gru'); params = (w_ih, w_hh, b_ih, b_hh)."""
    if kind == "lstm":
        return lstm_cell(x, state[0], state[1], *params)
    if kind == "gru":
        return gru_cell(x, state, *params)
    return rnn_cell(x, state, *params, nonlinearity=nonlinearity)


def run_cell(kind, xs, state, params, lengths=None, nonlinearity="tanh"):
    """Unroll over xs [T, B, I] with optional per-sequence lengths; returns (outputs, state).

    Each sequence b is run on its own for lengths[b] steps (no masks), then its
    outputs are padded with zeros.
    """
    steps, batch = xs.shape[:2]
    lengths = np.full(batch, steps) if lengths is None else np.asarray(lengths)
    hidden = (state[0] if kind == "lstm" else state).shape[1]
    outputs = np.zeros((steps, batch, hidden))
    finals = []
    for b in range(batch):
        s = tuple(p[b:b + 1] for p in state) if kind == "lstm" else state[b:b + 1]
        for t in range(lengths[b]):
            s = cell_step(kind, xs[t, b:b + 1], s, params, nonlinearity)
            outputs[t, b] = (s[0] if kind == "lstm" else s)[0]
        finals.append(s)
    if kind == "lstm":
        final = (np.concatenate([s[0] for s in finals]), np.concatenate([s[1] for s in finals]))
    else:
        final = np.concatenate(finals)
    return outputs, final


def run_module(kind, named, x, num_layers, bidirectional, h0=None, c0=None,
               nonlinearity="tanh"):
    """A multi-layer (bi)directional network, time-major x [T, B, I].

    named: dict of parameter name -> array, with PyTorch's names.
    Returns output [T, B, D*H], h_n [L*D, B, H] (and c_n for the LSTM).
    """
    directions = 2 if bidirectional else 1
    hidden = named["weight_hh_l0"].shape[1]
    steps, batch = x.shape[:2]
    layer_input = x
    h_n, c_n = [], []
    for layer in range(num_layers):
        outs = []
        for d, suffix in enumerate(["", "_reverse"][:directions]):
            key = f"_l{layer}{suffix}"
            params = (named["weight_ih" + key], named["weight_hh" + key],
                      named.get("bias_ih" + key), named.get("bias_hh" + key))
            index = layer * directions + d
            h = np.zeros((batch, hidden)) if h0 is None else h0[index]
            c = np.zeros((batch, hidden)) if c0 is None else c0[index]
            state = (h, c) if kind == "lstm" else h
            order = range(steps) if d == 0 else range(steps - 1, -1, -1)
            out = np.zeros((steps, batch, hidden))
            for t in order:
                state = cell_step(kind, layer_input[t], state, params, nonlinearity)
                out[t] = state[0] if kind == "lstm" else state
            outs.append(out)
            h_n.append(state[0] if kind == "lstm" else state)
            if kind == "lstm":
                c_n.append(state[1])
        layer_input = np.concatenate(outs, axis=2)
    if kind == "lstm":
        return layer_input, np.stack(h_n), np.stack(c_n)
    return layer_input, np.stack(h_n)
