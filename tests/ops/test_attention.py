"""F.scaled_dot_product_attention against explicit loops over queries and keys; masks; errors."""

import math

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F
from minidl import Tensor
from minidl.autograd.gradcheck import gradcheck
from minidl.ops.attention import attention_weights
from minidl.testing import check_op

rng = np.random.default_rng(0)


def attention_ref(q, k, v, allowed=None, scale=None):
    """out[..., i, :] = sum_j w_ij v_j, w_ij = exp(s_ij) / sum_j' exp(s_ij') over allowed keys,
    s_ij = (q_i . k_j) * scale, computed one query and one key at a time."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    q, k, v = (np.broadcast_to(x, batch + x.shape[-2:]) for x in (q, k, v))
    L, S = q.shape[-2], k.shape[-2]
    if allowed is None:
        allowed = np.ones((L, S), bool)
    allowed = np.broadcast_to(allowed, batch + (L, S))
    out = np.zeros(batch + (L, v.shape[-1]))
    for index in np.ndindex(*batch):
        for i in range(L):
            scores = np.array([np.dot(q[index][i], k[index][j]) * scale for j in range(S)])
            e = np.where(allowed[index][i], np.exp(scores - scores[allowed[index][i]].max()), 0)
            w = e / e.sum()
            out[index][i] = sum(w[j] * v[index][j] for j in range(S))
    return out


def test_forward_and_gradient_against_loops():
    q, k, v = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 6))
    check_op(F.scaled_dot_product_attention, attention_ref, [q, k, v])


def test_heads_broadcast_and_custom_scale():
    q, k, v = rng.normal(size=(2, 3, 4, 8)), rng.normal(size=(1, 3, 5, 8)), \
        rng.normal(size=(2, 3, 5, 2))
    check_op(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, scale=0.3),
             lambda a, b, c: attention_ref(a, b, c, scale=0.3), [q, k, v])


def test_bool_mask_true_means_attend_and_its_gradient():
    q, k, v = rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    allowed = rng.random((3, 5)) < 0.6
    allowed[:, 0] = True  # every query sees at least one key
    check_op(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=allowed),
             lambda a, b, c: attention_ref(a, b, c, allowed), [q, k, v])


def test_float_mask_is_added_to_the_scores():
    q, k, v = rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    allowed = np.array([[1, 1, 0, 0, 1]] * 3, bool)
    additive = np.where(allowed, 0.0, -np.inf)
    got = F.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), attn_mask=additive)
    np.testing.assert_allclose(got.data, attention_ref(q, k, v, allowed), atol=1e-12)
    # a finite float bias shifts the weights as exp(bias) does
    bias = rng.normal(size=(3, 5))
    w = attention_weights(Tensor(q), Tensor(k), attn_mask=bias).data
    scores = q @ k.T / 2.0 + bias
    np.testing.assert_allclose(w, np.exp(scores) / np.exp(scores).sum(-1, keepdims=True))


def test_causal_mask_lets_query_i_see_keys_up_to_i():
    q, k, v = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    lower = np.tril(np.ones((4, 4), bool))
    check_op(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True),
             lambda a, b, c: attention_ref(a, b, c, lower), [q, k, v])
    w = attention_weights(Tensor(q), Tensor(k), is_causal=True).data
    assert np.allclose(w[0], [1, 0, 0, 0]) and np.all(w[np.triu_indices(4, 1)] == 0)


def test_weights_rows_sum_to_one_and_gradcheck_of_the_weights():
    q, k = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 6, 4))
    w = attention_weights(Tensor(q), Tensor(k)).data
    np.testing.assert_allclose(w.sum(-1), 1.0)
    assert gradcheck(lambda a, b: attention_weights(a, b),
                     [Tensor(q, requires_grad=True), Tensor(k, requires_grad=True)])


def test_dropout_on_the_weights_is_seeded_and_unbiased():
    q, k, v = (Tensor(rng.normal(size=(64, 8)).astype(np.float32)) for _ in range(3))
    minidl.manual_seed(1)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).data
    minidl.manual_seed(1)
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).data
    np.testing.assert_array_equal(a, b)
    plain = F.scaled_dot_product_attention(q, k, v).data
    assert not np.allclose(a, plain)
    # E[dropout(w)] = w: the mean over many draws approaches the plain output
    draws = np.mean([F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).data
                     for _ in range(400)], axis=0)
    assert np.abs(draws - plain).mean() < 0.05 * np.abs(plain).mean() + 0.02


def test_errors_name_the_op_and_the_shapes():
    q, k, v = Tensor(np.zeros((3, 4))), Tensor(np.zeros((5, 4))), Tensor(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="scaled_dot_product_attention: query and key need the "
                                         r"same embedding size E, got query \(3, 4\) and key "
                                         r"\(5, 3\)"):
        F.scaled_dot_product_attention(q, Tensor(np.zeros((5, 3))), v)
    with pytest.raises(ValueError, match=r"same number of positions S, got key \(5, 4\) and "
                                         r"value \(6, 2\)"):
        F.scaled_dot_product_attention(q, k, Tensor(np.zeros((6, 2))))
    with pytest.raises(ValueError, match=r"attn_mask must broadcast to \[..., L, S\] = "
                                         r"\[..., 3, 5\].*got shape \(5, 3\)"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((5, 3), bool))
    with pytest.raises(ValueError, match=r"attn_mask \(4, 3, 5\) does not broadcast"):
        F.scaled_dot_product_attention(Tensor(np.zeros((2, 3, 4))), k, v,
                                       attn_mask=np.ones((4, 3, 5), bool))
    with pytest.raises(ValueError, match="not both"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((3, 5), bool), is_causal=True)
    with pytest.raises(TypeError, match="scaled_dot_product_attention: expected a floating-point "
                                        "query"):
        F.scaled_dot_product_attention(Tensor(np.zeros((3, 4), int)), k, v)
    with pytest.raises(TypeError, match="attn_mask"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((3, 5), int))
    with pytest.raises(ValueError, match="do not broadcast"):
        F.scaled_dot_product_attention(Tensor(np.zeros((2, 3, 4))), Tensor(np.zeros((3, 5, 4))),
                                       Tensor(np.zeros((3, 5, 2))))


def test_a_query_that_may_see_no_key_is_an_error():
    q, k, v = Tensor(np.zeros((3, 4))), Tensor(np.zeros((5, 4))), Tensor(np.zeros((5, 2)))
    allowed = np.ones((3, 5), bool)
    allowed[1] = False
    with pytest.raises(ValueError, match=r"forbids every key for query 1 .*undefined"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    with pytest.raises(ValueError, match="forbids every key"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.where(allowed, 0.0, -np.inf))
