using Afinado.Planner.Memory;
using Afinado.Training.Models;

namespace Afinado.Training.LearningRules.Memory;

/// <summary>
/// A training step of a fully connected classifier (Linear–ReLU–…–Linear, cross-entropy, fp32) as the memory model
/// sees it. <see cref="EsChunkPairs"/> is the number of antithetic pairs evaluated per batched call (0 = in place).
/// </summary>
public sealed record MlpMemoryJob
{
    public required IReadOnlyList<int> Widths { get; init; }
    public required int Batch { get; init; }
    public required LearningRule Rule { get; init; }
    /// <summary><c>adam</c> (2 states) or <c>sgd</c> (1 momentum buffer), both allocated at the first step (Afinado's <c>Optim/</c>),
    /// or <c>none</c> (direct ES).</summary>
    public string Optimizer { get; init; } = "adam";
    public int EsChunkPairs { get; init; } = 16;
    public int EsPairs { get; init; } = 32;
    public int SubspaceDim { get; init; } = 1;
    /// <summary>ES noise rank (0 = dense; r ≥ 1 = low-rank factors, evaluated by the low-rank population call when batched).</summary>
    public int EsNoiseRank { get; init; }
}

/// <summary>
/// The ledger each learning rule needs, in a form the planner can adopt entry by entry. TorchSharp facts it encodes,
/// each confirmed by RSS probes (bench/learning-rules/README.md):
/// <list type="bullet">
/// <item>every tensor created inside a dispose scope lives until the scope ends — a forward costs all its intermediates;
/// backprop runs each micro-batch in a scope of its own, so they are gone before the optimizer steps, while DFA's step is
/// one scope and its tensors (and those a custom backward returns, DFA's e·B_i) live through the optimizer step;</item>
/// <item>the optimizers are Afinado's own (<c>Optim/</c>): Adam's two moments and SGD-momentum's buffer are allocated at
/// the first step and stay; Adam's step holds one temporary (√v, then divided and shifted in place) for one parameter at a
/// time, freed before the next: the largest parameter on top of everything else.</item>
/// </list>
/// Per rule: backprop = weights + grads + optimizer + forward intermediates; DFA = backprop + feedback matrices + hidden
/// errors, no inter-layer graph; ES = weights + optimizer + one perturbation buffer + the population's forward (nothing
/// saved for backward) or, in the update, the estimate and its .grad copy; Guided ES = ES + k surrogates + the
/// surrogate's own backward.
/// Lines are the planner's <see cref="LedgerEntry"/>, live at its moments: backward and its surrogate at
/// <see cref="Phase.BackwardEnd"/>, the population's evaluation at <see cref="Phase.Perturbed"/>, the optimizer step and ES's
/// update at <see cref="Phase.OptimizerStep"/>, what is resident at all of them; the peak is <see cref="MemoryPeak"/>'s.
/// </summary>
public static class RuleMemory
{
    private const long F32 = 4, I64 = 8;

    /// <summary>Live through the whole run: every moment of a step.</summary>
    private const Phase Resident = Phase.Training | Phase.Perturbed;
    private const Phase Backward = Phase.BackwardEnd, OptimizerStep = Phase.OptimizerStep, Evaluate = Phase.Perturbed, Update = Phase.OptimizerStep;
    private const string Probes = "RuleMemory, checked by TorchSharp RSS probes (bench/learning-rules/README.md)";

    /// <summary>Allocator and runtime working set a step adds beyond its tensors (measured: 4.2–4.6 MiB on the probes).</summary>
    public const long RuntimeSlackBytes = 9L << 19;

    public static long Parameters(IReadOnlyList<int> w)
    {
        long p = 0;
        for (int i = 0; i + 1 < w.Count; i++) p += (long)w[i] * w[i + 1] + w[i + 1];
        return p;
    }

    public static IReadOnlyList<LedgerEntry> Entries(MlpMemoryJob job)
    {
        var w = job.Widths;
        long p = Parameters(w), b = job.Batch, weights = p * F32;
        long hidden = w.Skip(1).Take(w.Count - 2).Sum(x => (long)x);
        long classes = w[^1], widest = w.Skip(1).Max(x => (long)x);
        bool adam = job.Optimizer == "adam", direct = job.Optimizer == "none";
        if (direct && job.Rule != LearningRule.Es) throw new ArgumentOutOfRangeException(nameof(job), "only es runs without an optimizer");
        var e = new List<LedgerEntry>
        {
            Line(LineKind.WeightsTrainable, "weights", Resident, weights, "Σ (in·out + out) × 4 B"),
            Line(LineKind.MinibatchInputs, "minibatch inputs + labels", Resident, b * w[0] * F32 + b * I64, "index_select copies"),
            Line(LineKind.StepRuntimeSlack, "runtime slack", Resident, RuntimeSlackBytes, "measured allocator/runtime working set of a step"),
        };
        if (!direct)
            e.Add(Line(LineKind.OptimizerState, adam ? "adam exp_avg + exp_avg_sq" : "sgd momentum buffer", Resident, (adam ? 2 : 1) * weights, "allocated at the first step"));
        // With autograd: Linear output a_i and ReLU output h_i per hidden layer, logits and log-softmax.
        long forward = b * (2 * hidden + 2 * classes) * F32;
        long largestParameter = Enumerable.Range(0, w.Count - 1).Max(i => (long)w[i] * w[i + 1]) * F32;
        long adamTemps = adam ? largestParameter : 0;

        switch (job.Rule)
        {
            case LearningRule.Backprop:
            case LearningRule.Dfa:
                bool dfa = job.Rule == LearningRule.Dfa;
                if (dfa) e.Add(Line(LineKind.DfaFeedbackMatrices, "feedback matrices B_i", Resident, classes * hidden * F32, "[classes, width_i] per hidden layer, never trained"));
                e.Add(dfa
                    ? Line(LineKind.ForwardIntermediates, "forward intermediates", Backward | OptimizerStep, forward, "a_i, h_i, logits, log_softmax; h_i.detach() is a view, no inter-layer graph (live until the step ends)")
                    : Line(LineKind.ForwardIntermediates, "forward intermediates", Backward, forward, "a_i, h_i, logits, log_softmax (freed with the micro-batch's scope, before the optimizer step)"));
                e.Add(Line(LineKind.Gradients, "grads", Backward | OptimizerStep, weights, "one .grad per parameter"));
                if (dfa) e.Add(Line(LineKind.DfaInjectedErrors, "hidden errors e·B_i", Backward | OptimizerStep, b * hidden * F32, "returned together by the DFA node; live until the step ends"));
                e.Add(Line(LineKind.BackwardTemporaries, "backward transient", Backward, b * widest * F32, "gradient of one layer's activation"));
                if (adam) e.Add(Line(LineKind.OptimizerTemporaries, "adam temporaries", OptimizerStep, adamTemps, "√v of one parameter at a time: the largest"));
                break;

            case LearningRule.Es when job.EsNoiseRank > 0 && job.EsChunkPairs > 0:
                AddLowRankEs(e, job, w, b, weights, direct, adamTemps);
                break;

            case LearningRule.Es:
            case LearningRule.GuidedEs:
                if (job.EsChunkPairs > 0)
                {
                    long rows = 2L * Math.Min(job.EsChunkPairs, job.EsPairs);
                    e.Add(Line(LineKind.EsParameterSnapshot, "θ snapshot", Evaluate, weights, "flat copy the population rows are built from"));
                    e.Add(Line(LineKind.EsPerturbation, "perturbation buffer ε", Evaluate, weights, "regenerated from per-pair seeds"));
                    e.Add(Line(LineKind.EsPopulationWeights, $"population rows ({rows} members)", Evaluate, rows * weights, "stacked weights for bmm"));
                    e.Add(Line(LineKind.EsPopulationForward, "population forward (not saved for backward)", Evaluate, rows * b * (hidden + 2 * classes + 1) * F32,
                        "one bmm output per layer and member (bias and ReLU applied in place), log_softmax, per-member losses"));
                }
                else
                {
                    e.Add(Line(LineKind.EsPerturbation, "perturbation buffer ε", Evaluate, weights, "regenerated from per-pair seeds"));
                    e.Add(Line(LineKind.EsPopulationForward, "one forward (θ+ε or θ−ε), not saved for backward", Evaluate, forward, "intermediates freed before the next member's forward"));
                }
                if (direct)
                    e.Add(Line(LineKind.EsPerturbation, "perturbation buffer ε (redrawn per pair)", Update, weights, "θ −= lr·c_i·ε_i in place: no estimate, no .grad, no optimizer state"));
                else
                {
                    e.Add(Line(LineKind.EsEstimate, "gradient estimate Σ c_i ε_i", Update, weights, "summed while each ε_i is redrawn"));
                    e.Add(Line(LineKind.EsEstimateGradCopy, ".grad copy of the estimate", Update, weights, "what the optimizer reads"));
                    if (adam) e.Add(Line(LineKind.OptimizerTemporaries, "adam temporaries", Update, adamTemps, "√v of one parameter at a time: the largest"));
                }
                if (job.Rule == LearningRule.GuidedEs)
                {
                    e.Add(Line(LineKind.GuidedEsSurrogateHistory, "surrogate history", Resident, job.SubspaceDim * weights, "k flat surrogate gradients"));
                    e.Add(Line(LineKind.GuidedEsSurrogateBackward, "surrogate DFA backward", Backward, forward + 2 * weights + b * hidden * F32, "forward intermediates, grads and their flat copy, hidden errors"));
                    e.Add(Line(LineKind.DfaFeedbackMatrices, "feedback matrices B_i", Resident, classes * hidden * F32, "the DFA surrogate's fixed feedback"));
                    e.Add(Line(LineKind.GuidedEsSurrogateAndBasis, "this step's surrogate + QR basis U", Evaluate | Update, (1 + job.SubspaceDim) * weights, "flat surrogate and U (n×k), live until the step ends"));
                }
                break;

            default:
                throw new ArgumentOutOfRangeException(nameof(job), job.Rule, "rule must be backprop, dfa, es or guided-es");
        }
        return e;
    }

    /// <summary>
    /// Low-rank ES evaluated by <c>MlpClassifier.LowRankPopulationLoss</c>, C pairs (2C members) per call, all inside one dispose
    /// scope: the chunk's factors (one [C, L] draw), the first layer's shared
    /// x·Wᵀ, x·B_i [C,N,r], the deltas and θ±ε outputs and their concatenation (5 × C·N·h₁), and per later layer the shared
    /// and low-rank products for 2C members (4 × C·N·out), log-softmax and per-member losses. The update regenerates the
    /// factors chunk by chunk and accumulates Σ c_i·A_i·B_iᵀ in place (addmm_); no θ snapshot, no dense ε buffer.
    /// </summary>
    private static void AddLowRankEs(List<LedgerEntry> e, MlpMemoryJob job, IReadOnlyList<int> w, long b, long weights, bool direct, long adamTemps)
    {
        long c = Math.Min(job.EsChunkPairs, job.EsPairs), r = job.EsNoiseRank, classes = w[^1];
        long factors = 0, forward = b * w[1] + c * b * r + 5 * c * b * w[1];
        for (int i = 0; i + 1 < w.Count; i++)
        {
            factors += c * r * (w[i] + w[i + 1]) + c * w[i + 1];
            if (i > 0) forward += 4 * c * b * w[i + 1] + 2 * c * b * r + 2 * c * r * (w[i] + w[i + 1]) + 2 * c * w[i + 1];
        }
        forward += 2 * c * b * classes + 2 * c * b;
        e.Add(Line(LineKind.EsLowRankFactors, "low-rank factors A_i, B_i, z_i (one chunk)", Evaluate, factors * F32, "C·Σ r·(in + out) + out: one [C, L] draw, a row per pair"));
        e.Add(Line(LineKind.EsPopulationForward, $"low-rank population forward ({2 * c} members)", Evaluate, forward * F32 + 2 * c * b * I64,
            "x·Wᵀ once, x·B_i, deltas, θ±ε outputs and their cat (5·C·N·h₁), later layers 4·C·N·out, log_softmax, losses, repeated targets"));
        if (direct)
        {
            e.Add(Line(LineKind.EsPerturbation, "perturbation buffer ε (redrawn per pair)", Update, weights, "θ −= lr·c_i·ε_i in place"));
            return;
        }
        e.Add(Line(LineKind.EsEstimate, "gradient estimate Σ c_i ε_i", Update, weights, "one [rows, C·r]×[C·r, cols] product per matrix and chunk"));
        e.Add(Line(LineKind.EsLowRankCombination, "low-rank combination transient (one chunk)", Update, 2 * factors * F32, "the chunk's [C, L] draw and the weighted copy of A; the product is accumulated in place (addmm_)"));
        e.Add(Line(LineKind.EsEstimateGradCopy, ".grad copy of the estimate", Update, weights, "what the optimizer reads"));
        if (adamTemps > 0) e.Add(Line(LineKind.OptimizerTemporaries, "adam temporaries", Update, adamTemps, "√v of one parameter at a time: the largest"));
    }

    private static LedgerEntry Line(LineKind kind, string name, Phase phases, long bytes, string formula) => new(kind, name, phases, bytes, formula, Probes);

    /// <summary>Predicted peak above the pre-model baseline: everything resident plus the largest moment's own lines.</summary>
    public static long Peak(MlpMemoryJob job) => Peak(Entries(job));

    /// <summary>Whole bytes below 2⁵³ sum exactly in doubles, so the peak is exact.</summary>
    public static long Peak(IReadOnlyList<LedgerEntry> entries) => (long)MemoryPeak.Of(entries).Bytes;
}
