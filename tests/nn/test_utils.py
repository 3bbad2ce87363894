"""Gradient clipping (minidl.nn.utils): clip_grad_norm_ and clip_grad_value_."""

import math

import numpy as np
import pytest

from minidl import Tensor
from minidl.nn.utils import _power_sum, clip_grad_norm_, clip_grad_value_


def params_with_grads(seed=0):
    rng = np.random.default_rng(seed)
    ps = [Tensor(np.zeros(s), requires_grad=True) for s in [(3, 4), (5,), (2,)]]
    for p in ps[:2]:
        p.grad = rng.standard_normal(p.shape) * 3
    return ps  # the last one has no gradient


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, math.inf])
def test_clip_grad_norm_matches_formula(norm_type):
    ps = params_with_grads()
    flat = np.concatenate([p.grad.ravel() for p in ps[:2]])
    total = np.max(np.abs(flat)) if norm_type == math.inf else \
        np.sum(np.abs(flat) ** norm_type) ** (1 / norm_type)
    before = [p.grad.copy() for p in ps[:2]]
    got = clip_grad_norm_(ps, max_norm=2.5, norm_type=norm_type)  # not 1: max_norm must count
    assert isinstance(got, Tensor)
    np.testing.assert_allclose(got.item(), total, rtol=1e-12)
    for p, g in zip(ps, before):
        np.testing.assert_allclose(p.grad, g * 2.5 / (total + 1e-6), rtol=1e-12)
    clipped = np.concatenate([p.grad.ravel() for p in ps[:2]])
    new_norm = np.max(np.abs(clipped)) if norm_type == math.inf else \
        np.sum(np.abs(clipped) ** norm_type) ** (1 / norm_type)
    assert new_norm <= 2.5
    assert ps[2].grad is None


def test_clip_grad_norm_leaves_small_gradients():
    ps = params_with_grads()
    before = [p.grad.copy() for p in ps[:2]]
    total = clip_grad_norm_(ps, max_norm=1e6).item()
    assert total > 1
    for p, g in zip(ps, before):
        np.testing.assert_array_equal(p.grad, g)


def test_clip_grad_norm_single_tensor_empty_and_nonfinite():
    p = Tensor(np.zeros(2), requires_grad=True)
    assert clip_grad_norm_([p], 1.0).item() == 0.0
    p.grad = np.array([3.0, 4.0])
    assert clip_grad_norm_(p, 1.0).item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-6)
    with pytest.raises(ValueError, match="clip_grad_norm_: max_norm"):
        clip_grad_norm_([p], -1.0)
    with pytest.raises(TypeError, match="clip_grad_norm_: expected Tensors"):
        clip_grad_norm_([np.ones(2)], 1.0)


@pytest.mark.parametrize("grad, total", [([np.inf, 1.0], "inf"), ([np.nan, 1.0], "nan")])
def test_clip_grad_norm_with_a_non_finite_norm_raises_when_asked(grad, total):
    p = Tensor(np.zeros(2), requires_grad=True)
    p.grad = np.array(grad)
    with pytest.raises(RuntimeError, match=f"clip_grad_norm_: the total norm .* is {total}"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(p.grad, grad)  # untouched


@pytest.mark.parametrize("grad, want", [
    ([np.inf, 1.0], [np.nan, 0.0]),   # PyTorch: coef = 1 / (inf + 1e-6) = 0, and inf * 0 = nan
    ([np.nan, 1.0], [np.nan, np.nan]),  # coef = nan
])
def test_clip_grad_norm_with_a_non_finite_norm_by_default_does_as_pytorch_and_says_so(grad,
                                                                                      want):
    p = Tensor(np.zeros(2), requires_grad=True)
    p.grad = np.array(grad)
    with pytest.warns(RuntimeWarning, match="clip_grad_norm_: the total norm .* now hold nan"):
        total = clip_grad_norm_([p], 1.0)
    assert not math.isfinite(total.item())
    np.testing.assert_array_equal(p.grad, want)


def test_clip_grad_value_():
    ps = params_with_grads()
    want = [np.minimum(np.maximum(p.grad, -0.5), 0.5) for p in ps[:2]]
    clip_grad_value_(ps, 0.5)
    for p, w in zip(ps, want):
        np.testing.assert_array_equal(p.grad, w)
    with pytest.raises(ValueError, match="clip_grad_value_: clip_value"):
        clip_grad_value_(ps, -1)


def test_reachable_as_nn_utils():
    nn = pytest.importorskip("minidl.nn")
    assert nn.utils.clip_grad_norm_ is clip_grad_norm_


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_norm_two_norm_equals_the_float64_power_sum_bitwise(dtype):
    """The 2-norm's fast path (np.square computed in float64) gives exactly the number the
    general path |float64(g)|^p gives: clipping, and so training, is unchanged by it."""
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(n).astype(dtype) * scale
             for n, scale in ((100_003, 1e-3), (4096, 1.0), (7, 30.0))]
    grads[1][5] = -0.0
    ps = [Tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    for p, g in zip(ps, grads):
        p.grad = g.copy()
    for g in grads:
        assert _power_sum(g, 2.0) == float(np.sum(np.abs(g.astype(np.float64)) ** 2.0))
    general = sum(float(np.sum(np.abs(g.astype(np.float64)) ** 2.0)) for g in grads) ** 0.5
    assert clip_grad_norm_(ps, max_norm=1e9).item() == np.asarray(general, dtype).item()
