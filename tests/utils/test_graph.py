"""draw_graph: the layout has the expected nodes and edges, arrows point forward, big graphs are
summarized, and the figure draws one box per node and one arrow per edge."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import minidl  # noqa: E402
from minidl import Tensor  # noqa: E402
from minidl.utils.graph import draw_graph, graph_layout  # noqa: E402


def small_graph():
    """y = tanh(x * w + 1): leaves x, w; ops Mul, Add, Tanh; the constant 1."""
    x = Tensor([1.0, -2.0], requires_grad=True)
    w = Tensor([0.5, 0.25], requires_grad=True)
    product = x * w
    total = product + 1.0
    y = total.tanh()
    return x, w, product, total, y


def test_layout_nodes_and_edges_of_a_small_graph():
    x, w, product, total, y = small_graph()
    graph = graph_layout(y, names={"x": x, "w": w})
    mul, add, tanh = product.grad_fn, total.grad_fn, y.grad_fn
    ops = {key: node.label for key, node in graph.nodes.items() if node.kind == "op"}
    assert ops == {id(mul): "Mul", id(add): "Add", id(tanh): "Tanh"}
    constants = [key for key, node in graph.nodes.items() if node.kind == "constant"]
    assert len(constants) == 1 and graph.nodes[constants[0]].label == "1"
    assert graph.nodes[id(x)].kind == "leaf" and graph.nodes[id(x)].label.startswith("x\n")
    assert graph.nodes[id(product)].kind == "tensor"
    expected = {(id(x), id(mul)), (id(w), id(mul)), (id(mul), id(product)),
                (id(product), id(add)), (constants[0], id(add)), (id(add), id(total)),
                (id(total), id(tanh)), (id(tanh), id(y))}
    assert set(graph.edges) == expected and len(graph.edges) == len(expected)
    assert graph.op_counts == {"Mul": 1, "Add": 1, "Tanh": 1} and not graph.summarized


def test_every_arrow_points_to_a_later_column_and_rows_do_not_collide():
    x, w, product, total, y = small_graph()
    graph = graph_layout((y * y.exp()).sum())
    for src, dst in graph.edges:
        assert graph.nodes[src].column < graph.nodes[dst].column
    places = [(n.column, n.row) for n in graph.nodes.values()]
    assert len(places) == len(set(places))
    # x, w: column 0; Mul: 1; its output: 2; the output tensor of the whole graph: last.
    assert graph.nodes[id(x)].column == graph.nodes[id(w)].column == 0
    assert graph.nodes[id(product.grad_fn)].column == 1


def test_small_tensors_show_values_and_gradients():
    x, w, product, total, y = small_graph()
    loss = y.sum()
    loss.backward(retain_graph=True)
    label = graph_layout(loss).nodes[id(x)].label
    assert "data [1, -2]" in label
    assert f"grad [{x.grad[0]:.3g}, {x.grad[1]:.3g}]" in label
    big = graph_layout(loss, small=1).nodes[id(x)].label
    assert "data" not in big and "shape [2]" in big


def test_a_freed_graph_gives_a_clear_error():
    *_, y = small_graph()
    loss = y.sum()
    loss.backward()
    with pytest.raises(ValueError, match="freed by backward"):
        graph_layout(loss)


def test_big_graphs_are_summarized_by_op_counts():
    a = Tensor([1.0], requires_grad=True)
    c = a
    for _ in range(30):
        c = c * 2.0 + a
    graph = graph_layout(c, max_nodes=40)
    assert graph.summarized and graph.nodes == {} and graph.edges == []
    assert graph.op_counts == {"Mul": 30, "Add": 30}
    fig = draw_graph(c, max_nodes=40)
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "60 ops" in text and "Mul" in text and "x 30" in text
    plt.close(fig)


def test_a_leaf_alone_is_one_node():
    x = Tensor([1.0], requires_grad=True)
    graph = graph_layout(x)
    assert list(graph.nodes) == [id(x)] and graph.edges == []


def test_figure_has_one_box_per_node_and_one_arrow_per_edge(tmp_path):
    *_, y = small_graph()
    graph = graph_layout(y)
    fig = draw_graph(y)
    ax = fig.axes[0]
    arrows = [t for t in ax.texts if t.get_text() == ""]
    boxes = [t for t in ax.texts if t.get_text() != ""]
    assert len(arrows) == len(graph.edges) and len(boxes) == len(graph.nodes)
    assert sorted(b.get_text() for b in boxes) == sorted(n.label for n in graph.nodes.values())
    fig.savefig(tmp_path / "graph.png")
    assert (tmp_path / "graph.png").stat().st_size > 1000
    plt.close(fig)


def test_reachable_as_minidl_utils_draw_graph():
    assert minidl.utils.draw_graph is draw_graph
