"""What every optimizer shares (optim/optimizer.py): convergence, parameter groups, zero_grad,
gradients checked before any update, the version counter, state_dict and resume, bad input,
repr, dtypes."""

import numpy as np
import pytest

import minidl
from minidl import Tensor
from minidl.optim import SGD, Adadelta, Adagrad, Adam, AdamW, RMSprop
from tests.optim.quadratic import make_problem


# ---- convergence with autograd -------------------------------------------------------------
@pytest.mark.parametrize("make_opt, steps", [
    (lambda ps: SGD(ps, lr=0.1), 300),
    (lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True), 200),
    (lambda ps: Adam(ps, lr=0.1), 500),
    (lambda ps: AdamW(ps, lr=0.1, weight_decay=0.0), 500),
    (lambda ps: RMSprop(ps, lr=0.01, centered=True, momentum=0.5), 800),
    (lambda ps: Adagrad(ps, lr=0.5), 500),
    (lambda ps: Adadelta(ps, lr=0.5, eps=0.1), 300),
])
def test_minimizes_a_quadratic_to_its_solution(make_opt, steps):
    a, b, p0 = make_problem()
    x = Tensor(p0.copy(), requires_grad=True)
    at, bt = Tensor(a), Tensor(b)
    opt = make_opt([x])
    for _ in range(steps):
        opt.zero_grad()
        loss = 0.5 * (x * (at @ x)).sum() - (bt * x).sum()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(x.data, np.linalg.solve(a, b), atol=1e-3)


# ---- groups, grads, zero_grad --------------------------------------------------------------
def test_param_groups_use_their_own_lr():
    p1 = Tensor(np.ones(2), requires_grad=True)
    p2 = Tensor(np.ones(3), requires_grad=True)
    opt = SGD([{"params": [p1]}, {"params": [p2], "lr": 0.5}], lr=0.1)
    p1.grad, p2.grad = np.ones(2), np.ones(3)
    opt.step()
    np.testing.assert_allclose(p1.data, 0.9)
    np.testing.assert_allclose(p2.data, 0.5)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.5
    assert opt.param_groups[1]["momentum"] == 0.0  # filled in from the defaults


def test_add_param_group():
    p1, p2 = (Tensor(np.ones(2), requires_grad=True) for _ in range(2))
    opt = Adam([p1], lr=0.1)
    opt.add_param_group({"params": p2, "lr": 0.01})
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than once"):
        opt.add_param_group({"params": [p1]})
    assert len(opt.param_groups) == 2


def test_params_without_grad_are_skipped_and_zero_grad_sets_none():
    p1 = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    p2 = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    opt = SGD([p1, p2], lr=0.1, momentum=0.9)
    p1.grad = np.ones(2, dtype=np.float32)
    opt.step()
    np.testing.assert_allclose(p2.data, 1.0)
    assert p2 not in opt.state and "momentum_buffer" in opt.state[p1]
    assert p1.data.dtype == np.float32
    opt.zero_grad()
    assert p1.grad is None and p2.grad is None


def test_zero_grad_set_to_none_false_fills_zeros():
    p = Tensor(np.ones(2), requires_grad=True)
    p.grad = np.ones(2)
    SGD([p], lr=0.1).zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad, 0)


def test_step_updates_data_in_place():
    p = Tensor(np.ones(3), requires_grad=True)
    array = p.data
    p.grad = np.ones(3)
    Adam([p], lr=0.1).step()
    assert p.data is array


def test_closure_returns_loss():
    p = Tensor(np.array([3.0]), requires_grad=True)
    opt = SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 9.0
    np.testing.assert_allclose(p.data, [1.5])


def test_works_with_module_parameters():
    nn = pytest.importorskip("minidl.nn")
    minidl.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = SGD(model.parameters(), lr=0.1)
    before = model.weight.data.copy()
    model(Tensor(np.ones((4, 3), dtype=np.float32))).sum().backward()
    opt.step()
    np.testing.assert_allclose(model.weight.data, before - 0.1 * 4.0, rtol=1e-6)


# ---- state_dict ----------------------------------------------------------------------------
@pytest.mark.parametrize("make_opt", [
    lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    lambda ps: Adam(ps, lr=0.05, amsgrad=True),
    lambda ps: AdamW(ps, lr=0.05),
    lambda ps: RMSprop(ps, lr=0.01, centered=True, momentum=0.5),
    lambda ps: Adagrad(ps, lr=0.1, lr_decay=0.1, initial_accumulator_value=0.5),
    lambda ps: Adadelta(ps, lr=0.5, rho=0.8),
])
def test_state_dict_save_load_resume_matches_uninterrupted_run(make_opt, tmp_path):
    a, b, p0 = make_problem()

    def steps(p, opt, k):
        for _ in range(k):
            p.grad = a @ p.data - b
            opt.step()

    p = Tensor(p0.copy(), requires_grad=True)
    opt = make_opt([p])
    steps(p, opt, 6)
    uninterrupted = p.data.copy()

    p = Tensor(p0.copy(), requires_grad=True)
    opt = make_opt([p])
    steps(p, opt, 3)
    minidl.save({"optimizer": opt.state_dict(), "param": p.data}, tmp_path / "ckpt.npz")
    loaded = minidl.load(tmp_path / "ckpt.npz")

    q = Tensor(loaded["param"], requires_grad=True)
    opt2 = make_opt([q])
    opt2.param_groups[0]["lr"] = 123.0  # overwritten by the load
    opt2.load_state_dict(loaded["optimizer"])
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    steps(q, opt2, 3)
    np.testing.assert_allclose(q.data, uninterrupted, rtol=1e-12)


def test_state_dict_has_pytorchs_layout():
    p1 = Tensor(np.ones(2), requires_grad=True)
    p2 = Tensor(np.ones(3), requires_grad=True)
    opt = SGD([{"params": [p1]}, {"params": [p2], "lr": 0.5}], lr=0.1, momentum=0.9)
    p2.grad = np.ones(3)
    opt.step()
    state = opt.state_dict()
    assert list(state) == ["state", "param_groups"]
    assert list(state["state"]) == [1] and list(state["state"][1]) == ["momentum_buffer"]
    np.testing.assert_array_equal(state["state"][1]["momentum_buffer"], np.ones(3))
    assert state["param_groups"] == [
        {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False,
         "params": [0]},
        {"lr": 0.5, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False,
         "params": [1]}]
    state["state"][1]["momentum_buffer"][:] = 7  # a copy: the optimizer is unaffected
    np.testing.assert_array_equal(opt.state[p2]["momentum_buffer"], 1)


def test_load_state_dict_of_the_flat_layout_of_earlier_versions(tmp_path):
    """What minidl wrote before checkpoints could nest: flat keys, numbers saved as 0-d arrays."""
    p = Tensor(np.ones(2), requires_grad=True)
    opt = Adam([p], lr=0.1)
    flat = {"state.0.step": np.array(2), "state.0.exp_avg": np.full(2, 0.5),
            "state.0.exp_avg_sq": np.full(2, 0.25), "param_groups.0.lr": np.array(0.01),
            "param_groups.0.betas": np.array([0.8, 0.9]), "param_groups.0.eps": np.array(1e-8),
            "param_groups.0.weight_decay": np.array(0.0),
            "param_groups.0.amsgrad": np.array(False), "param_groups.0.params": np.array([0])}
    np.savez(tmp_path / "old.npz", **flat)
    opt.load_state_dict(minidl.load(tmp_path / "old.npz"))
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[0]["betas"] == (0.8, 0.9)
    assert opt.state[p]["step"] == 2 and type(opt.state[p]["step"]) is int
    np.testing.assert_array_equal(opt.state[p]["exp_avg_sq"], 0.25)


def test_load_state_dict_rejects_mismatch_without_changing_anything():
    p = Tensor(np.ones(2), requires_grad=True)
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones(2)
    opt.step()
    state = opt.state_dict()
    q = Tensor(np.ones(5), requires_grad=True)
    other = SGD([q], lr=0.3, momentum=0.9)
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict(state)
    assert other.param_groups[0]["lr"] == 0.3 and other.state == {}
    two = SGD([Tensor(np.ones(2), requires_grad=True), q], lr=0.1)
    with pytest.raises(ValueError, match="group 0"):
        two.load_state_dict(state)
    with pytest.raises(ValueError, match="unexpected key"):
        opt.load_state_dict({"momentum": 1})


@pytest.mark.parametrize("bad, match", [
    ({"lr": float("nan")}, "SGD: lr must be a finite number, got nan"),
    ({"momentum": -1.0}, "SGD: momentum must be >= 0"),
    ({"foreach": None}, r"SGD.load_state_dict: unknown hyperparameter\(s\) \['foreach'\]"),
])
def test_load_state_dict_checks_saved_hyperparameters_before_changing_anything(bad, match):
    p = Tensor(np.ones(2), requires_grad=True)
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones(2)
    opt.step()
    state = opt.state_dict()
    state["param_groups"][0].update(bad)
    state["state"][0]["momentum_buffer"][:] = 5.0
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(state)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.9
    np.testing.assert_array_equal(opt.state[p]["momentum_buffer"], 1.0)


# ---- bad input -----------------------------------------------------------------------------
def p_():
    return [Tensor(np.ones(2), requires_grad=True)]


@pytest.mark.parametrize("make, match", [
    (lambda: SGD(p_(), lr=-0.1), r"SGD: lr must be >= 0"),
    (lambda: SGD(p_(), lr=0.1, momentum=-0.5), r"SGD: momentum must be >= 0"),
    (lambda: SGD(p_(), lr=0.1, nesterov=True), r"SGD: nesterov=True needs momentum > 0"),
    (lambda: SGD(p_(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     r"SGD: nesterov=True needs .* dampening = 0"),
    (lambda: SGD(p_(), lr=0.1, weight_decay=-1), r"SGD: weight_decay must be >= 0"),
    (lambda: SGD([], lr=0.1), r"SGD: got an empty parameter list"),
    (lambda: Adam([], lr=0.1), r"Adam: got an empty parameter list"),
    (lambda: Adam(p_(), betas=(1.0, 0.999)), r"Adam: beta1 must be < 1,"),
    (lambda: Adam(p_(), betas=(0.9, -0.1)), r"Adam: beta2 must be >= 0"),
    (lambda: AdamW(p_(), betas=(0.9,)), r"AdamW: betas must be a pair"),
    (lambda: Adam(p_(), lr=-1e-3), r"Adam: lr must be >= 0"),
    (lambda: Adam(p_(), eps=-1.0), r"Adam: eps must be >= 0"),
    (lambda: RMSprop(p_(), alpha=1.5), r"RMSprop: alpha must be <= 1,"),
    (lambda: RMSprop(p_(), momentum=-1), r"RMSprop: momentum must be >= 0"),
    (lambda: SGD(p_(), lr="fast"), r"SGD: lr must be a finite number, got 'fast'"),
    (lambda: Adagrad(p_(), lr_decay=-0.1), r"Adagrad: lr_decay must be >= 0"),
    (lambda: Adagrad(p_(), initial_accumulator_value=-1), r"Adagrad: initial_accumulator_value"),
    (lambda: Adagrad(p_(), eps=float("inf")), r"Adagrad: eps must be a finite number, got inf"),
    (lambda: Adadelta(p_(), rho=1.1), r"Adadelta: rho must be <= 1,"),
    (lambda: Adadelta(p_(), weight_decay=-1), r"Adadelta: weight_decay must be >= 0"),
    (lambda: SGD([{"params": p_(), "lr": -2.0}], lr=0.1), r"SGD: lr must be >= 0, got -2.0"),
    (lambda: SGD([{"params": p_(), "momentun": 0.9}], lr=0.1), r"SGD: unknown hyperparameter"),
])
def test_bad_hyperparameters_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


ALL_OPTIMIZERS = [SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta]


@pytest.mark.parametrize("optimizer", ALL_OPTIMIZERS)
@pytest.mark.parametrize("lr, match", [(-1e-3, "must be >= 0, got -0.001"),
                                       (float("nan"), "must be a finite number, got nan"),
                                       (float("inf"), "must be a finite number, got inf"),
                                       (-float("inf"), "must be a finite number, got -inf")])
def test_every_optimizer_rejects_a_negative_or_non_finite_lr(optimizer, lr, match):
    with pytest.raises(ValueError, match=f"^{optimizer.__name__}: lr {match}"):
        optimizer(p_(), lr=lr)
    with pytest.raises(ValueError, match=f"^{optimizer.__name__}: lr {match}"):
        optimizer([{"params": p_(), "lr": lr}], lr=0.1)


def test_bad_params_raise_clear_errors():
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match="SGD: params should be an iterable"):
        SGD(x, lr=0.1)
    with pytest.raises(TypeError, match="SGD: can only optimize Tensors"):
        SGD([np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="Adam: can't optimize a non-leaf"):
        Adam([x * 2])
    with pytest.raises(ValueError, match="more than once"):
        SGD([x, x], lr=0.1)
    with pytest.raises(TypeError, match="floating-point"):
        SGD([Tensor(np.arange(3))], lr=0.1)


@pytest.mark.parametrize("optimizer", ALL_OPTIMIZERS)
@pytest.mark.parametrize("bad_grad, error, match", [
    (np.ones(4), ValueError, r"the gradient of parameter 2 \(shape \(3,\)\) has shape \(4,\)"),
    (np.ones((3, 1)), ValueError, r"the gradient of parameter 2 .* has shape \(3, 1\)"),
    (np.ones(3, dtype=np.int64), TypeError,
     r"the gradient of parameter 2 .* has dtype int64; expected floating"),
    (np.array(["a", "b", "c"]), TypeError, r"the gradient of parameter 2 .* has dtype <U1"),
    ([1.0, 2.0, 3.0], TypeError, r"the gradient of parameter 2 .* is a list; expected an ndarray"),
])
def test_every_gradient_is_checked_before_any_parameter_changes(optimizer, bad_grad, error,
                                                                match):
    params = [Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(5), requires_grad=True),
              Tensor(np.ones(3), requires_grad=True)]
    opt = optimizer([{"params": params[:2]}, {"params": params[2:]}], lr=0.1)
    for p in params[:2]:
        p.grad = np.ones_like(p.data)
    params[2].grad = bad_grad
    with pytest.raises(error, match=f"^{optimizer.__name__}: {match}"):
        opt.step()
    for p in params:
        np.testing.assert_array_equal(p.data, 1.0)
        assert p._version == 0
    assert opt.state == {}


@pytest.mark.parametrize("optimizer", ALL_OPTIMIZERS)
def test_each_update_bumps_the_version_counter(optimizer):
    used, unused = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    opt = optimizer([used, unused], lr=0.1)
    for step in range(1, 4):
        used.grad = np.ones(2)
        opt.step()
        assert used._version == step and unused._version == 0


def test_repr_lists_groups():
    text = repr(SGD(p_(), lr=0.1, momentum=0.9))
    assert "SGD" in text and "momentum: 0.9" in text


@pytest.mark.parametrize("make_opt", [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
    lambda ps: Adam(ps, amsgrad=True, weight_decay=0.1),
    lambda ps: AdamW(ps),
    lambda ps: RMSprop(ps, centered=True, momentum=0.9, weight_decay=0.1),
    lambda ps: Adagrad(ps, lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.1),
    lambda ps: Adadelta(ps, weight_decay=0.1),
])
def test_float32_parameters_stay_float32(make_opt):
    p = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    opt = make_opt([p])
    for _ in range(2):
        p.grad = np.full((2, 3), 0.5, dtype=np.float32)
        opt.step()
    assert p.data.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state[p].values() if isinstance(v, np.ndarray))
