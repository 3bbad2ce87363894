"""The Hungarian solver against brute force over every matching, and SciPy's documented rules."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minidl import Tensor
from minidl.vision.assignment import assignment_steps, linear_sum_assignment


def brute_force_minimum(cost):
    """The least total cost over every one-to-one matching of min(n, m) pairs."""
    n, m = cost.shape
    if n > m:
        return brute_force_minimum(cost.T)
    best = np.inf
    for cols in itertools.permutations(range(m), n):   # each row gets its own column
        best = min(best, sum(cost[r, c] for r, c in enumerate(cols)))
    return best


def assert_valid_matching(cost, rows, cols):
    n, m = cost.shape
    assert rows.dtype.kind == "i" and cols.dtype.kind == "i"
    assert len(rows) == len(cols) == min(n, m)
    assert np.all(np.diff(rows) > 0), "row_ind is sorted and has no repeats"
    assert len(set(cols.tolist())) == len(cols), "no column is used twice"
    assert rows.min(initial=0) >= 0 and (rows < n).all() and (cols < m).all()


def test_scipy_documentation_example():
    cost = np.array([[4, 1, 3], [2, 0, 5], [3, 2, 2]])
    rows, cols = linear_sum_assignment(cost)
    assert rows.tolist() == [0, 1, 2] and cols.tolist() == [1, 0, 2]
    assert cost[rows, cols].sum() == 5


def test_a_row_moves_to_free_a_column():
    # Row 0 alone would take column 0 (cost 1); row 1 needs column 0 far more (1 vs 100),
    # so the augmenting path moves row 0 to column 1: total 2 + 1 = 3, not 1 + 100.
    cost = np.array([[1.0, 2.0], [1.0, 100.0]])
    rows, cols = linear_sum_assignment(cost)
    assert cols.tolist() == [1, 0]


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (2, 5),
                                   (5, 2), (3, 6), (6, 3), (1, 4), (4, 1)])
def test_equals_brute_force_on_small_matrices(shape):
    rng = np.random.default_rng(sum(shape))
    for trial in range(20):
        if trial % 2:
            cost = rng.normal(size=shape)
        else:  # small integers: many ties and many optimal matchings
            cost = rng.integers(-3, 4, shape).astype(np.float64)
        rows, cols = linear_sum_assignment(cost)
        assert_valid_matching(cost, rows, cols)
        assert np.isclose(cost[rows, cols].sum(), brute_force_minimum(cost))


@settings(max_examples=150, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 5)),
              elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)))
def test_property_optimal_on_any_finite_matrix(cost):
    rows, cols = linear_sum_assignment(cost)
    assert_valid_matching(cost, rows, cols)
    best = brute_force_minimum(cost)
    assert cost[rows, cols].sum() == pytest.approx(best, rel=1e-9, abs=1e-6)


@settings(max_examples=80, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 4)),
              elements=st.sampled_from([0.0, 1.0, 2.0, 5.0, np.inf])))
def test_property_infinite_entries_forbid_pairs(cost):
    best = brute_force_minimum(cost)
    if best == np.inf:
        with pytest.raises(ValueError, match="infeasible"):
            linear_sum_assignment(cost)
        return
    rows, cols = linear_sum_assignment(cost)
    assert_valid_matching(cost, rows, cols)
    assert np.isfinite(cost[rows, cols]).all() and cost[rows, cols].sum() == best


def test_maximize_is_the_minimum_of_the_negated_matrix():
    rng = np.random.default_rng(3)
    for shape in [(4, 4), (3, 5), (5, 3)]:
        cost = rng.normal(size=shape)
        rows, cols = linear_sum_assignment(cost, maximize=True)
        assert_valid_matching(cost, rows, cols)
        assert np.isclose(cost[rows, cols].sum(), -brute_force_minimum(-cost))


def test_tall_matrix_is_solved_on_its_columns_and_rows_come_back_sorted():
    cost = np.array([[9.0, 9.0], [1.0, 9.0], [9.0, 9.0], [9.0, 2.0]])
    rows, cols = linear_sum_assignment(cost)
    assert rows.tolist() == [1, 3] and cols.tolist() == [0, 1]


def test_int_bool_and_tensor_inputs():
    rows, cols = linear_sum_assignment(np.array([[True, False], [False, True]]))
    assert cols.tolist() == [1, 0]
    rows, cols = linear_sum_assignment(Tensor(np.array([[2.0, 1.0], [1.0, 2.0]])))
    assert cols.tolist() == [1, 0]


@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (3, 0)])
def test_empty_matrix_gives_empty_matchings(shape):
    rows, cols = linear_sum_assignment(np.zeros(shape))
    assert rows.shape == cols.shape == (0,)
    assert rows.dtype.kind == cols.dtype.kind == "i"


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((2, 2, 2)), np.float64(1.0)])
def test_not_a_matrix(bad):
    with pytest.raises(ValueError, match=r"linear_sum_assignment: expected a matrix \(2-D"):
        linear_sum_assignment(bad)


def test_not_numbers():
    with pytest.raises(ValueError, match="real numbers, got dtype <U1"):
        linear_sum_assignment(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="real numbers, got dtype complex128"):
        linear_sum_assignment(np.ones((2, 2), dtype=complex))


@pytest.mark.parametrize("value, maximize, named", [(np.nan, False, "-inf"),
                                                    (-np.inf, False, "-inf"),
                                                    (np.nan, True, "[+]inf"),
                                                    (np.inf, True, "[+]inf")])
def test_nan_and_wrong_infinity_are_invalid(value, maximize, named):
    cost = np.ones((3, 3))
    cost[1, 2] = value
    with pytest.raises(ValueError, match=rf"invalid numeric entries \(NaN or {named}\), "
                                         r"e.g. at \[1, 2\]"):
        linear_sum_assignment(cost, maximize=maximize)


def test_infeasible_and_forbidden_pairs():
    inf = np.inf
    rows, cols = linear_sum_assignment(np.array([[inf, 1.0], [2.0, inf]]))
    assert cols.tolist() == [1, 0]
    rows, cols = linear_sum_assignment(np.array([[-inf, 1.0], [2.0, -inf]]), maximize=True)
    assert cols.tolist() == [1, 0]
    with pytest.raises(ValueError, match="cost matrix is infeasible"):
        linear_sum_assignment(np.array([[inf, 1.0], [inf, 2.0]]))   # both need column 1
    with pytest.raises(ValueError, match="cost matrix is infeasible"):
        linear_sum_assignment(np.full((2, 3), inf))


def test_input_is_not_modified():
    cost = np.array([[3.0, 1.0], [1.0, 3.0]])
    before = cost.copy()
    linear_sum_assignment(cost, maximize=True)
    np.testing.assert_array_equal(cost, before)


def test_steps_are_at_most_n_per_row():
    rng = np.random.default_rng(0)
    for n in (5, 20, 40):
        steps = assignment_steps(rng.random((n, n)))
        assert n <= steps <= n * n    # each row scans at least its own column, at most all
    # On C[i, j] = i j (rows 1..n) every new row displaces all earlier ones: row k (0-based)
    # scans k + 1 columns, n (n + 1) / 2 in all -- the quadratic number of steps (cubic work).
    for n in (5, 20, 40):
        hard = np.outer(np.arange(1, n + 1), np.arange(1, n + 1)).astype(float)
        assert assignment_steps(hard) == n * (n + 1) // 2
