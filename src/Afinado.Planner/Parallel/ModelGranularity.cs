using Afinado.Planner.Architecture;

namespace Afinado.Planner.Parallel;

/// <summary>
/// What a sharded engine moves at once, read from the architecture's tensor list:
/// DeepSpeed ZeRO-3 fetches one <c>nn.Module</c>'s own parameters at a time (its estimator's "largest layer");
/// FSDP with TRANSFORMER_BASED_WRAP gathers one decoder layer at a time, and the root unit holds the rest
/// (embeddings, final norm, untied lm_head).
/// </summary>
public static class ModelGranularity
{
    /// <summary>Largest sum of parameters owned directly by one module (weight + bias of one Linear, an embedding...).</summary>
    public static long LargestModule(ModelArchitecture model) =>
        model.Tensors.GroupBy(t => t.Module).Max(g => g.Sum(t => t.Elements));

    /// <summary>Largest FSDP wrap unit: one decoder layer, or the root (everything outside the layers).</summary>
    public static long LargestWrapUnit(ModelArchitecture model) =>
        model.Tensors.GroupBy(t => t.Layer ?? -1).Max(g => g.Sum(t => t.Elements));

    /// <summary>Largest decoder layer (an FSDP unit under TRANSFORMER_BASED_WRAP).</summary>
    public static long LargestLayerUnit(ModelArchitecture model) =>
        model.Tensors.Where(t => t.Layer is not null).GroupBy(t => t.Layer).Select(g => g.Sum(t => t.Elements)).DefaultIfEmpty(0).Max();

    /// <summary>The FSDP root unit: every parameter outside the decoder layers (embeddings, final norm, untied lm_head).</summary>
    public static long RootUnit(ModelArchitecture model) => model.Tensors.Where(t => t.Layer is null).Sum(t => t.Elements);

    /// <summary>Parameters in tensors ZeRO-3 keeps whole on every rank (<c>numel ≤ stage3_param_persistence_threshold</c>).</summary>
    public static long PersistentParameters(ModelArchitecture model, long threshold) =>
        model.Tensors.Where(t => t.Elements <= threshold).Sum(t => t.Elements);

    /// <summary>
    /// Fraction of parameters Megatron-style tensor parallelism splits: column- and row-parallel weights, column-parallel
    /// biases and the vocab-parallel embedding / lm_head. Norm weights and the biases after row-parallel layers are replicated.
    /// </summary>
    public static double TensorParallelShardableFraction(ModelArchitecture model)
    {
        long total = 0, split = 0;
        foreach (var t in model.Tensors)
        {
            total += t.Elements;
            bool replicated = t.Role is TensorRole.Norm or TensorRole.Router or TensorRole.PositionEmbedding
                || (t.IsBias && t.Role is TensorRole.AttnOut or TensorRole.MlpDown);
            if (!replicated) split += t.Elements;
        }
        return total == 0 ? 1 : (double)split / total;
    }
}
