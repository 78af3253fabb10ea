"""The measurement grid, most valuable rows first (a time budget may stop the run part-way).

Every row is one job: build a model from a catalog config (random weights), then measure the second iteration.
Model ids are planner catalog ids; their configs are read from src/Afinado.Planner/Catalog/configs/org--name.json.
`layers` reduces the layer count at real widths (recorded per row, so the planner can predict the reduced model).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

SMOL = "HuggingFaceTB/SmolLM2-135M"
TINY = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
L1B = "meta-llama/Llama-3.2-1B"
L3B = "meta-llama/Llama-3.2-3B"
L2_7B = "meta-llama/Llama-2-7b-hf"
L8B = "meta-llama/Llama-3.1-8B"
QWEN05 = "Qwen/Qwen2.5-0.5B"
# Section 12: today's families (issue 16).
QWEN3 = "Qwen/Qwen3-0.6B"
GEMMA3 = "google/gemma-3-1b-it"
QWEN3_MOE = "Qwen/Qwen3-30B-A3B"
GPT_OSS = "openai/gpt-oss-20b"
DEEPSEEK_V2 = "deepseek-ai/DeepSeek-V2-Lite-Chat"
SMOLLM3 = "HuggingFaceTB/SmolLM3-3B"
OLMO2 = "allenai/OLMo-2-1124-7B"

ATTN_ONLY = ("q_proj", "k_proj", "v_proj", "o_proj")
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Multi-head latent attention's linears (DeepSeek-V2-Lite: no query rank, so q_proj is one linear).
MLA_ATTN = ("q_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj")

SHORT_NAMES = {SMOL: "smollm2-135m", TINY: "tinyllama-1.1b", L1B: "llama3.2-1b", L3B: "llama3.2-3b",
               L2_7B: "llama2-7b", L8B: "llama3.1-8b", QWEN05: "qwen2.5-0.5b",
               QWEN3: "qwen3-0.6b", GEMMA3: "gemma3-1b", QWEN3_MOE: "qwen3-30b-a3b", GPT_OSS: "gpt-oss-20b",
               DEEPSEEK_V2: "deepseek-v2-lite", SMOLLM3: "smollm3-3b", OLMO2: "olmo2-7b"}

# PYTORCH_CUDA_ALLOC_CONF values of the reserved-memory rows (section 10).
EXPANDABLE = "expandable_segments:True"
MAX_SPLIT_128 = "max_split_size_mb:128"


def alloc_slug(conf: str) -> str:
    """PYTORCH_CUDA_ALLOC_CONF as a row-id part: expandable_segments:True -> expandable, max_split_size_mb:128 ->
    maxsplit128; other keys key+value with non-alphanumerics dropped."""
    parts = []
    for part in conf.split(","):
        key, _, value = (p.strip() for p in part.partition(":"))
        if not key:
            continue
        if key == "expandable_segments":
            parts.append("expandable" if value.lower() in ("true", "1") else "noexpandable")
        elif key == "max_split_size_mb":
            parts.append(f"maxsplit{value}")
        else:
            parts.append(re.sub(r"[^A-Za-z0-9]+", "", key + value))
    return "-".join(parts)


@dataclass(frozen=True)
class Case:
    model: str
    task: str                      # train | infer
    phase: str                     # step (train) | prefill | decode
    precision: str                 # fp32 | amp-bf16 | bf16
    batch: int
    seq: int                       # training sequence, or the inference context
    method: str = "full"           # full | freeze | lora | none (inference)
    optimizer: str = "adamw"       # adamw (foreach on CUDA) | adamw-fused | none
    checkpointing: str = "none"    # none | full
    attention: str = "sdpa"        # sdpa | eager
    lora_rank: int = 0
    lora_alpha: float = 0.0
    lora_targets: tuple[str, ...] = field(default_factory=tuple)
    lora_dropout: float = 0.0
    freeze: str = ""               # "" | "half": embeddings and the first half of the layers frozen
    layers: int | None = None      # None: the config's layer count
    # Fields added for the reserved-memory rows (issue 14); their defaults leave every earlier row_id unchanged.
    alloc_conf: str = ""           # PYTORCH_CUDA_ALLOC_CONF for this job ("": whatever the process has); a job whose
                                   # conf differs from the process's runs in a subprocess (CUDA reads it at init)
    decode_steps: int = 2          # decode: single-token steps after the prefill; the LAST one is reported
    kv_dtype: str = ""             # inference: KV-cache storage ("": the compute dtype; "fp8")
    snapshot: bool = False         # CUDA: write an allocator snapshot summary to OUT/snapshots/ after the measured step
    # Added for the optimizer-in-backward rows (section 11); the default leaves every earlier row_id unchanged.
    optimizer_in_backward: bool = False  # train: one optimizer per parameter, stepped by its post-accumulate-grad hook

    @property
    def row_id(self) -> str:
        name = SHORT_NAMES.get(self.model, self.model.replace("/", "--"))
        if self.layers is not None:
            name += f"@L{self.layers}"
        parts = [name, self.task if self.task == "train" else self.phase]
        if self.task == "train":
            method = self.method
            if self.method == "lora":
                scope = "all" if tuple(self.lora_targets) == ALL_LINEAR else "attn"
                method = f"lora-r{self.lora_rank}-{scope}" + (f"-drop{self.lora_dropout:g}" if self.lora_dropout else "")
            elif self.method == "freeze":
                method = f"freeze-{self.freeze}"
            parts += [method, self.precision, self.optimizer]
        else:
            parts.append(self.precision)
        parts += [f"b{self.batch}-s{self.seq}", self.attention]
        if self.task == "train":
            parts.append(f"ckpt-{self.checkpointing}")
            if self.optimizer_in_backward:
                parts.append("opt-in-bwd")
        if self.phase == "decode" and self.decode_steps != 2:
            parts.append(f"steps{self.decode_steps}")
        if self.kv_dtype:
            parts.append(f"kv-{self.kv_dtype}")
        if self.alloc_conf:
            parts.append("alloc-" + alloc_slug(self.alloc_conf))
        return "/".join(parts)


def train(model, precision, batch, seq, **kw) -> Case:
    return Case(model=model, task="train", phase="step", precision=precision, batch=batch, seq=seq, **kw)


def lora(model, rank, targets, batch, seq, precision="bf16", **kw) -> Case:
    return train(model, precision, batch, seq, method="lora", lora_rank=rank, lora_alpha=16.0,
                 lora_targets=tuple(targets), **kw)


def freeze_half(model, precision, batch, seq, **kw) -> Case:
    return train(model, precision, batch, seq, method="freeze", freeze="half", **kw)


def prefill(model, batch, context, **kw) -> Case:
    return Case(model=model, task="infer", phase="prefill", precision="bf16", batch=batch, seq=context,
                method="none", optimizer="none", **kw)


def decode(model, batch, context, **kw) -> Case:
    return replace(prefill(model, batch, context, **kw), phase="decode")


def core_cases(model, batch, seq, infer_batch, infer_context, **kw) -> list[Case]:
    """Every training regime on one model, then prefill and decode."""
    return [
        train(model, "fp32", batch, seq, **kw),
        train(model, "amp-bf16", batch, seq, **kw),
        train(model, "bf16", batch, seq, **kw),
        lora(model, 8, ATTN_ONLY, batch, seq, **kw),
        lora(model, 64, ALL_LINEAR, batch, seq, **kw),
        freeze_half(model, "amp-bf16", batch, seq, **kw),
        train(model, "amp-bf16", batch, seq, checkpointing="full", **kw),
        train(model, "amp-bf16", batch, seq, attention="eager", **kw),
        prefill(model, infer_batch, infer_context, **kw),
        decode(model, infer_batch, infer_context, **kw),
    ]


def full_grid() -> list[Case]:
    cases: list[Case] = []
    # 1. Every regime on a mid-size GQA model at full depth.
    cases += core_cases(L1B, 2, 1024, 1, 2048)
    # 2. The headline model: LoRA and inference at full depth, full finetuning at 4 layers (real widths).
    cases += [
        lora(L8B, 8, ATTN_ONLY, 1, 2048),
        lora(L8B, 64, ALL_LINEAR, 1, 2048),
        prefill(L8B, 1, 4096),
        decode(L8B, 1, 4096),
        train(L8B, "fp32", 1, 2048, layers=4),
        train(L8B, "amp-bf16", 1, 2048, layers=4),
        train(L8B, "bf16", 1, 2048, layers=4),
        lora(L8B, 8, ATTN_ONLY, 1, 4096, checkpointing="full"),
        lora(L8B, 8, ATTN_ONLY, 1, 2048, attention="eager"),
    ]
    # 3. A small model, where activations dominate the peak.
    cases += core_cases(SMOL, 8, 1024, 8, 1024)
    # 4. Llama-3.2-3B at full depth.
    cases += [
        train(L3B, "amp-bf16", 1, 2048),
        train(L3B, "bf16", 1, 2048),
        lora(L3B, 8, ATTN_ONLY, 1, 2048),
        lora(L3B, 64, ALL_LINEAR, 1, 2048),
        train(L3B, "amp-bf16", 2, 2048, checkpointing="full"),
        prefill(L3B, 1, 8192),
        decode(L3B, 1, 8192),
    ]
    # 5. TinyLlama: 32k vocabulary, 4 KV heads, untied embeddings.
    cases += [
        train(TINY, "amp-bf16", 4, 1024),
        train(TINY, "fp32", 2, 1024),
        train(TINY, "bf16", 4, 1024),
        lora(TINY, 8, ATTN_ONLY, 4, 1024),
        train(TINY, "amp-bf16", 4, 1024, attention="eager"),
        prefill(TINY, 4, 2048),
        decode(TINY, 4, 2048),
    ]
    # 6. Llama-2-7B: multi-head attention (no GQA), so KV cache and eager scores are 4x those of Llama-3-8B.
    cases += [
        lora(L2_7B, 8, ATTN_ONLY, 1, 2048),
        lora(L2_7B, 8, ATTN_ONLY, 1, 2048, attention="eager"),
        prefill(L2_7B, 1, 4096),
        decode(L2_7B, 1, 4096),
        train(L2_7B, "amp-bf16", 1, 2048, layers=4),
    ]
    # 7. Batch x sequence on Llama-3.2-1B (AMP bf16): without and with checkpointing, SDPA and eager, LoRA.
    for b, s in [(1, 512), (1, 2048), (4, 512), (4, 2048), (8, 1024), (1, 8192)]:
        cases.append(train(L1B, "amp-bf16", b, s))
    for b, s in [(4, 2048), (1, 8192), (8, 2048)]:
        cases.append(train(L1B, "amp-bf16", b, s, checkpointing="full"))
    for b, s in [(1, 512), (1, 2048), (4, 1024)]:
        cases.append(train(L1B, "amp-bf16", b, s, attention="eager"))
    cases += [lora(L1B, 8, ATTN_ONLY, 1, 4096), lora(L1B, 8, ATTN_ONLY, 8, 1024)]
    # 8. Inference contexts and batches.
    cases += [prefill(L8B, 1, c) for c in (512, 2048, 16384)]
    cases += [decode(L8B, 1, c) for c in (1024, 16384, 32768)]
    cases += [
        decode(L8B, 8, 4096),
        prefill(L8B, 1, 4096, attention="eager", snapshot=True),
        decode(L8B, 1, 4096, attention="eager"),
        decode(L1B, 16, 4096),
        prefill(L1B, 8, 2048),
        prefill(L1B, 1, 8192, attention="eager", snapshot=True),
    ]
    # 9. Limits and variants: 8B full finetuning at full depth (pure bf16 may fit; AMP AdamW cannot: 16 B/param),
    #    fused AdamW, LoRA dropout, deeper reduced 8B with checkpointing, 3B in fp32.
    cases += [
        train(L8B, "bf16", 1, 1024),
        train(L8B, "amp-bf16", 1, 1024),
        train(L1B, "amp-bf16", 2, 1024, optimizer="adamw-fused"),
        lora(L1B, 8, ATTN_ONLY, 2, 1024, lora_dropout=0.05),
        train(L8B, "amp-bf16", 2, 2048, layers=8, checkpointing="full"),
        train(L3B, "fp32", 1, 1024),
    ]
    cases += reserved_cases()
    cases += in_backward_cases()
    cases += math_kernel_cases()
    cases += family_cases()
    for c in cases:
        if c.decode_steps < 1 or (c.decode_steps != 2 and c.phase != "decode"):
            raise AssertionError(f"{c.row_id}: decode_steps={c.decode_steps} needs a decode row and at least 1 step")
        if c.kv_dtype and c.task != "infer":
            raise AssertionError(f"{c.row_id}: kv_dtype applies to inference rows only")
        if c.optimizer_in_backward and c.task != "train":
            raise AssertionError(f"{c.row_id}: optimizer_in_backward applies to training rows only")
    ids = [c.row_id for c in cases]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise AssertionError(f"duplicate grid rows: {sorted(duplicates)}")
    return cases


def reserved_cases() -> list[Case]:
    """10. Reserved memory (issue 14), appended after the rows above so their ids and order never change.

    Long decodes with a growing DynamicCache (64 steps, the last reported), small models whose large vocabulary makes
    the logits the biggest transient blocks, an fp8 KV cache, then the same jobs (and rows of sections 7-8) again with
    expandable segments, then eager prefill and a checkpointed AMP step with max_split_size_mb:128. The rows of one
    alloc_conf are consecutive: the runner starts one subprocess per run of them.
    """
    long_decodes = [decode(L1B, 16, 4096, decode_steps=64), decode(L8B, 1, 32768, decode_steps=64)]
    big_vocab = [train(SMOL, "amp-bf16", 16, 2048, checkpointing="full"),
                 train(QWEN05, "amp-bf16", 4, 2048, checkpointing="full")]
    # The default-conf twins of these already run in sections 7 and 8.
    ckpt_amp = train(L1B, "amp-bf16", 4, 2048, checkpointing="full")
    eager_prefill = prefill(L1B, 1, 8192, attention="eager")
    cases = long_decodes + big_vocab + [decode(L8B, 1, 32768, kv_dtype="fp8")]
    cases += [replace(c, alloc_conf=EXPANDABLE) for c in long_decodes + [ckpt_amp, eager_prefill] + big_vocab]
    cases += [replace(c, alloc_conf=MAX_SPLIT_128) for c in [eager_prefill, ckpt_amp]]
    return cases


def in_backward_cases() -> list[Case]:
    """11. Optimizer in backward (torchtune's optimizer_in_bwd), appended after section 10 so earlier ids never change.

    Each row's twin without it runs earlier in the grid: Llama-3.2-1B pure bf16 (tied head: its gradient waits for the
    embedding's share) and AMP with checkpointing, Llama-3.1-8B at 4 layers (untied: the head is stepped at once), and
    TinyLlama in fp32 (the largest gradients per parameter).
    """
    return [
        train(L1B, "bf16", 2, 1024, optimizer_in_backward=True),
        train(L1B, "amp-bf16", 2, 1024, checkpointing="full", optimizer_in_backward=True),
        train(L8B, "bf16", 1, 2048, layers=4, optimizer_in_backward=True),
        train(TINY, "fp32", 2, 1024, optimizer_in_backward=True),
    ]


def math_kernel_cases() -> list[Case]:
    """13. SDPA's math kernel in inference (issue 14), before the family rows, which stay last. generate skips the causal
    mask, so transformers calls SDPA with enable_gqa; with fp32 inputs no fused kernel takes grouped KV heads, so the
    prefill materialises b·heads·s² scores and their softmax in every layer, and a decode step repeats K/V over the whole
    context. The planner replays both that way (it had for training only); these rows check it on a GPU."""
    return [replace(prefill(L1B, 1, 4096), precision="fp32"), replace(decode(L1B, 1, 4096), precision="fp32")]


def family_cases() -> list[Case]:
    """12. Today's families (issue 16), appended last: dense Qwen 3 (q/k norms) and Gemma 3 (5 sliding layers of 512 per
    global one, a 262k vocabulary) at full depth; the sparse ones at 4 layers, real widths: Qwen3-30B-A3B (128 experts,
    top 8), gpt-oss-20b in bf16 (32 experts with biases, attention sinks, alternating sliding/full layers, eager attention;
    the MXFP4 checkpoint format is dropped, weights are random), DeepSeek-V2-Lite (multi-head latent attention, 64 routed + 2
    shared experts after one dense layer); SmolLM3 (no RoPE on every 4th layer) and OLMo 2 at 4 layers. Each is trained
    (full or LoRA) and served (prefill, decode), so MoE training, MLA's expanded cache and hybrid caches all get rows.
    The CPU dry run skips them (its built-in stand-in is a Llama); only a run with transformers builds these families.
    """
    cases: list[Case] = []
    for model in (QWEN3, GEMMA3):
        cases += [train(model, "amp-bf16", 2, 1024), lora(model, 16, ALL_LINEAR, 2, 1024),
                  prefill(model, 1, 4096), decode(model, 1, 4096)]
    for model in (QWEN3_MOE, GPT_OSS, DEEPSEEK_V2):
        # gpt_oss has no SDPA path in transformers (_supports_sdpa = False: its sinks join the softmax): eager.
        kw = {"layers": 4, "attention": "eager" if model == GPT_OSS else "sdpa"}
        attention_linears = MLA_ATTN if model == DEEPSEEK_V2 else ATTN_ONLY
        cases += [train(model, "bf16", 1, 2048, **kw), lora(model, 16, attention_linears, 1, 2048, **kw),
                  prefill(model, 1, 4096, **kw), decode(model, 1, 4096, **kw)]
    cases += [lora(SMOLLM3, 16, ALL_LINEAR, 1, 2048, layers=4), prefill(SMOLLM3, 1, 4096, layers=4),
              train(OLMO2, "amp-bf16", 1, 2048, layers=4), prefill(OLMO2, 1, 4096, layers=4)]
    return cases


def shrink_for_dry_run(case: Case) -> Case:
    """CPU dry run: the same rows at tiny batch, sequence and depth (the model widths are shrunk separately)."""
    layers = min(case.layers or 2, 2)
    seq = min(case.seq, 32 if case.task == "train" else 48)
    return replace(case, batch=min(case.batch, 2), seq=seq, layers=layers)
