using Afinado.Planner.Fit;

namespace Afinado.Planner.Devices;

public enum DeviceKind { Gpu, Cpu }

/// <summary>
/// Where a job runs. <see cref="CapacityBytes"/> is the USABLE memory (what PyTorch reports as total capacity, after ECC
/// and driver reservations), not the marketing size. Bandwidth and bf16 FLOP/s (dense tensor-core peak) are for
/// speed estimates; 0 when unknown. The CPU device has no CUDA context, computes in fp32 and has no fixed capacity.
/// </summary>
public sealed record Device(string Id, string Name, DeviceKind Kind, long CapacityBytes, long NominalBytes,
    double BandwidthBytesPerSecond, double Bf16FlopsPerSecond, string Source)
{
    /// <summary>The CUDA compute capability of a catalog GPU; null for the CPU, a GPU given only by its memory and AMD GPUs
    /// (whose ROCm builds report another numbering): then no capability rule applies (<see cref="Fit.DeviceSupport"/>).</summary>
    public ComputeCapability? Capability { get; init; }

    /// <summary>How a user-given size was read (<see cref="GpuMemory"/>); null for catalog GPUs.</summary>
    public string? Interpretation { get; init; }

    public bool IsCpu => Kind == DeviceKind.Cpu;

    /// <summary>The host CPU (TorchSharp / libtorch CPU). Capacity is the machine's memory when known, else 0 (no verdict).</summary>
    public static Device Cpu(long capacityBytes = 0) =>
        new("cpu", "CPU (libtorch, fp32)", DeviceKind.Cpu, capacityBytes, capacityBytes, 0, 0,
            "planned peak = growth of process RSS over the pre-model baseline (torchsharp.md §6)");

    /// <summary>A GPU given only by its memory (<c>--gpu-memory 24GiB</c>); see <see cref="GpuMemory"/> for how sizes are read.</summary>
    public static Device Custom(long capacityBytes, long? onBoardBytes = null, string? interpretation = null) =>
        new($"custom-{ByteSize.Format(capacityBytes)}", $"GPU with {ByteSize.Format(capacityBytes)}", DeviceKind.Gpu, capacityBytes, onBoardBytes ?? capacityBytes, 0, 0, "a memory size the user gave")
        { Interpretation = interpretation };
}
