using Afinado.Planner.Architecture;

namespace Afinado.Planner.Safetensors;

/// <summary>One tensor a checkpoint stores: its name, shape, and the parameter it holds (all or part of).</summary>
public sealed record StoredEntry(string Stored, long[] Shape, string Parameter);

/// <summary>
/// The tensors a checkpoint of an architecture holds, by its storage format: plain parameters; gpt_oss's MXFP4 expert
/// stacks as <c>*_blocks</c> [E, out, in/32, 16] and <c>*_scales</c> [E, out, in/32] (uint8: two 4-bit values per byte,
/// one E8M0 scale per 32; the hub checkpoints store each expert's matrix transposed, out first); DeepSeek's FP8 linears
/// as the e4m3 <c>weight</c> and an fp32 <c>weight_scale_inv</c> per block; GPTQ/AWQ/bitsandbytes linears as the tensors
/// their libraries register (<see cref="QuantizedCheckpoint.Tensors"/>).
/// </summary>
public static class StoredLayout
{
    public static IReadOnlyList<StoredEntry> Of(ModelArchitecture arch)
    {
        var replaced = new Dictionary<string, List<StoredEntry>>(StringComparer.Ordinal);
        if (arch.CheckpointQuantMethod == "mxfp4")
            foreach (var t in arch.Tensors.Where(t => t.IsExpertStackWeight))
            {
                long e = t.Shape[0], inF = t.Shape[1], outF = t.Shape[2];
                replaced[t.Name] = [new(t.Name + "_blocks", [e, outF, inF / 32, 16], t.Name), new(t.Name + "_scales", [e, outF, inF / 32], t.Name)];
            }
        if (arch.CheckpointQuantMethod == "fp8" && arch.Fp8WeightBlock is { } b)
            foreach (var t in arch.Fp8Linears)
                replaced[t.Name] = [new(t.Name, t.Shape, t.Name), new(t.Name + "_scale_inv", [(t.Shape[0] + b.Rows - 1) / b.Rows, (t.Shape[1] + b.Cols - 1) / b.Cols], t.Name)];
        if (arch.Quantization is { } q)
            foreach (var c in q.Converted(arch))
            {
                string weight = c.Linear.Module + ".weight", bias = c.Linear.Module + ".bias";
                replaced[weight] = c.Tensors.Select(s => new StoredEntry(c.Linear.Module + "." + s.Suffix, s.Shape, s.Suffix == "bias" ? bias : weight)).ToList();
                if (c.Linear.HasBias) replaced[bias] = [];
            }
        var list = new List<StoredEntry>(arch.Tensors.Count);
        foreach (var t in arch.Tensors)
            if (replaced.TryGetValue(t.Name, out var parts)) list.AddRange(parts);
            else list.Add(new StoredEntry(t.Name, t.Shape, t.Name));
        return list;
    }
}
