namespace Afinado.Planner.Memory;

/// <summary>
/// Which library stores a quantized (QLoRA) base. It matters once the base is sharded: bitsandbytes keeps the block
/// constants in a <c>QuantState</c> object on the module (not a parameter), so ZeRO-3/FSDP shard and offload only the
/// 4-bit codes and every rank holds all constants on its GPU; torchao's <c>NF4Tensor</c> is a tensor subclass whose
/// FSDP2 hooks shard the scalers together with the codes.
/// </summary>
public enum QuantLibrary
{
    /// <summary>bitsandbytes Linear4bit / Params4bit (transformers + PEFT QLoRA).</summary>
    BitsAndBytes,
    /// <summary>torchao NF4Tensor (torchtune QLoRA).</summary>
    TorchAo,
}

public static class QuantLibraries
{
    public static string Name(this QuantLibrary q) => q == QuantLibrary.TorchAo ? "torchao" : "bitsandbytes";

    public static QuantLibrary Parse(string text, InputText field) => text.Trim().ToLowerInvariant() switch
    {
        "bitsandbytes" or "bnb" => QuantLibrary.BitsAndBytes,
        "torchao" => QuantLibrary.TorchAo,
        _ => throw new InputError(field, $"\"{text}\" is not a quantization library", "Use bitsandbytes (transformers/PEFT) or torchao (torchtune)."),
    };
}
