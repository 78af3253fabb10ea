"""Bytes autograd keeps for backward in transformers' sparse MoE blocks, on CPU in fp32 or bf16.

usage: moe_saved.py TOKENS HIDDEN EXPERT_WIDTH EXPERTS TOP_K [none|router|all|peft] [NORM 1|0] [eager|grouped] [float32|bfloat16] [SHARED_WIDTH]
       moe_saved.py --gpt-oss TOKENS HIDDEN EXPERT_WIDTH EXPERTS TOP_K [none|router|experts|peft] [eager|grouped]
       moe_saved.py --phimoe TOKENS HIDDEN EXPERT_WIDTH EXPERTS 2 none|router|all|lora-router float32|bfloat16 INPUT_JITTER [eager|grouped]
       moe_saved.py --llama4 TOKENS HIDDEN EXPERT_WIDTH EXPERTS TOP_K none|router|all float32|bfloat16
       moe_saved.py --deepseek2 TOKENS HIDDEN EXPERT_WIDTH EXPERTS TOP_K none|router|all SHARED GROUPS TOPK_GROUPS float32|bfloat16 eager|grouped LIMITED
       moe_saved.py --deepseek TOKENS HIDDEN EXPERT_WIDTH EXPERTS TOP_K none|router|all SHARED GROUPS TOPK_GROUPS float32|bfloat16 [eager|grouped]
Runs the block as transformers 5 does: MixtralSparseMoeBlock / Qwen3MoeSparseMoeBlock (TopKRouter: linear, softmax in
fp32, top-k, renormalised in place, weights left in fp32; the stacked experts through the eager loop, gathering each
expert's rows, SwiGLU, the routing weight, index_add_, or through grouped_mm_experts_forward, every token-expert pair
sorted by expert, two grouped matmuls emulated with the real op's saved tensors, the weight, the order restored, the k
outputs summed), or with --gpt-oss as GptOssMLP does in training (GptOssTopKRouter: top-k of the biased
logits, softmax over them, scattered; GptOssExperts' training loop over stacked [E, h, 2I] weights with biases, gate and
up interleaved, clamped at swiglu_limit 7, glu = gate · sigmoid(1.702 · gate), (up + 1) · glu, down, routing weight,
index_add_), with every weight frozen (or only the router, or only the experts, trainable; `peft` adapts the stacks as
PEFT's ParamWrapper does for target_parameters: the loop runs on W + ΔW, a tensor of its own) and an input that requires
grad, as a layer's MLP input does when anything before it trains. Walks the autograd graph and sums the distinct storages its
nodes saved, leaving out the weights (they are held anyway), and prints {"saved_bytes": N} plus a breakdown.
An independent measurement for the planner's MoE activation lines: it shares no code with them.
"""
import json, sys
import torch
import torch.nn.functional as F


def gpt_oss(T, h, I, E, k, mode, backend="eager"):
    torch.manual_seed(0)
    x = torch.randn(T, h, requires_grad=True)
    router_w, router_b = torch.randn(E, h) * 0.1, torch.randn(E) * 0.1
    gate_up = (torch.randn(E, h, 2 * I) * 0.05).requires_grad_(mode == "experts")
    gate_up_b = torch.randn(E, 2 * I) * 0.05
    down = (torch.randn(E, I, h) * 0.05).requires_grad_(mode == "experts")
    down_b = torch.randn(E, h) * 0.05
    weights = {t.storage().data_ptr(): t for t in [router_w, router_b, gate_up, gate_up_b, down, down_b]}
    if mode == "peft":
        # ParamWrapper: the experts multiply by the merged W + ΔW (ΔW from the adapter factors, trainable).
        gate_up = gate_up + torch.zeros_like(gate_up, requires_grad=True)
        down = down + torch.zeros_like(down, requires_grad=True)
    y = x * 1.0
    logits = F.linear(y, router_w, router_b)
    top_v, top_i = torch.topk(logits, k, dim=-1)
    top_v = F.softmax(top_v, dim=1, dtype=top_v.dtype)
    if backend == "grouped":
        # grouped_mm_experts_forward with is_transposed and has_bias (GptOssExperts in transformers 5): the biases are
        # gathered by the sorted expert ids, the gate is GptOssExperts._apply_gate.
        experts_g, weights_g, selected_g, inv_perm, offs = sorted_pairs(y, top_i, top_v, E)
        gu = _GroupedMM.apply(selected_g, gate_up, offs) + gate_up_b[experts_g]
        gate, up = gu[..., ::2], gu[..., 1::2]
        gate = gate.clamp(min=None, max=7.0)
        up = up.clamp(min=-7.0, max=7.0)
        glu = gate * torch.sigmoid(gate * 1.702)
        out_g = _GroupedMM.apply((up + 1) * glu, down, offs) + down_b[experts_g]
        out_g = out_g * weights_g.unsqueeze(-1)
        return out_g[inv_perm].view(T, k, -1).sum(dim=1).to(y.dtype), weights
    scores = torch.zeros_like(logits).scatter_(1, top_i, top_v)
    out = torch.zeros_like(y)
    with torch.no_grad():
        mask = F.one_hot(top_i, num_classes=E + 1).permute(2, 1, 0)
        hit = torch.greater(mask.sum(dim=(-1, -2)), 0).nonzero()
    for e in hit[:]:
        e = e[0]
        if e == E:
            continue
        with torch.no_grad():
            _, tokens = torch.where(mask[e])
        rows = y[tokens]
        gu = rows @ gate_up[e] + gate_up_b[e]
        gate, up = gu[..., ::2], gu[..., 1::2]
        gate = gate.clamp(min=None, max=7.0)
        up = up.clamp(min=-7.0, max=7.0)
        glu = gate * torch.sigmoid(gate * 1.702)
        expert = ((up + 1) * glu) @ down[e] + down_b[e]
        out.index_add_(0, tokens, (expert * scores[tokens, e, None]).to(y.dtype))
    return out, weights


def deepseek(T, h, I, E, k, mode, shared=1, groups=1, topk_groups=1, dtype=torch.float32, backend="eager"):
    """DeepseekV3MoE.forward as transformers 5 runs it (models/deepseek_v3): DeepseekV3TopkRouter's linear in fp32,
    route_tokens_to_experts (sigmoid, grouped top-k of the bias-corrected scores, gather, renormalise in place with
    norm_topk_prob, scale), then DeepseekV3NaiveMoe's eager loop (MixtralExperts'): an accumulator in the hidden dtype,
    torch.where over each expert's one-hot mask, the routed rows through a SwiGLU expert, the product with the gathered
    fp32 weight cast back to the hidden dtype, index_add_; the shared experts run on every token and are added."""
    torch.manual_seed(0)
    x = torch.randn(T, h, dtype=dtype, requires_grad=True)
    train = mode == "all"
    gate = (torch.randn(E, h) * 0.1).to(dtype).requires_grad_(mode in ("router", "all"))
    bias = torch.zeros(E)
    w1 = [(torch.randn(I, h) * 0.05).to(dtype) for _ in range(E)]
    w3 = [(torch.randn(I, h) * 0.05).to(dtype) for _ in range(E)]
    w2 = [(torch.randn(h, I) * 0.05).to(dtype) for _ in range(E)]
    s1, s3, s2 = ((torch.randn(*shape) * 0.05).to(dtype).requires_grad_(train) for shape in [(I * shared, h), (I * shared, h), (h, I * shared)])
    weights = {t.storage().data_ptr(): t for t in [gate, bias, s1, s2, s3]}
    y = x * 1.0
    logits = F.linear(y.type(torch.float32), gate.type(torch.float32))
    scores = logits.sigmoid()
    with torch.no_grad():
        choice = scores.view(-1, E) + bias.unsqueeze(0)
        group_scores = choice.view(-1, groups, E // groups).topk(2, dim=-1)[0].sum(dim=-1)
        group_idx = torch.topk(group_scores, k=topk_groups, dim=-1, sorted=False)[1]
        group_mask = torch.zeros_like(group_scores)
        group_mask.scatter_(1, group_idx, 1)
        score_mask = group_mask.unsqueeze(-1).expand(-1, groups, E // groups).reshape(-1, E)
        choice = choice.masked_fill(~score_mask.bool(), 0.0)
        top_i = torch.topk(choice, k=k, dim=-1, sorted=False)[1]
    top_w = scores.gather(1, top_i)
    top_w /= top_w.sum(dim=-1, keepdim=True) + 1e-20
    top_w = top_w * 2.5
    # DeepseekV3NaiveMoe holds the experts stacked (transformers 5 converts the checkpoint's per-expert linears).
    gate_up = torch.stack([torch.cat([a, b]) for a, b in zip(w1, w3)]).requires_grad_(train)
    down = torch.stack(w2).requires_grad_(train)
    weights.update({t.storage().data_ptr(): t for t in [gate_up, down]})
    run = experts_grouped if backend == "grouped" else experts_eager
    out = run(y, top_i, top_w, gate_up, down, E) + F.linear(F.silu(F.linear(y, s1)) * F.linear(y, s3), s2)
    return out, weights


def deepseek_v2(T, h, I, E, k, mode, shared=1, groups=1, topk_groups=1, dtype=torch.float32, backend="eager", limited=False):
    """DeepseekV2Moe.forward (transformers 5, models/deepseek_v2): the gate's linear on fp32 copies of the input and the
    weight, softmax in fp32, top-k of the scores (greedy) or of the scores masked to the best groups
    (group_limited_greedy, a masked_fill that autograd keeps), scaled by routed_scaling_factor, DeepseekV2Experts'
    stacked experts through the experts backend, and the shared experts."""
    torch.manual_seed(0)
    x = torch.randn(T, h, dtype=dtype, requires_grad=True)
    train = mode == "all"
    gate = (torch.randn(E, h) * 0.1).to(dtype).requires_grad_(mode in ("router", "all"))
    gate_up = (torch.randn(E, 2 * I, h) * 0.05).to(dtype).requires_grad_(train)
    down = (torch.randn(E, h, I) * 0.05).to(dtype).requires_grad_(train)
    s1, s3, s2 = ((torch.randn(*shape) * 0.05).to(dtype).requires_grad_(train) for shape in [(I * shared, h), (I * shared, h), (h, I * shared)])
    weights = {t.storage().data_ptr(): t for t in [gate, gate_up, down, s1, s2, s3]}
    y = x * 1.0
    probs = F.linear(y.type(torch.float32), gate.type(torch.float32)).softmax(dim=-1, dtype=torch.float32)
    if limited:
        group_scores = probs.view(T, groups, -1).max(dim=-1).values
        group_idx = torch.topk(group_scores, k=topk_groups, dim=-1, sorted=False)[1]
        group_mask = torch.zeros_like(group_scores)
        group_mask.scatter_(1, group_idx, 1)
        score_mask = group_mask.unsqueeze(-1).expand(T, groups, E // groups).reshape(T, -1)
        probs = probs.masked_fill(~score_mask.bool(), 0.0)
    top_w, top_i = torch.topk(probs, k=k, dim=-1, sorted=False)
    top_w = top_w * 1.5
    run = experts_grouped if backend == "grouped" else experts_eager
    out = run(y, top_i, top_w, gate_up, down, E) + F.linear(F.silu(F.linear(y, s1)) * F.linear(y, s3), s2)
    return out, weights


def llama4(T, h, I, E, k, mode, dtype=torch.float32):
    """Llama4TextMoe.forward (transformers models/llama4): Llama4Router (a linear, top-k, the top values scattered into
    -inf, sigmoid in fp32 cast back), every token repeated for every expert and scaled by its score, Llama4TextExperts'
    bmm over stacked [E, h, 2I] / [E, I, h] weights (gate and up are chunks of one output), and the shared expert."""
    torch.manual_seed(0)
    train = mode == "all"
    x = torch.randn(T, h, dtype=dtype, requires_grad=True)
    router = (torch.randn(E, h) * 0.1).to(dtype).requires_grad_(mode in ("router", "all"))
    gate_up = (torch.randn(E, h, 2 * I) * 0.05).to(dtype).requires_grad_(train)
    down = (torch.randn(E, I, h) * 0.05).to(dtype).requires_grad_(train)
    s1, s3, s2 = ((torch.randn(*shape) * 0.05).to(dtype).requires_grad_(train) for shape in [(I, h), (I, h), (h, I)])
    weights = {t.storage().data_ptr(): t for t in [router, gate_up, down, s1, s2, s3]}
    y = x * 1.0
    logits = F.linear(y, router)
    top_v, top_i = torch.topk(logits, k, dim=1)
    scores = torch.full_like(logits, float("-inf")).scatter_(1, top_i, top_v)
    scores = torch.sigmoid(scores.float()).to(scores.dtype)
    routed = y.repeat(scores.shape[1], 1)
    routed = routed * scores.transpose(0, 1).reshape(-1, 1)
    routed = routed.view(E, -1, h)
    gu = torch.bmm(routed, gate_up)
    g, u = gu.chunk(2, dim=-1)
    routed_out = torch.bmm(u * F.silu(g), down).view(-1, h)
    out = F.linear(F.silu(F.linear(y, s1)) * F.linear(y, s3), s2)
    out.add_(routed_out.reshape(E, -1, h).sum(dim=0))
    return out, weights


class _Multiplier(torch.autograd.Function):
    """PhiMoE's MultiplierProcessor: the forward scales the gathered gate by the midpoint mask; it keeps the gathered gate,
    the chosen expert and the masked softmax for its backward."""

    @staticmethod
    def forward(ctx, scores, multiplier, chosen, gates, midpoint):
        ctx.save_for_backward(multiplier, chosen, gates)
        return multiplier * midpoint

    @staticmethod
    def backward(ctx, grad):
        multiplier, chosen, gates = ctx.saved_tensors
        grad = grad * multiplier
        expanded = gates * grad.mul(-1)
        expanded.scatter_add_(dim=-1, index=chosen, src=grad)
        return expanded, None, None, None, None


def _sparsemixer_pick(scores, masked_from, eps):
    """One of sparsemixer's two picks in training: mask the scores far below the best, Gumbel-sample an expert, softmax,
    gather its weight, and pass it through the multiplier with the midpoint mask."""
    with torch.no_grad():
        best, _ = masked_from.max(dim=-1, keepdim=True)
        factor = scores.abs().clamp(min=best)
        far = ((best - scores) / factor) > (2 * eps)
    gates = masked_from.masked_fill(far, float("-inf"))
    chosen = (gates - torch.empty_like(gates).exponential_().log()).max(dim=-1)[1].unsqueeze(-1)
    gates = torch.softmax(gates, dim=-1)
    picked = gates.gather(dim=-1, index=chosen)
    top, top_i = gates.max(dim=-1, keepdim=True)
    midpoint = torch.add(0.3333, torch.logical_or(chosen == top_i, torch.rand_like(top) > 0.75), alpha=0.6667).type_as(gates)
    return _Multiplier.apply(scores, picked, chosen, gates, midpoint), chosen


def phimoe(T, h, I, E, mode, dtype=torch.float32, input_jitter=0.0, backend="eager"):
    """PhimoeSparseMoeBlock.forward in training (transformers models/phimoe): optional input jitter (an in-place multiply
    by uniform noise), the router linear, sparsemixer's two picks (the second from the scores with the first scattered to
    -inf), then Mixtral's loop over experts with index_add_."""
    torch.manual_seed(0)
    train = mode == "all"
    x = torch.randn(T, h, dtype=dtype, requires_grad=True)
    gate = (torch.randn(E, h) * 0.1).to(dtype).requires_grad_(mode in ("router", "all"))
    # lora-router: PEFT's LoRA layer on the frozen PhimoeRouter (rank 16, alpha 32, dropout 0; adapters in fp32, as
    # PEFT's autocast_adapter_dtype keeps them): result = base(x); x = x.to(lora_A.dtype);
    # result = result + lora_B(lora_A(x)) * scaling; result.to(the base result's dtype) (peft/tuners/lora/layer.py).
    lora = None
    if mode == "lora-router":
        lora = ((torch.randn(16, h) * 0.1).requires_grad_(), torch.zeros(E, 16, requires_grad=True), 32 / 16)
    w1 = [(torch.randn(I, h) * 0.05).to(dtype).requires_grad_(train) for _ in range(E)]
    w3 = [(torch.randn(I, h) * 0.05).to(dtype).requires_grad_(train) for _ in range(E)]
    w2 = [(torch.randn(h, I) * 0.05).to(dtype).requires_grad_(train) for _ in range(E)]
    weights = {t.storage().data_ptr(): t for t in [gate, *w1, *w2, *w3, *(lora[:2] if lora else [])]}
    y = x * 1.0
    if input_jitter > 0:
        y *= torch.empty_like(y).uniform_(1.0 - input_jitter, 1.0 + input_jitter)
    logits = F.linear(y, gate)
    if lora is not None:
        lora_a, lora_b, scaling = lora
        logits = (logits + F.linear(F.linear(y.to(lora_a.dtype), lora_a), lora_b) * scaling).to(logits.dtype)
    first, first_i = _sparsemixer_pick(logits, logits, 0.01)
    second, second_i = _sparsemixer_pick(logits, torch.scatter(logits, -1, first_i, float("-inf")), 0.01)
    routing, selected = torch.concat((first, second), dim=-1), torch.concat((first_i, second_i), dim=-1)
    if backend == "grouped":
        # PhimoeExperts (transformers 5) holds the experts stacked and takes the experts backend like MixtralExperts.
        gate_up = torch.stack([torch.cat([a, b]) for a, b in zip(w1, w3)]).detach().requires_grad_(train)
        down = torch.stack(w2).detach().requires_grad_(train)
        weights.update({t.storage().data_ptr(): t for t in [gate_up, down]})
        return experts_grouped(y, selected, routing, gate_up, down, E), weights
    out = torch.zeros((T, h), dtype=y.dtype)
    mask = F.one_hot(selected, num_classes=E).permute(2, 1, 0)
    for e in range(E):
        idx, top_x = torch.where(mask[e])
        if top_x.shape[0] == 0:
            continue
        rows = y[None, top_x].reshape(-1, h)
        expert = F.linear(F.silu(F.linear(rows, w1[e])) * F.linear(rows, w3[e]), w2[e])
        out.index_add_(0, top_x, (expert * routing[top_x, idx, None]).to(y.dtype))
    return out, weights


class _GroupedMM(torch.autograd.Function):
    """torch._grouped_mm as autograd sees it (derivatives.yaml: self's gradient reads mat2, mat2's reads self, both read
    offs), on a PyTorch without it: one mm per expert's rows, saving what the real op saves."""

    @staticmethod
    def forward(ctx, a, b, offs):
        out, start = a.new_zeros(a.shape[0], b.shape[-1]), 0
        for e, end in enumerate(offs.tolist()):
            if end > start:
                out[start:end] = a[start:end] @ b[e]
            start = end
        ctx.save_for_backward(b if ctx.needs_input_grad[0] else None, a if ctx.needs_input_grad[1] else None, offs)
        return out

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError("only the saved tensors are measured")


def experts_eager(y, top_i, top_w, gate_up, down, E):
    """MixtralExperts.forward's eager loop (transformers 5): the routed rows of each expert through its slice of the stacked
    gate_up / down weights, times the gathered routing weight, cast back to the hidden dtype and index_add_'ed."""
    out = torch.zeros_like(y)
    with torch.no_grad():
        mask = F.one_hot(top_i, num_classes=E).permute(2, 1, 0)
        hit = torch.greater(mask.sum(dim=(-1, -2)), 0).nonzero()
    for e in hit:
        e = e[0]
        slots, tokens = torch.where(mask[e])
        gate, up = F.linear(y[tokens], gate_up[e]).chunk(2, dim=-1)
        expert = F.linear(F.silu(gate) * up, down[e]) * top_w[tokens, slots, None]
        out.index_add_(0, tokens, expert.to(out.dtype))
    return out


def sorted_pairs(y, top_i, top_w, E):
    """grouped_mm_experts_forward's routing: every (token, expert) pair's row gathered, the pairs sorted by expert, and
    the int32 group offsets of the sorted experts. Returns the sorted expert ids, weights and rows, the inverse
    permutation and the offsets."""
    T, k = top_i.shape
    token_idx = torch.arange(T).unsqueeze(1).expand(-1, k).reshape(-1)
    weights, experts = top_w.reshape(-1), top_i.reshape(-1)
    selected = y[token_idx]
    perm = torch.argsort(experts)
    inv_perm = torch.argsort(perm)
    experts_g, weights_g, selected_g = experts[perm], weights[perm], selected[perm]
    offs = torch.cumsum(torch.histc(experts_g.float(), bins=E, min=0, max=E - 1), dim=0).to(torch.int32)
    return experts_g, weights_g, selected_g, inv_perm, offs


def experts_grouped(y, top_i, top_w, gate_up, down, E):
    """grouped_mm_experts_forward (transformers 5's default experts backend with torch >= 2.9): every (token, expert) pair
    gathered, sorted by expert, two grouped matmuls, the routing weight, the original order restored and the k outputs
    of a token summed."""
    T, k = top_i.shape
    _, weights_g, selected_g, inv_perm, offs = sorted_pairs(y, top_i, top_w, E)
    gate, up = _GroupedMM.apply(selected_g, gate_up.transpose(-2, -1), offs).chunk(2, dim=-1)
    out_g = _GroupedMM.apply(F.silu(gate) * up, down.transpose(-2, -1), offs)
    out_g = out_g * weights_g.unsqueeze(-1)
    return out_g[inv_perm].view(T, k, -1).sum(dim=1).to(y.dtype)


def topk_block(T, h, I, E, k, mode, norm=True, backend="eager", dtype=torch.float32, shared=0):
    """MixtralSparseMoeBlock / Qwen3MoeSparseMoeBlock as transformers 5 runs them: the TopKRouter (a linear, softmax in
    fp32, top-k, renormalised in place when the model does so, weights left in fp32), then the stacked experts through
    the eager loop or grouped_mm."""
    torch.manual_seed(0)
    train = mode == "all"
    x = torch.randn(T, h, dtype=dtype, requires_grad=True)
    router = (torch.randn(E, h) * 0.1).to(dtype).requires_grad_(mode in ("router", "all"))
    gate_up = (torch.randn(E, 2 * I, h) * 0.05).to(dtype).requires_grad_(train)
    down = (torch.randn(E, h, I) * 0.05).to(dtype).requires_grad_(train)
    weights = {t.storage().data_ptr(): t for t in [router, gate_up, down]}
    if mode == "peft":
        # PEFT's ParamWrapper (target_parameters on the stacks): the experts compute with W + ΔW, a tensor of its own.
        gate_up = gate_up + torch.zeros_like(gate_up, requires_grad=True)
        down = down + torch.zeros_like(down, requires_grad=True)
    y = x * 1.0  # the block input, the output of the layer's norm
    probs = F.softmax(F.linear(y, router).float(), dim=-1)
    top_w, top_i = torch.topk(probs, k, dim=-1)
    if norm:
        top_w /= top_w.sum(dim=-1, keepdim=True)
    run = experts_grouped if backend == "grouped" else experts_eager
    out = run(y, top_i, top_w, gate_up, down, E)
    if shared:
        # Qwen2MoeSparseMoeBlock: the shared expert on every token, scaled by sigmoid(shared_expert_gate(x)).
        s1, s3 = ((torch.randn(shared, h) * 0.05).to(dtype).requires_grad_(train) for _ in range(2))
        s2 = (torch.randn(h, shared) * 0.05).to(dtype).requires_grad_(train)
        sgate = (torch.randn(1, h) * 0.05).to(dtype).requires_grad_(train)
        weights.update({t.storage().data_ptr(): t for t in [s1, s2, s3, sgate]})
        shared_out = F.linear(F.silu(F.linear(y, s1)) * F.linear(y, s3), s2)
        out = out + torch.sigmoid(F.linear(y, sgate)) * shared_out
    return out, weights


def saved(out, weights):
    # `weights` maps each weight's storage to the tensor itself: holding them keeps their memory from being reused by a
    # tensor of the graph (the PEFT mode rebinds the stacks to W + ΔW, and a freed original's address could then match).
    storages, breakdown = saved_storages(out, weights)
    print(json.dumps({"saved_bytes": sum(storages.values()), "breakdown": breakdown}))


def saved_storages(out, weights, skip=()):
    """Walks out's autograd graph: the distinct storages its nodes saved (by data pointer, bytes), leaving out those in
    `weights` and the (node type, field) pairs in `skip`, and their bytes by node and field."""
    seen, stack, storages, breakdown = set(), [out.grad_fn], {}, {}
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        values = []
        for name in dir(fn):
            if not name.startswith("_saved_") or name.endswith(("sizes", "strides")):
                continue
            try:
                values.append((name, getattr(fn, name)))
            except Exception:
                continue
        # A custom autograd.Function (PhiMoE's MultiplierProcessor) keeps what it saved in saved_tensors.
        if isinstance(fn, torch.autograd.function.BackwardCFunction):
            try:
                values.extend(("_saved_tensors", v) for v in fn.saved_tensors)
            except Exception:
                pass
        # IndexBackward keeps its indices as a list.
        values = [(name, t) for name, v in values for t in (v if isinstance(v, (list, tuple)) else [v])
                  if (type(fn).__name__, name[7:]) not in skip]
        for name, v in values:
            # 0-d tensors are the scalars of this script's own `x * 1.0`, not the block's.
            if isinstance(v, torch.Tensor) and v.dim() > 0 and v.storage().data_ptr() not in weights:
                ptr = v.storage().data_ptr()
                if ptr not in storages:
                    storages[ptr] = v.storage().nbytes()
                    key = f"{type(fn).__name__}.{name[7:]}"
                    breakdown[key] = breakdown.get(key, 0) + storages[ptr]
        stack.extend(f for f, _ in fn.next_functions)
    return storages, breakdown


if __name__ == "__main__":
    a = sys.argv[1:]
    family = a.pop(0)[2:] if a[0].startswith("--") else "mixtral"
    T, h, I, E, k = (int(v) for v in a[:5])
    mode = a[5] if len(a) > 5 else ""
    if family == "phimoe":
        # phimoe: none|router|all|lora-router (what trains) DTYPE INPUT_JITTER after the sizes (TOP_K is always 2)
        saved(*phimoe(T, h, I, E, mode, getattr(torch, a[6]), float(a[7]), a[8] if len(a) > 8 else "eager"))
    elif family == "llama4":
        # llama4: none|router|all (what trains) DTYPE after the five sizes
        saved(*llama4(T, h, I, E, k, mode, getattr(torch, a[6])))
    elif family == "deepseek2":
        # deepseek2: none|router|all SHARED GROUPS TOPK_GROUPS DTYPE BACKEND LIMITED(0|1)
        shared, groups, topk_groups = (int(v) for v in a[6:9])
        saved(*deepseek_v2(T, h, I, E, k, mode, shared, groups, topk_groups, getattr(torch, a[9]), a[10], a[11] == "1"))
    elif family == "deepseek":
        # deepseek: none|router|all (what trains) SHARED GROUPS TOPK_GROUPS DTYPE after the five sizes
        shared, groups, topk_groups = (int(v) for v in a[6:9])
        saved(*deepseek(T, h, I, E, k, mode, shared, groups, topk_groups, getattr(torch, a[9]), a[10] if len(a) > 10 else "eager"))
    else:
        if family == "gpt-oss":
            saved(*gpt_oss(T, h, I, E, k, mode, a[6] if len(a) > 6 else "eager"))
        else:
            # mixtral (and qwen MoE): [none|router|all] [norm 1|0] [eager|grouped] [float32|bfloat16]
            norm = a[6] != "0" if len(a) > 6 else True
            backend = a[7] if len(a) > 7 else "eager"
            dtype = getattr(torch, a[8]) if len(a) > 8 else torch.float32
            shared = int(a[9]) if len(a) > 9 else 0  # qwen2_moe's shared expert width
            saved(*topk_block(T, h, I, E, k, mode or "none", norm, backend, dtype, shared))
