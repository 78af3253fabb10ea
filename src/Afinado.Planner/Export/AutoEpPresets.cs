using Afinado.Planner.Architecture;
using Afinado.Planner.Parallel;

namespace Afinado.Planner.Export;

/// <summary>
/// DeepSpeed AutoEP's built-in presets (deepspeedai/DeepSpeed docs/code-docs/source/autoep.rst): each knows one family's
/// router, expert and weight names. A family without one would need AutoEP's custom patterns, which are not exported.
/// </summary>
public static class AutoEpPresets
{
    /// <summary>The <c>preset_model</c> for a model type, or null when AutoEP has none.</summary>
    public static string? ForModelType(string modelType) => modelType switch
    {
        "mixtral" => "mixtral",
        // autoep.rst: the qwen3_moe preset "also covers Qwen2-MoE" with transformers' fused expert layout.
        "qwen3_moe" or "qwen2_moe" => "qwen3_moe",
        "deepseek_v2" => "deepseek_v2",
        "deepseek_v3" => "deepseek_v3",
        _ => null,
    };

    public static string For(ModelArchitecture arch) => ForModelType(arch.ModelType)
        ?? throw new InputError(LayoutParameters.ExpertParallel, $"DeepSpeed AutoEP has no preset for {arch.ModelType} (its presets: mixtral, qwen3_moe/qwen2_moe, deepseek_v2, deepseek_v3)",
            $"Plan with {LayoutParameters.ExpertParallel} (afinado plan), but export with {LayoutParameters.ExpertParallel} 1, or write AutoEP's custom patterns by hand.");
}
