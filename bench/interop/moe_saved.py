"""Bytes autograd keeps for backward in transformers' sparse MoE block (Mixtral / Qwen MoE expert loop), on CPU in fp32.

usage: moe_saved.py TOKENS HIDDEN EXPERT_WIDTH EXPERTS TOP_K [router]
Runs the block as MixtralSparseMoeBlock.forward does (router linear, softmax in fp32, top-k, renormalised weights cast to
the hidden dtype, a loop over experts: gather the routed rows, SwiGLU expert, multiply by the routing weight,
index_add_ into the output) with every weight frozen (or only the router trainable) and an input that requires grad, as
a layer's MLP input does when anything before it trains. Walks the autograd graph and sums the distinct storages its
nodes saved, leaving out the weights (they are held anyway), and prints {"saved_bytes": N} plus a breakdown.
An independent measurement for the planner's MoE activation lines: it shares no code with them.
"""
import json, sys
import torch
import torch.nn.functional as F


def main(T, h, I, E, k, router_trainable):
    torch.manual_seed(0)
    x = torch.randn(T, h, requires_grad=True)
    gate = (torch.randn(E, h) * 0.1).requires_grad_(router_trainable)
    w1 = [torch.randn(I, h) * 0.05 for _ in range(E)]
    w3 = [torch.randn(I, h) * 0.05 for _ in range(E)]
    w2 = [torch.randn(h, I) * 0.05 for _ in range(E)]
    weights = {t.storage().data_ptr() for t in [gate, *w1, *w2, *w3]}
    y = x * 1.0  # the block input, the output of the layer's norm
    routing = F.softmax(y @ gate.T, dim=1, dtype=torch.float)
    routing, selected = torch.topk(routing, k, dim=-1)
    routing = routing / routing.sum(dim=-1, keepdim=True)
    routing = routing.to(y.dtype)
    out = torch.zeros((T, h), dtype=y.dtype)
    mask = F.one_hot(selected, num_classes=E).permute(2, 1, 0)
    for e in range(E):
        idx, top_x = torch.where(mask[e])
        rows = y[None, top_x].reshape(-1, h)
        expert = (F.silu(rows @ w1[e].T) * (rows @ w3[e].T)) @ w2[e].T
        out.index_add_(0, top_x, (expert * routing[top_x, idx, None]).to(y.dtype))
    seen, stack, storages, breakdown = set(), [out.grad_fn], {}, {}
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        for name in dir(fn):
            if not name.startswith("_saved_") or name.endswith(("sizes", "strides")):
                continue
            try:
                v = getattr(fn, name)
            except Exception:
                continue
            # 0-d tensors are the scalars of this script's own `x * 1.0`, not the block's.
            if isinstance(v, torch.Tensor) and v.dim() > 0 and v.storage().data_ptr() not in weights:
                ptr = v.storage().data_ptr()
                if ptr not in storages:
                    storages[ptr] = v.storage().nbytes()
                    key = f"{type(fn).__name__}.{name[7:]}"
                    breakdown[key] = breakdown.get(key, 0) + storages[ptr]
        stack.extend(f for f, _ in fn.next_functions)
    print(json.dumps({"saved_bytes": sum(storages.values()), "breakdown": breakdown}))


if __name__ == "__main__":
    a = sys.argv[1:]
    main(int(a[0]), int(a[1]), int(a[2]), int(a[3]), int(a[4]), len(a) > 5 and a[5] == "router")
