using Afinado.Planner.Memory;

namespace Afinado.Planner.Allocator;

/// <summary>
/// What a PyTorch process holds on the GPU besides its tensors, for one software stack: the CUDA context with the
/// kernels and library handles a training or inference step loads (outside the caching allocator: nvidia-smi sees it,
/// <c>memory_reserved</c> does not), and the cuBLAS / cuBLASLt workspaces that PyTorch takes from its own allocator at the
/// first matmul (inside <c>memory_reserved</c>). Each figure names its source.
/// </summary>
public sealed record RuntimeStack(string Id, string Description, long OutsideAllocatorBytes, IReadOnlyList<long> WorkspaceAllocations, string Source)
{
    /// <summary>torch ≥ 2.9: <c>torch.nn.functional.grouped_mm</c> exists, so transformers 5 runs MoE experts through
    /// grouped_mm by default (transformers utils/import_utils.py is_grouped_mm_available).</summary>
    public bool GroupedMm { get; init; }

    /// <summary>Measured on an H100 80GB HBM3 (torch 2.11.0+cu130, CUDA 13.0, lazy module loading), 26 Nov 2026:
    /// <c>context_warm_bytes</c> = NVML process memory after loading cuBLAS, softmax and SDPA kernels, less the reserved
    /// bytes (792,264,704 B = 0.738 GiB; the bare context was 0.601 GiB), and <c>allocated_before_bytes</c> = 64 MiB of
    /// workspaces already in the allocator before the model (cuBLAS and cuBLASLt, 32 MiB each on sm90).</summary>
    public static readonly RuntimeStack Torch211Cuda13 = new("torch2.11-cuda13",
        "PyTorch 2.11, CUDA 13, lazy module loading (measured on H100)", 792_264_704, [32L << 20, 32L << 20],
        "bench/ground-truth/gpu-nvidia-h100-80gb-hbm3-2026-11-26.csv: context_warm_bytes (NVML after warm-up less reserved), allocated_before_bytes")
    { GroupedMm = true };

    /// <summary>CUDA ≥ 11.7 with lazy module loading, PyTorch 2.0–2.5: about 300 MB for the bare context (ptrblck,
    /// pytorch #107667; 287 MB in PR #86509) plus the same 32 MiB + 32 MiB of workspaces (torch ≥ 2.3 on sm90 keeps
    /// cuBLASLt's workspace in the allocator too).</summary>
    public static readonly RuntimeStack Torch2Cuda12 = new("torch2-cuda12",
        "PyTorch 2.0–2.5, CUDA 12, lazy module loading (published context)", 300_000_000, [32L << 20, 32L << 20],
        "memory.md §5.2: ~300 MB lazy context (pytorch #107667, PR #86509); workspaces as measured on torch 2.11");

    /// <summary>CUDA_MODULE_LOADING=EAGER (every kernel loaded at init): 667 MB measured in PyTorch PR #86509.</summary>
    public static readonly RuntimeStack EagerModuleLoading = new("eager-loading",
        "CUDA_MODULE_LOADING=EAGER (all kernels loaded at start)", 667_000_000, [32L << 20, 32L << 20],
        "memory.md §5.2: 667 MB eager vs 287 MB lazy (pytorch PR #86509)");

    /// <summary>Before CUDA 11.7 (no lazy loading): 1,343 MB on a V100 in Hugging Face's model-memory-anatomy doc.</summary>
    public static readonly RuntimeStack Torch1Cuda11 = new("torch1-cuda11",
        "PyTorch 1.x with CUDA < 11.7 (no lazy loading)", 1_343_000_000, [],
        "memory.md §5.2: 1,343 MB CUDA kernels on V100 (HF model-memory-anatomy)");

    public static readonly RuntimeStack Default = Torch211Cuda13;

    public static IReadOnlyList<RuntimeStack> All { get; } = [Torch211Cuda13, Torch2Cuda12, EagerModuleLoading, Torch1Cuda11];

    public long WorkspaceBytes => WorkspaceAllocations.Sum();

    public static RuntimeStack Parse(string? id, InputText? field = null)
    {
        field ??= JobParameters.Stack;
        if (string.IsNullOrWhiteSpace(id)) return Default;
        return All.FirstOrDefault(s => s.Id == id.Trim())
            ?? throw new InputError(field, $"\"{id}\" is not a known stack", $"Use one of: {string.Join(", ", All.Select(s => s.Id))}.");
    }
}
