"""Adam and AdamW against NumPy versions of their update rules, written here from the papers
(Kingma & Ba 2015; Loshchilov & Hutter 2019) and PyTorch's docs."""

import numpy as np
import pytest

from minidl import Tensor
from minidl.optim import Adam, AdamW
from tests.optim.quadratic import references_differ, run_optimizer, run_reference


def adam_ref(lr, beta1, beta2, eps, weight_decay=0.0, amsgrad=False, decoupled=False,
             max_of_corrected=False):
    """Kingma & Ba, Algorithm 1 (bias-corrected m_hat, v_hat), + AMSGrad and AdamW.
    ``max_of_corrected`` (AMSGrad's max taken over v_hat instead of v, as PyTorch does not) is
    a plausible misreading, used only to show that the cases tell it apart."""
    def update(p, g, state):
        t = state["t"] = state.get("t", 0) + 1
        if decoupled:
            p = p - lr * weight_decay * p
        else:
            g = g + weight_decay * p
        state["m"] = beta1 * state.get("m", 0.0) + (1 - beta1) * g
        state["v"] = beta2 * state.get("v", 0.0) + (1 - beta2) * g ** 2
        v = state["v"]
        if amsgrad and max_of_corrected:
            v = state["vmax"] = np.maximum(state.get("vmax", 0.0), v / (1 - beta2 ** t))
            v = v * (1 - beta2 ** t)
        elif amsgrad:
            v = state["vmax"] = np.maximum(state.get("vmax", 0.0), v)
        m_hat = state["m"] / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        return p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return update


ADAM_CASES = [
    dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8),
    dict(lr=0.05, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.1),
    dict(lr=0.05, betas=(0.9, 0.9), eps=1e-8, amsgrad=True),
]


@pytest.mark.parametrize("kw", ADAM_CASES)
def test_adam_matches_reference(kw):
    got = run_optimizer(lambda ps: Adam(ps, **kw), 6)
    want = run_reference(adam_ref(kw["lr"], *kw["betas"], kw["eps"], kw.get("weight_decay", 0.0),
                                  kw.get("amsgrad", False)), 6)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.9, 0.9)])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adamw_matches_reference(amsgrad, betas):
    got = run_optimizer(lambda ps: AdamW(ps, lr=0.05, betas=betas, weight_decay=0.2,
                                         amsgrad=amsgrad), 6)
    want = run_reference(adam_ref(0.05, *betas, 1e-8, 0.2, amsgrad, decoupled=True), 6)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_the_amsgrad_cases_tell_the_max_from_no_max_and_from_a_max_of_v_hat():
    """With beta2 = 0.999 v grows over the first six steps, so max(v_max, v) = v and AMSGrad
    equals Adam: only the beta2 = 0.9 cases above test the max."""
    def ref(**kw):
        return adam_ref(0.05, 0.9, 0.9, 1e-8, **kw)

    assert references_differ(ref(amsgrad=True), ref(amsgrad=False))
    assert references_differ(ref(amsgrad=True), ref(amsgrad=True, max_of_corrected=True))
    assert references_differ(ref(amsgrad=True, weight_decay=0.2, decoupled=True),
                             ref(amsgrad=False, weight_decay=0.2, decoupled=True))
    assert not references_differ(adam_ref(0.05, 0.9, 0.999, 1e-8, amsgrad=True),
                                 adam_ref(0.05, 0.9, 0.999, 1e-8, amsgrad=False))


def test_adamw_decay_differs_from_adam_l2():
    adam = run_optimizer(lambda ps: Adam(ps, lr=0.05, weight_decay=0.2), 3)
    adamw = run_optimizer(lambda ps: AdamW(ps, lr=0.05, weight_decay=0.2), 3)
    assert not np.allclose(adam, adamw)


def test_first_adam_step_has_size_lr():
    """With bias correction the first step is lr * g / (|g| + eps): size lr per element."""
    p = Tensor(np.zeros(3), requires_grad=True)
    p.grad = np.array([2.0, -0.5, 1e3])
    Adam([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [-0.1, 0.1, -0.1], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [
    lambda ps: Adam(ps, lr=0.01),
    lambda ps: Adam(ps, lr=0.01, weight_decay=0.1, amsgrad=True),
    lambda ps: AdamW(ps, lr=0.01, betas=(0.8, 0.9), weight_decay=0.1),
    lambda ps: AdamW(ps, lr=0.01, amsgrad=True)])
def test_one_pass_kernel_gives_the_numpy_passes_bits(monkeypatch, dtype, make):
    """Adam.update runs the numba kernel on contiguous arrays of one dtype and the NumPy
    passes otherwise: the parameters and the state after several steps are identical."""
    from minidl.optim import adam as adam_module

    rng = np.random.default_rng(5)
    start = rng.standard_normal((7, 13)).astype(dtype)
    grads = [rng.standard_normal((7, 13)).astype(dtype) for _ in range(4)]

    def train(fusable):
        monkeypatch.setattr(adam_module, "_fusable", fusable)
        p = Tensor(start.copy(), requires_grad=True)
        opt = make([p])
        for g in grads:
            p.grad = g.copy()
            opt.step()
        return [p.data] + [a for a in opt.state[p].values() if isinstance(a, np.ndarray)]

    original = adam_module._fusable
    kernel_calls = []

    def fusable_and_counted(arrays):
        kernel_calls.append(original(arrays))
        return kernel_calls[-1]

    kernel = train(fusable_and_counted)
    numpy_passes = train(lambda arrays: False)
    assert kernel_calls == [True] * len(grads) and len(kernel) == len(numpy_passes)
    for got, want in zip(kernel, numpy_passes):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)


def test_mixed_dtypes_and_strided_arrays_take_the_numpy_passes():
    from minidl.optim.adam import _fusable

    a32, a64 = np.zeros(4, np.float32), np.zeros(4)
    assert _fusable([a32, a32.copy(), a32.copy(), a32.copy(), None])
    assert not _fusable([a32, a64, a32.copy(), a32.copy(), None])  # a float64 gradient
    assert not _fusable([a32, np.zeros(8, np.float32)[::2], a32.copy(), a32.copy(), None])
    p = Tensor(np.ones(3, np.float32), requires_grad=True)
    p.grad = np.array([1.0, -1.0, 0.5])  # float64 onto float32: NumPy's rules, as before
    Adam([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.9, 1.1, 0.9], rtol=1e-6)
    assert p.data.dtype == np.float32
