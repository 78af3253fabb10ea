using Afinado.Planner.Architecture;
using Afinado.Training.Selection;

namespace Afinado.Training.Loop;

/// <summary>What the planner needs to predict a training run's peak memory on this CPU.</summary>
public sealed record PeakPlanRequest(ModelArchitecture Architecture, ParameterSelection Selection, TrainConfig Config);

/// <summary>The planner's <c>--device cpu</c> prediction of a run's peak tensor memory, in bytes (null when it cannot say).</summary>
public interface IPeakPlanner
{
    long? PlanPeakBytes(PeakPlanRequest request);

    /// <summary>Changes (to the run's config keys) that bring the run's peak within <paramref name="availableBytes"/>, best first.</summary>
    IReadOnlyList<ParameterChange> FixesWithin(PeakPlanRequest request, long availableBytes) => [];
}
