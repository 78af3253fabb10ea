"""A minimal Llama (RMSNorm, RoPE, GQA, SwiGLU; Qwen2's q/k/v bias) and LoRA wrapper, used only when transformers/peft are absent.

The CPU dry run (Debian's python3-torch 1.13, no transformers or peft) needs a model to exercise the measurement
logic. Module names, parameter shapes, weight tying and the forward/generate interface follow transformers'
LlamaForCausalLM and peft's LoRA, so parameter counts, freeze patterns and LoRA targets mean the same thing on both
paths. It is not used on the GPU, where the real libraries are measured.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_tables(head_dim: int, theta: float, start: int, length: int, device, dtype):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    positions = torch.arange(start, start + length, device=device, dtype=torch.float32)
    angles = torch.outer(positions, inv_freq)
    emb = torch.cat((angles, angles), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


class Attention(nn.Module):
    def __init__(self, cfg: dict, attention: str):
        super().__init__()
        h = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg.get("num_key_value_heads") or self.heads
        self.head_dim = cfg.get("head_dim") or h // self.heads
        bias = bool(cfg.get("attention_bias", False))
        # transformers' Qwen2Attention always biases q, k and v, never o (it reads no attention_bias).
        qkv_bias = bias or cfg.get("model_type") == "qwen2"
        self.q_proj = nn.Linear(h, self.heads * self.head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(self.heads * self.head_dim, h, bias=bias and cfg.get("model_type") != "qwen2")
        self.attention = attention

    def forward(self, x, cos, sin, past):
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if past is not None:
            k = torch.cat((past[0], k), dim=2)
            v = torch.cat((past[1], v), dim=2)
        present = (k, v)
        repeat = self.heads // self.kv_heads
        kr = k.repeat_interleave(repeat, dim=1) if repeat > 1 else k
        vr = v.repeat_interleave(repeat, dim=1) if repeat > 1 else v
        causal = past is None and s > 1
        if self.attention == "sdpa" and HAS_SDPA:
            out = F.scaled_dot_product_attention(q, kr, vr, is_causal=causal)
        else:
            # Eager, as transformers does it: scores, causal mask, softmax in fp32, back to the compute dtype.
            scores = torch.matmul(q, kr.transpose(2, 3)) / math.sqrt(self.head_dim)
            if causal:
                mask = torch.full((s, s), float("-inf"), device=x.device).triu(1)
                scores = scores + mask.to(scores.dtype)
            probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
            out = torch.matmul(probs, vr)
        out = out.transpose(1, 2).reshape(b, s, self.heads * self.head_dim)
        return self.o_proj(out), present


class Mlp(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        h, f = cfg["hidden_size"], cfg["intermediate_size"]
        bias = bool(cfg.get("mlp_bias", False))
        self.gate_proj = nn.Linear(h, f, bias=bias)
        self.up_proj = nn.Linear(h, f, bias=bias)
        self.down_proj = nn.Linear(f, h, bias=bias)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: dict, attention: str):
        super().__init__()
        eps = cfg.get("rms_norm_eps", 1e-5)
        self.input_layernorm = RMSNorm(cfg["hidden_size"], eps)
        self.self_attn = Attention(cfg, attention)
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], eps)
        self.mlp = Mlp(cfg)

    def forward(self, x, cos, sin, past=None):
        attn, present = self.self_attn(self.input_layernorm(x), cos, sin, past)
        x = x + attn
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, present


class LlamaBody(nn.Module):
    def __init__(self, cfg: dict, attention: str):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList(DecoderLayer(cfg, attention) for _ in range(cfg["num_hidden_layers"]))
        self.norm = RMSNorm(cfg["hidden_size"], cfg.get("rms_norm_eps", 1e-5))


class BuiltinLlamaForCausalLM(nn.Module):
    """transformers-shaped causal LM: model.embed_tokens / model.layers.N.* / model.norm / lm_head."""

    def __init__(self, cfg: dict, attention: str):
        super().__init__()
        self.cfg = cfg
        self.model = LlamaBody(cfg, attention)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        if cfg.get("tie_word_embeddings", False):
            self.lm_head.weight = self.model.embed_tokens.weight
        self.checkpointing = False
        self.attention_kernel = "sdpa" if attention == "sdpa" and HAS_SDPA else "eager-math"

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None):
        self.checkpointing = True

    def forward(self, input_ids, labels=None, use_cache=False, past_key_values=None, logits_to_keep=0):
        b, s = input_ids.shape
        x = self.model.embed_tokens(input_ids)
        start = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        head_dim = self.cfg.get("head_dim") or self.cfg["hidden_size"] // self.cfg["num_attention_heads"]
        cos, sin = rope_tables(head_dim, float(self.cfg.get("rope_theta", 10000.0)), start, s, x.device, x.dtype)
        presents = []
        for i, layer in enumerate(self.model.layers):
            past = None if past_key_values is None else past_key_values[i]
            if self.checkpointing and self.training:
                x, present = checkpoint(layer, x, cos, sin, use_reentrant=False)
            else:
                x, present = layer(x, cos, sin, past)
            if use_cache:
                presents.append(present)
        x = self.model.norm(x)
        if logits_to_keep:
            x = x[:, -logits_to_keep:, :]
        logits = self.lm_head(x)
        loss = None
        if labels is not None:
            # As transformers: upcast logits, shift by one, mean cross-entropy.
            shifted = logits[:, :-1, :].float().reshape(-1, logits.shape[-1])
            loss = F.cross_entropy(shifted, labels[:, 1:].reshape(-1))
        return SimpleNamespace(loss=loss, logits=logits, past_key_values=presents if use_cache else None)


class LoraLinear(nn.Module):
    """peft-style LoRA around a frozen Linear: base(x) + B(A(dropout(x))) * alpha / r, adapters in fp32."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float):
        super().__init__()
        self.base_layer = base
        device = base.weight.device
        # peft's default autocast_adapter_dtype=True keeps adapters in fp32 over a bf16/fp16 base.
        self.lora_A = nn.Linear(base.in_features, rank, bias=False, device=device, dtype=torch.float32)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False, device=device, dtype=torch.float32)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.scaling = alpha / rank

    def forward(self, x):
        result = self.base_layer(x)
        adapter = self.lora_B(self.lora_A(self.dropout(x.to(self.lora_A.weight.dtype))))
        return result + (adapter * self.scaling).to(result.dtype)


def apply_lora(model: nn.Module, rank: int, alpha: float, targets: list[str], dropout: float) -> nn.Module:
    """Freeze the whole base, then wrap every Linear whose last name segment is a target."""
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = 0
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and child_name in targets:
                setattr(module, child_name, LoraLinear(child, rank, alpha, dropout))
                wrapped += 1
    if wrapped == 0:
        raise ValueError(f"no Linear module named any of {targets}")
    return model
