"""Batch-size scaling rules (Goyal et al. 2017; the square-root rule)."""


import pytest

from minidl.optim import linear_scaling_rule, sqrt_scaling_rule


def test_linear_scaling_rule_goyal():
    assert linear_scaling_rule(0.1, 256, 8192) == pytest.approx(3.2)  # Goyal et al.: kn = 8k
    assert linear_scaling_rule(0.1, 256, 256) == pytest.approx(0.1)


def test_sqrt_scaling_rule():
    assert sqrt_scaling_rule(0.01, 64, 256) == pytest.approx(0.02)
    assert sqrt_scaling_rule(0.01, 256, 64) == pytest.approx(0.005)


@pytest.mark.parametrize("args, match", [
    ((-0.1, 256, 512), "linear_scaling_rule: base_lr"),
    ((0.1, 0, 512), "linear_scaling_rule: base_batch must be a number > 0"),
    ((0.1, 256, -1), "linear_scaling_rule: batch must be"),
])
def test_scaling_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        linear_scaling_rule(*args)
    with pytest.raises(ValueError, match=match.replace("linear", "sqrt")):
        sqrt_scaling_rule(*args)
