"""Memory probes and the environment record.

On CUDA: torch.cuda.max_memory_allocated / max_memory_reserved after reset_peak_memory_stats, device use from
mem_get_info, per-process use from NVML when nvidia-ml-py is installed, and the CUDA context measured once at start.
On CPU (the dry run) the CUDA figures are 0 and the peak resident set size (VmHWM, reset through
/proc/self/clear_refs) stands in, so the same code path runs everywhere.
"""
from __future__ import annotations

import gc
import os
import platform

import torch


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


class CudaProbe:
    device = "cuda"

    def __init__(self, nvml_handle=None):
        self._nvml = nvml_handle

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
    props = torch.cuda.get_device_properties(0)
    env = {
        "gpu_name": torch.cuda.get_device_name(0),
        "gpu_total_bytes": props.total_memory,
        "context_bytes": context,
        "context_warm_bytes": context_warm,
        "context_method": method,
        "warm_allocated_bytes": warm_allocated,
        "cuda_version": torch.version.cuda or "",
    }
    return CudaProbe(handle), env


def open_cpu() -> tuple[CpuProbe, dict]:
    return CpuProbe(), {
        "gpu_name": "", "gpu_total_bytes": 0, "context_bytes": 0, "context_warm_bytes": 0,
        "context_method": "cpu: no CUDA context", "warm_allocated_bytes": 0, "cuda_version": "",
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
