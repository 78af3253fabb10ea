namespace Afinado.Planner.Validation;

/// <summary>
/// The parameters of a validation against ground truth (<see cref="GroundTruth"/>).
/// </summary>
public static class ValidationParameters
{
    public static readonly InputParameter GroundTruthDir = new("ground_truth_dir");
}
