using Afinado.Planner.Fit;

namespace Afinado.Planner.Devices;

/// <summary>
/// GPUs with usable capacity (memory.md §5.1: what PyTorch reports as total capacity), bandwidth and dense bf16 FLOP/s.
/// Where §5.1 gives a range of usable capacity we take its low end, so a "fits" verdict holds on every reported card.
/// Compute capabilities are NVIDIA's (developer.nvidia.com/cuda-gpus: Blackwell GeForce and RTX PRO 12.0, Hopper 9.0,
/// Ada 8.9, GA10x 8.6, A100 and A30 8.0, Turing 7.5, Volta 7.0); the MI300X has none in that numbering.
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
        Gpu("rtx4090", "RTX 4090 24GB", 23.52 * GiB, 24e9, 1.008e12, 165e12,
            "§5.1 and OOM logs: 23.52–23.68 GiB (Soul-AILab/SoulX-FlashTalk #5: 23.52; huggingface/lora-fast #1: 23.55; zai-org/CogVideo #36: 23.68)", new(8, 9)),
        Gpu("rtx3090", "RTX 3090 24GB", 23.69 * GiB, 24e9, 936e9, 71e12, "§5.1: 23.69 GiB (gpu_poor, Lambda csv)", new(8, 6)),
        Gpu("a10g", "A10G 24GB", 22.0 * GiB, 24e9, 600e9, 70e12, "§5.1: about 22 GiB [unsure] (AWS G5 table)", new(8, 6)),
        Gpu("v100-16gb", "V100 16GB", 16_160 * MiB, 16e9, 900e9, 125e12, "§5.1: 16,160 MiB in nvidia-smi; no bf16, fp16 FLOP/s given", new(7, 0)),
        Gpu("v100-32gb", "V100 32GB", 32_320 * MiB, 32e9, 900e9, 125e12, "derived: 32 GiB × the 16 GB card's usable ratio (16,160/16,384); no bf16", new(7, 0)),
        // Workstation and consumer cards people finetune on. Usable figures are the "total capacity" of PyTorch OOM messages
        // (or the CUDA total another CUDA program logged) in public issue threads that name the card; bandwidth is NVIDIA's
        // product page; bf16 FLOP/s (dense, NVIDIA's datasheet: half the sparsity figure) only where the datasheet gives it,
        // else 0 (unknown). The Ada data-centre cards run with ECC on and report ~92.5 % of their 48 GiB.
        Gpu("rtx3060", "RTX 3060 12GB", 11.75 * GiB, 12e9, 360e9, 0, "OOM logs: 11.75–11.76 GiB (Kunhao-Liu/StyleGaussian #12, PhotoMaker #47)", new(8, 6)),
        Gpu("rtx5060ti-16gb", "RTX 5060 Ti 16GB", 15_816 * MiB, 16e9, 448e9, 0, "15,816 MiB CUDA-visible (Luce-Org/lucebox #407, CUDA 13.2)", new(12, 0)),
        Gpu("rtx-a4000", "RTX A4000 16GB", 15.61 * GiB, 16e9, 448e9, 0, "OOM log: 15.61 GiB (DengKaiCQ/VGGT-Long #6)", new(8, 6)),
        Gpu("a30", "A30 24GB", 23.53 * GiB, 24e9, 933e9, 165e12, "OOM log: 23.53 GiB (google/RB-Modulation #5)", new(8, 0)),
        Gpu("rtx5090", "RTX 5090 32GB", 31.36 * GiB, 32e9, 1.792e12, 0, "OOM logs: 31.36–31.37 GiB (TrajectoryCrafter #20, Wan2.1 #465)", new(12, 0)),
        Gpu("rtx-a6000", "RTX A6000 48GB", 47.54 * GiB, 48e9, 768e9, 154.8e12, "OOM log: 47.54 GiB (google-research/semivl #18, 2× RTX A6000)", new(8, 6)),
        Gpu("l40", "L40 48GB", 44.40 * GiB, 48e9, 864e9, 181e12, "OOM log: 44.40 GiB (QwenLM/Qwen3-VL #2097); ECC on", new(8, 9)),
        Gpu("l40s", "L40S 48GB", 44.42 * GiB, 48e9, 864e9, 362e12, "OOM log: 44.42 GiB (stepfun-ai/Step-Video-T2V #8, 8× L40S); ECC on", new(8, 9)),
        Gpu("rtx6000-ada", "RTX 6000 Ada 48GB", 44.43 * GiB, 48e9, 960e9, 364e12, "OOM log: 44.43 GiB, nvidia-smi 46,068 MiB (DINGYANB/MTVCrafter #21); ECC on", new(8, 9)),
        Gpu("rtx-pro-6000", "RTX PRO 6000 Blackwell 96GB", 94.97 * GiB, 96e9, 1.792e12, 0, "CUDA total 94.97 GiB, nvidia-smi 97,887 MiB (antirez/ds4 #431)", new(12, 0)),
        Gpu("mi300x", "MI300X 192GB", 191.5 * GiB, 192e9, 5.3e12, 1307e12, "§5.1 nominal 192 GB; usable assumed 191.5 GiB [unsure, no PyTorch report]", null),
    ];

    /// <summary>The GPUs a plan is checked against when none is named.</summary>
    public static IReadOnlyList<string> CommonIds { get; } = ["t4", "l4", "rtx4090", "a100-40gb", "a100-80gb", "h100"];

    public static IReadOnlyList<Device> Common => CommonIds.Select(Get).ToList();

    public static Device Get(string id)
    {
        // "RTX 4090", "rtx_4090" and "rtx-4090" all name the rtx4090: separators are compared as dashes, then without them.
        var key = string.Join('-', id.Trim().ToLowerInvariant().Replace("_", "-").Split(' ', StringSplitOptions.RemoveEmptyEntries));
        // The CPU is a device --gpu accepts (its error below lists it), here without a capacity (Device.Cpu(bytes) gives one).
        if (key == "cpu") return Device.Cpu();
        var hit = All.FirstOrDefault(g => g.Id == key)
            ?? All.FirstOrDefault(g => g.Id.Replace("-", "") == key.Replace("-", ""))
            ?? Alias(key.Replace("-", ""));
        return hit ?? throw new InputError(PlanParameters.Gpu, $"\"{id}\" is not a known GPU",
            $"Use one of: {string.Join(", ", All.Select(g => g.Id))}, cpu; or give {PlanParameters.GpuMemory} 24GiB.");
    }

    private static Device? Alias(string key) => key switch
    {
        "h100sxm" or "h10080gb" => All[0],
        "a100" => All.First(g => g.Id == "a100-80gb"),
        "v100" => All.First(g => g.Id == "v100-16gb"),
        "4090" => All.First(g => g.Id == "rtx4090"),
        "3090" => All.First(g => g.Id == "rtx3090"),
        "3060" => All.First(g => g.Id == "rtx3060"),
        "5090" => All.First(g => g.Id == "rtx5090"),
        "a6000" => All.First(g => g.Id == "rtx-a6000"),
        "a4000" => All.First(g => g.Id == "rtx-a4000"),
        "rtx5060ti" or "5060ti" => All.First(g => g.Id == "rtx5060ti-16gb"),
        "6000ada" => All.First(g => g.Id == "rtx6000-ada"),
        "pro6000" => All.First(g => g.Id == "rtx-pro-6000"),
        _ => null,
    };

    private static Device Gpu(string id, string name, double usable, double nominal, double bandwidth, double flops, string source,
        ComputeCapability? capability) =>
        new(id, name, DeviceKind.Gpu, (long)usable, (long)nominal, bandwidth, flops, source) { Capability = capability };
}
