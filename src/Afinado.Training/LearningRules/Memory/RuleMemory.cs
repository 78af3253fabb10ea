namespace Afinado.Training.LearningRules.Memory;

/// <summary>
/// One line of a rule's memory ledger: what it is, the phase it lives in (<c>resident</c> = the whole run, otherwise the
/// part of a step it exists in), how many bytes, and where the formula comes from.
/// </summary>
public sealed record RuleMemoryEntry(string Name, string Phase, long Bytes, string Source)
{
    public const string Resident = "resident";
}

/// <summary>
/// A training step of a fully connected classifier (Linear–ReLU–…–Linear, cross-entropy, fp32) as the memory model
/// sees it. <see cref="EsChunkPairs"/> is the number of antithetic pairs evaluated per batched call (0 = in place).
/// </summary>
public sealed record MlpMemoryJob
{
    public required IReadOnlyList<int> Widths { get; init; }
    public required int Batch { get; init; }
    public required string Rule { get; init; }
    /// <summary><c>adam</c> (2 states, allocated at construction in TorchSharp) or <c>sgd</c> (1 momentum buffer).</summary>
    public string Optimizer { get; init; } = "adam";
    public int EsChunkPairs { get; init; } = 16;
    public int EsPairs { get; init; } = 32;
    public int SubspaceDim { get; init; } = 1;
}

/// <summary>
/// The ledger each learning rule needs, written so the planner can adopt the entries as they are. TorchSharp facts it
/// encodes (torchsharp.md §6): every tensor created inside a step's dispose scope stays alive until the step ends, so a
/// forward pass costs all its intermediates, not only what autograd saves; Adam allocates both moments eagerly.
/// <list type="bullet">
/// <item>backprop: weights + grads + optimizer state + all forward intermediates + one layer's backward transient;</item>
/// <item>dfa: as backprop, plus the fixed feedback matrices B_i and the hidden errors e·B_i (all produced at once by one
/// node, since there is no inter-layer chain), with no inter-layer graph;</item>
/// <item>es: weights + optimizer state + one perturbation buffer + the estimate and its .grad copy; the population's
/// stacked parameter rows (2C·P) and forward intermediates of 2C members, none saved for backward;</item>
/// <item>guided-es: es plus k surrogate gradients, their QR basis and the surrogate's own backward.</item>
/// </list>
/// </summary>
public static class RuleMemory
{
    private const long F32 = 4, I64 = 8;

    public static long Parameters(IReadOnlyList<int> w)
    {
        long p = 0;
        for (int i = 0; i + 1 < w.Count; i++) p += (long)w[i] * w[i + 1] + w[i + 1];
        return p;
    }

    public static IReadOnlyList<RuleMemoryEntry> Entries(MlpMemoryJob job)
    {
        var w = job.Widths;
        long p = Parameters(w), b = job.Batch;
        long hidden = w.Skip(1).Take(w.Count - 2).Sum(x => (long)x);
        long classes = w[^1];
        long largestLayer = Enumerable.Range(0, w.Count - 1).Max(i => (long)w[i] * w[i + 1] + w[i + 1]);
        var e = new List<RuleMemoryEntry>
        {
            new("weights", RuleMemoryEntry.Resident, p * F32, "Σ (in·out + out) fp32"),
            new("batch inputs + labels", RuleMemoryEntry.Resident, b * w[0] * F32 + b * I64, "index_select copies of one minibatch"),
        };
        long optimizer = job.Optimizer == "adam" ? 2 * p * F32 : p * F32;
        e.Add(new($"{job.Optimizer} state", RuleMemoryEntry.Resident, optimizer, job.Optimizer == "adam" ? "exp_avg + exp_avg_sq, allocated at construction" : "momentum buffer"));

        // Forward with autograd: per hidden layer the Linear output a_i and ReLU output h_i; logits and log-softmax.
        long forwardGraph = b * (2 * hidden + 2 * classes) * F32;
        long widest = w.Skip(1).Max(x => (long)x);
        switch (job.Rule)
        {
            case "backprop":
                e.Add(new("grads", "step", p * F32, "one .grad per parameter"));
                e.Add(new("forward intermediates (live until the step's scope ends)", "step", forwardGraph, "a_i, h_i per hidden layer + logits + log_softmax"));
                e.Add(new("backward transient", "step", 2 * b * widest * F32 + largestLayer * F32, "grad of one layer's a_i/h_i + one optimizer temporary"));
                break;
            case "dfa":
                e.Add(new("grads", "step", p * F32, "one .grad per parameter"));
                e.Add(new("feedback matrices B_i", RuleMemoryEntry.Resident, classes * hidden * F32, "[classes, width_i] per hidden layer, never trained"));
                e.Add(new("forward intermediates (no inter-layer graph)", "step", forwardGraph, "a_i, h_i per hidden layer + logits + log_softmax; h_i.detach() is a view"));
                e.Add(new("hidden errors e·B_i", "step", b * hidden * F32, "all returned at once by the DFA injection node"));
                e.Add(new("backward transient", "step", b * widest * F32 + largestLayer * F32, "f′ product of one layer + one optimizer temporary"));
                break;
            case "es":
            case "guided-es":
                e.Add(new("perturbation buffer ε", "evaluate", p * F32, "regenerated from per-pair seeds, never stored per member"));
                e.Add(new("perturbation buffer ε (regenerated)", "update", p * F32, "each ε_i redrawn from its seed while summing"));
                e.Add(new("gradient estimate + .grad copy", "update", 2 * p * F32, "Σ c_i ε_i, then copied into .grad for the optimizer"));
                if (job.EsChunkPairs > 0)
                {
                    long rows = 2L * Math.Min(job.EsChunkPairs, job.EsPairs);
                    e.Add(new("θ snapshot", "evaluate", p * F32, "flat copy the population rows are built from"));
                    e.Add(new($"population rows ({rows} members)", "evaluate", rows * p * F32, "stacked weights for bmm"));
                    e.Add(new("population forward (not saved for backward)", "evaluate", rows * b * (w[0] + hidden + 2 * classes) * F32 + rows * b * F32,
                        "expanded input for bmm, per-layer outputs (in-place bias/ReLU), log_softmax, per-member losses"));
                }
                else
                {
                    e.Add(new("two forwards (θ+ε, θ−ε), not saved for backward", "evaluate", 2 * b * (2 * hidden + 2 * classes) * F32, "no_grad forward intermediates of one pair"));
                }
                if (job.Rule == "guided-es")
                {
                    e.Add(new("surrogate history + QR basis", RuleMemoryEntry.Resident, 2L * job.SubspaceDim * p * F32, "k flat surrogate gradients and U (n×k)"));
                    e.Add(new("surrogate backward (DFA)", "surrogate", p * F32 + forwardGraph + b * hidden * F32 + classes * hidden * F32,
                        "grads, forward intermediates, hidden errors and feedback of the DFA surrogate"));
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(job), job.Rule, "rule must be backprop, dfa, es or guided-es");
        }
        return e;
    }

    /// <summary>Predicted peak: everything resident plus the largest phase.</summary>
    public static long Peak(MlpMemoryJob job) => Peak(Entries(job));

    public static long Peak(IReadOnlyList<RuleMemoryEntry> entries) =>
        entries.Where(x => x.Phase == RuleMemoryEntry.Resident).Sum(x => x.Bytes)
        + entries.Where(x => x.Phase != RuleMemoryEntry.Resident).GroupBy(x => x.Phase).Select(g => g.Sum(x => x.Bytes)).DefaultIfEmpty(0).Max();
}
