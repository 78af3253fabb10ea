namespace Afinado.Planner.Export;

/// <summary>
/// The parameters of a <see cref="TrainingRun"/> export beyond the plan's job and layout.
/// </summary>
public static class ExportParameters
{
    public static readonly InputParameter MasterPort = new("master_port");
}
