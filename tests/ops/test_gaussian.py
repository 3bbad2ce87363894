"""Gaussian helpers: kl_normal against a numerically integrated KL, gaussian_nll_loss against
-log of the Gaussian density, float64 gradcheck over every element, PyTorch's shape rules for
var, the straight-through clamp, and the errors on bad input."""

import math

import numpy as np
import pytest

import minidl.nn.functional as F
from minidl import Tensor, gradcheck
from minidl.testing import check_op

rng = np.random.default_rng(0)


def t64(a, grad=True):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# ---- kl_normal ----------------------------------------------------------------
def density(x, mean, variance):
    return np.exp(-(x - mean) ** 2 / (2 * variance)) / np.sqrt(2 * np.pi * variance)


def kl_by_integration(mu, logvar, prior_mu, prior_logvar):
    """KL(q || p) = integral of q(x) log(q(x) / p(x)) dx, on a fine grid, element by element."""
    out = np.empty(np.broadcast_shapes(np.shape(mu), np.shape(prior_mu)))
    mu, logvar, prior_mu, prior_logvar = np.broadcast_arrays(mu, logvar, prior_mu, prior_logvar)
    for i in np.ndindex(out.shape):
        sigma = np.exp(0.5 * logvar[i])
        x = np.linspace(mu[i] - 12 * sigma, mu[i] + 12 * sigma, 20001)
        q, p = density(x, mu[i], sigma ** 2), density(x, prior_mu[i], np.exp(prior_logvar[i]))
        out[i] = np.trapezoid(q * (np.log(q) - np.log(p)), x)
    return out


def test_kl_normal_against_the_standard_normal_equals_the_integral():
    mu, logvar = rng.normal(size=(3, 4)), rng.normal(0, 0.7, size=(3, 4))
    want = kl_by_integration(mu, logvar, 0.0, 0.0)
    got = F.kl_normal(t64(mu, False), t64(logvar, False)).data
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_kl_normal_against_a_diagonal_prior_equals_the_integral():
    mu, logvar = rng.normal(size=(2, 3)), rng.normal(0, 0.5, size=(2, 3))
    prior_mu, prior_logvar = rng.normal(size=(1, 3)), rng.normal(0, 0.5, size=(1, 3))
    want = kl_by_integration(mu, logvar, prior_mu, prior_logvar)
    got = F.kl_normal(t64(mu, False), t64(logvar, False), t64(prior_mu, False),
                      t64(prior_logvar, False)).data
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_kl_normal_is_zero_only_when_the_distributions_match():
    zeros = t64(np.zeros((2, 3)), False)
    assert np.all(F.kl_normal(zeros, zeros).data == 0)
    mu, logvar = t64(rng.normal(size=(2, 3)), False), t64(rng.normal(size=(2, 3)), False)
    assert np.all(F.kl_normal(mu, logvar, mu, logvar).data == 0)
    assert np.all(F.kl_normal(mu, logvar).data > 0)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
def test_kl_normal_gradcheck_and_reductions(reduction):
    mu, logvar = rng.normal(size=(4, 3)), rng.normal(0, 0.5, size=(4, 3))

    def reference(m, lv):
        kl = 0.5 * (m ** 2 + np.exp(lv) - lv - 1)
        reduced = {"none": kl, "sum": kl.sum(), "mean": kl.mean(), "batchmean": kl.sum() / 4}
        return reduced[reduction]

    check_op(lambda m, lv: F.kl_normal(m, lv, reduction=reduction), reference, [mu, logvar])


def test_kl_normal_gradcheck_through_the_prior():
    args = [t64(rng.normal(size=(3, 2))), t64(rng.normal(0, 0.5, size=(3, 2))),
            t64(rng.normal(size=(1, 2))), t64(rng.normal(0, 0.5, size=(3, 2)))]
    assert gradcheck(lambda *a: F.kl_normal(*a), args)


def test_kl_normal_keeps_float32():
    mu = Tensor(rng.normal(size=(2, 3)).astype(np.float32))
    assert F.kl_normal(mu, mu, reduction="batchmean").dtype == np.float32


def test_kl_normal_errors():
    mu = t64(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="kl_normal: logvar has shape"):
        F.kl_normal(mu, t64(np.zeros((3, 2))))
    with pytest.raises(ValueError, match="kl_normal: prior_mu has shape"):
        F.kl_normal(mu, mu, prior_mu=t64(np.zeros((2, 4))))
    with pytest.raises(ValueError, match="kl_normal: reduction must be one of"):
        F.kl_normal(mu, mu, reduction="average")
    with pytest.raises(TypeError, match="kl_normal: expected a floating-point mu"):
        F.kl_normal(Tensor(np.zeros((2, 3), dtype=np.int64)), mu)
    with pytest.raises(TypeError, match="kl_normal: mu must be a Tensor"):
        F.kl_normal(np.zeros((2, 3)), mu)


# ---- gaussian_nll_loss -----------------------------------------------------------
def nll_by_density(x, y, v, full):
    """-log N(y; x, v), from the density, minus its constant when ``full`` is False."""
    nll = -np.log(density(y, x, v))
    return nll if full else nll - 0.5 * np.log(2 * np.pi)


def reduce_ref(loss, reduction):
    return {"none": loss, "mean": np.mean(loss), "sum": np.sum(loss)}[reduction]


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_gaussian_nll_loss_heteroscedastic(full, reduction):
    x, y, v = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.uniform(0.2, 2, (3, 4))
    check_op(lambda a, b, c: F.gaussian_nll_loss(a, b, c, full=full, reduction=reduction),
             lambda a, b, c: reduce_ref(nll_by_density(a, b, c, full), reduction), [x, y, v])


@pytest.mark.parametrize("var_shape", [(3,), (3, 1)])
def test_gaussian_nll_loss_one_variance_per_row(var_shape):
    """var of shape [N] or [N, 1] is shared along input's last dimension."""
    x, y, v = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.uniform(0.2, 2, var_shape)
    check_op(lambda a, b, c: F.gaussian_nll_loss(a, b, c, reduction="none"),
             lambda a, b, c: nll_by_density(a, b, c.reshape(3, 1), False), [x, y, v])


def test_gaussian_nll_loss_number_variance_and_broadcast_target():
    x, y = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 1, 4))
    check_op(lambda a, b: F.gaussian_nll_loss(a, b, 0.5, reduction="none"),
             lambda a, b: nll_by_density(a, b, 0.5, False), [x, y])


def test_gaussian_nll_loss_with_fixed_variance_is_a_scaled_mse():
    x, y = t64(rng.normal(size=(5, 3))), t64(rng.normal(size=(5, 3)))
    nll = F.gaussian_nll_loss(x, y, 0.25).item()
    assert math.isclose(nll, F.mse_loss(x, y).item() / (2 * 0.25) + 0.5 * math.log(0.25))


def test_gaussian_nll_loss_clamps_the_value_and_passes_the_gradient_through():
    """Below eps the loss uses eps; d loss / d var is the formula's, taken at eps (PyTorch)."""
    eps = 1e-2
    x, y = t64([0.5, 0.5], grad=False), t64([0.2, 0.2], grad=False)
    var = t64([1e-4, 0.5])
    loss = F.gaussian_nll_loss(x, y, var, eps=eps, reduction="sum")
    used = np.array([eps, 0.5])
    assert math.isclose(loss.item(), float(np.sum(nll_by_density(0.5, 0.2, used, False))))
    loss.backward()
    np.testing.assert_allclose(var.grad, 0.5 * (1 / used - 0.3 ** 2 / used ** 2))


def test_gaussian_nll_loss_errors():
    x = t64(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="gaussian_nll_loss: var has shape"):
        F.gaussian_nll_loss(x, x, t64(np.ones((4,))))
    with pytest.raises(ValueError, match="gaussian_nll_loss: var has negative entries"):
        F.gaussian_nll_loss(x, x, t64(-np.ones((3, 4))))
    with pytest.raises(ValueError, match="gaussian_nll_loss: var has negative entries"):
        F.gaussian_nll_loss(x, x, -1.0)
    with pytest.raises(ValueError, match="gaussian_nll_loss: target has shape"):
        F.gaussian_nll_loss(x, t64(np.zeros((4, 3))), 1.0)
    with pytest.raises(ValueError, match="gaussian_nll_loss: reduction must be one of"):
        F.gaussian_nll_loss(x, x, 1.0, reduction="batchmean")
    with pytest.raises(ValueError, match="gaussian_nll_loss: eps must be"):
        F.gaussian_nll_loss(x, x, 1.0, eps=0)
    with pytest.raises(TypeError, match="gaussian_nll_loss: expected a floating-point input"):
        F.gaussian_nll_loss(Tensor(np.zeros((3, 4), dtype=np.int64)), x, 1.0)
