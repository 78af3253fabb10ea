#!/usr/bin/env python3
"""GPU ground truth for the Afinado memory planner.

Builds Llama-architecture models from the planner's catalog configs (random weights, no download), runs a grid of
training and inference jobs, and writes gpu-ground-truth.csv into --out: one row per job with every setting in its
own column and the second iteration's torch.cuda.max_memory_allocated / max_memory_reserved, plus the CUDA context.
OOM rows are recorded, not fatal. A time budget stops launching jobs (the remaining rows are written as skipped).
Rows with another PYTORCH_CUDA_ALLOC_CONF (grid.Case.alloc_conf) run in a subprocess of this script started with it
set, one per run of consecutive rows, appending to the same CSV.

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
import subprocess
import sys
import tempfile
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
    # appended for the reserved-memory rows (issue 14); readers look columns up by name
    "decode_steps", "kv_dtype", "alloc_expandable", "snapshot_file",
    # appended for the optimizer-in-backward rows (section 11)
    "optimizer_in_backward",
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
    p.add_argument("--inject-crash", default="",
                   help="regex: end the process abruptly (exit 3) when a matching job starts (tests lost rows)")
    # Internal: set by the runner when it starts itself for the rows of another PYTORCH_CUDA_ALLOC_CONF.
    p.add_argument("--child-report", default="", help=argparse.SUPPRESS)
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


def reduce_depth(cfg: dict, layers: int) -> dict:
    """The config with `layers` decoder layers at real widths, as the planner reads such a row (MeasuredGpuRows.Reduced):
    per-layer lists cut to the first `layers` (layer_types, no_rope_layers), mlp_only_layers kept below it, and a
    checkpoint's quantization_config and remote-code map dropped (random weights in the row's dtype, built by
    transformers' own classes)."""
    out = dict(cfg, num_hidden_layers=layers)
    for key in ("layer_types", "no_rope_layers"):
        if isinstance(out.get(key), list):
            out[key] = out[key][:layers]
    if isinstance(out.get("mlp_only_layers"), list):
        out["mlp_only_layers"] = [i for i in out["mlp_only_layers"] if i < layers]
    out.pop("quantization_config", None)
    out.pop("auto_map", None)
    return out


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

    def __init__(self, path: str, header: bool = True):
        if header:
            with open(path, "w", newline="") as f:
                csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n").writeheader()
        # Append mode (O_APPEND): rows a subprocess appends in between land after ours, never under them.
        self._file = open(path, "a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=COLUMNS, lineterminator="\n", extrasaction="raise")
        self.statuses: dict[str, int] = {}

    def write(self, row: dict) -> None:
        row = {k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS}
        self._csv.writerow(row)
        self._file.flush()
        self.statuses[row["status"]] = self.statuses.get(row["status"], 0) + 1

    def count(self, status: str) -> None:
        """A row a subprocess wrote into the same file."""
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def close(self) -> None:
        self._file.close()


def case_columns(case: grid.Case, cfg: dict | None, layers: int | None, config_layers: int | None) -> dict:
    columns = {
        "model": case.model, "config_layers": config_layers, "layers": layers, "task": case.task,
        "phase": case.phase, "method": case.method, "precision": case.precision, "optimizer": case.optimizer,
        "batch": case.batch, "seq": case.seq, "checkpointing": case.checkpointing, "attention": case.attention,
        "lora_rank": case.lora_rank or "", "lora_alpha": f"{case.lora_alpha:g}" if case.lora_rank else "",
        "lora_targets": ";".join(case.lora_targets), "lora_dropout": f"{case.lora_dropout:g}" if case.lora_rank else "",
        "decode_steps": case.decode_steps if case.phase == "decode" else "", "kv_dtype": case.kv_dtype,
        "optimizer_in_backward": ("true" if case.optimizer_in_backward else "false") if case.task == "train" else "",
    }
    if case.alloc_conf:
        columns["alloc_conf"] = case.alloc_conf  # what the row's process had set (a subprocess's, see run_in_subprocess)
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
    cfg = reduce_depth(cfg, layers)
    if dry_run:
        cfg = shrink_config(cfg, layers)
    name = os.path.basename(path)[:-len(".json")]
    name += (f".L{layers}" if layers != config_layers else "") + (".dry" if dry_run else "") + ".json"
    return cfg, name, config_layers


def process_conf() -> str:
    """PYTORCH_CUDA_ALLOC_CONF of this process: CUDA's caching allocator reads it once, at initialisation."""
    return os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "")


def needs_subprocess(case: grid.Case) -> bool:
    """A row whose alloc_conf differs from this process's runs in a subprocess started with that conf."""
    return bool(case.alloc_conf) and case.alloc_conf != process_conf()


def snapshot_name(row_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", row_id) + ".json"


SUBPROCESS_GRACE_SECONDS = 300  # past the budget, a subprocess's last job may still finish; the outer timeout rules


class Runner:
    """Runs rows here or, for another alloc_conf, in a subprocess; keeps the budget and fail-fast bookkeeping."""

    def __init__(self, args, shared: dict, probe, device: str, impl: str, lora_impl: str, writer: Writer, csv_path: str):
        self.args, self.shared, self.probe, self.device = args, shared, probe, device
        self.impl, self.lora_impl, self.writer, self.csv_path = impl, lora_impl, writer, csv_path
        self.inject = re.compile(args.inject_oom) if args.inject_oom else None
        self.configs_used: dict[str, dict] = {}
        self.ran_statuses: list[str] = []
        self.errors_in_a_row = 0
        self.budget_hit = False
        self.fail_fast_hit = False
        self.subprocesses: list[dict] = []

    # ------------------------------------------------------------ bookkeeping

    def account(self, status: str) -> None:
        """A row that ran (here or in a subprocess): fail-fast stops the run when the first N all end in error."""
        self.ran_statuses.append(status)
        self.errors_in_a_row = self.errors_in_a_row + 1 if status == "error" else 0
        ran = len(self.ran_statuses)
        if self.errors_in_a_row == ran and ran >= self.args.fail_fast > 0:
            self.fail_fast_hit = True

    def stop_reason(self) -> str:
        if not self.fail_fast_hit and time.monotonic() - STARTED > self.args.budget_seconds:
            self.budget_hit = True
        if self.fail_fast_hit:
            return "not run: the first jobs all failed (--fail-fast)"
        if self.budget_hit:
            return f"not run: time budget of {self.args.budget_seconds:.0f} s reached; rerun with --only to measure it"
        return ""

    def prepare(self, case: grid.Case):
        """The row with its settings columns: (row, run_case, cfg, config_error), or None once a row for a missing
        config is written."""
        run_case = grid.shrink_for_dry_run(case) if self.args.dry_run else case
        now = datetime.datetime.now(datetime.timezone.utc)
        row = dict(self.shared, row_id=case.row_id,
                   started_utc=now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z")
        if needs_subprocess(case):
            row["alloc_expandable"] = ""  # this process's allocator says nothing about that conf
        try:
            cfg, config_file, config_layers = load_config(self.args.configs_dir, case.model, run_case.layers,
                                                          self.args.dry_run)
        except ConfigMissing as e:
            row.update(case_columns(run_case, None, run_case.layers, None), status="skipped", message=clean_message(e))
            self.writer.write(row)
            print(f"  skipped  {case.row_id}: {row['message']}", flush=True)
            return None
        except Exception as e:  # unreadable config: an error of this row, counted by --fail-fast
            cfg, config_file, config_layers = None, "", None
            config_error = f"config for {case.model} is unreadable: {type(e).__name__}: {e}"
        else:
            config_error = ""
            self.configs_used[config_file] = cfg
        layers = cfg["num_hidden_layers"] if cfg else run_case.layers
        row.update(case_columns(run_case, cfg, layers, config_layers), config_file=config_file)
        return row, run_case, cfg, config_error

    def skip(self, cases: list[grid.Case], reason: str) -> None:
        for case in cases:
            prepared = self.prepare(case)
            if prepared is not None:
                row = prepared[0]
                row.update(status="skipped", message=clean_message(reason))
                self.writer.write(row)

    # ------------------------------------------------------------ one row here

    def snapshot_saver(self, row_id: str):
        """For snapshot rows: summarise the caching allocator after the measured iteration into OUT/snapshots/."""
        def save(step, measured: dict) -> str:
            try:
                data = self.probe.allocator_snapshot(step)
                if data is None:
                    return ""  # CPU, or a torch without torch.cuda.memory._snapshot
                folder = os.path.join(self.args.out, "snapshots")
                os.makedirs(folder, exist_ok=True)
                doc = {"row_id": row_id, "alloc_conf": process_conf(), "torch_version": torch.__version__,
                       "gpu_name": self.shared.get("gpu_name", ""),
                       "measured": {k: measured.get(k) for k in ("peak_allocated_bytes", "peak_reserved_bytes",
                                                                 "end_allocated_bytes")},
                       **data}
                with open(os.path.join(folder, snapshot_name(row_id)), "w") as f:
                    json.dump(doc, f, separators=(",", ":"))
                return "snapshots/" + snapshot_name(row_id)
            except Exception as e:  # noqa: BLE001 - the measured row stands without its snapshot
                print(f"  snapshot of {row_id} failed: {type(e).__name__}: {e}", flush=True)
                return ""
        return save

    def run_here(self, case: grid.Case) -> None:
        row_id = case.row_id
        prepared = self.prepare(case)
        if prepared is None:
            return
        row, run_case, cfg, config_error = prepared
        reason = self.stop_reason()
        if reason:
            row.update(status="skipped", message=clean_message(reason))
            self.writer.write(row)
            return
        t0 = time.monotonic()
        if self.args.inject_crash and re.search(self.args.inject_crash, row_id):
            print(f"  crash    {row_id} (injected by --inject-crash)", flush=True)
            os._exit(3)  # as a segfault or a kill would: no cleanup, this row never written
        try:
            if config_error:
                raise ValueError(config_error)
            if needs_subprocess(case):  # a subprocess started for another conf never starts a third
                raise ValueError(f"alloc_conf {case.alloc_conf!r} differs from this process's {process_conf()!r}")
            row.update(run_job(run_case, cfg, self.probe, self.device, self.impl, self.lora_impl,
                               bool(self.inject and self.inject.search(row_id)), self.snapshot_saver(row_id)))
            row.update(status="ok", message="")
        except Unsupported as e:
            row.update(status="skipped", message=clean_message(e))
        except Exception as e:  # OOM and every other failure: recorded, then the next job runs
            row.update(status=classify(e), message=clean_message(f"{type(e).__name__}: {e}"))
        finally:
            # Drop every tensor of the job (gc, then the CUDA cache) before the next one starts.
            self.probe.clean()
        row["seconds"] = f"{time.monotonic() - t0:.2f}"
        self.writer.write(row)
        self.account(row["status"])
        peak = row.get("peak_allocated_bytes")
        detail = (f"peak {int(peak) / 2**30:.2f} GiB" if row["status"] == "ok" and self.device == "cuda"
                  else row["message"])
        print(f"  {row['status']:<8} {row_id} ({row['seconds']} s) {detail}", flush=True)

    # ------------------------------------------------------------ rows of another alloc_conf

    def run_in_subprocess(self, group: list[grid.Case]) -> None:
        """Consecutive rows sharing an alloc_conf: this script again, with PYTORCH_CUDA_ALLOC_CONF set, appending its
        rows to the same CSV (flushed one by one, like ours). Rows it did not write (it crashed or was killed) are
        written here as errors."""
        conf = group[0].alloc_conf
        reason = self.stop_reason()
        if reason:
            self.skip(group, reason)
            return
        ran = len(self.ran_statuses)
        # Fail-fast spans the whole run: the subprocess may stop after the errors still needed to reach N.
        fail_fast = self.args.fail_fast - ran if self.args.fail_fast > 0 and self.errors_in_a_row == ran else 0
        remaining = self.args.budget_seconds - (time.monotonic() - STARTED)
        ids = [c.row_id for c in group]
        handle, report_path = tempfile.mkstemp(prefix="measure-child-", suffix=".json")
        os.close(handle)
        cmd = [sys.executable, os.path.abspath(__file__), "--out", self.args.out,
               "--only", "^(?:" + "|".join(re.escape(i) for i in ids) + ")$",
               "--budget-seconds", f"{max(remaining, 0.0):.1f}", "--configs-dir", self.args.configs_dir,
               "--model-impl", self.args.model_impl, "--fail-fast", str(fail_fast), "--child-report", report_path]
        if self.args.dry_run:
            cmd.append("--dry-run")
        if self.args.inject_oom:
            cmd += ["--inject-oom", self.args.inject_oom]
        if self.args.inject_crash:
            cmd += ["--inject-crash", self.args.inject_crash]
        print(f"measure.py: {len(group)} rows with PYTORCH_CUDA_ALLOC_CONF={conf} run in a subprocess "
              f"(CUDA reads it at initialisation)", flush=True)
        t0 = time.monotonic()
        try:
            rc = subprocess.run(cmd, env=dict(os.environ, PYTORCH_CUDA_ALLOC_CONF=conf),
                                timeout=max(remaining, 0.0) + SUBPROCESS_GRACE_SECONDS).returncode
            ended = f"exit code {rc}"
        except subprocess.TimeoutExpired:
            rc, ended = None, f"killed after {time.monotonic() - t0:.0f} s"
        try:
            with open(report_path) as f:
                report = json.load(f)
        except (OSError, ValueError):
            report = {}
        finally:
            if os.path.exists(report_path):
                os.unlink(report_path)
        self.configs_used.update(report.get("configs_used", {}))
        with open(self.csv_path, newline="") as f:
            written = {r["row_id"]: r for r in csv.DictReader(f) if r["row_id"] in set(ids)}
        # Read back from the CSV, not the report (a subprocess that crashed writes none): rows it ran count for
        # fail-fast, rows it skipped before running (budget, fail-fast, missing config) do not.
        for case in group:
            r = written.get(case.row_id)
            if r is None:
                continue
            self.writer.count(r["status"])
            not_run = r["status"] == "skipped" and (r["message"].startswith("not run:") or "is missing from" in r["message"])
            if not not_run:
                self.account(r["status"])
        self.budget_hit = self.budget_hit or bool(report.get("budget_hit")) or any(
            "time budget" in r["message"] for r in written.values())
        lost = [c for c in group if c.row_id not in written]
        for case in lost:
            prepared = self.prepare(case)
            if prepared is not None:
                row = prepared[0]
                row.update(status="error", message=clean_message(
                    f"the subprocess with PYTORCH_CUDA_ALLOC_CONF={conf} ended ({ended}) before writing this row; "
                    f"see measure.log"))
                self.writer.write(row)
                self.account("error")
                print(f"  error    {case.row_id}: {row['message']}", flush=True)
        self.subprocesses.append({"alloc_conf": conf, "rows": len(group), "returncode": rc, "ended": ended,
                                  "seconds": round(time.monotonic() - t0, 1), "rows_lost": len(lost)})


def main(argv=None) -> int:
    args = parse_args(argv)
    child = bool(args.child_report)
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
    # Before any job, on an empty cache: run-info.json only (not a CSV column).
    address_order = probes.segment_address_order() if device == "cuda" and not child else {"order": "", "note": "not probed"}
    impl_label = impl if impl == "builtin" else f"{impl}+{'peft' if lora_impl == 'peft' else 'builtin-lora'}"
    shared = {"schema": SCHEMA, "device": device, "model_impl": impl_label, **machine, **software}
    conf_note = f"; PYTORCH_CUDA_ALLOC_CONF={process_conf()} (expandable: {machine['alloc_expandable'] or '-'})" \
        if process_conf() else ""
    print(f"measure.py: {len(cases)} jobs on {device} {machine['gpu_name']} with {impl_label} models; torch "
          f"{software['torch_version']}, transformers {software['transformers_version'] or '-'}, peft "
          f"{software['peft_version'] or '-'}; context {machine['context_bytes'] / 2**20:.0f} MiB "
          f"({machine['context_method']}); budget {args.budget_seconds:.0f} s{conf_note}; new segments' addresses "
          f"{address_order['order'] or '-'}", flush=True)

    csv_path = os.path.join(args.out, CSV_NAME)
    writer = Writer(csv_path, header=not child)
    runner = Runner(args, shared, probe, device, impl, lora_impl, writer, csv_path)
    i = 0
    while i < len(cases):
        if needs_subprocess(cases[i]) and not child:
            j = i + 1
            while j < len(cases) and cases[j].alloc_conf == cases[i].alloc_conf:
                j += 1
            runner.run_in_subprocess(cases[i:j])
            i = j
        else:
            runner.run_here(cases[i])
            i += 1
    writer.close()

    if child:
        with open(args.child_report, "w") as f:
            json.dump({"configs_used": runner.configs_used, "budget_hit": runner.budget_hit,
                       "fail_fast_hit": runner.fail_fast_hit}, f)
        return 1 if runner.fail_fast_hit else 0

    with open(os.path.join(args.out, "configs-used.json"), "w") as f:
        json.dump(runner.configs_used, f, indent=1, sort_keys=True)
    total = time.monotonic() - STARTED
    gpu_slug = re.sub(r"[^a-z0-9]+", "-", machine["gpu_name"].lower()).strip("-") or "cpu"
    commit_as = f"bench/ground-truth/gpu-{gpu_slug}-{datetime.date.today().isoformat()}.csv"
    info = {"schema": SCHEMA, "argv": sys.argv[1:], "seconds": round(total, 1), "jobs": len(cases),
            "statuses": writer.statuses, "budget_hit": runner.budget_hit, "fail_fast_hit": runner.fail_fast_hit,
            "subprocesses": runner.subprocesses, "commit_as": commit_as, "segment_address_order": address_order, **shared}
    with open(os.path.join(args.out, "run-info.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(f"measure.py: {writer.statuses} in {total:.0f} s -> {csv_path} (commit as {commit_as})", flush=True)
    return 1 if runner.fail_fast_hit else 0


if __name__ == "__main__":
    sys.exit(main())
