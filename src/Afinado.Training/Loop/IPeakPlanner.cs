using Afinado.Planner.Architecture;
using Afinado.Training.Selection;

namespace Afinado.Training.Loop;

/// <summary>What the planner needs to predict a training run's peak memory on this CPU.</summary>
public sealed record PeakPlanRequest(ModelArchitecture Architecture, ParameterSelection Selection, TrainConfig Config)
{
    /// <summary>Trainable parameter count (LoRA adapters included), for rules whose extra memory scales with it (ES).</summary>
    public long TrainableParameters { get; init; }
}

/// <summary>The planner's <c>--device cpu</c> prediction of a run's peak tensor memory, in bytes (null when it cannot say).</summary>
public interface IPeakPlanner
{
    long? PlanPeakBytes(PeakPlanRequest request);
}
