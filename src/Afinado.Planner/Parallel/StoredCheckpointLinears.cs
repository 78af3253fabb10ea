using Afinado.Planner.Architecture;

namespace Afinado.Planner.Parallel;

/// <summary>
/// The frozen linears of a GPTQ, AWQ or bitsandbytes checkpoint as sharded engines see them, from the exact tensors the
/// library stores for each (<see cref="QuantizedCheckpoint.Tensors"/>). What an engine may shard depends on how the
/// library registers them: bitsandbytes' codes are the parameter (its block constants ride on the module, as for a QLoRA
/// base), while AutoGPTQ's QuantLinear and AutoAWQ's WQLinear_GEMM register qweight, qzeros, scales, g_idx and bias with
/// <c>register_buffer</c>: ZeRO-3 and FSDP partition and gather parameters only, so those stay whole on every GPU and are
/// never part of a gathered unit.
/// </summary>
internal sealed class StoredCheckpointLinears
{
    private readonly QuantizedCheckpoint _format;
    private readonly Dictionary<string, ConvertedLinear> _byModule;
    private readonly double _otherBytesPerElement;

    public StoredCheckpointLinears(ModelArchitecture arch, QuantizedCheckpoint format, IReadOnlySet<string> trainableTensors, double otherBytesPerElement)
    {
        _format = format;
        _otherBytesPerElement = otherBytesPerElement;
        _byModule = format.Converted(arch).Where(c => !trainableTensors.Contains(c.Linear.Module + ".weight"))
            .ToDictionary(c => c.Linear.Module, StringComparer.Ordinal);
        Elements = _byModule.Values.Sum(c => c.Elements);
        ExpertElements = _byModule.Values.Where(c => c.Linear.Expert is not null).Sum(c => c.Elements);
        Bytes = _byModule.Values.Sum(c => c.Bytes);
        ParameterBytes = _byModule.Values.Sum(ShardableBytes);
    }

    public bool RegistersBuffers => _format.Method is QuantizedCheckpointMethod.Gptq or QuantizedCheckpointMethod.Awq;
    /// <summary>Elements of the 16-bit weights and biases the stored linears replace.</summary>
    public long Elements { get; }
    public long ExpertElements { get; }
    /// <summary>Every stored tensor's bytes.</summary>
    public long Bytes { get; }
    /// <summary>The bytes that are parameters (bitsandbytes' codes and biases); 0 for GPTQ/AWQ buffers.</summary>
    public long ParameterBytes { get; }
    public QuantizedCheckpoint Format => _format;

    /// <summary>The tensor is a weight or bias of a linear the checkpoint stores quantized (and training leaves frozen).</summary>
    public bool Stores(ParameterTensor t) => _byModule.ContainsKey(t.Module) && (t.IsBias || t.Name.EndsWith(".weight", StringComparison.Ordinal));

    /// <summary>Bytes of <paramref name="t"/> when an engine gathers its unit: a stored linear's parameters (counted on its
    /// weight), anything else in the compute dtype.</summary>
    public double GatheredBytes(ParameterTensor t) =>
        !Stores(t) ? t.Elements * _otherBytesPerElement : t.IsBias ? 0 : ShardableBytes(_byModule[t.Module]);

    /// <summary>Bytes of <paramref name="t"/> as the checkpoint is loaded: a stored linear's tensors (counted on its weight).</summary>
    public double LoadedBytes(ParameterTensor t) =>
        !Stores(t) ? t.Elements * _otherBytesPerElement : t.IsBias ? 0 : _byModule[t.Module].Bytes;

    private long ShardableBytes(ConvertedLinear c) => RegistersBuffers ? 0
        : c.Tensors.Where(s => s.Suffix is "weight" or "bias").Sum(s => s.Bytes);
}
