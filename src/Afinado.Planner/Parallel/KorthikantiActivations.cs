using Afinado.Planner.Memory;

namespace Afinado.Planner.Parallel;

/// <summary>
/// The saved-tensor table of Korthikanti et al. 2022 (Table 2 / §4) for a GPT-3-style layer: 4h GeLU MLP, two
/// LayerNorms, dropout, 16-bit activations, 1-byte masks. Each row carries its TP split, so applying
/// <see cref="ActivationSharding"/> reproduces the paper's closed forms:
/// none sbh(34 + 5as/h); TP sbh(10 + 24/t + 5as/(ht)); TP+SP sbh/t·(34 + 5as/h); selective recompute drops the as² rows.
/// This is the reference the modern-decoder ledger is checked against; it is not used for Llama-style models.
/// </summary>
public static class KorthikantiActivations
{
    private const string Source = "Korthikanti et al. 2022, Table 2 (memory.md §1.2)";

    public static IReadOnlyList<ActivationEntry> GptLayer(long s, long b, long h, long a, bool selectiveRecompute = false)
    {
        long sbh = s * b * h;
        long as2b = a * s * s * b;
        var rows = new List<ActivationEntry>
        {
            new(LineKind.ActivationsNorms, "LayerNorm inputs (2)", 4 * sbh, TensorParallelSplit.SequenceRegion, "2 × 2sbh", Source),
            new(LineKind.ActivationsAttentionInputs, "QKV projection input", 2 * sbh, TensorParallelSplit.SequenceRegion, "2sbh", Source),
            new(LineKind.ActivationsAttentionCore, "Q and K", 4 * sbh, TensorParallelSplit.TensorRegion, "2 × 2sbh", Source),
            new(LineKind.ActivationsAttentionCore, "V", 2 * sbh, TensorParallelSplit.TensorRegion, "2sbh", Source),
            new(LineKind.ActivationsAttentionCore, "attention output-projection input", 2 * sbh, TensorParallelSplit.TensorRegion, "2sbh", Source),
            new(LineKind.ActivationsDropoutMasks, "attention dropout mask", sbh, TensorParallelSplit.SequenceRegion, "sbh", Source),
            new(LineKind.ActivationsMlp, "MLP fc1 input", 2 * sbh, TensorParallelSplit.SequenceRegion, "2sbh", Source),
            new(LineKind.ActivationsMlp, "GeLU input", 8 * sbh, TensorParallelSplit.TensorRegion, "2 × 4sbh", Source),
            new(LineKind.ActivationsMlp, "fc2 input", 8 * sbh, TensorParallelSplit.TensorRegion, "2 × 4sbh", Source),
            new(LineKind.ActivationsDropoutMasks, "MLP dropout mask", sbh, TensorParallelSplit.SequenceRegion, "sbh", Source),
        };
        if (!selectiveRecompute)
        {
            rows.Add(new(LineKind.ActivationsAttentionScores, "softmax output", 2 * as2b, TensorParallelSplit.TensorRegion, "2as²b", Source));
            rows.Add(new(LineKind.ActivationsAttentionScores, "softmax dropout mask", as2b, TensorParallelSplit.TensorRegion, "as²b", Source));
            rows.Add(new(LineKind.ActivationsAttentionScores, "softmax dropout output", 2 * as2b, TensorParallelSplit.TensorRegion, "2as²b", Source));
        }
        return rows;
    }
}
