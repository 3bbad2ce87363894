"""The test problem of the optimizer tests: a quadratic with a known gradient, run through a
minidl optimizer and through a NumPy reference update written from the paper's formula."""

import numpy as np

from minidl import Tensor

RNG_SEED = 123


def make_problem(n=5):
    """A quadratic 0.5 p^T A p - b^T p with SPD A: its gradient is A p - b."""
    rng = np.random.default_rng(RNG_SEED)
    m = rng.standard_normal((n, n))
    a = m @ m.T / n + np.eye(n)
    b = rng.standard_normal(n)
    p0 = rng.standard_normal(n)
    return a, b, p0


def run_optimizer(make_opt, steps, shape_groups=1):
    """Run ``steps`` steps of the minidl optimizer on the quadratic, float64."""
    a, b, p0 = make_problem()
    p = Tensor(p0.copy(), requires_grad=True)
    opt = make_opt([p])
    trace = []
    for _ in range(steps):
        p.grad = a @ p.data - b
        opt.step()
        trace.append(p.data.copy())
    return np.array(trace)


def run_reference(update, steps):
    """Same problem, with ``update(p, g, state) -> new p`` from the test."""
    a, b, p0 = make_problem()
    p, state, trace = p0.copy(), {}, []
    for _ in range(steps):
        p = update(p, a @ p - b, state)
        trace.append(p.copy())
    return np.array(trace)


def references_differ(update_a, update_b, steps=6):
    """Whether two reference updates move the parameters differently on this problem: a test
    case can only catch a plausible wrong formula if its trajectory differs from the right one."""
    return not np.allclose(run_reference(update_a, steps), run_reference(update_b, steps),
                           rtol=1e-9)
