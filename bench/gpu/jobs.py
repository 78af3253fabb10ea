"""One measured job: build the model, select what trains, run two iterations, read the second one's peak.

Two model implementations share this code: transformers + peft (the GPU run) and builtin_llama (the CPU dry run
where those libraries are absent). Everything that differs between them lives in build_model and apply_lora.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import tempfile

import torch

from grid import Case


class Unsupported(Exception):
    """The job cannot run on this software stack; the row is recorded as skipped with the reason."""


WEIGHT_DTYPES = {"fp32": torch.float32, "amp-bf16": torch.float32, "bf16": torch.bfloat16}


# Families the built-in model reproduces tensor for tensor (the CPU dry run's stand-in when transformers is absent).
BUILTIN_FAMILIES = ("llama", "qwen2")


def weights_dtype(case: Case) -> torch.dtype:
    return WEIGHT_DTYPES[case.precision]


# ---------------------------------------------------------------- model


def on_device(device: str):
    """Create tensors directly on `device` (torch >= 2.0 makes torch.device a context manager)."""
    where = torch.device(device)
    return where if hasattr(where, "__enter__") else contextlib.nullcontext()


def build_model(cfg: dict, case: Case, device: str, impl: str):
    """A randomly initialised causal LM from a config.json dict, built directly on `device` in the weights dtype."""
    dtype = weights_dtype(case)
    if impl == "builtin":
        if cfg.get("model_type") not in BUILTIN_FAMILIES:
            raise Unsupported(f"the built-in model is a Llama (and Qwen 2's biases); {cfg.get('model_type')} needs transformers")
        from builtin_llama import BuiltinLlamaForCausalLM
        # Built in place (device context on torch >= 2.0, default dtype) so an 8B model never passes through host RAM.
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with on_device(device):
                model = BuiltinLlamaForCausalLM(cfg, case.attention)
        finally:
            torch.set_default_dtype(previous)
        return model.to(device=device, dtype=dtype)

    import transformers
    with tempfile.TemporaryDirectory() as folder:
        # Through a config.json folder, exactly as a downloaded model's config is read (no network: a local path).
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cfg, f)
        config = transformers.AutoConfig.from_pretrained(folder)
    major_minor = tuple(int(p) for p in re.findall(r"\d+", transformers.__version__)[:2])
    # transformers 4.56 renamed torch_dtype to dtype; try the current name first, the other if it is refused.
    names = ["dtype", "torch_dtype"] if major_minor >= (4, 56) else ["torch_dtype", "dtype"]
    with on_device(device):
        try:
            model = transformers.AutoModelForCausalLM.from_config(
                config, attn_implementation=case.attention, **{names[0]: dtype})
        except TypeError:
            model = transformers.AutoModelForCausalLM.from_config(
                config, attn_implementation=case.attention, **{names[1]: dtype})
    first = next(model.parameters())
    if first.dtype != dtype or first.device.type != device:
        model = model.to(device=device, dtype=dtype)
    actual = getattr(model.config, "_attn_implementation", case.attention)
    if actual != case.attention:
        raise Unsupported(f"asked for attention {case.attention} but transformers chose {actual}")
    return model


def attention_kernel(model, impl: str) -> str:
    if impl == "builtin":
        return model.attention_kernel
    return getattr(model.config, "_attn_implementation", "")


def enable_checkpointing(model, impl: str) -> None:
    if impl == "builtin":
        model.gradient_checkpointing_enable()
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


# ---------------------------------------------------------------- what trains


def glob_to_regex(pattern: str) -> re.Pattern:
    """The planner's TensorPattern syntax: * within a segment, ** across, ? one char, {a..b} ranges, {x,y}."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*"); i += 2; continue
        if c == "*":
            out.append(r"[^.]*")
        elif c == "?":
            out.append(r"[^.]")
        elif c == "{":
            close = pattern.index("}", i)
            inner = pattern[i + 1:close]
            if ".." in inner:
                lo, hi = (int(v) for v in inner.split(".."))
                options = [str(n) for n in range(lo, hi + 1)]
            else:
                options = inner.split(",")
            out.append("(?:" + "|".join(re.escape(o) for o in options) + ")")
            i = close
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + r"(\..*)?$")


def freeze_patterns(case: Case, layers: int) -> list[str]:
    if case.freeze != "half":
        raise ValueError(f"unknown freeze scope {case.freeze!r}")
    return ["model.embed_tokens", f"model.layers.{{0..{layers // 2 - 1}}}"]


def apply_freeze(model, patterns: list[str]) -> None:
    regexes = [glob_to_regex(p) for p in patterns]
    for name, param in model.named_parameters():
        param.requires_grad_(not any(r.match(name) for r in regexes))


def apply_lora(model, case: Case, lora_impl: str):
    targets = list(case.lora_targets)
    if lora_impl == "builtin":
        from builtin_llama import apply_lora as builtin_apply
        return builtin_apply(model, case.lora_rank, case.lora_alpha, targets, case.lora_dropout)
    import peft
    config = peft.LoraConfig(r=case.lora_rank, lora_alpha=case.lora_alpha, lora_dropout=case.lora_dropout,
                             target_modules=targets, bias="none", task_type="CAUSAL_LM")
    return peft.get_peft_model(model, config)


def adapter_dtype(model) -> str:
    for name, param in model.named_parameters():
        if "lora_" in name:
            return str(param.dtype).replace("torch.", "")
    return ""


def make_optimizer(params, case: Case, device: str):
    signature = inspect.signature(torch.optim.AdamW.__init__).parameters
    if case.optimizer == "adamw-fused":
        if "fused" not in signature or device != "cuda":
            raise Unsupported(f"fused AdamW needs CUDA and torch >= 2.0 (have torch {torch.__version__} on {device})")
        return torch.optim.AdamW(params, lr=1e-5, fused=True), "fused"
    if case.optimizer != "adamw":
        raise ValueError(f"unknown optimizer {case.optimizer!r}")
    if device == "cuda":
        # foreach is torch's CUDA default today; stated explicitly so the row does not depend on that default.
        return torch.optim.AdamW(params, lr=1e-5, foreach=True), "foreach"
    return torch.optim.AdamW(params, lr=1e-5, foreach=False), "for-loop"


class InBackwardStep:
    """torchtune's optimizer_in_bwd (torchtune/training/memory.py, register_optim_in_bwd_hooks): one optimizer per
    trainable parameter, stepped as soon as the parameter's gradient is accumulated, then zero_grad(set_to_none=True),
    so one gradient lives at a time. torch >= 2.1 has Tensor.register_post_accumulate_grad_hook; on older torch (the
    CPU dry run) the same moment is a hook on the parameter's AccumulateGrad node, as torch's
    _apply_optimizer_in_backward did before 2.1. The optimizer step after backward is then a no-op."""

    def __init__(self, params, case: Case, device: str):
        self.optimizers = {}
        self.stepped = 0  # hook steps since the last check in step()
        self._keep = []  # AccumulateGrad nodes hooked on older torch: kept alive with the hooks
        impl = ""
        for p in params:
            self.optimizers[p], impl = make_optimizer([p], case, device)
            if hasattr(p, "register_post_accumulate_grad_hook"):
                p.register_post_accumulate_grad_hook(self._step)
            else:
                node = p.view_as(p).grad_fn.next_functions[0][0]
                node.register_hook(lambda *_, p=p: self._step(p))
                self._keep.append(node)
        self.impl = impl + "+in-backward"

    def _step(self, p) -> None:
        self.optimizers[p].step()
        self.optimizers[p].zero_grad(set_to_none=True)
        self.stepped += 1

    def step(self) -> None:
        # Called where the loop's optimizer.step() stands, after backward: every parameter must have been stepped by
        # its hook exactly once, its gradient already gone (else the row would not measure what it says).
        left = [p for p in self.optimizers if p.grad is not None]
        if self.stepped != len(self.optimizers) or left:
            raise RuntimeError(f"optimizer in backward: {self.stepped} hook steps for {len(self.optimizers)} parameters, "
                               f"{len(left)} gradients left after backward")
        self.stepped = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        pass


def autocast(case: Case, device: str):
    if case.precision == "amp-bf16":
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def kv_dtype_unsupported(kv_dtype: str, impl: str) -> str:
    """Why this stack cannot keep the KV cache in `kv_dtype` (empty: it can). Only the compute dtype is supported:
    transformers has no fp8 KV cache, and its QuantizedCache stores int2/int4 through optimum-quanto or HQQ."""
    if not kv_dtype:
        return ""
    if impl == "builtin":
        return f"kv_dtype {kv_dtype}: the built-in model keeps its KV cache in the compute dtype"
    import transformers
    from transformers import cache_utils
    caches = sorted(n for n in dir(cache_utils) if n.endswith("Cache"))
    fp8 = [n for n in caches if re.search("fp8|float8", n, re.IGNORECASE)]
    quantized = [n for n in caches if "Quant" in n]
    backends = []
    for module in ("optimum.quanto", "hqq"):
        try:
            __import__(module)
            backends.append(module)
        except Exception:
            pass
    found = f"found {'/'.join(fp8)} but this script does not drive it yet; " if fp8 else ""
    return (f"kv_dtype {kv_dtype}: transformers {transformers.__version__} has no fp8 KV cache ({found}its quantized "
            f"caches {'/'.join(quantized) or 'none'} store int2/int4 through optimum-quanto or HQQ: "
            f"{'installed ' + '/'.join(backends) if backends else 'neither installed'}); --kv-dtype fp8 is a serving "
            f"engine's layout (vLLM)")


def keep_last_logits(model) -> tuple[dict, str]:
    """generate()-style prefill computes logits for the last position only, where the model supports it."""
    params = inspect.signature(model.forward).parameters
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in params:
            return {name: 1}, "last"
    return {}, "all"


# ---------------------------------------------------------------- measured iterations


def measure_train(model, case: Case, probe, device: str, vocab: int, inject_oom: bool, snapshot=None) -> dict:
    x = torch.randint(0, vocab, (case.batch, case.seq), device=device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if case.optimizer_in_backward:
        optimizer = InBackwardStep(trainable, case, device)
        impl = optimizer.impl
    else:
        optimizer, impl = make_optimizer(trainable, case, device)
    model.train()

    def step():
        if inject_oom:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected by --inject-oom)")
        with autocast(case, device):
            # Only the loss is kept, as a training loop does: the logits die with the output object.
            loss = model(input_ids=x, labels=x, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    probe.reset()
    step()  # first iteration: optimizer state is created lazily here
    iter1_peak, _ = probe.peak()
    probe.reset()
    step()
    peak_allocated, peak_reserved = probe.peak()
    result = {
        "optimizer_impl": impl,
        "iter1_peak_allocated_bytes": iter1_peak,
        "peak_allocated_bytes": peak_allocated,
        "peak_reserved_bytes": peak_reserved,
        "peak_rss_bytes": probe.peak_rss(),
        "end_allocated_bytes": probe.allocated(),
        "device_used_bytes": probe.device_used(),
        "process_used_bytes": probe.process_used(),
        "logits": "all",
        "kv_cache": "",
    }
    if snapshot is not None:  # after every figure above is read: the traced third step changes none of them
        result["snapshot_file"] = snapshot(step, result)
    return result


def measure_infer(model, case: Case, probe, device: str, vocab: int, inject_oom: bool, snapshot=None) -> dict:
    model.eval()
    keep, logits_mode = keep_last_logits(model)
    x = torch.randint(0, vocab, (case.batch, case.seq), device=device)
    peaks = []
    state: dict = {}
    with torch.inference_mode():
        if inject_oom:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected by --inject-oom)")
        if case.phase == "prefill":
            def step():
                out = model(input_ids=x, use_cache=True, **keep)
                state["cache_type"] = type(out.past_key_values).__name__
                state["end_allocated"] = probe.allocated()  # weights + KV cache + kept logits
                del out

            for _ in range(2):
                probe.reset()
                step()
                peaks.append(probe.peak())
        else:
            # Prefill the context (not measured), then decode_steps single-token steps; the last one is reported:
            # its cache holds seq + steps - 1 tokens going in, seq + steps coming out (2 steps: seq + 1, seq + 2).
            out = model(input_ids=x, use_cache=True, **keep)
            state.update(cache=out.past_key_values, token=out.logits[:, -1:].argmax(-1))
            del out

            def step():
                out = model(input_ids=state["token"], past_key_values=state["cache"], use_cache=True)
                state.update(cache=out.past_key_values, token=out.logits[:, -1:].argmax(-1))
                del out

            for _ in range(case.decode_steps):
                probe.reset()
                step()
                peaks.append(probe.peak())
            state["cache_type"] = type(state["cache"]).__name__
            state["end_allocated"] = probe.allocated()  # weights + KV cache
        result = {
            "optimizer_impl": "",
            "iter1_peak_allocated_bytes": peaks[0][0],
            "peak_allocated_bytes": peaks[-1][0],
            "peak_reserved_bytes": peaks[-1][1],
            "peak_rss_bytes": probe.peak_rss(),
            "end_allocated_bytes": state["end_allocated"],
            "device_used_bytes": probe.device_used(),
            "process_used_bytes": probe.process_used(),
            "logits": logits_mode if case.phase == "prefill" else "last",
            "kv_cache": state["cache_type"],
        }
        if snapshot is not None:  # after every figure above is read: the traced extra step changes none of them
            result["snapshot_file"] = snapshot(step, result)
        state.clear()
    return result


def run_job(case: Case, cfg: dict, probe, device: str, impl: str, lora_impl: str, inject_oom: bool,
            snapshot=None) -> dict:
    """Build, select, measure. Returns the measured columns; raises on OOM/errors (the runner records them).

    `snapshot(step, measured) -> file name` (rows with case.snapshot, on CUDA): called after the measured iteration.
    """
    why_not = kv_dtype_unsupported(case.kv_dtype, impl)
    if why_not:
        raise Unsupported(why_not)
    torch.manual_seed(0)
    layers = cfg["num_hidden_layers"]
    allocated_before = probe.allocated()
    model = build_model(cfg, case, device, impl)
    params_model = sum(p.numel() for p in model.parameters())
    built_dtype = str(next(model.parameters()).dtype).replace("torch.", "")  # measured, not assumed
    if case.checkpointing == "full":
        enable_checkpointing(model, impl)
    frozen = ""
    if case.task == "infer":
        for p in model.parameters():
            p.requires_grad_(False)
    elif case.method == "freeze":
        patterns = freeze_patterns(case, layers)
        apply_freeze(model, patterns)
        frozen = ";".join(patterns)
    elif case.method == "lora":
        model = apply_lora(model, case, lora_impl)
    elif case.method != "full":
        raise ValueError(f"unknown method {case.method!r}")
    params_all = sum(p.numel() for p in model.parameters())
    result = {
        "frozen": frozen,
        "params_model": params_model,
        "params_adapter": params_all - params_model,
        "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "adapter_dtype": adapter_dtype(model) if case.method == "lora" else "",
        "weights_dtype": built_dtype,
        "attention_kernel": attention_kernel(model, impl),
        "allocated_before_bytes": allocated_before,
        "allocated_after_build_bytes": probe.allocated(),
    }
    measure = measure_train if case.task == "train" else measure_infer
    result.update(measure(model, case, probe, device, cfg["vocab_size"], inject_oom,
                          snapshot if case.snapshot else None))
    return result
