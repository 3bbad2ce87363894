"""The linear assignment problem, solved from scratch: the Hungarian algorithm.

Given a cost matrix C [n, m], find the one-to-one matching of rows to columns
with the least total cost

    minimize  sum_k C[row_k, col_k]   over every set of min(n, m) pairs in which
                                      no row and no column is used twice.

DETR (Carion et al. 2020) matches its N predictions to the G objects of an
image this way, so that each object is claimed by exactly one prediction and
duplicates are punished instead of removed by NMS.

Trying every matching costs n! steps. Kuhn (1955) and Munkres (1957) solved it
in polynomial time; the form used here is the *shortest augmenting path*
algorithm of Jonker & Volgenant (1987) in the rectangular variant of Crouse
("On implementing 2D rectangular assignment algorithms", IEEE TAES 2016), which
is what ``scipy.optimize.linear_sum_assignment`` runs. The rows are added one at
a time. For the new row, a Dijkstra search over the columns finds the cheapest
way to give it a column, possibly by moving already matched rows to other
columns along an alternating path; the path is then flipped (augmented). Dual
variables (potentials) u[row] and v[col] keep every *reduced cost*

    C[i, j] - u[i] - v[j] >= 0,   with equality on the matched pairs,

so the search never meets a negative edge, and after the last row the matching
is optimal (linear-programming duality: the primal cost equals the dual bound).
Each row costs at most m Dijkstra steps of O(m) work: O(n m^2), i.e. O(n^3).

Semantics follow SciPy's ``linear_sum_assignment``: a rectangular matrix is
solved on its shorter side (min(n, m) pairs); ``row_ind`` comes back sorted;
``+inf`` marks a forbidden pair, and a matrix in which no full matching avoids
them is "infeasible"; NaN and -inf are invalid.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.function import as_array

OP = "linear_sum_assignment"


def linear_sum_assignment(cost_matrix, maximize: bool = False):
    """The cheapest one-to-one matching of rows to columns (SciPy's semantics).

    Args:
        cost_matrix: [n, m] real (or bool) numbers; ``+inf`` forbids a pair
            (``-inf`` when ``maximize``).
        maximize: find the most expensive matching instead.

    Returns:
        (row_ind, col_ind): two int arrays of length min(n, m); row_ind is sorted and
        ``cost_matrix[row_ind, col_ind].sum()`` is the optimum.

    Raises:
        ValueError: not 2-D, not numbers, NaN or -inf (+inf when maximizing), or no
        matching avoids the forbidden (infinite) pairs.
    """
    cost = _checked(cost_matrix, maximize)
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:  # the algorithm adds rows one by one, so it needs rows <= columns
        cost = cost.T
    col_of_row, _ = _shortest_augmenting_paths(cost)
    rows = np.arange(cost.shape[0])
    if not transposed:
        return rows, col_of_row
    order = np.argsort(col_of_row)
    return col_of_row[order], rows[order]


def assignment_steps(cost_matrix, maximize: bool = False) -> int:
    """How many Dijkstra steps ``linear_sum_assignment`` takes on ``cost_matrix``.

    One step scans one column and relaxes the reduced costs of all m columns from
    one row, so the arithmetic is steps x m. At most n steps per row: the worst case
    is n^2 steps, n^3 work. (Each step is one vectorized NumPy pass here; the
    count shows the algorithm's growth without the interpreter's fixed cost per step.)
    """
    cost = _checked(cost_matrix, maximize)
    return _shortest_augmenting_paths(cost.T if cost.shape[0] > cost.shape[1] else cost)[1]


def _checked(cost_matrix, maximize: bool) -> np.ndarray:
    """The matrix as float64 (negated when maximizing), or the error SciPy raises."""
    cost = as_array(cost_matrix)
    if cost.ndim != 2:
        raise ValueError(f"{OP}: expected a matrix (2-D array), got a {cost.shape} array")
    if cost.dtype.kind not in "biuf":
        raise ValueError(f"{OP}: expected a matrix of real numbers, got dtype {cost.dtype}")
    cost = cost.astype(np.float64)
    if maximize:
        cost = -cost
    bad = np.isnan(cost) | np.isneginf(cost)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        forbidden = "+inf" if maximize else "-inf"
        raise ValueError(f"{OP}: matrix contains invalid numeric entries (NaN or {forbidden}), "
                         f"e.g. at [{i}, {j}] = {as_array(cost_matrix)[i, j]}")
    return cost


def _shortest_augmenting_paths(cost: np.ndarray) -> np.ndarray:
    """Optimal column of every row of ``cost`` [n, m] with n <= m (Crouse 2016, Algorithm 1).

    Returns (col_of_row int [n], the number of Dijkstra steps taken).
    """
    n, m = cost.shape
    u, v = np.zeros(n), np.zeros(m)                   # the dual potentials
    row_of_col = np.full(m, -1)                       # -1: column still free
    col_of_row = np.full(n, -1)
    steps = 0
    for new_row in range(n):
        sink, distance, previous, scanned = _dijkstra(cost, u, v, row_of_col, new_row)
        steps += int(scanned.sum())
        shortest = distance[sink]
        # Potentials: keep reduced costs >= 0 and 0 on the (soon) matched pairs.
        u[new_row] += shortest
        visited_cols = np.flatnonzero(scanned)
        visited_cols = visited_cols[visited_cols != sink]
        u[row_of_col[visited_cols]] += shortest - distance[visited_cols]
        v[scanned] -= shortest - distance[scanned]
        # Augment: walk the path back from the free column, shifting each row along it.
        col = sink
        while True:
            row = previous[col]
            row_of_col[col] = row
            col_of_row[row], col = col, col_of_row[row]
            if row == new_row:
                break
    return col_of_row, steps


def _dijkstra(cost, u, v, row_of_col, start_row):
    """Shortest alternating path from ``start_row`` to a free column, in reduced costs.

    Leaves a matched column j through its row row_of_col[j] (at reduced cost 0).
    Returns (the free column reached, distance [m], previous row [m] of every
    column on a path, bool [m] columns scanned).
    """
    m = cost.shape[1]
    distance = np.full(m, np.inf)
    previous = np.full(m, -1)
    scanned = np.zeros(m, dtype=bool)
    row, reached = start_row, 0.0
    while True:
        # relax the edges out of `row` to every column not scanned yet
        through_row = reached + cost[row] - u[row] - v
        better = ~scanned & (through_row < distance)
        distance[better] = through_row[better]
        previous[better] = row
        # the nearest unscanned column (among ties, a free one ends the search sooner)
        candidates = np.where(scanned, np.inf, distance)
        reached = candidates.min()
        if reached == np.inf:
            raise ValueError(f"{OP}: cost matrix is infeasible (no matching avoids the "
                             "infinite entries)")
        ties = np.flatnonzero(candidates == reached)
        free = ties[row_of_col[ties] < 0]
        col = free[0] if free.size else ties[0]
        scanned[col] = True
        if row_of_col[col] < 0:
            return col, distance, previous, scanned
        row = row_of_col[col]
