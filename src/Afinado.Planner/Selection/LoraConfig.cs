using Afinado.Planner.Memory;

namespace Afinado.Planner.Selection;

/// <summary>
/// LoRA hyper-parameters as PEFT's <c>LoraConfig</c> names them. Defaults (rank 16, alpha 32, dropout 0.05, all-linear)
/// follow the QLoRA paper's advice to adapt every linear layer, at a rank most recipes use for 7–8B models.
/// </summary>
public sealed record LoraConfig
{
    /// <summary>The special target that PEFT expands to every linear layer except the output head.</summary>
    public const string AllLinear = "all-linear";

    public int Rank { get; init; } = 16;
    public double Alpha { get; init; } = 32;
    public double Dropout { get; init; } = 0.05;
    /// <summary>Module-name suffixes (<c>q_proj</c>, <c>self_attn.v_proj</c>) or <see cref="AllLinear"/>.</summary>
    public IReadOnlyList<string> Targets { get; init; } = [AllLinear];

    /// <summary>
    /// PEFT's <c>target_parameters</c>: names (or name suffixes) of parameters that are not nn.Linear modules, the stacked
    /// expert weights of gpt_oss and Llama 4 (<c>mlp.experts.gate_up_proj</c>). PEFT's ParamWrapper gives each such
    /// [E, in, out] parameter a per-expert adapter (<c>lora_A</c> [r·E, in], <c>lora_B</c> [out, r·E]) and adds the merged
    /// delta to the weight at every forward; it refuses a dropout. Empty by default.
    /// </summary>
    public IReadOnlyList<string> TargetParameters { get; init; } = [];

    /// <summary>Value equality including the target list (a record would compare the list by reference).</summary>
    public bool Equals(LoraConfig? other) =>
        other is not null && Rank == other.Rank && Alpha.Equals(other.Alpha) && Dropout.Equals(other.Dropout) && Targets.SequenceEqual(other.Targets)
        && TargetParameters.SequenceEqual(other.TargetParameters);

    public override int GetHashCode() => HashCode.Combine(Rank, Alpha, Dropout, string.Join(",", Targets), string.Join(",", TargetParameters));

    /// <summary>The factor PEFT applies to the adapter output: alpha / rank.</summary>
    public double Scaling => Alpha / Rank;

    /// <summary>Parses a comma-separated target list such as <c>q_proj,v_proj</c>.</summary>
    public static IReadOnlyList<string> ParseTargets(string text, InputText? field = null)
    {
        field ??= JobParameters.LoraTargets;
        var targets = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (targets.Length == 0)
            throw new InputError(field, "is empty", "Give module names such as q_proj,v_proj, or all-linear.");
        return targets;
    }

    public void Validate()
    {
        if (Rank < 1 || Rank > 65_536)
            throw new InputError(JobParameters.LoraRank, $"{Rank} is out of range", "Use a rank between 1 and 65536 (typical: 8–64).");
        if (!(Alpha > 0) || double.IsInfinity(Alpha))
            throw new InputError(JobParameters.LoraAlpha, $"{Alpha} is not a positive number", "Use a positive alpha, commonly 2 × rank.");
        if (!(Dropout >= 0 && Dropout < 1))
            throw new InputError(JobParameters.LoraDropout, $"{Dropout} is outside [0, 1)", "Use a dropout probability such as 0 or 0.05.");
        if (Targets.Count == 0)
            throw new InputError(JobParameters.LoraTargets, "is empty", "Give module names such as q_proj,v_proj, or all-linear.");
        // peft/tuners/lora/layer.py ParamWrapper.update_layer: "does not work with lora_dropout != 0".
        if (TargetParameters.Count > 0 && Dropout > 0)
            throw new InputError(JobParameters.LoraDropout, $"is {Dropout}, but PEFT's target_parameters (ParamWrapper) refuses a LoRA dropout",
                $"Use {JobParameters.LoraDropout} 0 with {JobParameters.LoraTargetParameters}.");
    }
}
