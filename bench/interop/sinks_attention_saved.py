"""Bytes autograd keeps for backward in gpt-oss's eager attention with sinks, on CPU in fp32 or bf16.

usage: sinks_attention_saved.py [--llama4|--gemma2] BATCH SEQ HEADS KV_HEADS HEAD_DIM float32|bfloat16

Runs the attention as transformers' gpt_oss eager_attention_forward does: K/V repeated to the query heads (repeat_kv),
q·kᵀ times the scale, plus the causal mask, the per-head sink logit concatenated as one more column, the row maximum
subtracted, softmax in the logits' own dtype, the sink column dropped, the product with V, transposed and made
contiguous. q, k and v need a gradient (as when LoRA adapts their projections); the sinks are frozen. Walks the autograd
graph, sums the distinct storages its nodes saved, and prints {"saved_bytes": N, "scores_bytes": M, "breakdown": …},
where scores_bytes leaves out q and the (repeated) k and v: what the attention keeps per score and per row.
With --llama4, Llama 4's eager_attention_forward instead (transformers models/llama4: "llama4 doesn't cast attn
weights to fp32"): q·kᵀ times the scale, plus the causal mask, softmax(attn_weights, dim=-1) in the scores' dtype, the
product with V. With --gemma2, Gemma 2's (transformers models/gemma2): q·kᵀ times the scale, the soft-cap (scores / 50,
tanh, · 50), plus the causal mask, softmax(dtype=float32).to(the scores' dtype), the product with V.
An independent measurement for the planner's attention-scores line: it shares no code with it (the graph walk is
moe_saved.py's).
"""
import json, sys
import torch
import torch.nn.functional as F

from moe_saved import saved_storages


def repeat_kv(x, groups):
    b, kv_heads, s, d = x.shape
    if groups == 1:
        return x
    return x[:, :, None, :, :].expand(b, kv_heads, groups, s, d).reshape(b, kv_heads * groups, s, d)


def masked_scores(q, k, v, scaling, softcap=None):
    """eager_attention_forward up to the mask: K/V repeated to the query heads, q·kᵀ times the scale, the optional
    soft-cap (scores / cap, tanh, · cap: Gemma 2), plus the causal mask."""
    groups = q.shape[1] // k.shape[1]
    key_states, value_states = repeat_kv(k, groups), repeat_kv(v, groups)
    s = q.shape[-2]
    mask = torch.triu(torch.full((s, s), float("-inf"), dtype=q.dtype), diagonal=1)[None, None]
    attn_weights = torch.matmul(q, key_states.transpose(2, 3)) * scaling
    if softcap is not None:
        attn_weights = attn_weights / softcap
        attn_weights = torch.tanh(attn_weights)
        attn_weights = attn_weights * softcap
    return attn_weights + mask, key_states, value_states


def with_values(probs, key_states, value_states):
    out = torch.matmul(probs, value_states)
    return out.transpose(1, 2).contiguous(), key_states, value_states


def sinks_attention(q, k, v, sinks, scaling):
    attn_weights, key_states, value_states = masked_scores(q, k, v, scaling)
    s = q.shape[-2]
    sink_column = sinks.reshape(1, -1, 1, 1).expand(q.shape[0], -1, s, -1)
    combined_logits = torch.cat([attn_weights, sink_column], dim=-1)
    combined_logits = combined_logits - combined_logits.max(dim=-1, keepdim=True).values
    probs = F.softmax(combined_logits, dim=-1, dtype=combined_logits.dtype)
    return with_values(probs[..., :-1], key_states, value_states)


def llama4_attention(q, k, v, scaling):
    attn_weights, key_states, value_states = masked_scores(q, k, v, scaling)
    return with_values(F.softmax(attn_weights, dim=-1), key_states, value_states)


def gemma2_attention(q, k, v, scaling, softcap=50.0):
    attn_weights, key_states, value_states = masked_scores(q, k, v, scaling, softcap)
    probs = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(q.dtype)
    return with_values(probs, key_states, value_states)


def main():
    args = sys.argv[1:]
    variant = args[0][2:] if args[0].startswith("--") else "gpt-oss"
    if variant != "gpt-oss":
        args = args[1:]
    b, s, heads, kv_heads, d = (int(x) for x in args[:5])
    dtype = getattr(torch, args[5])
    torch.manual_seed(0)
    q = torch.randn(b, heads, s, d, dtype=dtype, requires_grad=True)
    k = torch.randn(b, kv_heads, s, d, dtype=dtype, requires_grad=True)
    v = torch.randn(b, kv_heads, s, d, dtype=dtype, requires_grad=True)
    sinks = torch.randn(heads, dtype=dtype)
    out, key_states, value_states = (llama4_attention(q, k, v, d ** -0.5) if variant == "llama4"
                                     else gemma2_attention(q, k, v, d ** -0.5) if variant == "gemma2"
                                     else sinks_attention(q, k, v, sinks, d ** -0.5))
    storages, breakdown = saved_storages(out, {})
    projections = {t.storage().data_ptr() for t in (q, key_states, value_states)}
    scores = sum(n for ptr, n in storages.items() if ptr not in projections)
    print(json.dumps({"saved_bytes": sum(storages.values()), "scores_bytes": scores, "breakdown": breakdown}))


if __name__ == "__main__":
    main()
