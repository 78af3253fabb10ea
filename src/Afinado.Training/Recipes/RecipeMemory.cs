using Afinado.Planner.Memory;
using Afinado.Training.Runs;

namespace Afinado.Training.Recipes;

/// <summary>
/// The analytic fp32 ledgers of the split recipes' small finetunes, as planner ledger lines: a run summary's planned
/// breakdown is built from them (<see cref="RunSummary.Breakdown"/>), so its names and bytes have one source.
/// </summary>
internal static class RecipeMemory
{
    private const long F32 = 4;
    private const string Source = "analytic fp32 ledger of the experiment";
    private const Phase Resident = Phase.Training | Phase.Perturbed;

    /// <summary>Backprop with AdamW on every parameter: weights, gradients and both moments.</summary>
    public static List<LedgerEntry> FullAdamW(long parameters) =>
    [
        new(LineKind.WeightsTrainable, "weights", Phase.Training, parameters * F32, "parameters × 4 B", Source),
        new(LineKind.Gradients, "gradients", Phase.BackwardEnd | Phase.OptimizerStep, parameters * F32, "parameters × 4 B", Source),
        new(LineKind.OptimizerState, "optimizer state (AdamW m, v)", Phase.Training, 2 * parameters * F32, "2 × parameters × 4 B", Source),
    ];

    /// <summary>One batch's activations and their gradients (backprop).</summary>
    public static LedgerEntry BatchActivations(long bytes) =>
        new(LineKind.ForwardIntermediates, "activations (one batch, fwd+bwd)", Phase.Training & ~Phase.OptimizerStep, bytes, "activations and their gradients", Source);

    /// <summary>
    /// ES in place with Adam (<see cref="LearningRules.EsRule"/>): weights, one perturbation buffer, the gradient
    /// estimate and the .grad copy the optimizer reads, Adam's two moments and one forward pass (no stored graph).
    /// </summary>
    public static List<LedgerEntry> EsWithAdam(long parameters, long forwardBytes) =>
    [
        new(LineKind.WeightsTrainable, "weights", Resident, parameters * F32, "parameters × 4 B", Source),
        new(LineKind.EsPerturbation, "perturbation buffer", Phase.Perturbed, parameters * F32, "parameters × 4 B", Source),
        new(LineKind.EsEstimate, "gradient estimate", Phase.OptimizerStep, parameters * F32, "parameters × 4 B", Source),
        new(LineKind.EsEstimateGradCopy, ".grad copy of the estimate", Phase.OptimizerStep, parameters * F32, "parameters × 4 B", Source),
        new(LineKind.OptimizerState, "optimizer state (Adam m, v)", Resident, 2 * parameters * F32, "2 × parameters × 4 B", Source),
        new(LineKind.EsPopulationForward, "activations (one forward)", Phase.Perturbed, forwardBytes, "one forward pass, nothing saved for backward", Source),
    ];
}
