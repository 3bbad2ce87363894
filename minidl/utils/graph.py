"""draw_graph: see the computation graph behind a tensor (after micrograd's ``draw_dot``).

    x = minidl.tensor([1.0, -2.0], requires_grad=True)
    w = minidl.tensor([0.5, 0.5], requires_grad=True)
    loss = (x * w).tanh().sum()
    loss.backward(retain_graph=True)        # keep the graph, so it can be drawn with .grad
    minidl.utils.draw_graph(loss, names={"x": x, "w": w})

Boxes are tensors (shape; values and gradient when they are small), rounded
boxes are the ops (Functions) that made them, grey boxes are constants. Arrows
follow the forward pass: the leaves stand on the left, the output on the right.
A graph with more than ``max_nodes`` ops is summarized instead: how many of each
op it holds.

``graph_layout`` does the work without drawing (so it is testable): it walks the
graph from the output through each node's ``parents`` and ``parent_fns`` and puts
every node in the column after the last of its inputs. matplotlib is imported
only when drawing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from minidl.autograd.tensor import Tensor

COLORS = {"leaf": "#c8e6c9", "tensor": "#e3f2fd", "op": "#ffe0b2", "constant": "#eeeeee"}


@dataclass
class Node:
    """One box: ``kind`` is "leaf" (requires grad), "tensor", "op" or "constant"."""

    kind: str
    label: str
    column: int = 0
    row: float = 0.0


@dataclass
class Graph:
    """What ``draw_graph`` draws: nodes by key, edges (from key, to key) in forward direction,
    and the count of each op. ``summarized`` is True when the graph was too big to draw."""

    nodes: dict = field(default_factory=dict)
    edges: list = field(default_factory=list)
    op_counts: Counter = field(default_factory=Counter)
    summarized: bool = False


def graph_layout(root: Tensor, names=None, max_nodes: int = 40, small: int = 4) -> Graph:
    """The nodes and edges of ``root``'s graph, each node placed in a column and a row.

    Args:
        root: the tensor whose graph to show (usually a loss).
        names: optional {name: tensor} (e.g. ``dict(model.named_parameters())``) for labels.
        max_nodes: above this many ops, only ``op_counts`` is filled (``summarized``).
        small: tensors with at most this many elements show their values and gradient.
    """
    labels = {id(t): name for name, t in (names or {}).items()}
    graph = Graph()
    _add_tensor(graph, root, labels, small)
    stack = []
    if root.grad_fn is not None:
        stack.append(root.grad_fn)
        graph.edges.append((id(root.grad_fn), id(root)))
    seen = set()
    while stack:  # a plain stack, no recursion: graphs can be thousands of nodes deep
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        graph.op_counts[fn.name] += 1
        graph.nodes[id(fn)] = Node("op", fn.name)
        if fn.parents is None:
            raise ValueError("draw_graph: this graph was freed by backward(); draw it before "
                             "backward, or call backward(retain_graph=True)")
        for k, (parent, parent_fn) in enumerate(zip(fn.parents, fn.parent_fns)):
            key = _add_input(graph, parent, (id(fn), k), labels, small)
            graph.edges.append((key, id(fn)))
            if parent_fn is not None:
                graph.edges.append((id(parent_fn), key))
                stack.append(parent_fn)
    if len(graph.op_counts) and sum(graph.op_counts.values()) > max_nodes:
        graph.summarized = True
        graph.nodes, graph.edges = {}, []
        return graph
    graph.edges = list(dict.fromkeys(graph.edges))  # a tensor used twice by one op: one arrow
    _place(graph)
    return graph


def _add_tensor(graph: Graph, t: Tensor, labels: dict, small: int) -> int:
    key = id(t)
    if key not in graph.nodes:
        kind = "leaf" if t.grad_fn is None and t.requires_grad else "tensor"
        lines = [labels[key]] if key in labels else []
        lines.append(f"shape {list(t.shape)}" + ("" if t.dtype == np.float32 else f" {t.dtype}"))
        if t.data.size <= small:
            lines.append("data " + _numbers(t.data))
            if t.grad is not None:
                lines.append("grad " + _numbers(t.grad))
        graph.nodes[key] = Node(kind, "\n".join(lines))
    return key


def _add_input(graph: Graph, value, slot: tuple, labels: dict, small: int):
    """A tensor input gets its own node; a constant gets one per use (``slot``)."""
    if isinstance(value, Tensor):
        return _add_tensor(graph, value, labels, small)
    array = np.asarray(value)
    label = _numbers(array) if array.size <= small else f"array {list(array.shape)}"
    graph.nodes[slot] = Node("constant", label)
    return slot


def _numbers(array) -> str:
    values = np.asarray(array).ravel()
    text = ", ".join(f"{v:.3g}" for v in values.tolist())
    return text if values.size == 1 and np.ndim(array) == 0 else f"[{text}]"


def _place(graph: Graph) -> None:
    """Column: one after the last column among a node's inputs (longest path from a source,
    so every arrow points right); then, from the output back, each node moves up to just
    before its first user, so that a side branch (a weight, a constant) stands beside the
    op that reads it. Row: nodes of a column ordered by
    the mean row of their inputs, which keeps arrows from crossing in simple graphs."""
    inputs = {key: [] for key in graph.nodes}
    outputs = {key: [] for key in graph.nodes}
    for src, dst in graph.edges:
        inputs[dst].append(src)
        outputs[src].append(dst)
    waiting = {key: len(inputs[key]) for key in graph.nodes}
    ready = [key for key, n in waiting.items() if n == 0]
    order = []
    while ready:  # Kahn's topological sort
        key = ready.pop()
        order.append(key)
        for dst in outputs[key]:
            waiting[dst] -= 1
            if waiting[dst] == 0:
                ready.append(dst)
    for key in order:
        graph.nodes[key].column = max((graph.nodes[s].column + 1 for s in inputs[key]), default=0)
    for key in reversed(order):
        if outputs[key]:
            graph.nodes[key].column = min(graph.nodes[d].column for d in outputs[key]) - 1
    columns = {}
    for key in order:
        columns.setdefault(graph.nodes[key].column, []).append(key)
    for column in sorted(columns):
        keys = columns[column]
        keys.sort(key=lambda k: np.mean([graph.nodes[s].row for s in inputs[k]] or [0.0]))
        for i, key in enumerate(keys):
            graph.nodes[key].row = i - (len(keys) - 1) / 2


def draw_graph(root: Tensor, names=None, max_nodes: int = 40, small: int = 4, ax=None):
    """Draw ``root``'s computation graph with matplotlib and return the figure.

    See ``graph_layout`` for the arguments; ``ax`` draws into existing axes.
    """
    import matplotlib.pyplot as plt

    graph = graph_layout(root, names, max_nodes, small)
    if graph.summarized:
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        ax.axis("off")
        ax.text(0.02, 0.98, _summary(graph), va="top", ha="left", family="monospace",
                transform=ax.transAxes)
        return ax.figure
    x, width = _column_centres(graph)
    rows = max(Counter(n.column for n in graph.nodes.values()).values())
    lines = max(n.label.count("\n") + 1 for n in graph.nodes.values())
    if ax is None:  # about 0.07 inch per character and 0.15 per line of 8-point text
        _, ax = plt.subplots(figsize=(min(0.07 * width + 0.5, 40),
                                      min(rows * (0.15 * lines + 0.4) + 0.5, 25)))
    ax.axis("off")
    ax.set_xlim(0, width)
    ax.set_ylim(-rows / 2, rows / 2)
    boxes = {}
    for key, node in graph.nodes.items():
        style = "round,pad=0.4" if node.kind == "op" else "square,pad=0.4"
        boxes[key] = ax.text(x[node.column], -node.row, node.label, ha="center", va="center",
                             fontsize=8, zorder=2, bbox=dict(boxstyle=style,
                                                            fc=COLORS[node.kind], ec="0.4"))
    for src, dst in graph.edges:
        ax.annotate("", xy=(0, 0.5), xycoords=boxes[dst], xytext=(1, 0.5),
                    textcoords=boxes[src], zorder=1,
                    arrowprops=dict(arrowstyle="->", color="0.3", shrinkA=5, shrinkB=5))
    return ax.figure


def _column_centres(graph: Graph) -> tuple:
    """x of each column's centre, in characters: each column as wide as its widest label,
    plus a gap of 6 characters for the arrows. Returns (centres, total width)."""
    widths = Counter()
    for node in graph.nodes.values():
        widest = max(len(line) for line in node.label.split("\n"))
        widths[node.column] = max(widths[node.column], widest + 6)
    centres, left = {}, 0
    for column in sorted(widths):
        centres[column] = left + widths[column] / 2
        left += widths[column]
    return centres, left


def _summary(graph: Graph) -> str:
    total = sum(graph.op_counts.values())
    lines = [f"{total:,} ops (too many to draw; max_nodes sets the limit):"]
    lines += [f"  {name:<16} x {n:,}" for name, n in graph.op_counts.most_common()]
    return "\n".join(lines)
