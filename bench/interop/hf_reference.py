"""Reference forward of a Hugging Face Llama-family folder in PyTorch (Debian python3-torch 1.13, CPU, fp32).

usage: hf_reference.py FOLDER IDS_JSON OUT.json [ADAPTER_FOLDER]
Reads FOLDER/config.json and FOLDER/model.safetensors (F32/BF16/F16), runs the decoder as transformers'
modeling_llama / modeling_qwen2 / modeling_qwen3 do (RMSNorm in fp32, rotate_half RoPE with rope_scaling "llama3" or
"linear", grouped-query attention with a causal mask, q/k/v biases, q/k RMSNorm over head_dim, SwiGLU, tied head),
and writes the logits [T, V] as JSON. With ADAPTER_FOLDER (a PEFT LoRA adapter: adapter_config.json with r and
lora_alpha, adapter_model.safetensors with base_model.model.<module>.lora_A/lora_B.weight) each adapted weight becomes
W + (lora_alpha / r) · B @ A first, as PEFT's merge does. An independent implementation: it shares no code with the C#
model.
"""
import json, math, struct, sys
import numpy as np
import torch


def load_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n]); data = raw[8 + n:]
    out = {}
    for name, d in header.items():
        if name == "__metadata__":
            continue
        s, e = d["data_offsets"]
        buf = data[s:e]
        if d["dtype"] == "F32":
            a = np.frombuffer(buf, dtype=np.float32)
        elif d["dtype"] == "F16":
            a = np.frombuffer(buf, dtype=np.float16).astype(np.float32)
        elif d["dtype"] == "BF16":
            a = (np.frombuffer(buf, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            raise SystemExit(f"unsupported dtype {d['dtype']} for {name}")
        out[name] = torch.from_numpy(a.reshape(d["shape"]).copy())
    return out


def inv_freq(c, dim):
    base = c.get("rope_theta", 10000.0)
    f = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).double() / dim))
    s = c.get("rope_scaling")
    if not s:
        return f
    kind = s.get("rope_type", s.get("type"))
    if kind == "linear":
        return f / s["factor"]
    if kind == "llama3":
        factor, low, high, old = s["factor"], s.get("low_freq_factor", 1.0), s.get("high_freq_factor", 4.0), s.get("original_max_position_embeddings", 8192)
        wavelen = 2 * math.pi / f
        out = torch.where(wavelen > old / low, f / factor, f)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * out / factor + smooth * out
        medium = ~(wavelen < old / high) & ~(wavelen > old / low)
        return torch.where(medium, smoothed, out)
    raise SystemExit(f"rope_scaling {kind} not in the reference")


def rms(x, w, eps):
    x32 = x.float()
    return w * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), -1)


def merge_adapter(w, adapter):
    cfg = json.load(open(f"{adapter}/adapter_config.json"))
    scale = cfg["lora_alpha"] / cfg["r"]
    a = load_safetensors(f"{adapter}/adapter_model.safetensors")
    for name, A in a.items():
        if ".lora_A." not in name:
            continue
        module = name[len("base_model.model."):name.index(".lora_A.")]
        B = a[name.replace(".lora_A.", ".lora_B.")]
        w[module + ".weight"] = w[module + ".weight"] + scale * (B @ A)


def main(folder, ids_path, out_path, adapter=None):
    c = json.load(open(f"{folder}/config.json"))
    w = load_safetensors(f"{folder}/model.safetensors")
    if adapter:
        merge_adapter(w, adapter)
    ids = torch.tensor(json.load(open(ids_path)), dtype=torch.long)
    H, L = c["hidden_size"], c["num_hidden_layers"]
    nh = c["num_attention_heads"]; nkv = c.get("num_key_value_heads", nh)
    hd = c.get("head_dim") or H // nh
    eps = c.get("rms_norm_eps", 1e-6)
    T = ids.shape[0]
    f = inv_freq(c, hd)
    ang = torch.outer(torch.arange(T, dtype=torch.float64), f)
    emb = torch.cat((ang, ang), -1)
    cos, sin = emb.cos().float(), emb.sin().float()
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    x = w["model.embed_tokens.weight"][ids]
    for i in range(L):
        p = f"model.layers.{i}."
        h = rms(x, w[p + "input_layernorm.weight"], eps)
        def lin(name, t):
            y = t @ w[p + name + ".weight"].T
            b = w.get(p + name + ".bias")
            return y + b if b is not None else y
        q = lin("self_attn.q_proj", h).view(T, nh, hd).transpose(0, 1)
        k = lin("self_attn.k_proj", h).view(T, nkv, hd).transpose(0, 1)
        v = lin("self_attn.v_proj", h).view(T, nkv, hd).transpose(0, 1)
        if p + "self_attn.q_norm.weight" in w:
            q = rms(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms(k, w[p + "self_attn.k_norm.weight"], eps)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, 0); v = v.repeat_interleave(nh // nkv, 0)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        y = att.masked_fill(mask, float("-inf")).softmax(-1) @ v
        x = x + lin("self_attn.o_proj", y.transpose(0, 1).reshape(T, nh * hd))
        h = rms(x, w[p + "post_attention_layernorm.weight"], eps)
        act = torch.nn.functional.silu(lin("mlp.gate_proj", h)) * lin("mlp.up_proj", h)
        x = x + lin("mlp.down_proj", act)
    x = rms(x, w["model.norm.weight"], eps)
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    json.dump((x @ head.T).tolist(), open(out_path, "w"))


if __name__ == "__main__":
    main(*sys.argv[1:5])
