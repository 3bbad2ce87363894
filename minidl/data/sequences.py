"""Sequence data that needs no download: synthetic tasks drawn from a seed, and a text corpus.

Synthetic tasks (each returns NumPy arrays; same ``seed`` -> same data):

* ``adding_problem``: sum the two marked numbers of a long sequence
  (Hochreiter & Schmidhuber 1997, experiment 4; Le, Jaitly & Hinton 2015).
* ``copy_task``: remember a few symbols, wait, write them back (Hochreiter &
  Schmidhuber 1997; the form of Arjovsky, Shah & Bengio 2016).
* ``parity``: running XOR of a bit stream, a label for every position.
* ``sine_waves``: sines (or sums of sines) with random frequencies, for next-value prediction.

Text for character-level language models, from files every CPython ships
(no network): ``text_corpus("pydoc_topics")`` is the text of Python's own
``help()`` topics (module ``pydoc_data.topics``, about 460,000 characters; it
differs a little between Python versions), ``text_corpus("zen")`` the Zen of
Python (module ``this``, 850 characters). ``CharVocab`` maps characters to ids;
``batchify`` and ``bptt_batches`` cut one long id stream into the chunks that
truncated backpropagation through time trains on.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator

import numpy as np


def _rng(seed) -> np.random.Generator:
    """A generator from ``seed`` (an int, None for the global minidl stream, or a Generator)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        from minidl import random

        return random.generator()
    return np.random.default_rng(seed)


def _check_positive(op: str, **values) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{op}: {name} must be a positive int, got {value!r}")


# ---- synthetic tasks ----------------------------------------------------------------
def adding_problem(n: int, length: int, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem: x_t = (value_t, marker_t); y = the sum of the two marked values.

        value_t ~ U(0, 1);  marker_t = 1 at one random step in the first half and one in
        the second half, 0 elsewhere;  y = sum_t value_t * marker_t.

    The first marker can be up to ``length`` - 1 steps before the end, so the
    network must carry a number across that many steps. Predicting the mean,
    y = 1, gives the trivial mean squared error Var(U1 + U2) = 2/12 = 1/6.

    Returns:
        x: [n, length, 2] float32,  y: [n] float32.
    """
    _check_positive("adding_problem", n=n, length=length)
    if length < 2:
        raise ValueError(f"adding_problem: length must be at least 2, got {length}")
    rng = _rng(seed)
    values = rng.random((n, length)).astype(np.float32)
    half = length // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, length, n)
    markers = np.zeros((n, length), dtype=np.float32)
    rows = np.arange(n)
    markers[rows, first] = 1
    markers[rows, second] = 1
    y = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=2), y.astype(np.float32)


ADDING_BASELINE_MSE = 1.0 / 6.0
"""Mean squared error of always answering 1 on the adding problem."""


def copy_task(n: int, delay: int, n_symbols: int = 8, copy_length: int = 10,
              seed=None) -> tuple[np.ndarray, np.ndarray]:
    """The copy task: read ``copy_length`` symbols, wait ``delay`` steps, then write them back.

    Tokens: 0 = blank, 1..n_symbols = symbols, n_symbols + 1 = "go" marker.

        x = s_1 .. s_K | 0 * (delay - 1) | go | 0 * K
        y = 0 * (K + delay)               | s_1 .. s_K

    (length K + delay + K with K = copy_length). The trivial answer (blanks,
    then each symbol with probability 1 / n_symbols) has cross-entropy
    ``copy_task_baseline(delay, n_symbols, copy_length)`` per step.

    Returns:
        x: [n, 2K + delay] int64,  y: [n, 2K + delay] int64.
    """
    _check_positive("copy_task", n=n, delay=delay, n_symbols=n_symbols, copy_length=copy_length)
    rng = _rng(seed)
    k = copy_length
    total = 2 * k + delay
    symbols = rng.integers(1, n_symbols + 1, (n, k))
    x = np.zeros((n, total), dtype=np.int64)
    y = np.zeros((n, total), dtype=np.int64)
    x[:, :k] = symbols
    x[:, k + delay - 1] = n_symbols + 1
    y[:, k + delay:] = symbols
    return x, y


def copy_task_baseline(delay: int, n_symbols: int = 8, copy_length: int = 10) -> float:
    """Cross-entropy per step of the memoryless answer: K log(n_symbols) / (2K + delay)."""
    return copy_length * np.log(n_symbols) / (2 * copy_length + delay)


def parity(n: int, length: int, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Running parity: bits b_t ~ Bernoulli(1/2), label y_t = b_1 XOR ... XOR b_t.

    A sequence element classification task: one label for every position, which
    depends on everything seen so far (one bit of state, flipped by every 1).

    Returns:
        x: [n, length, 1] float32 bits,  y: [n, length] int64 in {0, 1}.
    """
    _check_positive("parity", n=n, length=length)
    bits = _rng(seed).integers(0, 2, (n, length))
    y = np.cumsum(bits, axis=1) % 2
    return bits[..., None].astype(np.float32), y.astype(np.int64)


def sine_waves(n: int, length: int, components: int = 1, seed=None) -> np.ndarray:
    """Sums of sines, x_t = sum_k a_k sin(w_k t + p_k), t = 0..length-1, for next-value prediction.

    w ~ U(0.1, 0.4) (periods of about 15 to 60 steps), p ~ U(0, 2 pi),
    a ~ U(0.5, 1) / components: a family a network can continue once it has seen
    a period or two (more ``components`` make it harder).

    Returns:
        [n, length] float32.
    """
    _check_positive("sine_waves", n=n, length=length, components=components)
    rng = _rng(seed)
    t = np.arange(length)
    waves = np.zeros((n, length))
    for _ in range(components):
        w = rng.uniform(0.1, 0.4, (n, 1))
        p = rng.uniform(0, 2 * np.pi, (n, 1))
        a = rng.uniform(0.5, 1.0, (n, 1)) / components
        waves += a * np.sin(w * t + p)
    return waves.astype(np.float32)


# ---- text ----------------------------------------------------------------------------
TEXT_CORPORA = ("pydoc_topics", "zen")


def text_corpus(name: str = "pydoc_topics") -> str:
    """A text that ships with CPython, so it is there without a network.

    ``"pydoc_topics"``: the documentation pages behind ``help("if")`` and friends,
    joined in sorted key order (``pydoc_data.topics.topics``; ~460k characters).
    ``"zen"``: the Zen of Python (``import this`` stores it ROT13-encoded in ``this.s``).
    """
    if name == "pydoc_topics":
        try:
            from pydoc_data.topics import topics
        except ImportError:  # some slimmed-down Python builds drop it
            raise ImportError("text_corpus: this Python has no pydoc_data module; "
                              "use text_corpus('zen') instead") from None

        return "\n".join(topics[key] for key in sorted(topics))
    if name == "zen":
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # importing `this` prints the poem
            import this
        return codecs.decode(this.s, "rot13")
    raise ValueError(f"text_corpus: unknown corpus {name!r}; choose from {TEXT_CORPORA}")


class CharVocab:
    """Characters <-> integer ids, for a character-level language model.

        vocab = CharVocab(text);  ids = vocab.encode("def");  vocab.decode(ids) == "def"

    ``chars`` is the sorted list of distinct characters of ``text``; id i is chars[i].
    """

    def __init__(self, text: str):
        if not text:
            raise ValueError("CharVocab: text is empty")
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """[len(text)] int64 ids."""
        unknown = sorted(set(text) - self.index.keys())
        if unknown:
            raise ValueError(f"CharVocab.encode: characters {unknown[:10]!r} are not in the "
                             f"vocabulary of {len(self)} characters")
        return np.array([self.index[c] for c in text], dtype=np.int64)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} characters)"


def batchify(ids: np.ndarray, batch_size: int) -> np.ndarray:
    """Cut one stream of ids into ``batch_size`` parallel streams: [batch_size, len // batch_size].

    Row b is the b-th contiguous piece of the text, so consecutive chunks of a row
    continue each other and the state can be carried from one chunk to the next
    (truncated backpropagation through time). The tail that does not fill a row is dropped.
    """
    _check_positive("batchify", batch_size=batch_size)
    ids = np.asarray(ids)
    per_row = len(ids) // batch_size
    if per_row < 2:
        raise ValueError(f"batchify: {len(ids)} ids are too few for {batch_size} streams")
    return ids[: per_row * batch_size].reshape(batch_size, per_row)


def bptt_batches(streams: np.ndarray, seq_len: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Consecutive chunks of the streams: (x [B, L], y [B, L]) with y the next character of x.

    Chunk k covers columns k L .. (k + 1) L - 1; the last chunk may be shorter.
    """
    _check_positive("bptt_batches", seq_len=seq_len)
    total = streams.shape[1] - 1  # the last column only serves as a target
    for start in range(0, total, seq_len):
        stop = min(start + seq_len, total)
        yield streams[:, start:stop], streams[:, start + 1:stop + 1]
