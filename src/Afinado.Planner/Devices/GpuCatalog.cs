using Afinado.Planner.Fit;

namespace Afinado.Planner.Devices;

/// <summary>
/// GPUs with usable capacity (memory.md §5.1: what PyTorch reports as total capacity), bandwidth and dense bf16 FLOP/s.
/// Where §5.1 gives a range of usable capacity we take its low end, so a "fits" verdict holds on every reported card.
/// Compute capabilities are NVIDIA's (developer.nvidia.com/cuda-gpus: Hopper 9.0, Ada 8.9, GA10x 8.6, A100 8.0, Turing
/// 7.5, Volta 7.0); the MI300X has none in that numbering.
/// </summary>
public static class GpuCatalog
{
    private const double GiB = ByteSize.GiB, MiB = ByteSize.MiB;

    public static IReadOnlyList<Device> All { get; } =
    [
        Gpu("h100", "H100 SXM 80GB", 79.14 * GiB, 80e9, 3.35e12, 989e12, "§5.1: 79.14–79.25 GiB (gpu_poor, GCP table, OOM logs)", new(9, 0)),
        Gpu("h100-pcie", "H100 PCIe 80GB", 79.14 * GiB, 80e9, 2.0e12, 756e12, "§5.1 gives no usable figure; assumed as H100 SXM (same 80 GB HBM)", new(9, 0)),
        Gpu("h200", "H200 SXM 141GB", 139.72 * GiB, 141e9, 4.8e12, 989e12, "§5.1: 139.72–139.81 GiB (mlcommons v4.1, TensorRT-LLM #1570)", new(9, 0)),
        Gpu("a100-40gb", "A100 40GB", 40_339 * MiB, 40e9, 1.555e12, 312e12, "§5.1: 40,339 MiB (PCIe; kipply, gpu_poor)", new(8, 0)),
        Gpu("a100-80gb", "A100 80GB", 79.15 * GiB, 80e9, 2.039e12, 312e12, "§5.1: ≈79.15 GiB (OOM logs)", new(8, 0)),
        Gpu("l4", "L4 24GB", 22.03 * GiB, 24e9, 300e9, 121e12, "§5.1: 22.03–22.06 GiB (GCP, OOM logs)", new(8, 9)),
        Gpu("t4", "T4 16GB", 14.56 * GiB, 16e9, 320e9, 65e12, "§5.1: 14.56–14.74 GiB (Colab/Kaggle); no bf16, fp16 FLOP/s given", new(7, 5)),
        Gpu("rtx4090", "RTX 4090 24GB", 23.55 * GiB, 24e9, 1.008e12, 165e12, "§5.1: 23.55 GiB (one report; ~23.6 typical)", new(8, 9)),
        Gpu("rtx3090", "RTX 3090 24GB", 23.69 * GiB, 24e9, 936e9, 71e12, "§5.1: 23.69 GiB (gpu_poor, Lambda csv)", new(8, 6)),
        Gpu("a10g", "A10G 24GB", 22.0 * GiB, 24e9, 600e9, 70e12, "§5.1: about 22 GiB [unsure] (AWS G5 table)", new(8, 6)),
        Gpu("v100-16gb", "V100 16GB", 16_160 * MiB, 16e9, 900e9, 125e12, "§5.1: 16,160 MiB in nvidia-smi; no bf16, fp16 FLOP/s given", new(7, 0)),
        Gpu("v100-32gb", "V100 32GB", 32_320 * MiB, 32e9, 900e9, 125e12, "derived: 32 GiB × the 16 GB card's usable ratio (16,160/16,384); no bf16", new(7, 0)),
        Gpu("mi300x", "MI300X 192GB", 191.5 * GiB, 192e9, 5.3e12, 1307e12, "§5.1 nominal 192 GB; usable assumed 191.5 GiB [unsure, no PyTorch report]", null),
    ];

    /// <summary>The GPUs a plan is checked against when none is named.</summary>
    public static IReadOnlyList<string> CommonIds { get; } = ["t4", "l4", "rtx4090", "a100-40gb", "a100-80gb", "h100"];

    public static IReadOnlyList<Device> Common => CommonIds.Select(Get).ToList();

    public static Device Get(string id)
    {
        var key = id.Trim().ToLowerInvariant().Replace("_", "-");
        // The CPU is a device --gpu accepts (its error below lists it), here without a capacity (Device.Cpu(bytes) gives one).
        if (key == "cpu") return Device.Cpu();
        var hit = All.FirstOrDefault(g => g.Id == key)
            ?? All.FirstOrDefault(g => g.Id.Replace("-", "") == key.Replace("-", ""))
            ?? Alias(key);
        return hit ?? throw new InputError(PlanParameters.Gpu, $"\"{id}\" is not a known GPU",
            $"Use one of: {string.Join(", ", All.Select(g => g.Id))}, cpu; or give {PlanParameters.GpuMemory} 24GiB.");
    }

    private static Device? Alias(string key) => key switch
    {
        "h100-sxm" or "h100-80gb" => All[0],
        "a100" => All.First(g => g.Id == "a100-80gb"),
        "v100" => All.First(g => g.Id == "v100-16gb"),
        "4090" => All.First(g => g.Id == "rtx4090"),
        "3090" => All.First(g => g.Id == "rtx3090"),
        _ => null,
    };

    private static Device Gpu(string id, string name, double usable, double nominal, double bandwidth, double flops, string source,
        ComputeCapability? capability) =>
        new(id, name, DeviceKind.Gpu, (long)usable, (long)nominal, bandwidth, flops, source) { Capability = capability };
}
