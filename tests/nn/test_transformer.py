"""MultiheadAttention and the Transformer layers: PyTorch's parameter names and shapes, a NumPy
forward written from the paper's equations, float64 gradcheck, masks and errors."""

import numpy as np
import pytest

import minidl
import minidl.nn as nn
from minidl import Tensor
from minidl.autograd.gradcheck import gradcheck
from minidl.optim import Adam

rng = np.random.default_rng(0)


# ---- parameter names and shapes, as PyTorch's documentation lists them -------------------
def names_and_shapes(module):
    return [(name, tuple(p.shape)) for name, p in module.named_parameters()]


def test_multihead_attention_parameter_names_match_pytorch():
    # torch.nn.MultiheadAttention(8, 2): in_proj_weight [3E, E], in_proj_bias [3E],
    # out_proj (NonDynamicallyQuantizableLinear) weight [E, E], bias [E]
    assert names_and_shapes(nn.MultiheadAttention(8, 2)) == [
        ("in_proj_weight", (24, 8)), ("in_proj_bias", (24,)),
        ("out_proj.weight", (8, 8)), ("out_proj.bias", (8,))]
    # kdim / vdim != embed_dim: separate q, k, v projections
    assert names_and_shapes(nn.MultiheadAttention(8, 2, kdim=3, vdim=5)) == [
        ("q_proj_weight", (8, 8)), ("k_proj_weight", (8, 3)), ("v_proj_weight", (8, 5)),
        ("in_proj_bias", (24,)), ("out_proj.weight", (8, 8)), ("out_proj.bias", (8,))]
    assert names_and_shapes(nn.MultiheadAttention(8, 2, bias=False)) == [
        ("in_proj_weight", (24, 8)), ("out_proj.weight", (8, 8))]


def test_encoder_and_decoder_layer_state_dict_keys_match_pytorch():
    attn = ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    encoder = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    assert list(encoder.state_dict()) == (
        [f"self_attn.{a}" for a in attn]
        + ["linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
           "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"])
    assert encoder.linear1.weight.shape == (16, 8) and encoder.linear2.weight.shape == (8, 16)
    decoder = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16)
    assert list(decoder.state_dict()) == (
        [f"self_attn.{a}" for a in attn] + [f"multihead_attn.{a}" for a in attn]
        + ["linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
           "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
           "norm3.weight", "norm3.bias"])


def test_pytorch_initialization_rules():
    minidl.manual_seed(0)
    mha = nn.MultiheadAttention(64, 4)
    bound = np.sqrt(6 / (64 + 3 * 64))   # xavier_uniform_ on the [3E, E] matrix
    w = mha.in_proj_weight.data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert not mha.in_proj_bias.data.any() and not mha.out_proj.bias.data.any()


# ---- the forward pass from the equations ----------------------------------------------------
def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def mha_ref(query, key, value, w_in, b_in, w_out, b_out, heads, additive=None):
    """Sequence-first [L, N, E]: head h projects with rows h*d..(h+1)*d of W_q, W_k, W_v,
    attends with softmax(q k^T / sqrt(d) + mask), the heads are concatenated and W_o applied.
    Returns (output [L, N, E], weights [N, H, L, S])."""
    L, N, E = query.shape
    S = key.shape[0]
    d = E // heads
    w_q, w_k, w_v = w_in[:E], w_in[E:2 * E], w_in[2 * E:]
    b_q, b_k, b_v = b_in[:E], b_in[E:2 * E], b_in[2 * E:]
    out = np.zeros((L, N, E))
    weights = np.zeros((N, heads, L, S))
    for n in range(N):
        concat = []
        for h in range(heads):
            rows = slice(h * d, (h + 1) * d)
            q = query[:, n] @ w_q[rows].T + b_q[rows]
            k = key[:, n] @ w_k[rows].T + b_k[rows]
            v = value[:, n] @ w_v[rows].T + b_v[rows]
            scores = q @ k.T / np.sqrt(d)
            if additive is not None:
                scores = scores + additive[n, h]
            weights[n, h] = softmax(scores)
            concat.append(weights[n, h] @ v)
        out[:, n] = np.concatenate(concat, axis=1) @ w_out.T + b_out
    return out, weights


def mha_params(mha):
    return (mha.in_proj_weight.data, mha.in_proj_bias.data, mha.out_proj.weight.data,
            mha.out_proj.bias.data)


def double(module):
    module.double()
    return module


def test_multihead_attention_forward_against_the_equations():
    minidl.manual_seed(0)
    mha = double(nn.MultiheadAttention(8, 2))
    q, k, v = rng.normal(size=(3, 2, 8)), rng.normal(size=(5, 2, 8)), rng.normal(size=(5, 2, 8))
    out, weights = mha(Tensor(q), Tensor(k), Tensor(v), average_attn_weights=False)
    want_out, want_w = mha_ref(q, k, v, *mha_params(mha), heads=2)
    np.testing.assert_allclose(out.data, want_out, atol=1e-12)
    np.testing.assert_allclose(weights.data, want_w, atol=1e-12)
    _, averaged = mha(Tensor(q), Tensor(k), Tensor(v))
    np.testing.assert_allclose(averaged.data, want_w.mean(1), atol=1e-12)
    assert mha(Tensor(q), Tensor(k), Tensor(v), need_weights=False)[1] is None


def test_batch_first_and_unbatched_give_the_same_numbers():
    minidl.manual_seed(0)
    seq_first = double(nn.MultiheadAttention(8, 4))
    batch_first = double(nn.MultiheadAttention(8, 4, batch_first=True))
    batch_first.load_state_dict(seq_first.state_dict())
    q, k = rng.normal(size=(3, 2, 8)), rng.normal(size=(5, 2, 8))
    a, wa = seq_first(Tensor(q), Tensor(k), Tensor(k))
    b, wb = batch_first(Tensor(q.transpose(1, 0, 2)), Tensor(k.transpose(1, 0, 2)),
                        Tensor(k.transpose(1, 0, 2)))
    np.testing.assert_allclose(b.data, a.data.transpose(1, 0, 2), atol=1e-12)
    np.testing.assert_allclose(wb.data, wa.data, atol=1e-12)
    c, wc = seq_first(Tensor(q[:, 1]), Tensor(k[:, 1]), Tensor(k[:, 1]))
    assert c.shape == (3, 8) and wc.shape == (3, 5)
    np.testing.assert_allclose(c.data, a.data[:, 1], atol=1e-12)


def test_masks_bool_true_means_masked_and_they_add_up():
    minidl.manual_seed(0)
    mha = double(nn.MultiheadAttention(8, 2))
    q, k = rng.normal(size=(3, 2, 8)), rng.normal(size=(4, 2, 8))
    attn_mask = np.zeros((3, 4), bool)
    attn_mask[0, 1] = True
    padding = np.array([[False, False, False, True], [True, False, False, False]])
    out, weights = mha(Tensor(q), Tensor(k), Tensor(k), attn_mask=attn_mask,
                       key_padding_mask=padding, average_attn_weights=False)
    additive = np.zeros((2, 2, 3, 4))
    additive[:, :, 0, 1] = -np.inf
    additive[0, :, :, 3] = -np.inf
    additive[1, :, :, 0] = -np.inf
    want_out, want_w = mha_ref(q, k, k, *mha_params(mha), heads=2, additive=additive)
    np.testing.assert_allclose(out.data, want_out, atol=1e-12)
    np.testing.assert_allclose(weights.data, want_w, atol=1e-12)
    assert weights.data[0, :, :, 3].max() == 0 and weights.data[:, :, 0, 1].max() == 0
    # a float mask of per-head biases, [N * H, L, S]
    bias = rng.normal(size=(4, 3, 4))
    out, weights = mha(Tensor(q), Tensor(k), Tensor(k), attn_mask=bias,
                       average_attn_weights=False)
    want_out, want_w = mha_ref(q, k, k, *mha_params(mha), heads=2,
                               additive=bias.reshape(2, 2, 3, 4))
    np.testing.assert_allclose(out.data, want_out, atol=1e-12)


def test_separate_key_and_value_sizes():
    minidl.manual_seed(0)
    mha = double(nn.MultiheadAttention(8, 2, kdim=3, vdim=5))
    q, k, v = rng.normal(size=(2, 1, 8)), rng.normal(size=(4, 1, 3)), rng.normal(size=(4, 1, 5))
    out, _ = mha(Tensor(q), Tensor(k), Tensor(v))
    # the same maths with the key and value projections written out
    b_in = mha.in_proj_bias.data
    qh = q[:, 0] @ mha.q_proj_weight.data.T + b_in[:8]
    kh = k[:, 0] @ mha.k_proj_weight.data.T + b_in[8:16]
    vh = v[:, 0] @ mha.v_proj_weight.data.T + b_in[16:]
    heads = []
    for h in range(2):
        r = slice(4 * h, 4 * h + 4)
        heads.append(softmax(qh[:, r] @ kh[:, r].T / 2.0) @ vh[:, r])
    want = np.concatenate(heads, 1) @ mha.out_proj.weight.data.T + mha.out_proj.bias.data
    np.testing.assert_allclose(out.data[:, 0], want, atol=1e-12)


def test_multihead_attention_gradcheck_float64():
    minidl.manual_seed(0)
    mha = double(nn.MultiheadAttention(4, 2))
    q = Tensor(rng.normal(size=(3, 2, 4)), requires_grad=True)
    k = Tensor(rng.normal(size=(5, 2, 4)), requires_grad=True)
    mask = np.zeros((3, 5), bool)
    mask[1, :2] = True

    def fn(q, k, *params):
        return mha(q, k, k, attn_mask=mask)[0]

    assert gradcheck(fn, [q, k, *mha.parameters()])


def test_added_bias_and_zero_keys_against_the_equations():
    """add_bias_kv appends the learned (bias_k, bias_v) to the projected keys and values,
    add_zero_attn a zero key and value per head; masks never hide the added keys."""
    minidl.manual_seed(0)
    mha = double(nn.MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True))
    # PyTorch's order: the module's own parameters first, then out_proj's
    assert names_and_shapes(mha) == [
        ("in_proj_weight", (24, 8)), ("in_proj_bias", (24,)), ("bias_k", (1, 1, 8)),
        ("bias_v", (1, 1, 8)), ("out_proj.weight", (8, 8)), ("out_proj.bias", (8,))]
    assert mha.bias_k.data.any() and mha.bias_v.data.any()   # xavier_normal_, not zeros
    q, k = rng.normal(size=(3, 2, 8)), rng.normal(size=(4, 2, 8))
    padding = np.array([[False, False, False, True], [True, False, False, False]])
    out, weights = mha(Tensor(q), Tensor(k), Tensor(k), key_padding_mask=padding,
                       average_attn_weights=False)
    assert weights.shape == (2, 2, 3, 6)                     # 4 keys + bias + zero
    w_in, b_in = mha.in_proj_weight.data, mha.in_proj_bias.data
    for n in range(2):
        qh = q[:, n] @ w_in[:8].T + b_in[:8]
        kh = np.vstack([k[:, n] @ w_in[8:16].T + b_in[8:16], mha.bias_k.data[0]])
        vh = np.vstack([k[:, n] @ w_in[16:].T + b_in[16:], mha.bias_v.data[0]])
        heads = []
        for h in range(2):
            r = slice(4 * h, 4 * h + 4)
            keys = np.vstack([kh[:, r], np.zeros((1, 4))])
            values = np.vstack([vh[:, r], np.zeros((1, 4))])
            scores = qh[:, r] @ keys.T / 2.0
            scores[:, :4][:, padding[n]] = -np.inf
            attention = softmax(scores)
            np.testing.assert_allclose(weights.data[n, h], attention, atol=1e-12)
            heads.append(attention @ values)
        want = np.concatenate(heads, 1) @ mha.out_proj.weight.data.T + mha.out_proj.bias.data
        np.testing.assert_allclose(out.data[:, n], want, atol=1e-12)
    # a query whose every real key is masked still has the added keys to attend to
    everything = np.ones((3, 4), bool)
    out, weights = mha(Tensor(q), Tensor(k), Tensor(k), attn_mask=everything)
    assert np.isfinite(out.data).all() and not weights.data[..., :4].any()


def test_added_bias_and_zero_keys_gradcheck_float64():
    minidl.manual_seed(0)
    mha = double(nn.MultiheadAttention(4, 2, add_bias_kv=True, add_zero_attn=True))
    q = Tensor(rng.normal(size=(3, 2, 4)), requires_grad=True)
    k = Tensor(rng.normal(size=(5, 2, 4)), requires_grad=True)

    def fn(q, k, *params):
        return mha(q, k, k)[0]

    assert gradcheck(fn, [q, k, *mha.parameters()])


def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def ff_ref(layer, x):
    hidden = np.maximum(x @ layer.linear1.weight.data.T + layer.linear1.bias.data, 0)
    return hidden @ layer.linear2.weight.data.T + layer.linear2.bias.data


def norm_ref(norm, x):
    return layer_norm(x, norm.weight.data, norm.bias.data)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_against_the_equations(norm_first):
    minidl.manual_seed(0)
    layer = double(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                              norm_first=norm_first))
    for p in (layer.norm1.weight, layer.norm2.bias):   # not the trivial 1 and 0
        p.data[:] = rng.normal(size=p.shape)
    x = rng.normal(size=(4, 3, 8))

    def sa(y):
        return mha_ref(y, y, y, *mha_params(layer.self_attn), heads=2)[0]

    if norm_first:
        y = x + sa(norm_ref(layer.norm1, x))
        want = y + ff_ref(layer, norm_ref(layer.norm2, y))
    else:
        y = norm_ref(layer.norm1, x + sa(x))
        want = norm_ref(layer.norm2, y + ff_ref(layer, y))
    np.testing.assert_allclose(layer(Tensor(x)).data, want, atol=1e-10)


def test_decoder_layer_against_the_equations():
    minidl.manual_seed(0)
    layer = double(nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                              batch_first=True))
    tgt, memory = rng.normal(size=(2, 3, 8)), rng.normal(size=(2, 6, 8))
    causal = np.triu(np.ones((3, 3), bool), 1)   # True above the diagonal: the future is masked
    t, m = tgt.transpose(1, 0, 2), memory.transpose(1, 0, 2)   # the reference is sequence first
    additive = np.broadcast_to(np.where(causal, -np.inf, 0.0), (2, 2, 3, 3))
    y = norm_ref(layer.norm1, t + mha_ref(t, t, t, *mha_params(layer.self_attn), heads=2,
                                          additive=additive)[0])
    y = norm_ref(layer.norm2, y + mha_ref(y, m, m, *mha_params(layer.multihead_attn),
                                          heads=2)[0])
    want = norm_ref(layer.norm3, y + ff_ref(layer, y)).transpose(1, 0, 2)
    got = layer(Tensor(tgt), Tensor(memory), tgt_mask=causal, tgt_is_causal=True)
    np.testing.assert_allclose(got.data, want, atol=1e-10)


def test_layers_gradcheck_float64():
    minidl.manual_seed(0)
    encoder = double(nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0))
    decoder = double(nn.TransformerDecoderLayer(4, 2, dim_feedforward=6, dropout=0.0))
    src = Tensor(rng.normal(size=(3, 2, 4)), requires_grad=True)
    tgt = Tensor(rng.normal(size=(2, 2, 4)), requires_grad=True)
    assert gradcheck(lambda s, *p: encoder(s), [src, *encoder.parameters()])
    assert gradcheck(lambda t, s, *p: decoder(t, s), [tgt, src, *decoder.parameters()])


def test_dropout_only_in_training():
    minidl.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.5)
    x = Tensor(rng.normal(size=(4, 2, 8)).astype(np.float32))
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, layer(x).data)
    layer.train()
    assert not np.allclose(layer(x).data, layer(x).data)


def test_a_training_step_lowers_the_loss():
    minidl.manual_seed(0)
    model = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
    x = Tensor(rng.normal(size=(4, 5, 8)).astype(np.float32))
    target = rng.normal(size=(4, 5, 8)).astype(np.float32)
    optimizer = Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = ((model(x) - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


# ---- errors ----------------------------------------------------------------------------------
def test_bad_construction():
    with pytest.raises(ValueError, match="embed_dim must be a positive multiple of num_heads, "
                                         "got embed_dim=10, num_heads=3"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="activation must be 'relu', 'gelu'"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")


def test_mismatched_embedding_sizes_are_named():
    mha = nn.MultiheadAttention(8, 2)
    q = Tensor(np.zeros((3, 2, 8), np.float32))
    with pytest.raises(ValueError, match=r"MultiheadAttention: expected query with embedding "
                                         r"dimension 8, got shape \(3, 2, 6\)"):
        mha(Tensor(np.zeros((3, 2, 6), np.float32)), q, q)
    with pytest.raises(ValueError, match="expected key with embedding dimension 8"):
        mha(q, Tensor(np.zeros((3, 2, 4), np.float32)), q)
    with pytest.raises(ValueError, match=r"key \(3, 2, 8\) and value \(4, 2, 8\)"):
        mha(q, q, Tensor(np.zeros((4, 2, 8), np.float32)))
    with pytest.raises(ValueError, match="different batch sizes"):
        mha(q, Tensor(np.zeros((3, 5, 8), np.float32)), Tensor(np.zeros((3, 5, 8), np.float32)))
    with pytest.raises(ValueError, match=r"all be 3-D \(batched\) or all 2-D"):
        mha(q, Tensor(np.zeros((3, 8), np.float32)), Tensor(np.zeros((3, 8), np.float32)))


def test_bad_mask_shapes_are_named():
    mha = nn.MultiheadAttention(8, 2)
    q = Tensor(np.zeros((3, 2, 8), np.float32))
    k = Tensor(np.zeros((5, 2, 8), np.float32))
    with pytest.raises(ValueError, match=r"attn_mask must be \[L, S\] = \[3, 5\] or "
                                         r"\[N \* num_heads, L, S\] = \[4, 3, 5\], got \(5, 3\)"):
        mha(q, k, k, attn_mask=np.zeros((5, 3), bool))
    with pytest.raises(ValueError, match=r"key_padding_mask must be \[N, S\] = \[2, 5\], got "
                                         r"\(5, 2\)"):
        mha(q, k, k, key_padding_mask=np.zeros((5, 2), bool))
    with pytest.raises(TypeError, match="attn_mask must be bool"):
        mha(q, k, k, attn_mask=np.zeros((3, 5), int))
    with pytest.raises(ValueError, match="is_causal=True is a hint"):
        mha(q, k, k, is_causal=True)
    every_key = np.ones((2, 5), bool)
    with pytest.raises(ValueError, match="MultiheadAttention: the mask forbids every key"):
        mha(q, k, k, key_padding_mask=every_key)
