"""Reference forward of a Hugging Face Llama-family folder in PyTorch (Debian python3-torch 1.13, CPU, fp32).

usage: hf_reference.py FOLDER IDS_JSON OUT.json [ADAPTER_FOLDER]
Reads FOLDER/config.json and FOLDER/model.safetensors (F32/BF16/F16), runs the decoder as transformers'
modeling_llama / modeling_qwen2 / modeling_qwen3 do (RMSNorm in fp32, rotate_half RoPE with rope_scaling "llama3" or
"linear", grouped-query attention with a causal mask, q/k/v biases, q/k RMSNorm over head_dim, SwiGLU, tied head),
and as modeling_gemma / modeling_gemma2 / modeling_gemma3 do for those model types (norms x_hat * (1 + w), embeddings
times sqrt(hidden), GeGLU with gelu tanh, four norms per layer, scale query_pre_attn_scalar ** -0.5, attention and
final logit soft-capping c * tanh(x / c), layer_types with a sliding window where query i sees key j only for
i - j < window, Gemma 3's q/k norms and its local RoPE base on sliding layers), and as modeling_phi3 does (fused
qkv_proj split by width, fused gate_up_proj whose first half is the gate, partial_rotary_factor rotating the first
channels of each head, a set sliding_window on every layer), and writes the logits [T, V] as JSON. With ADAPTER_FOLDER (a PEFT LoRA adapter: adapter_config.json with r and
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


def inv_freq(c, dim, base=None, scaled=True):
    base = base or c.get("rope_theta", 10000.0)
    f = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).double() / dim))
    s = c.get("rope_scaling") if scaled else None
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


def rope_tables(c, hd, T, base=None, scaled=True):
    ang = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq(c, hd, base, scaled))
    emb = torch.cat((ang, ang), -1)
    return emb.cos().float(), emb.sin().float()


def main(folder, ids_path, out_path, adapter=None):
    c = json.load(open(f"{folder}/config.json"))
    w = load_safetensors(f"{folder}/model.safetensors")
    if adapter:
        merge_adapter(w, adapter)
    ids = torch.tensor(json.load(open(ids_path)), dtype=torch.long)
    kind = c["model_type"]
    gemma = kind in ("gemma", "gemma2", "gemma3_text")
    four_norms = kind in ("gemma2", "gemma3_text")
    H, L = c["hidden_size"], c["num_hidden_layers"]
    nh = c["num_attention_heads"]; nkv = c.get("num_key_value_heads", nh)
    hd = c.get("head_dim") or H // nh
    eps = c.get("rms_norm_eps", 1e-6)
    T = ids.shape[0]
    rd = int(hd * c.get("partial_rotary_factor", 1.0))
    cos, sin = rope_tables(c, rd, T)
    # Gemma 3: sliding layers rotate with rope_local_base_freq and no scaling.
    local = rope_tables(c, rd, T, c["rope_local_base_freq"], scaled=False) if kind == "gemma3_text" else (cos, sin)
    pos = torch.arange(T)
    causal = pos[None, :] > pos[:, None]
    window = c.get("sliding_window")
    # Phi-3 and Mistral have no layer_types: a set sliding_window applies to every layer.
    types = c.get("layer_types") or (["sliding_attention"] * L if window and kind in ("phi3", "mistral") else ["full_attention"] * L)
    scale = c["query_pre_attn_scalar"] ** -0.5 if four_norms else hd ** -0.5
    attn_cap = c.get("attn_logit_softcapping") if kind == "gemma2" else None
    final_cap = c.get("final_logit_softcapping") if four_norms else None
    norm = (lambda t, wt: rms(t, 1.0 + wt, eps)) if gemma else (lambda t, wt: rms(t, wt, eps))
    act_fn = (lambda t: torch.nn.functional.gelu(t, approximate="tanh")) if gemma else torch.nn.functional.silu
    x = w["model.embed_tokens.weight"][ids]
    if gemma:
        x = x * torch.tensor(H ** 0.5, dtype=x.dtype)
    for i in range(L):
        p = f"model.layers.{i}."
        sliding = types[i] == "sliding_attention"
        h = norm(x, w[p + "input_layernorm.weight"])
        def lin(name, t):
            y = t @ w[p + name + ".weight"].T
            b = w.get(p + name + ".bias")
            return y + b if b is not None else y
        if p + "self_attn.qkv_proj.weight" in w:
            qkv = lin("self_attn.qkv_proj", h)
            q, k, v = qkv[:, :nh * hd], qkv[:, nh * hd:(nh + nkv) * hd], qkv[:, (nh + nkv) * hd:]
        else:
            q, k, v = lin("self_attn.q_proj", h), lin("self_attn.k_proj", h), lin("self_attn.v_proj", h)
        q = q.reshape(T, nh, hd).transpose(0, 1)
        k = k.reshape(T, nkv, hd).transpose(0, 1)
        v = v.reshape(T, nkv, hd).transpose(0, 1)
        if p + "self_attn.q_norm.weight" in w:
            q = norm(q, w[p + "self_attn.q_norm.weight"])
            k = norm(k, w[p + "self_attn.k_norm.weight"])
        cs, sn = local if sliding else (cos, sin)
        def rope(t):
            r = t[..., :rd]
            return torch.cat((r * cs + rotate_half(r) * sn, t[..., rd:]), -1)
        q, k = rope(q), rope(k)
        k = k.repeat_interleave(nh // nkv, 0); v = v.repeat_interleave(nh // nkv, 0)
        att = (q @ k.transpose(-2, -1)) * scale
        if attn_cap:
            att = torch.tanh(att / attn_cap) * attn_cap
        mask = causal | ((pos[:, None] - pos[None, :]) >= window) if sliding else causal
        y = att.masked_fill(mask, float("-inf")).softmax(-1) @ v
        o = lin("self_attn.o_proj", y.transpose(0, 1).reshape(T, nh * hd))
        if four_norms:
            x = x + norm(o, w[p + "post_attention_layernorm.weight"])
            h = norm(x, w[p + "pre_feedforward_layernorm.weight"])
        else:
            x = x + o
            h = norm(x, w[p + "post_attention_layernorm.weight"])
        if p + "mlp.gate_up_proj.weight" in w:
            gate, up = lin("mlp.gate_up_proj", h).chunk(2, -1)
        else:
            gate, up = lin("mlp.gate_proj", h), lin("mlp.up_proj", h)
        m = lin("mlp.down_proj", act_fn(gate) * up)
        x = x + (norm(m, w[p + "post_feedforward_layernorm.weight"]) if four_norms else m)
    x = norm(x, w["model.norm.weight"])
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    logits = x @ head.T
    if final_cap:
        logits = torch.tanh(logits / final_cap) * final_cap
    json.dump(logits.tolist(), open(out_path, "w"))


if __name__ == "__main__":
    main(*sys.argv[1:5])
