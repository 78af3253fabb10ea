"""Bytes autograd keeps for backward in DeepSeek's multi-head latent attention (MLA), on CPU in fp32 or bf16.

usage: mla_saved.py TOKENS HIDDEN HEADS Q_RANK KV_RANK NOPE ROPE V_DIM float32|bfloat16 eager|sdpa|flash TRAIN INPUT_GRAD [BATCH]

Runs the attention half of a DeepSeek-V2/V3 decoder layer as transformers 5 does (models/deepseek_v3,
DeepseekV3Attention; DeepseekV2Attention takes the same tensors): input_layernorm, the query through q_a_proj →
q_a_layernorm → q_b_proj (or one q_proj when Q_RANK is 0), the keys and values through kv_a_proj_with_mqa, split into the
latent and the rotary part, kv_a_layernorm → kv_b_proj on the latent, split into k_nope and the values; rotary on the
query's and the key's rotary parts, the key's broadcast to every head, both concatenated back; attention; o_proj; the
residual add and post_attention_layernorm. RMSNorm as transformers writes it (fp32 upcast, rsqrt, cast back, weight).
`eager` is transformers' eager_attention_forward (q·kᵀ · scale + causal mask, softmax in fp32 cast back, p·v,
transposed contiguous); `sdpa` stands for the memory-efficient kernel SDPA picks when the value head differs from the
query's (flash needs equal head dims): a function that saves what aten's _scaled_dot_product_efficient_attention saves
(query, key, value, output and an fp32 log-sum-exp per head and row), returning its output in [b, s, heads, v] layout;
`flash` is transformers' flash_attention_2 path: the values padded to the query's head width (F.pad), a function saving
what flash-attn's saves (q, k, the padded v, its output, the log-sum-exp), its output sliced back to v_head_dim and
made contiguous for o_proj. TOKENS is per sequence; BATCH sequences (default 1).
TRAIN: `lora` adapts every attention linear with PEFT's LoRA (rank 4, no dropout: lora_A keeps its input, lora_B keeps
A's output), `full` trains every weight, `o_proj` adapts only o_proj. INPUT_GRAD 1: the layer input needs a gradient
(something before the layer trains). Walks the autograd graph, sums the distinct storages its nodes saved leaving out the
parameters and the rotary tables (computed once per forward for every layer), and prints {"saved_bytes": N,
"row_statistics_bytes": M, …}, M being the norms' per-row rsqrt within N.
An independent measurement for the planner's attention lines: it shares no code with them (the graph walk is
moe_saved.py's).
"""
import json, sys
import torch
import torch.nn.functional as F

from moe_saved import saved_storages

RANK = 4


class Linear:
    """nn.Linear without bias, optionally with PEFT's LoRA branch (x @ Aᵀ @ Bᵀ · scaling added to the base output)."""

    def __init__(self, in_f, out_f, dtype, train, lora):
        self.w = (torch.randn(out_f, in_f) * 0.05).to(dtype).requires_grad_(train)
        self.a = (torch.randn(RANK, in_f) * 0.05).to(dtype).requires_grad_(True) if lora else None
        self.b = (torch.randn(out_f, RANK) * 0.05).to(dtype).requires_grad_(True) if lora else None

    def __call__(self, x):
        out = F.linear(x, self.w)
        if self.a is not None:
            out = out + F.linear(F.linear(x, self.a), self.b) * 2.0
        return out

    def params(self):
        return [t for t in (self.w, self.a, self.b) if t is not None]


class RmsNorm:
    # Every norm's per-row rsqrt, to report apart.
    row_statistics = []

    def __init__(self, width, dtype, train):
        self.w = torch.ones(width, dtype=dtype).requires_grad_(train)

    def __call__(self, x):
        dtype = x.dtype
        x = x.to(torch.float32)
        variance = x.pow(2).mean(-1, keepdim=True)
        rsqrt = torch.rsqrt(variance + 1e-6)
        RmsNorm.row_statistics.append(rsqrt)
        x = x * rsqrt
        return self.w * x.to(dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _causal_attention(q, k, v, scale):
    """Causal attention in fp32; the output in [b, s, heads, d] memory order, and the log-sum-exp per head and row."""
    scores = (q.float() @ k.float().transpose(-2, -1)) * scale
    s = q.shape[-2]
    scores = scores + torch.triu(torch.full((s, s), float("-inf")), diagonal=1)
    lse = torch.logsumexp(scores, dim=-1)
    out = (torch.softmax(scores, dim=-1) @ v.float()).to(q.dtype)
    return out.transpose(1, 2).contiguous().transpose(1, 2), lse


class SavedAttention(torch.autograd.Function):
    """A fused attention kernel as autograd sees it: aten _scaled_dot_product_efficient_attention and flash-attn's
    FlashAttnFunc both keep query, key, value, the output and the log-sum-exp for their backward (derivatives.yaml;
    flash_attn_interface.py). Causal attention computed in fp32, the output in [b, s, heads, d] memory order."""

    @staticmethod
    def forward(ctx, q, k, v, scale):
        out, lse = _causal_attention(q, k, v, scale)
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError("only the saved tensors are measured")


def mla(T, h, heads, q_rank, kv_rank, nope, rope, vd, dtype, kernel, train, input_grad, B=1):
    torch.manual_seed(0)
    full, lora_all = train == "full", train == "lora"
    qh = nope + rope
    x = torch.randn(B, T, h, dtype=dtype, requires_grad=input_grad)
    norm1, norm2 = RmsNorm(h, dtype, full), RmsNorm(h, dtype, full)
    lin = lambda i, o: Linear(i, o, dtype, full, lora_all)
    if q_rank:
        q_a, q_a_norm, q_b = lin(h, q_rank), RmsNorm(q_rank, dtype, full), lin(q_rank, heads * qh)
    else:
        q_proj = lin(h, heads * qh)
    kv_a, kv_a_norm, kv_b = lin(h, kv_rank + rope), RmsNorm(kv_rank, dtype, full), lin(kv_rank, heads * (nope + vd))
    o_proj = Linear(heads * vd, h, dtype, full, lora_all or train == "o_proj")
    params = [norm1.w, norm2.w, kv_a_norm.w, *kv_a.params(), *kv_b.params(), *o_proj.params()]
    params += [q_a_norm.w, *q_a.params(), *q_b.params()] if q_rank else q_proj.params()
    # Parameters (adapters included) are counted by the weight and adapter lines, not as activations.
    weights = {t.storage().data_ptr(): t for t in params}
    # The rotary tables: computed once per forward (DeepseekV3RotaryEmbedding) and shared by every layer.
    position = torch.arange(T, dtype=torch.float32)[:, None] * (10000.0 ** (-torch.arange(0, rope, 2) / rope))[None]
    emb = torch.cat((position, position), dim=-1)
    cos, sin = emb.cos().to(dtype)[None, None], emb.sin().to(dtype)[None, None]
    weights.update({t.storage().data_ptr(): t for t in (cos, sin)})

    y = norm1(x)
    q = q_b(q_a_norm(q_a(y))) if q_rank else q_proj(y)
    q = q.view(B, T, heads, qh).transpose(1, 2)
    q_pass, q_rot = torch.split(q, [nope, rope], dim=-1)
    compressed = kv_a(y)
    k_pass, k_rot = torch.split(compressed, [kv_rank, rope], dim=-1)
    k_pass = kv_b(kv_a_norm(k_pass)).view(B, T, heads, nope + vd).transpose(1, 2)
    k_pass, value = torch.split(k_pass, [nope, vd], dim=-1)
    k_rot = k_rot.view(B, 1, T, rope)
    q_rot = q_rot * cos + rotate_half(q_rot) * sin
    k_rot = k_rot * cos + rotate_half(k_rot) * sin
    k_rot = k_rot.expand(*k_pass.shape[:-1], -1)
    query = torch.cat((q_pass, q_rot), dim=-1)
    key = torch.cat((k_pass, k_rot), dim=-1)
    scale = qh ** -0.5
    if kernel == "eager":
        mask = torch.triu(torch.full((T, T), float("-inf"), dtype=dtype), diagonal=1)[None, None]
        attn = torch.matmul(query, key.transpose(2, 3)) * scale
        attn = attn + mask
        attn = F.softmax(attn, dim=-1, dtype=torch.float32).to(query.dtype)
        out = torch.matmul(attn, value).transpose(1, 2).contiguous()
    elif kernel == "flash":
        value = F.pad(value, [0, qh - vd])
        out = SavedAttention.apply(query, key, value, scale).transpose(1, 2)[:, :, :, :vd]
    else:
        out = SavedAttention.apply(query, key, value, scale).transpose(1, 2).contiguous()
    out = o_proj(out.reshape(B, T, heads * vd).contiguous())
    return norm2(x + out), weights


if __name__ == "__main__":
    a = sys.argv[1:]
    T, h, heads, q_rank, kv_rank, nope, rope, vd = (int(v) for v in a[:8])
    dtype, kernel, train, input_grad = getattr(torch, a[8]), a[9], a[10], a[11] == "1"
    batch = int(a[12]) if len(a) > 12 else 1
    out, weights = mla(T, h, heads, q_rank, kv_rank, nope, rope, vd, dtype, kernel, train, input_grad, batch)
    # torch 1.13's MeanBackward1 keeps its input (RMSNorm's x²); PyTorch 2.x keeps only its sizes and element count
    # (derivatives.yaml, mean.dim: mean_backward(grad, self.sym_sizes(), dim, self.sym_numel(), keepdim)).
    storages, breakdown = saved_storages(out, weights, skip={("MeanBackward1", "self")})
    # RMSNorm's per-row rsqrt (4 B a row), which the planner's norm line leaves out beside the row-wide tensors.
    rows = sum(storages.get(t.storage().data_ptr(), 0) for t in RmsNorm.row_statistics)
    print(json.dumps({"saved_bytes": sum(storages.values()), "row_statistics_bytes": rows, "breakdown": breakdown}))
