"""Rank 0 of a 2-GPU FSDP1 LoRA/QLoRA run, on one GPU: what FSDP1 + CPU offload really keeps on the GPU (issue 6).

The PEFT docs' Llama-2-70B QLoRA + FSDP + CPU-offload row (19.6 GB per GPU on 2x 24 GB) and Answer.AI's run of the same
layout (14.92 GiB reserved) sit 22-27 % above the planner, while the planner's *allocated* figure is within 2 % wherever a
published FSDP1 run states it. Settling where the rest goes needs a trace of a sharded run, and the device machines have
one GPU. A fake process group (torch's "fake" backend: collectives return at once, tensors keep their shapes) makes
FSDP1 shard, all-gather into full-size buffers, reduce-scatter and offload exactly as rank 0 of a world of --world
ranks would, so every allocation of that rank happens for real on the one GPU; only the numbers inside are garbage.

Each job runs in its own process (a clean caching allocator) with the PEFT docs' recipe: Llama-2-70B layer widths with
--layers decoder layers (random weights), PEFT LoRA r=8 alpha 16 dropout 0.1 on all linears, PEFT's
fsdp_auto_wrap_policy (decoder layers and every LoRA factor as units), FULL_SHARD, use_orig_params=False,
limit_all_gathers, BACKWARD_PRE, sync_module_states, accelerate's bf16 MixedPrecision + autocast, HF reentrant
gradient checkpointing, batch 2 x 2048, gradient accumulation 2 with no_sync on the first micro-batch, AdamW,
three optimizer steps. QLoRA jobs (bitsandbytes nf4 + double quant, bf16 quant storage, quantised on load as with
fsdp_cpu_ram_efficient_loading) run only where bitsandbytes imports; otherwise they are recorded as skipped.

Written per job to OUT/fsdp1-probe.json: allocated/reserved after init, per optimizer step max allocated/reserved,
and, from the caching allocator's snapshot at the end of step 2, reserved and allocated bytes per CUDA stream (FSDP1
all-gathers on its own stream, whose cached blocks the compute stream cannot reuse).

The planner's counterpart: `afinado plan --model bench/gpu/configs/llama2-70b-L4.json` with the row's flags (printed per
job as plan_args) and `--gpus 2 --fsdp full [--offload params]`.

usage: python3 bench/gpu/probe_fsdp1_offload.py OUT_DIR [--layers 4] [--world 2] [--only REGEX]
       python3 bench/gpu/probe_fsdp1_offload.py --print-plan-args   (no torch needed)
       (CUDA, torch >= 2.4 with FSDP1, transformers, peft; about 2-4 minutes on an H100)
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
BASE_CONFIG = os.path.join(HERE, "..", "..", "src", "Afinado.Planner", "Catalog", "configs", "meta-llama--Llama-2-70b-hf.json")
JOBS = [  # (job id, method, offload)
    ("lora-offload", "lora", True),
    ("lora-no-offload", "lora", False),
    ("qlora-offload", "qlora", True),
    ("qlora-no-offload", "qlora", False),
]
BATCH, SEQ, ACCUM, STEPS = 2, 2048, 2, 3


def plan_args(method: str, offload: bool, layers: int) -> str:
    quant = "--method qlora --weights-dtype nf4-dq --quant-lib bitsandbytes" if method == "qlora" else "--method lora"
    return (f"--model bench/gpu/configs/llama2-70b-L{layers}.json --lora-rank 8 --lora-alpha 16 --lora-dropout 0.1 "
            f"--lora-targets all-linear --seq {SEQ} --attention sdpa --checkpointing full {quant} --precision bf16 "
            f"--batch {BATCH} --grad-accum {ACCUM} --gpus 2 --fsdp full" + (" --offload params" if offload else ""))


def init_fake_group(world: int) -> None:
    import torch.distributed as dist
    try:  # older torch registers the backend when its test helper is imported
        from torch.testing._internal.distributed.fake_pg import FakeStore
        dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=world)
    except ImportError:
        dist.init_process_group("fake", rank=0, world_size=world)


def build_model(method: str, layers: int, workdir: str):
    import torch
    import transformers
    with open(BASE_CONFIG) as f:
        cfg_dict = json.load(f)
    cfg_dict["num_hidden_layers"] = layers
    cfg = transformers.AutoConfig.for_model(**cfg_dict)
    cfg.use_cache = False
    if method == "lora":
        return transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa", dtype=torch.bfloat16)
    import bitsandbytes  # noqa: F401  (ImportError -> skipped)
    # Quantisation happens in from_pretrained only: save random weights once, then load them the way the PEFT recipe
    # does (every rank quantises on its GPU; with FSDP_CPU_RAM_EFFICIENT_LOADING rank 0 keeps the codes on the CPU).
    ckpt = os.path.join(workdir, f"llama2-70b-L{layers}")
    if not os.path.exists(os.path.join(ckpt, "config.json")):
        transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).save_pretrained(ckpt)
        gc.collect()
    os.environ.update(ACCELERATE_USE_FSDP="true", FSDP_CPU_RAM_EFFICIENT_LOADING="true", LOCAL_RANK="0")
    bnb = transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                          bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_quant_storage=torch.bfloat16)
    return transformers.AutoModelForCausalLM.from_pretrained(ckpt, quantization_config=bnb, dtype=torch.bfloat16,
                                                             attn_implementation="sdpa")


def stream_summary(snapshot) -> dict:
    """Reserved (segment) and allocated bytes per CUDA stream from torch.cuda.memory._snapshot()."""
    out: dict[str, dict[str, int]] = {}
    for seg in snapshot.get("segments", []):
        s = out.setdefault(str(seg.get("stream", 0)), {"reserved": 0, "allocated": 0, "segments": 0})
        s["reserved"] += int(seg["total_size"])
        s["allocated"] += int(seg.get("allocated_size", 0))
        s["segments"] += 1
    return out


def run_job(job_id: str, method: str, offload: bool, layers: int, world: int, workdir: str) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from peft.utils.other import fsdp_auto_wrap_policy
    from torch.distributed.fsdp import BackwardPrefetch, CPUOffload, MixedPrecision, ShardingStrategy
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    torch.cuda.set_device(0)
    init_fake_group(world)
    row: dict = {"job": job_id, "method": method, "offload": offload, "layers": layers, "world": world,
                 "batch": BATCH, "seq": SEQ, "grad_accum": ACCUM, "plan_args": plan_args(method, offload, layers)}
    model = build_model(method, layers, workdir)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    row["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    torch.cuda.reset_peak_memory_stats()
    model = FSDP(model, sharding_strategy=ShardingStrategy.FULL_SHARD, auto_wrap_policy=fsdp_auto_wrap_policy(model),
                 cpu_offload=CPUOffload(offload_params=offload), backward_prefetch=BackwardPrefetch.BACKWARD_PRE,
                 limit_all_gathers=True, use_orig_params=False, sync_module_states=True, device_id=torch.cuda.current_device(),
                 mixed_precision=MixedPrecision(param_dtype=torch.bfloat16, reduce_dtype=torch.bfloat16,
                                                buffer_dtype=torch.bfloat16))
    torch.cuda.synchronize()
    row.update(init_allocated=torch.cuda.memory_allocated(), init_reserved=torch.cuda.memory_reserved(),
               init_peak_allocated=torch.cuda.max_memory_allocated(), init_peak_reserved=torch.cuda.max_memory_reserved())
    model.train()  # from_pretrained returns eval mode: no dropout and no gradient checkpointing there
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(0, model.config.vocab_size if hasattr(model, "config") else 32000, (BATCH, SEQ), device="cuda")
    steps = []
    for step in range(STEPS):
        torch.cuda.reset_peak_memory_stats()
        if step == 1:
            torch.cuda.memory._record_memory_history(max_entries=200000)
        t0 = time.time()
        for micro in range(ACCUM):
            # accelerate/Trainer: no gradient sync (FSDP1 no_sync keeps unsharded LoRA grads, not offloaded) but the last
            sync = model.no_sync() if micro < ACCUM - 1 else contextlib.nullcontext()
            with sync:
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = model(input_ids=x, labels=x).loss / ACCUM
                loss.backward()
            del loss
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        steps.append({"step": step + 1, "seconds": round(time.time() - t0, 2),
                      "peak_allocated": torch.cuda.max_memory_allocated(), "peak_reserved": torch.cuda.max_memory_reserved(),
                      "allocated_after": torch.cuda.memory_allocated(), "reserved_after": torch.cuda.memory_reserved(),
                      "alloc_retries": torch.cuda.memory_stats().get("num_alloc_retries", 0)})
        if step == 1:
            row["streams_after_step2"] = stream_summary(torch.cuda.memory._snapshot())
            torch.cuda.memory._record_memory_history(enabled=None)
    row["steps"] = steps
    row["status"] = "ok"
    return row


def versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for name in ("torch", "transformers", "peft", "bitsandbytes", "accelerate"):
        try:
            out[name] = __import__(name).__version__
        except Exception as e:  # noqa: BLE001 - recorded, not fatal
            out[name] = f"unavailable ({type(e).__name__})"
    try:
        import torch
        out["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001
        pass
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="")
    ap.add_argument("--print-plan-args", action="store_true", help="print each job's planner flags and stop (no torch)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--only", default="")
    ap.add_argument("--job", default="", help=argparse.SUPPRESS)  # child mode
    ap.add_argument("--workdir", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.print_plan_args:
        for job_id, method, offload in JOBS:
            print(f"{job_id}\t{plan_args(method, offload, a.layers)}")
        return 0
    if not a.out:
        ap.error("OUT_DIR is required")
    os.makedirs(a.out, exist_ok=True)
    if a.job:  # child: one job, one JSON line on stdout
        method, offload = next((m, o) for j, m, o in JOBS if j == a.job)
        try:
            row = run_job(a.job, method, offload, a.layers, a.world, a.workdir)
        except ImportError as e:
            row = {"job": a.job, "status": "skipped", "reason": f"{type(e).__name__}: {e}"}
        except Exception as e:  # noqa: BLE001 - the row records it; other jobs still run
            oom = "out of memory" in str(e).lower()
            row = {"job": a.job, "status": "oom" if oom else "error", "message": str(e)[:500],
                   "traceback": traceback.format_exc()[-3000:]}
        print("ROW " + json.dumps(row), flush=True)
        return 0
    workdir = tempfile.mkdtemp(prefix="fsdp1-probe-")
    rows, t0 = [], time.time()
    for job_id, _, _ in JOBS:
        if a.only and not re.search(a.only, job_id):
            continue
        cmd = [sys.executable, os.path.abspath(__file__), a.out, "--layers", str(a.layers), "--world", str(a.world),
               "--job", job_id, "--workdir", workdir]
        p = subprocess.run(cmd, capture_output=True, text=True)
        line = next((x[4:] for x in p.stdout.splitlines() if x.startswith("ROW ")), None)
        row = json.loads(line) if line else {"job": job_id, "status": "crashed", "returncode": p.returncode,
                                              "stderr": p.stderr[-3000:]}
        rows.append(row)
        print(f"{job_id}: {row.get('status')} " + json.dumps(row.get("steps", [])[-1:] or row.get("message", ""))[:300],
              flush=True)
        with open(os.path.join(a.out, "fsdp1-probe.json"), "w") as f:  # rewritten after every job: a kill keeps rows
            json.dump({"schema": "afinado.fsdp1-probe/1", "versions": versions(), "seconds": round(time.time() - t0, 1),
                       "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
