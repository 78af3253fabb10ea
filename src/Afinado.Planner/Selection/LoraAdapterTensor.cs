using Afinado.Planner.Architecture;

namespace Afinado.Planner.Selection;

public enum LoraFactor { A, B }

/// <summary>
/// One LoRA adapter matrix, named as PEFT names it inside the model (<c>model.layers.0.self_attn.q_proj.lora_A.weight</c>;
/// PEFT's saved adapter file prefixes <c>base_model.model.</c>, see <see cref="PeftFileName"/>).
/// A is [rank, in] (Kaiming-uniform init), B is [out, rank] (zero init), so the adapted output is x·Aᵀ·Bᵀ·(alpha/rank).
/// </summary>
public sealed record LoraAdapterTensor(string Module, long[] Shape, LoraFactor Factor, ParameterTensor Base)
{
    private string? _name;

    /// <summary>PEFT's parameter name; built on first use (a plan never needs the strings, the trainer does).</summary>
    public string Name => _name ??= Module + (Factor == LoraFactor.A ? ".lora_A.weight" : ".lora_B.weight");
    public long Elements => Shape[0] * Shape[1];
    public int? Layer => Base.Layer;
    public string PeftFileName => "base_model.model." + Name;
}
