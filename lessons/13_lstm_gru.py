# %% [markdown]
"""
# Lesson 13 — LSTM and GRU: gated cells for long-range dependencies

**Lecture idea.** The basic RNN forgets: backpropagation through time
multiplies the gradient by the recurrent Jacobian once per step, so a signal
from 50 steps back arrives vanishingly small (lesson 12). The LSTM
(Hochreiter & Schmidhuber 1997, forget gate by Gers, Schmidhuber & Cummins
2000) adds a memory cell updated by *addition*, c(t) = f * c(t-1) + i * g,
behind gates that learn when to write (i), keep (f) and read (o); along the
cell the gradient is multiplied by f, not by a weight matrix and a squashing
derivative, so it survives for as long as the forget gate stays open. The
GRU (Cho et al. 2014) does the same with two gates and no separate cell:
h(t) = (1 - z) * n + z * h(t-1).

**What you build.** The LSTM and GRU steps by hand, checked against
`nn.LSTMCell` and `nn.GRUCell`; the adding problem (Hochreiter & Schmidhuber
1997, experiment 4) at growing lengths for `nn.RNN`, `nn.LSTM` and `nn.GRU`,
with the plot of error against length; the gradient that reaches the early
steps in the trained networks; then a character-level language model (an LSTM
trained with truncated backpropagation through time and gradient clipping) on
a text that ships with CPython, the `help()` pages of Python itself
(`pydoc_data.topics`, about 460,000 characters, no network needed), and
samples from it at several temperatures.

**Expected result.** Adding problem at length 50: LSTM and GRU reach a test
MSE at least 10x below the trivial baseline (always answering 1.0, MSE 1/6),
the basic RNN does not; the language model reaches a validation
cross-entropy below 2.3 bits per character (the character frequencies alone
give 4.7 bits).
Full run on a 2-core laptop: about 2 minutes.

*Measured (full run, seed 0): adding problem test MSE at T = 10 / 25 / 50:
RNN 0.0028 / 0.161 / 0.153 (the baseline is 0.167), LSTM 0.0021 / 0.0016 /
0.0017, GRU 0.0016 / 0.0024 / 0.0015; steps to reach 50x below the baseline
(checked every 100): RNN 1,300 / - / -, LSTM 300 / 500 / 1,000, GRU 200 / 300
/ 300. Gradient reaching step 1 from step 50, ||dL/dh(1)|| / ||dL/dh(50)||:
RNN 4e-13, LSTM 0.072, GRU 0.22. Language model 2.066
bits per character on the validation text after 2,000 steps (character
frequencies alone: 4.69); samples at temperature 0.2 / 0.5 / 1.0 / 1.5 (means
of five samples of 300 characters): 96 / 87 / 54 / 21% of the words occur in
the training text, 39 / 67 / 88 / 98% distinct (with seeds 1, 2, 3 the real
words at 0.2 / 0.5 are 98 / 87, 97 / 85 and 93 / 84%; one sample each, as an
earlier version measured, gave 91 / 94% with seed 3). Time: 116 s of CPU
(user + sys, one BLAS thread; 117 s wall).*

Run: `python lessons/13_lstm_gru.py [--quick] [--seed S] [--out DIR]`
"""

# %%
import numpy as np

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor
from minidl.data import CharVocab, adding_problem, batchify, bptt_batches, text_corpus
from minidl.data.sequences import ADDING_BASELINE_MSE
from minidl.optim import Adam
from minidl.optim.lr_scheduler import CosineAnnealingLR
from minidl.utils.lesson import Timer, check_range, lesson_args, save_figure  # noqa: F401 (exercises)

args = lesson_args("13_lstm_gru", __doc__)
import matplotlib.pyplot as plt  # noqa: E402  (after lesson_args picked the backend)

lesson_timer = Timer().__enter__()


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


# %% [markdown]
# ## 1. One LSTM step and one GRU step by hand
#
# PyTorch stacks the four gate blocks in one matrix, in the order i, f, g, o:
# `weight_ih` is [4H, I] and `weight_hh` is [4H, H], so one matrix product per
# step computes all four pre-activations. Here the step is written out gate by
# gate and compared with `nn.LSTMCell`. The library's step is `lstm_step` in
# `minidl/nn/rnn_cell.py` (the two products in `_gates` there, then `split` into
# the four blocks); `LSTMCell` in the same file holds the weights.

# %%
rng = np.random.default_rng(args.seed)
cell = nn.LSTMCell(3, 2)
x, h, c = (rng.normal(0, 1, shape).astype(np.float32) for shape in ((1, 3), (1, 2), (1, 2)))
W_i, W_f, W_g, W_o = np.split(cell.weight_ih.data, 4)  # each [H, I]
U_i, U_f, U_g, U_o = np.split(cell.weight_hh.data, 4)  # each [H, H]
b_i, b_f, b_g, b_o = np.split(cell.bias_ih.data + cell.bias_hh.data, 4)
i = sigmoid(x @ W_i.T + h @ U_i.T + b_i)  # how much of the candidate to write
f = sigmoid(x @ W_f.T + h @ U_f.T + b_f)  # how much of the old cell to keep
g = np.tanh(x @ W_g.T + h @ U_g.T + b_g)  # the candidate
o = sigmoid(x @ W_o.T + h @ U_o.T + b_o)  # how much of the cell to show
c_new = f * c + i * g
h_new = o * np.tanh(c_new)
print("gates: i", i.round(3), "f", f.round(3), "g", g.round(3), "o", o.round(3))
h_cell, c_cell = cell(Tensor(x), (Tensor(h), Tensor(c)))
print("by hand: h", h_new.round(4), "c", c_new.round(4), "| nn.LSTMCell: h",
      h_cell.data.round(4), "c", c_cell.data.round(4))
assert np.allclose(h_cell.data, h_new, atol=1e-6) and np.allclose(c_cell.data, c_new, atol=1e-6)

# %% [markdown]
# The GRU stacks three blocks, in the order r, z, n. The reset gate r
# multiplies the recurrent part of the candidate *after* its matrix product,
# bias included, so the two biases of n cannot be added up front as the
# LSTM's can. The library's step is `gru_step` in `minidl/nn/rnn_cell.py`.
#
#     r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)        reset: how much of h the candidate sees
#     z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)        update: how much of h to keep
#     n = tanh(W_in x + b_in + r * (W_hn h + b_hn))     the candidate
#     h' = (1 - z) * n + z * h

# %%
gru = nn.GRUCell(3, 2)
W_r, W_z, W_n = np.split(gru.weight_ih.data, 3)  # each [H, I]
U_r, U_z, U_n = np.split(gru.weight_hh.data, 3)  # each [H, H]
bi_r, bi_z, bi_n = np.split(gru.bias_ih.data, 3)
bh_r, bh_z, bh_n = np.split(gru.bias_hh.data, 3)
r = sigmoid(x @ W_r.T + bi_r + h @ U_r.T + bh_r)
z = sigmoid(x @ W_z.T + bi_z + h @ U_z.T + bh_z)
n = np.tanh(x @ W_n.T + bi_n + r * (h @ U_n.T + bh_n))
h_gru = (1 - z) * n + z * h
h_gru_cell = gru(Tensor(x), Tensor(h))
print("gates: r", r.round(3), "z", z.round(3), "n", n.round(3))
print("by hand: h", h_gru.round(4), "| nn.GRUCell: h", h_gru_cell.data.round(4))
assert np.allclose(h_gru_cell.data, h_gru, atol=1e-6)

# %% [markdown]
# ## 2. The adding problem at growing lengths
#
# Each input step is a pair (value, marker): the values are uniform in [0, 1],
# and exactly two steps carry the marker 1, one in the first half of the
# sequence and one in the second. The target, read from the last output, is
# the sum of the two marked values. Answering 1.0 whatever the input gives
# MSE 1/6 (the variance of a sum of two uniforms); doing better requires
# carrying the first marked value across up to T steps. Each model has 32
# units, sees fresh batches of 64 sequences, is trained with Adam and gradient
# clipping (`clip_grad_norm_` in `minidl/nn/utils.py`), and stops early once
# its test MSE is 50x below the baseline. Because training stops there, the
# final MSEs of the models that reach the threshold say little; the number of
# steps each needed to get there is the comparison that matters, and is
# printed in a table. (`adding_problem` is in `minidl/data/sequences.py`.)

# %%
class LastStepRegressor(nn.Module):
    """x [B, T, 2] -> one number per sequence, read from the output of the last step."""

    def __init__(self, kind: str, hidden: int = 32):
        super().__init__()
        self.rnn = getattr(nn, kind)(2, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        outputs, _ = self.rnn(x)
        return self.head(outputs[:, -1]).reshape(-1)


def test_mse(model, x, y):
    with minidl.no_grad():
        return F.mse_loss(model(Tensor(x)), Tensor(y)).item()


def compared_to_baseline(mse) -> str:
    """'12.3x below the baseline' or '1.01x above the baseline'."""
    ratio = ADDING_BASELINE_MSE / mse
    return f"{ratio:.1f}x below the baseline" if ratio >= 1 else \
        f"{1 / ratio:.2f}x above the baseline"


def steps_to_threshold(curve, threshold=ADDING_BASELINE_MSE / 50):
    """The first checked step whose test MSE is below ``threshold``, or None."""
    return next((step for step, mse in curve if mse < threshold), None)


def train_adding(kind, length, max_steps, check_every=100):
    """Train one model; return it, its test MSE and the test curve [(step, test MSE)]."""
    model = LastStepRegressor(kind)
    optimizer = Adam(model.parameters(), lr=0.01)
    x_test, y_test = adding_problem(1000, length, seed=1_000_000 + length)
    curve = [(0, test_mse(model, x_test, y_test))]
    for step in range(1, max_steps + 1):
        x, y = adding_problem(64, length, seed=args.seed * 1_000_000 + length * 10_000 + step)
        optimizer.zero_grad()
        F.mse_loss(model(Tensor(x)), Tensor(y)).backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % check_every == 0 or step == max_steps:
            curve.append((step, test_mse(model, x_test, y_test)))
            if curve[-1][1] < ADDING_BASELINE_MSE / 50:
                break
    return model, curve[-1][1], curve


kinds = ("RNN", "LSTM", "GRU")
lengths = (10, 25, 50) if not args.quick else (5, 10)
max_steps = 2000 if not args.quick else 20
results, curves, trained = {}, {}, {}
with Timer() as timer:
    for kind in kinds:
        for length in lengths:
            with Timer() as one:
                model, mse, curve = train_adding(kind, length, max_steps)
            results[kind, length], curves[kind, length] = mse, curve
            trained[kind, length] = model
            print(f"{kind:4s} T = {length:3d}: test MSE {mse:.5f} ({compared_to_baseline(mse)}) "
                  f"after {curve[-1][0]} steps, {one.seconds:.1f} s")
print(f"adding problem: {timer.seconds:.0f} s")
print(f"steps to reach a test MSE 50x below the baseline (checked every 100; '-': not within "
      f"{max_steps}):")
print("| model | " + " | ".join(f"T = {n}" for n in lengths) + " |")
print("|---|" + "---|" * len(lengths))
for kind in kinds:
    reached = [steps_to_threshold(curves[kind, n]) for n in lengths]
    print(f"| {kind} | " + " | ".join("-" if r is None else str(r) for r in reached) + " |")

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for kind in kinds:
    axes[0].semilogy(lengths, [results[kind, n] for n in lengths], "o-", label=kind)
    steps_, errors = zip(*curves[kind, lengths[-1]])
    axes[1].semilogy(steps_, errors, label=kind)
for ax in axes:
    ax.axhline(ADDING_BASELINE_MSE, color="gray", ls=":", label="baseline (answer 1.0)")
    ax.axhline(ADDING_BASELINE_MSE / 10, color="gray", ls="--", lw=0.8, label="10x below")
axes[0].set(xlabel="sequence length T", ylabel="test MSE", title="adding problem")
axes[1].set(xlabel="training step", ylabel="test MSE", title=f"training at T = {lengths[-1]}")
axes[0].legend(fontsize=8)
save_figure(fig, args.out / "adding_problem.png")

# %% [markdown]
# Why the gated cells succeed: the gradient of the loss with respect to each
# step's hidden state, in the trained networks at the longest length. The
# modules are unrolled step by step as cells with the same weights (`nn.LSTM`
# computes the same as `nn.LSTMCell` in a loop; it runs the fused layer
# `LSTMLayer` of `minidl/ops/rnn.py`, which keeps no per-step tensors), so
# `retain_grad()` can keep dL/dh(t) for every t. The basic RNN's gradient
# fades on the way back; the LSTM's and GRU's reach the start of the sequence,
# where the first marker may be. The ratio ||dL/dh(1)|| / ||dL/dh(T)|| is
# printed for each and checked in a full run.

# %%
longest = lengths[-1]
x_probe, y_probe = adding_problem(256, longest, seed=7)
fig, ax = plt.subplots(figsize=(6, 4))
reach = {}
for kind in kinds:
    module = trained[kind, longest]
    step_cell = getattr(nn, kind + "Cell")(2, 32)
    step_cell.load_state_dict({name[:-3]: value  # weight_ih_l0 -> weight_ih
                               for name, value in module.rnn.state_dict().items()})
    outputs, _ = nn.static_rnn(step_cell, [Tensor(x_probe[:, t]) for t in range(longest)])
    for out in outputs:
        out.retain_grad()
    loss = F.mse_loss(module.head(outputs[-1]).reshape(-1), Tensor(y_probe))
    loss.backward()
    norms = [np.linalg.norm(out.grad) for out in outputs]
    reach[kind] = norms[0] / norms[-1]
    print(f"{kind:4s}: ||dL/dh(1)|| / ||dL/dh({longest})|| = {reach[kind]:.2e}")
    ax.semilogy(np.arange(1, longest + 1), norms, label=kind)
ax.set(xlabel="step t", ylabel="||dL/dh(t)||", title=f"trained networks, T = {longest}")
ax.legend()
save_figure(fig, args.out / "gradient_through_time.png")

# %% [markdown]
# ## 3. A character-level language model
#
# The text: CPython's own `help()` pages (`pydoc_data.topics`), about 460,000
# characters of English prose and Python code, shipped with every CPython, so
# nothing is downloaded. The first 90% trains, the last 10% validates.
#
# The model reads one character at a time (one-hot vectors) and predicts the
# next one: an `nn.LSTM` with 128 units and a `Linear` layer to scores over the
# distinct characters of the text (103 in Python 3.11), trained with
# cross-entropy. The text is cut into 32 parallel streams; each training step
# takes the next 64 characters of every stream
# (truncated backpropagation through time). The state is carried from one chunk
# to the next, so the model sees an unbroken text, but `detach_state` cuts the
# graph at the chunk boundary, so backward never runs further back than 64
# steps. Gradients are clipped to norm 1 (Pascanu et al. 2013). In the
# library: `text_corpus`, `CharVocab`, `batchify` and `bptt_batches` are in
# `minidl/data/sequences.py`; `detach_state` is in `minidl/nn/rnn.py`.

# %%
text = text_corpus("pydoc_topics")
vocab = CharVocab(text)
ids = vocab.encode(text)
split = int(0.9 * len(ids))
train_streams, val_streams = batchify(ids[:split], 32), batchify(ids[split:], 32)
one_hot = np.eye(len(vocab), dtype=np.float32)
frequencies = np.bincount(ids[:split], minlength=len(vocab)) / split
unigram_bits = float(-(frequencies[frequencies > 0] * np.log2(frequencies[frequencies > 0])).sum())
print(f"{len(text):,} characters, {vocab}; train streams {train_streams.shape}; "
      f"character frequencies alone: {unigram_bits:.2f} bits per character")
print(repr(text[1000:1200]))


class CharLSTM(nn.Module):
    """ids [B, T] -> logits [B, T, V] over the next character, and the new state.

    ``kind`` "LSTM" or "GRU"; extra keyword arguments go to the recurrent module.
    """

    def __init__(self, vocab_size: int, hidden: int, kind: str = "LSTM", **options):
        super().__init__()
        self.lstm = getattr(nn, kind)(vocab_size, hidden, batch_first=True, **options)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, ids, state=None):
        outputs, state = self.lstm(Tensor(one_hot[ids]), state)
        return self.head(outputs), state


def bits_per_character(model, streams, seq_len=64, max_chunks=None):
    """Mean cross-entropy in bits of the next character, reading the streams in order."""
    total, count, state = 0.0, 0, None
    with minidl.no_grad():
        for k, (x, y) in enumerate(bptt_batches(streams, seq_len)):
            if max_chunks is not None and k >= max_chunks:
                break
            logits, state = model(x, state)
            loss = F.cross_entropy(logits.reshape(-1, len(vocab)), Tensor(y.reshape(-1)))
            total += loss.item() * y.size
            count += y.size
    return total / count / np.log(2)


def train_language_model(model, steps=2000 if not args.quick else 10, chunk=64):
    """Truncated BPTT over the training streams, ``chunk`` characters per step; returns bits."""
    optimizer = Adam(model.parameters(), lr=0.005)
    scheduler = CosineAnnealingLR(optimizer, T_max=steps)
    curve, step, state = [], 0, None
    while step < steps:
        for x, y in bptt_batches(train_streams, chunk):
            optimizer.zero_grad()
            logits, state = model(x, state)
            loss = F.cross_entropy(logits.reshape(-1, len(vocab)), Tensor(y.reshape(-1)))
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            state = nn.detach_state(state)  # truncated BPTT: keep the values, cut the graph
            curve.append(loss.item() / np.log(2))
            step += 1
            if step % 250 == 0:
                print(f"step {step}: training {np.mean(curve[-250:]):.3f} bits/char, "
                      f"{step * 32 * chunk:,} characters seen")
            if step == steps:
                break
        state = None  # a new pass over the text starts from a fresh state
    return curve


language_model = CharLSTM(len(vocab), 128 if not args.quick else 32)
with Timer() as timer:
    lm_curve = train_language_model(language_model)
validation_bits = bits_per_character(language_model, val_streams,
                                     max_chunks=None if not args.quick else 2)
print(f"language model: validation {validation_bits:.3f} bits per character "
      f"(character frequencies alone: {unigram_bits:.2f}), trained in {timer.seconds:.0f} s")

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(lm_curve, lw=0.6, label="training chunk")
ax.axhline(unigram_bits, color="gray", ls=":", label="character frequencies")
ax.axhline(validation_bits, color="C1", ls="--", label="validation, end of training")
ax.set(xlabel="step", ylabel="bits per character", title="character-level LSTM")
ax.legend()
save_figure(fig, args.out / "char_lm.png")

# %% [markdown]
# Sampling: feed a prompt, then repeatedly draw the next character from
# softmax(logits / temperature) and feed it back. Temperature below 1 sharpens
# the distribution (safer, more repetitive text), above 1 flattens it (more
# varied, more misspelled). Two numbers per temperature measure it: the share
# of the sampled words that occur somewhere in the training text (spelling),
# and the share of distinct words among them (variety). One sample of 300
# characters holds only about 50 words, too few to tell 0.2 from 0.5 reliably,
# so each number is the mean over five samples (different draws); the first
# sample is printed.

# %%
def sample(model, prompt: str, length: int, temperature: float, seed: int) -> str:
    draw = np.random.default_rng(seed)
    with minidl.no_grad():
        logits, state = model(vocab.encode(prompt)[None])
        chars = []
        for _ in range(length):
            z = logits.data[0, -1] / temperature
            p = np.exp(z - z.max())
            next_id = draw.choice(len(vocab), p=p / p.sum())
            chars.append(vocab.chars[next_id])
            logits, state = model(np.array([[next_id]]), state)
    return prompt + "".join(chars)


known_words = set(text[:int(0.9 * len(text))].split())
SAMPLES = 5 if not args.quick else 1
samples, spelled, distinct = {}, {}, {}
for temperature in (0.2, 0.5, 1.0, 1.5):
    texts = [sample(language_model, "The ", 300 if not args.quick else 20, temperature,
                    seed=args.seed + k) for k in range(SAMPLES)]
    words = [t.split() for t in texts]
    spelled[temperature] = float(np.mean([np.mean([w in known_words for w in ws])
                                          for ws in words]))
    distinct[temperature] = float(np.mean([len(set(ws)) / len(ws) for ws in words]))
    samples[temperature] = texts[0]
    print(f"--- temperature {temperature}: {spelled[temperature]:.0%} of the words occur in the "
          f"training text, {distinct[temperature]:.0%} distinct (means of {SAMPLES} samples; "
          f"the first) ---\n{samples[temperature]}\n")

lesson_timer.__exit__()
print(f"whole lesson: {lesson_timer.seconds:.0f} s")
if not args.quick:
    for kind in ("LSTM", "GRU"):
        assert results[kind, 50] <= ADDING_BASELINE_MSE / 10, (kind, results[kind, 50])
    assert results["RNN", 50] > ADDING_BASELINE_MSE / 10, results["RNN", 50]
    # The gated cells' gradient reaches the first step; the basic RNN's fades.
    assert reach["RNN"] < reach["LSTM"] / 100 and reach["RNN"] < reach["GRU"] / 100, reach
    assert validation_bits < 2.3, validation_bits
    temperatures = sorted(spelled)  # hotter: fewer real words, more variety
    assert all(spelled[lo] > spelled[hi] and distinct[lo] < distinct[hi]
               for lo, hi in zip(temperatures, temperatures[1:])), (spelled, distinct)

# %% [markdown]
# ## Exercises
#
# Each exercise ends with a check: run it after your change, and it prints
# whether your number lies where a correct solution's does (seed 0, full run).
#
# 1. **Longer sequences, and the forget-gate bias.** Train the LSTM and the
#    GRU on the adding problem at T = 100 (`model, mse, curve =
#    train_adding("LSTM", 100, 2000)`) and compare the steps each needs
#    (`steps_to_threshold(curve)`). Then start the LSTM's forget gate open: set
#    its forget-gate biases to 1 (`model.rnn.bias_ih_l0.data[32:64] = 1` right
#    after building the model in `train_adding`, Jozefowicz et al. 2015). Does
#    it need fewer steps?
#    Check: `check_range("LSTM, T = 100: test MSE", mse, 0.001, 0.0034)` (it
#    reaches the threshold, 1/300, within 2,000 steps).
# 2. **The copy task.** Swap the adding problem for `minidl.data.copy_task`
#    (read 10 symbols, wait 10 steps, write them back; a label at every step;
#    the memoryless cross-entropy is `copy_task_baseline` in
#    `minidl/data/sequences.py`). Use one-hot inputs of the 10 tokens, 32
#    units, a `Linear` head on every step's output, Adam (lr 0.01), gradient
#    clipping at 1 and 2,000 batches `copy_task(64, 10, seed=step)`, and
#    measure the accuracy on the 10 recalled symbols of `copy_task(500, 10,
#    seed=999)`, each cell after `minidl.manual_seed(0)`. Which of the three
#    cells gets beyond chance (1/8) in 2,000 batches, and what would you change?
#    Check: `check_range("GRU, copy task: accuracy on the recalled symbols", acc, 0.25, 0.5)`
#    (a solution measured 0.13 for the RNN, 0.18 for the LSTM, 0.36 for the GRU).
# 3. **Shorter chunks.** Train the language model with chunks of 16 characters
#    instead of 64 (`train_language_model(model, chunk=16)`, same number of
#    steps, so a quarter of the characters). What happens to the validation
#    bits per character, and to the structure of the samples (matching quotes
#    and brackets)?
#    Check (after `minidl.manual_seed(0)`): `check_range("chunks of 16: validation
#    bits per character", bits_per_character(model, val_streams), 1.95, 2.35)`.
# 4. **Other language models.** Replace the LSTM by a GRU
#    (`CharLSTM(len(vocab), 128, "GRU")`) or by two LSTM layers with dropout
#    (`CharLSTM(len(vocab), 128, num_layers=2, dropout=0.2)`); compare bits per
#    character and time.
#    Check (after `minidl.manual_seed(0)`): `check_range("GRU: validation bits per
#    character", bits_per_character(model, val_streams), 1.7, 2.1)`.
# 5. **Why detach?** Without `detach_state`, the second chunk's backward would
#    run through the first chunk's graph, which the first backward already
#    freed. Remove it, train for two steps and read the error message.
#    Check: the error is a `RuntimeError` whose message says the graph was freed
#    (`check_range("RuntimeError raised", raised, 1, 1)`).
