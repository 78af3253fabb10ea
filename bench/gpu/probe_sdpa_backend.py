"""Which SDPA kernel runs fp32 training with grouped KV heads, and what it costs (issue 7's fp32 rows).

The planner models fp32 + SDPA + GQA as PyTorch's math fallback (softmax output saved per layer, O(b·h·s²)). This probe
measures the same training step three ways — default dispatch, only the memory-efficient kernel allowed, only the math
kernel allowed — and writes peak allocated bytes (second iteration) per setting to OUT/sdpa-backend-probe.json.
If the default peak equals the math-only peak and efficient-only raises "No available kernel", the fallback is math.

usage: python3 bench/gpu/probe_sdpa_backend.py OUT_DIR   (CUDA, torch >= 2.3, transformers; ~1 min on an H100)
"""
import json
import os
import sys
import time

import torch
import transformers
from torch.nn.attention import SDPBackend, sdpa_kernel

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "src", "Afinado.Planner", "Catalog", "configs")
JOBS = [  # (config file, batch, seq, dtype)
    ("HuggingFaceTB--SmolLM2-135M.json", 8, 1024, torch.float32),
    ("TinyLlama--TinyLlama-1.1B-Chat-v1.0.json", 2, 1024, torch.float32),
    ("HuggingFaceTB--SmolLM2-135M.json", 8, 1024, torch.bfloat16),
]
SETTINGS = {"default": None, "efficient-only": [SDPBackend.EFFICIENT_ATTENTION], "math-only": [SDPBackend.MATH],
            "flash-only": [SDPBackend.FLASH_ATTENTION]}


def step(model, x):
    loss = model(input_ids=x, labels=x, use_cache=False).loss
    loss.backward()
    for p in model.parameters():
        p.grad = None


def measure(cfg_file, batch, seq, dtype, backends):
    with open(os.path.join(CONFIGS, cfg_file)) as f:
        cfg = transformers.AutoConfig.for_model(**json.load(f))
    torch.set_default_dtype(dtype)
    with torch.device("cuda"):
        model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa", dtype=dtype)
    torch.set_default_dtype(torch.float32)
    x = torch.randint(0, cfg.vocab_size, (batch, seq), device="cuda")
    try:
        ctx = sdpa_kernel(backends) if backends else torch.enable_grad()
        with ctx:
            step(model, x)                      # iteration 1 (warm-up)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            step(model, x)                      # iteration 2 is the one reported
            torch.cuda.synchronize()
        return {"status": "ok", "peak_allocated_bytes": torch.cuda.max_memory_allocated()}
    except RuntimeError as e:                   # "No available kernel" when the allowed backend cannot run this case
        return {"status": "error", "message": str(e).splitlines()[0][:300]}
    finally:
        del model, x
        torch.cuda.empty_cache()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    rows, t0 = [], time.time()
    for cfg_file, batch, seq, dtype in JOBS:
        for name, backends in SETTINGS.items():
            r = measure(cfg_file, batch, seq, dtype, backends)
            r.update(config=cfg_file, batch=batch, seq=seq, dtype=str(dtype).replace("torch.", ""), setting=name)
            rows.append(r)
            print(json.dumps(r), flush=True)
    info = {"torch": torch.__version__, "transformers": transformers.__version__, "gpu": torch.cuda.get_device_name(0),
            "seconds": round(time.time() - t0, 1), "rows": rows}
    with open(os.path.join(out, "sdpa-backend-probe.json"), "w") as f:
        json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()
