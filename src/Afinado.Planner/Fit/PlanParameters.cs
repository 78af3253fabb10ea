namespace Afinado.Planner.Fit;

/// <summary>
/// The arguments of a plan besides its <see cref="Memory.Job"/> (<see cref="Planner.Create"/>, <see cref="CurveRequest"/>): the model,
/// the devices, the search and the curve.
/// </summary>
public static class PlanParameters
{
    public static readonly InputParameter Model = new("model");
    public static readonly InputParameter Gpu = new("gpu");
    public static readonly InputParameter GpuMemory = new("gpu_memory");
    public static readonly InputParameter Max = new("max");
    public static readonly InputParameter Curve = new("curve");
    public static readonly InputParameter CurvePoints = new("curve_points");
    public static readonly InputParameter CurveRange = new("curve_range");
}
