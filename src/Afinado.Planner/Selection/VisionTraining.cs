using Afinado.Planner.Architecture;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Selection;

/// <summary>
/// What full and freeze finetuning train of a multimodal model's image side (LoRA reaches it through its targets instead).
/// The names follow LLaMA-Factory's <c>freeze_vision_tower</c> / <c>freeze_multi_modal_projector</c> (both true by
/// default) and Qwen's finetuning script (<c>tune_mm_vision</c>, <c>tune_mm_mlp</c>).
/// </summary>
public enum VisionTraining
{
    /// <summary>The tower and its projector stay frozen (LLaMA-Factory's defaults).</summary>
    Frozen,
    /// <summary>The projector or merger trains (multi_modal_projector, Qwen's merger and deepstack mergers); the tower stays frozen.</summary>
    Projector,
    /// <summary>The tower and the projector train.</summary>
    Tower,
}

public static class VisionTrainings
{
    public static VisionTraining Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "frozen" => VisionTraining.Frozen,
        "projector" => VisionTraining.Projector,
        "tower" => VisionTraining.Tower,
        _ => throw new InputError(JobParameters.VisionTower, $"\"{TerminalText.Escape(text)}\" is not a choice", "Use frozen (the default), projector or tower."),
    };

    public static string Name(this VisionTraining v) => v.ToString().ToLowerInvariant();

    /// <summary>A tensor of the projector between the tower and the text model, by its checkpoint name: Gemma 3's, Mistral
    /// 3's and Llama 4's <c>multi_modal_projector</c>, the Qwen VL models' merger and deepstack mergers.</summary>
    public static bool IsProjector(ParameterTensor t) => t.Role == TensorRole.Vision
        && (t.Name.Contains("multi_modal_projector", StringComparison.Ordinal) || t.Name.Contains(".merger.", StringComparison.Ordinal)
            || t.Name.Contains("deepstack_merger_list", StringComparison.Ordinal));

    /// <summary>Whether full or freeze finetuning trains <paramref name="t"/> under <paramref name="vision"/>.</summary>
    public static bool Trains(this VisionTraining vision, ParameterTensor t) =>
        t.Role != TensorRole.Vision || vision == VisionTraining.Tower || vision == VisionTraining.Projector && IsProjector(t);
}
