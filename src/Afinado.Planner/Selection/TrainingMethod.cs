using Afinado.Planner.Memory;

namespace Afinado.Planner.Selection;

/// <summary>Which parameters a finetuning job updates.</summary>
public enum TrainingMethod
{
    /// <summary>Every base parameter is trainable.</summary>
    Full,
    /// <summary>Base parameters matching the freeze patterns are frozen; the rest train.</summary>
    Freeze,
    /// <summary>The whole base is frozen; low-rank adapters on the target linears train (PEFT LoRA).</summary>
    Lora,
    /// <summary>LoRA over a 4-bit NF4-quantized frozen base (Dettmers et al. 2023).</summary>
    QLora,
}

public static class TrainingMethods
{
    public static TrainingMethod Parse(string text, InputText? field = null) => text.Trim().ToLowerInvariant() switch
    {
        "full" => TrainingMethod.Full,
        "freeze" => TrainingMethod.Freeze,
        "lora" => TrainingMethod.Lora,
        "qlora" => TrainingMethod.QLora,
        _ => throw new InputError(field ?? JobParameters.Method, $"\"{text}\" is not a training method", "Use one of: full, freeze, lora, qlora."),
    };

    public static string Name(this TrainingMethod m) => m.ToString().ToLowerInvariant();

    public static bool UsesAdapters(this TrainingMethod m) => m is TrainingMethod.Lora or TrainingMethod.QLora;
}
