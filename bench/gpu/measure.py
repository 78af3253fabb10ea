#!/usr/bin/env python3
"""GPU ground truth for the Afinado memory planner.

Builds Llama-architecture models from the planner's catalog configs (random weights, no download), runs a grid of
training and inference jobs, and writes gpu-ground-truth.csv into --out: one row per job with every setting in its
own column and the second iteration's torch.cuda.max_memory_allocated / max_memory_reserved, plus the CUDA context.
OOM rows are recorded, not fatal. A time budget stops launching jobs (the remaining rows are written as skipped).

  python3 bench/gpu/measure.py --out DIR [--budget-seconds 420]   # on a machine with one CUDA GPU
  python3 bench/gpu/measure.py --dry-run --out DIR                 # on CPU, tiny widths, any torch >= 1.13
See bench/gpu/README.md for the columns and how rows are committed.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import re
import sys
import time

STARTED = time.monotonic()
sys.dont_write_bytecode = True  # keep bench/gpu free of __pycache__ in the working tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
DEFAULT_CONFIGS = os.path.join(REPO, "src", "Afinado.Planner", "Catalog", "configs")

os.environ.setdefault("HF_HUB_OFFLINE", "1")          # the device machine has no internet; never try
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402

import grid  # noqa: E402
import probes  # noqa: E402
from jobs import Unsupported, run_job  # noqa: E402

SCHEMA = "afinado.gpu-ground-truth/1"
CSV_NAME = "gpu-ground-truth.csv"

# Column order of gpu-ground-truth.csv; README.md documents each one.
COLUMNS = [
    "schema", "row_id", "status", "message",
    # the job
    "model", "config_layers", "layers", "task", "phase", "method", "precision", "weights_dtype",
    "optimizer", "optimizer_impl", "batch", "seq", "checkpointing", "attention", "attention_kernel",
    "lora_rank", "lora_alpha", "lora_targets", "lora_dropout", "adapter_dtype", "frozen", "logits", "kv_cache",
    # the model as built
    "hidden_size", "intermediate_size", "num_heads", "num_kv_heads", "head_dim", "vocab_size", "tied_embeddings",
    "params_model", "params_adapter", "params_trainable",
    # measurements (bytes)
    "peak_allocated_bytes", "peak_reserved_bytes", "iter1_peak_allocated_bytes", "allocated_before_bytes",
    "allocated_after_build_bytes", "end_allocated_bytes", "device_used_bytes", "process_used_bytes",
    "context_bytes", "context_warm_bytes", "context_method", "peak_rss_bytes",
    # the machine and software
    "device", "gpu_name", "gpu_total_bytes", "model_impl", "torch_version", "transformers_version", "peft_version",
    "cuda_version", "python_version", "alloc_conf", "cuda_module_loading",
    "config_file", "started_utc", "seconds",
]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="folder for gpu-ground-truth.csv, run-info.json, configs-used.json")
    p.add_argument("--budget-seconds", type=float, default=420.0,
                   help="stop launching jobs after this many seconds since start (default 420)")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny widths/batches/sequences: tests the logic")
    p.add_argument("--configs-dir", default=DEFAULT_CONFIGS, help="folder of catalog configs (org--name.json)")
    p.add_argument("--only", default="", help="regex: run only rows whose row_id matches (others are not listed)")
    p.add_argument("--list", action="store_true", help="print the grid's row ids in run order and exit")
    p.add_argument("--model-impl", choices=["auto", "transformers", "builtin"], default="auto",
                   help="auto: transformers+peft when importable (required on GPU), else the built-in minimal Llama")
    p.add_argument("--fail-fast", type=int, default=3,
                   help="stop when the first N jobs all end in error (not OOM): the script, not the grid, is wrong")
    p.add_argument("--inject-oom", default="", help="regex: raise an OOM inside matching jobs (tests the recovery)")
    return p.parse_args(argv)


def fail(message: str) -> None:
    print(f"measure.py: {message}", file=sys.stderr)
    sys.exit(2)


def _import_error(name: str) -> str:
    try:
        __import__(name)
        return ""
    except Exception as e:  # ImportError, or a version clash raised while importing
        return f"{type(e).__name__}: {e}"


def choose_impl(requested: str, dry_run: bool) -> tuple[str, str]:
    """(model implementation, LoRA implementation): transformers + peft where importable, else the built-in ones.

    A GPU run without transformers stops (the point is to measure what users run); without peft alone it goes on
    with the built-in LoRA wrapper around transformers' Linear layers, and says so in the model_impl column.
    """
    if requested == "builtin":
        return "builtin", "builtin"
    modern_torch = hasattr(torch.nn.functional, "scaled_dot_product_attention")
    transformers_error = _import_error("transformers") if modern_torch else f"torch {torch.__version__} < 2.0"
    peft_error = _import_error("peft") if not transformers_error else transformers_error
    if transformers_error:
        if requested == "transformers" or not dry_run:
            fail(f"transformers is not usable here ({transformers_error}); the GPU run measures transformers "
                 f"models: install it, or use --dry-run / --model-impl builtin")
        return "builtin", "builtin"
    if peft_error:
        print(f"measure.py: peft is not usable ({peft_error}); LoRA rows use the built-in LoRA wrapper",
              file=sys.stderr)
        return "transformers", "builtin"
    return "transformers", "peft"


def config_path(configs_dir: str, model_id: str) -> str:
    return os.path.join(configs_dir, model_id.replace("/", "--") + ".json")


def shrink_config(cfg: dict, layers: int) -> dict:
    """Dry run: the same family and GQA ratio at tiny widths, so CPU jobs take milliseconds."""
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or heads
    group = max(1, heads // kv)
    tiny_kv = 2 if group <= 4 else 1
    tiny_heads = tiny_kv * group
    head_dim = 16
    small = dict(cfg)
    small.update(num_attention_heads=tiny_heads, num_key_value_heads=tiny_kv, hidden_size=tiny_heads * head_dim,
                 intermediate_size=tiny_heads * head_dim * 3, vocab_size=256, num_hidden_layers=layers)
    if "head_dim" in small:
        small["head_dim"] = head_dim
    return small


def clean_message(text: str) -> str:
    """Messages go into one CSV field: no commas, quotes or newlines, so no reader needs CSV quoting rules."""
    text = re.sub(r"\s+", " ", str(text)).replace(",", ";").replace('"', "'")
    return text[:400]


def classify(error: BaseException) -> str:
    oom_type = getattr(torch.cuda, "OutOfMemoryError", ())
    text = str(error).lower()
    # cuBLAS/cuDNN failing to allocate their workspace is the same condition reported by the library.
    markers = ("out of memory", "can't allocate memory", "cublas_status_alloc_failed", "cudnn_status_alloc_failed")
    if (oom_type and isinstance(error, oom_type)) or any(m in text for m in markers):
        return "oom"
    return "error"


class Writer:
    """Appends and flushes each row, so a killed run still leaves every finished row on disk."""

    def __init__(self, path: str):
        self._file = open(path, "w", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=COLUMNS, lineterminator="\n", extrasaction="raise")
        self._csv.writeheader()
        self._file.flush()
        self.statuses: dict[str, int] = {}

    def write(self, row: dict) -> None:
        row = {k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS}
        self._csv.writerow(row)
        self._file.flush()
        self.statuses[row["status"]] = self.statuses.get(row["status"], 0) + 1

    def close(self) -> None:
        self._file.close()


def case_columns(case: grid.Case, cfg: dict | None, layers: int | None, config_layers: int | None) -> dict:
    columns = {
        "model": case.model, "config_layers": config_layers, "layers": layers, "task": case.task,
        "phase": case.phase, "method": case.method, "precision": case.precision, "optimizer": case.optimizer,
        "batch": case.batch, "seq": case.seq, "checkpointing": case.checkpointing, "attention": case.attention,
        "lora_rank": case.lora_rank or "", "lora_alpha": f"{case.lora_alpha:g}" if case.lora_rank else "",
        "lora_targets": ";".join(case.lora_targets), "lora_dropout": f"{case.lora_dropout:g}" if case.lora_rank else "",
    }
    if cfg is not None:
        heads = cfg["num_attention_heads"]
        columns.update(
            hidden_size=cfg["hidden_size"], intermediate_size=cfg["intermediate_size"], num_heads=heads,
            num_kv_heads=cfg.get("num_key_value_heads") or heads,
            head_dim=cfg.get("head_dim") or cfg["hidden_size"] // heads, vocab_size=cfg["vocab_size"],
            tied_embeddings=str(bool(cfg.get("tie_word_embeddings", False))).lower())
    return columns


class ConfigMissing(Exception):
    """The grid names a model whose config is not in the catalog folder (yet): its rows are skipped."""


def load_config(configs_dir: str, model_id: str, layers: int | None, dry_run: bool) -> tuple[dict, str, int]:
    """The catalog config as built: reduced to `layers` (real widths), or shrunk to tiny widths in a dry run."""
    path = config_path(configs_dir, model_id)
    if not os.path.exists(path):
        raise ConfigMissing(f"config {os.path.basename(path)} is missing from {configs_dir}: add the model's real "
                            f"config.json there as org--name.json")
    with open(path) as f:
        cfg = json.load(f)
    config_layers = int(cfg["num_hidden_layers"])
    layers = layers or config_layers
    cfg = shrink_config(cfg, layers) if dry_run else dict(cfg, num_hidden_layers=layers)
    name = os.path.basename(path)[:-len(".json")]
    name += (f".L{layers}" if layers != config_layers else "") + (".dry" if dry_run else "") + ".json"
    return cfg, name, config_layers


def main(argv=None) -> int:
    args = parse_args(argv)
    cases = grid.full_grid()
    if args.only:
        only = re.compile(args.only)
        cases = [c for c in cases if only.search(c.row_id)]
    if args.list:
        for c in cases:
            print(c.row_id)
        return 0
    if not args.out:
        fail("--out DIR is required")
    if not cases:
        fail(f"--only {args.only!r} matches no row; see --list")
    inject = re.compile(args.inject_oom) if args.inject_oom else None

    os.makedirs(args.out, exist_ok=True)
    impl, lora_impl = choose_impl(args.model_impl, args.dry_run)
    if args.dry_run:
        device = "cpu"
        probe, machine = probes.open_cpu()
    else:
        if not torch.cuda.is_available():
            fail("no CUDA device is visible; use --dry-run on a machine without a GPU")
        device = "cuda"
        probe, machine = probes.open_cuda()
    software = probes.software_versions()
    impl_label = impl if impl == "builtin" else f"{impl}+{'peft' if lora_impl == 'peft' else 'builtin-lora'}"
    shared = {"schema": SCHEMA, "device": device, "model_impl": impl_label, **machine, **software}
    print(f"measure.py: {len(cases)} jobs on {device} {machine['gpu_name']} with {impl_label} models; torch "
          f"{software['torch_version']}, transformers {software['transformers_version'] or '-'}, peft "
          f"{software['peft_version'] or '-'}; context {machine['context_bytes'] / 2**20:.0f} MiB "
          f"({machine['context_method']}); budget {args.budget_seconds:.0f} s", flush=True)

    writer = Writer(os.path.join(args.out, CSV_NAME))
    configs_used: dict[str, dict] = {}
    errors_in_a_row, ran, budget_hit, fail_fast_hit = 0, 0, False, False
    for case in cases:
        row_id = case.row_id
        run_case = grid.shrink_for_dry_run(case) if args.dry_run else case
        now = datetime.datetime.now(datetime.timezone.utc)
        row = dict(shared, row_id=row_id, started_utc=now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z")
        try:
            cfg, config_file, config_layers = load_config(args.configs_dir, case.model, run_case.layers, args.dry_run)
        except ConfigMissing as e:
            row.update(case_columns(run_case, None, run_case.layers, None), status="skipped", message=clean_message(e))
            writer.write(row)
            print(f"  skipped  {row_id}: {row['message']}", flush=True)
            continue
        except Exception as e:  # unreadable config: an error of this row, counted by --fail-fast
            cfg, config_file, config_layers = None, "", None
            config_error = f"config for {case.model} is unreadable: {type(e).__name__}: {e}"
        else:
            config_error = ""
            configs_used[config_file] = cfg
        layers = cfg["num_hidden_layers"] if cfg else run_case.layers
        row.update(case_columns(run_case, cfg, layers, config_layers), config_file=config_file)

        if not fail_fast_hit and time.monotonic() - STARTED > args.budget_seconds:
            budget_hit = True
        if fail_fast_hit or budget_hit:
            reason = "not run: the first jobs all failed (--fail-fast)" if fail_fast_hit else \
                f"not run: time budget of {args.budget_seconds:.0f} s reached; rerun with --only to measure it"
            row.update(status="skipped", message=clean_message(reason))
            writer.write(row)
            continue

        t0 = time.monotonic()
        try:
            if config_error:
                raise ValueError(config_error)
            row.update(run_job(run_case, cfg, probe, device, impl, lora_impl, bool(inject and inject.search(row_id))))
            row.update(status="ok", message="")
        except Unsupported as e:
            row.update(status="skipped", message=clean_message(e))
        except Exception as e:  # OOM and every other failure: recorded, then the next job runs
            row.update(status=classify(e), message=clean_message(f"{type(e).__name__}: {e}"))
        finally:
            # Drop every tensor of the job (gc, then the CUDA cache) before the next one starts.
            probe.clean()
        row["seconds"] = f"{time.monotonic() - t0:.2f}"
        writer.write(row)
        ran += 1
        errors_in_a_row = errors_in_a_row + 1 if row["status"] == "error" else 0
        if errors_in_a_row == ran and ran >= args.fail_fast > 0:
            fail_fast_hit = True
        peak = row.get("peak_allocated_bytes")
        detail = f"peak {int(peak) / 2**30:.2f} GiB" if row["status"] == "ok" and device == "cuda" else row["message"]
        print(f"  {row['status']:<8} {row_id} ({row['seconds']} s) {detail}", flush=True)

    writer.close()
    with open(os.path.join(args.out, "configs-used.json"), "w") as f:
        json.dump(configs_used, f, indent=1, sort_keys=True)
    total = time.monotonic() - STARTED
    gpu_slug = re.sub(r"[^a-z0-9]+", "-", machine["gpu_name"].lower()).strip("-") or "cpu"
    commit_as = f"bench/ground-truth/gpu-{gpu_slug}-{datetime.date.today().isoformat()}.csv"
    info = {"schema": SCHEMA, "argv": sys.argv[1:], "seconds": round(total, 1), "jobs": len(cases),
            "statuses": writer.statuses, "budget_hit": budget_hit, "fail_fast_hit": fail_fast_hit,
            "commit_as": commit_as, **shared}
    with open(os.path.join(args.out, "run-info.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(f"measure.py: {writer.statuses} in {total:.0f} s -> {os.path.join(args.out, CSV_NAME)} "
          f"(commit as {commit_as})", flush=True)
    return 1 if fail_fast_hit else 0


if __name__ == "__main__":
    sys.exit(main())
