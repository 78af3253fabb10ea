"""PyTorch side of bench/training: the same Llama-style model (HF LlamaForCausalLM layout; Qwen2's q/k/v biases and
Qwen3's q/k RMSNorm over head_dim when the config's model_type says so; a tied head), same weights and batch.

usage: llama_torch.py CONFIG.json STEPS OUT_DIR
Loads OUT_DIR/init.safetensors written by the TorchSharp side (weights + batch), checks that the first loss matches,
then times AdamW training steps and the fp32 matmul peak. Debian's python3-torch 1.13 has no
scaled_dot_product_attention, so attention is the explicit masked softmax (TorchSharp's "eager" kernel).
"""
import json, math, struct, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def st_load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n]); data = raw[8 + n:]
    types = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, d in header.items():
        if name == "__metadata__": continue
        s, e = d["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[s:e], dtype=types[d["dtype"]]).reshape(d["shape"]).copy())
    return out


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__(); self.weight = nn.Parameter(torch.ones(d)); self.eps = eps
    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), -1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h, self.kv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
        self.hd = c.get("head_dim", c["hidden_size"] // self.h)
        d = c["hidden_size"]
        bias = c["model_type"] in ("qwen2", "qwen2_moe") or c.get("attention_bias", False)
        self.q_proj = nn.Linear(d, self.h * self.hd, bias=bias)
        self.k_proj = nn.Linear(d, self.kv * self.hd, bias=bias)
        self.v_proj = nn.Linear(d, self.kv * self.hd, bias=bias)
        self.o_proj = nn.Linear(self.h * self.hd, d, bias=False)
        self.qk_norm = c["model_type"] == "qwen3"
        if self.qk_norm:
            eps = c.get("rms_norm_eps", 1e-6)
            self.q_norm = RMSNorm(self.hd, eps); self.k_norm = RMSNorm(self.hd, eps)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.h, self.hd)
        k = self.k_proj(x).view(B, T, self.kv, self.hd)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.kv, self.hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if self.kv != self.h:
            k = k.repeat_interleave(self.h // self.kv, dim=1); v = v.repeat_interleave(self.h // self.kv, dim=1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd))
        y = att.masked_fill(mask, float("-inf")).softmax(-1) @ v
        return self.o_proj(y.transpose(1, 2).contiguous().view(B, T, self.h * self.hd))


class Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, i = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(d, i, bias=False); self.up_proj = nn.Linear(d, i, bias=False); self.down_proj = nn.Linear(i, d, bias=False)
    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        eps = c.get("rms_norm_eps", 1e-6)
        self.input_layernorm = RMSNorm(c["hidden_size"], eps); self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], eps); self.mlp = Mlp(c)
    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Inner(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c.get("rms_norm_eps", 1e-6))


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Inner(c)
        self.tied = c.get("tie_word_embeddings", False)
        if not self.tied:
            self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)

    def forward(self, ids):
        T = ids.shape[1]
        hd = self.model.layers[0].self_attn.hd
        inv = self.c.get("rope_theta", 10000.0) ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        f = torch.outer(torch.arange(T, dtype=torch.float64), inv)
        emb = torch.cat((f, f), -1)
        cos, sin = emb.cos().float(), emb.sin().float()
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        x = self.model.embed_tokens(ids)
        for l in self.model.layers:
            x = l(x, cos, sin, mask)
        h = self.model.norm(x)
        return h @ self.model.embed_tokens.weight.T if self.tied else self.lm_head(h)


def main():
    config, steps, out = json.load(open(sys.argv[1])), int(sys.argv[2]), sys.argv[3]
    t = st_load(f"{out}/init.safetensors")
    x, y = t.pop("__x"), t.pop("__y")
    model = Llama(config)
    print("load_state_dict:", model.load_state_dict(t), file=sys.stderr)
    V = config["vocab_size"]
    loss_fn = lambda: F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
    with torch.no_grad():
        first = loss_fn().item()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    def step():
        opt.zero_grad(set_to_none=True); loss = loss_fn(); loss.backward(); opt.step(); return loss.item()
    step()
    t0 = time.perf_counter()
    for _ in range(steps): last = step()
    sec = (time.perf_counter() - t0) / steps
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    peak = 0.0
    for i in range(6):
        s = time.perf_counter(); a @ b; d = time.perf_counter() - s
        if i: peak = max(peak, 2 * 2048 ** 3 / d)
    print(json.dumps({"framework": f"PyTorch {torch.__version__} (Debian)", "threads": torch.get_num_threads(), "attention": "eager",
                      "seconds_per_step": sec, "steps_per_second": 1 / sec, "first_loss": first, "last_loss": last,
                      "matmul_peak_flops": peak}))


if __name__ == "__main__":
    main()
