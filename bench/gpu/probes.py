"""Memory probes and the environment record.

On CUDA: torch.cuda.max_memory_allocated / max_memory_reserved after reset_peak_memory_stats, device use from
mem_get_info, per-process use from NVML when nvidia-ml-py is installed, and the CUDA context measured once at start.
On CPU (the dry run) the CUDA figures are 0 and the peak resident set size (VmHWM, reset through
/proc/self/clear_refs) stands in, so the same code path runs everywhere.
"""
from __future__ import annotations

import bisect
import gc
import os
import platform

import torch

MIB = 1 << 20


def _read_vm_hwm() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_vm_hwm() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the peak RSS counter (Linux >= 4.0)
    except OSError:
        pass


class CpuProbe:
    device = "cpu"

    def reset(self) -> None:
        _reset_vm_hwm()

    def peak(self) -> tuple[int, int]:
        return 0, 0

    def peak_rss(self) -> int:
        return _read_vm_hwm()

    def allocated(self) -> int:
        return 0

    def device_used(self) -> int:
        return 0

    def process_used(self) -> int | None:
        return None

    def clean(self) -> None:
        gc.collect()

    def allocator_snapshot(self, step) -> dict | None:
        return None  # no caching allocator on CPU: snapshot rows write nothing


class CudaProbe:
    device = "cuda"

    def __init__(self, nvml_handle=None):
        self._nvml = nvml_handle

    def sync(self) -> None:
        torch.cuda.synchronize()

    def reset(self) -> None:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        _reset_vm_hwm()

    def peak(self) -> tuple[int, int]:
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()

    def peak_rss(self) -> int:
        return _read_vm_hwm()

    def allocated(self) -> int:
        return torch.cuda.memory_allocated()

    def device_used(self) -> int:
        free, total = torch.cuda.mem_get_info()
        return total - free

    def process_used(self) -> int | None:
        """This process's GPU memory as nvidia-smi lists it (NVML), when NVML can see our pid."""
        if self._nvml is None:
            return None
        try:
            import pynvml
            for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(self._nvml):
                if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                    return int(proc.usedGpuMemory)
        except Exception:  # NVML unsupported in this sandbox: the column stays empty
            return None
        return None

    def clean(self) -> None:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()

    def allocator_snapshot(self, step) -> dict | None:
        """The caching allocator's segments after the measured iteration, then one more identical iteration traced
        (every alloc/free of 1 MiB or more, in order, with the segment and offset it landed in), summarised.

        None where torch lacks torch.cuda.memory._snapshot. A failure of the traced iteration (even an OOM) is
        recorded in the summary, never raised: the row's measured figures are already taken.
        """
        memory = torch.cuda.memory
        if not hasattr(memory, "_snapshot"):
            return None
        self.sync()
        summary = {"after_measured_iteration": summarise_segments(memory._snapshot())}
        record = getattr(memory, "_record_memory_history", None)
        if record is None:
            summary["traced_iteration"] = {"skipped": "torch.cuda.memory._record_memory_history is missing"}
            return summary
        # torch >= 2.1 keywords; context=None records the alloc/free trace without stack traces (host-side only);
        # clear_history (newer torch) drops the events of an earlier snapshot row of this process.
        for extra in ({"clear_history": True}, {}):
            try:
                record(enabled="all", context=None, max_entries=TRACE_MAX_ENTRIES, **extra)
                break
            except TypeError as e:
                error = e
        else:
            summary["traced_iteration"] = {"skipped": f"_record_memory_history has another signature: {error}"}
            return summary
        traced: dict = {}
        try:
            self.reset()
            step()
            allocated, reserved = self.peak()
            traced.update(peak_allocated_bytes=allocated, peak_reserved_bytes=reserved)
            snap = memory._snapshot()
            segments = summarise_segments(snap)
            traced.update(segments=segments, events=summarise_trace(snap, segments["segments"]))
        except Exception as e:  # noqa: BLE001 - recorded, the measured row stands
            traced["error"] = f"{type(e).__name__}: {str(e)[:300]}"
        finally:
            try:
                record(enabled=None)
            except Exception:  # noqa: BLE001
                pass
        summary["traced_iteration"] = traced
        return summary


TRACE_MAX_ENTRIES = 200_000   # allocator events kept by _record_memory_history during the traced iteration
TRACE_MIN_BYTES = MIB         # events smaller than this are counted, not listed
BLOCKS_LISTED = 256           # per segment, at most this many blocks are listed (all are counted)


def summarise_segments(snapshot: dict) -> dict:
    """torch.cuda.memory._snapshot()'s segments, per segment: size, allocated bytes, blocks, largest free block, and
    the blocks themselves in address order as [bytes, state] (a allocated, p freed but pending, f free) for segments
    of the large pool. Segments are sorted by address and numbered; totals cover all of them."""
    rows = []
    for seg in sorted(snapshot.get("segments", []), key=lambda g: g.get("address", 0)):
        blocks = seg.get("blocks", [])
        free = [b["size"] for b in blocks if b.get("state") == "inactive"]
        row = {
            "index": len(rows),
            "address": seg.get("address", 0),
            "size": seg.get("total_size", 0),
            "allocated": seg.get("allocated_size", 0),
            "blocks": len(blocks),
            "free_blocks": len(free),
            "largest_free": max(free, default=0),
            "pool": seg.get("segment_type", ""),
            "stream": seg.get("stream", 0),
            "expandable": bool(seg.get("is_expandable", False)),
        }
        if row["pool"] != "small":
            code = {"active_allocated": "a", "active_pending_free": "p", "inactive": "f"}
            row["block_list"] = [[b["size"], code.get(b.get("state"), "?")] for b in blocks[:BLOCKS_LISTED]]
        rows.append(row)
    free_sizes = [r["largest_free"] for r in rows]
    return {
        "segments_count": len(rows),
        "reserved": sum(r["size"] for r in rows),
        "allocated": sum(r["allocated"] for r in rows),
        "largest_free": max(free_sizes, default=0),
        "segments": rows,
    }


def summarise_trace(snapshot: dict, segments: list[dict]) -> dict:
    """The traced iteration's allocator events of TRACE_MIN_BYTES or more (and every segment event), in order, as
    [action, bytes, segment index, offset in segment]; -1 where the address is in no segment left at the end."""
    traces = snapshot.get("device_traces", [])
    device = torch.cuda.current_device() if torch.cuda.is_available() else 0
    events = traces[device] if device < len(traces) else (traces[0] if traces else [])
    starts = [seg["address"] for seg in segments]
    listed, small = [], 0
    for e in events:
        action, size, addr = e.get("action", ""), e.get("size", 0), e.get("addr", 0)
        if size < TRACE_MIN_BYTES and not action.startswith("segment") and action != "oom":
            small += 1
            continue
        i = bisect.bisect_right(starts, addr) - 1
        inside = i >= 0 and addr < segments[i]["address"] + segments[i]["size"]
        listed.append([action, size, i if inside else -1, addr - segments[i]["address"] if inside else -1])
    return {"total": len(events), "small_not_listed": small, "min_bytes": TRACE_MIN_BYTES, "listed": listed}


def expandable_in_use() -> str:
    """'true' / 'false': whether the caching allocator's segments are expandable (PYTORCH_CUDA_ALLOC_CONF took
    effect); '' where this torch's snapshot does not say."""
    try:
        segments = torch.cuda.memory._snapshot().get("segments", [])
    except Exception:  # noqa: BLE001 - no _snapshot in this torch
        return ""
    flags = [s["is_expandable"] for s in segments if "is_expandable" in s]
    return ("true" if any(flags) else "false") if flags else ""


def _version(module_name: str) -> str:
    try:
        module = __import__(module_name)
        return getattr(module, "__version__", "unknown")
    except Exception:
        return ""


def _nvml_used(handle) -> int | None:
    if handle is None:
        return None
    try:
        import pynvml
        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
    except Exception:  # NVML present but not answering in this sandbox
        return None


def _open_nvml():
    try:
        import pynvml
        pynvml.nvmlInit()
        index = int(os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] or 0)
        return pynvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:
        return None


def _warm_up_kernels() -> None:
    """Load the kernels and library handles every job uses (cuBLAS/cuBLASLt in fp32 and bf16, softmax, SDPA)."""
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(256, 256, device="cuda", dtype=dtype, requires_grad=True)
        (a @ a).softmax(-1).sum().backward()
        if hasattr(torch.nn.functional, "scaled_dot_product_attention"):
            q = torch.randn(1, 4, 128, 64, device="cuda", dtype=dtype)
            torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
    torch.cuda.synchronize()


def open_cuda() -> tuple[CudaProbe, dict]:
    """Initialise CUDA and measure its context: device memory in use that the caching allocator does not hold.

    With NVML: used(after init) - used(before init) - reserved; else from mem_get_info: total - free - reserved,
    which also counts anything the driver itself holds on an idle device.
    """
    handle = _open_nvml()
    before = _nvml_used(handle)
    torch.cuda.init()
    torch.zeros(1, device="cuda")
    torch.cuda.synchronize()

    def context_now() -> tuple[int, str]:
        reserved = torch.cuda.memory_reserved()
        after = _nvml_used(handle)
        if before is not None and after is not None:
            return after - before - reserved, "nvml: used after - used before - reserved"
        free, total = torch.cuda.mem_get_info()
        return total - free - reserved, "mem_get_info: total - free - reserved"

    context, method = context_now()
    _warm_up_kernels()
    context_warm, _ = context_now()
    warm_allocated = torch.cuda.memory_allocated()
    expandable = expandable_in_use()  # the warm-up left segments to look at
    props = torch.cuda.get_device_properties(0)
    env = {
        "gpu_name": torch.cuda.get_device_name(0),
        "gpu_total_bytes": props.total_memory,
        "context_bytes": context,
        "context_warm_bytes": context_warm,
        "context_method": method,
        "warm_allocated_bytes": warm_allocated,
        "cuda_version": torch.version.cuda or "",
        "alloc_expandable": expandable,
    }
    return CudaProbe(handle), env


def segment_address_order(sizes_mib=(258, 260, 262, 264)) -> dict:
    """Where cudaMalloc puts successive segments: tensors of distinct sizes above 10 MiB, each a segment of its own
    once the cache is empty, alive together; their addresses in allocation order. The planner's allocator replay places
    each new segment below the earlier ones (Afinado.Planner CachingAllocator), since best fit breaks ties by address;
    this records which way the driver really went. CPU: nothing to probe."""
    if not torch.cuda.is_available():
        return {"order": "", "note": "no CUDA device"}
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    tensors = [torch.empty(mib * MIB, dtype=torch.uint8, device="cuda") for mib in sizes_mib]
    addresses = [t.data_ptr() for t in tensors]
    del tensors
    torch.cuda.empty_cache()
    steps = [b - a for a, b in zip(addresses, addresses[1:])]
    order = "descending" if all(s < 0 for s in steps) else "ascending" if all(s > 0 for s in steps) else "mixed"
    return {"order": order, "sizes_mib": list(sizes_mib), "addresses": addresses}


def open_cpu() -> tuple[CpuProbe, dict]:
    return CpuProbe(), {
        "gpu_name": "", "gpu_total_bytes": 0, "context_bytes": 0, "context_warm_bytes": 0,
        "context_method": "cpu: no CUDA context", "warm_allocated_bytes": 0, "cuda_version": "",
        "alloc_expandable": "",
    }


def software_versions() -> dict:
    return {
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "transformers_version": _version("transformers"),
        "peft_version": _version("peft"),
        "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""),
        "cuda_module_loading": os.environ.get("CUDA_MODULE_LOADING", ""),
    }
