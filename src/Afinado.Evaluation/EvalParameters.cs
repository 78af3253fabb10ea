namespace Afinado.Evaluation;

/// <summary>
/// The arguments of an evaluation or a report: the run evaluated, the task file, the pinned base model, the scale estimate's
/// sustained TFLOP/s, whether runs from different bases may be compared, and the output folder.
/// </summary>
public static class EvalParameters
{
    public static readonly InputParameter Run = new("run");
    public static readonly InputParameter Tasks = new("tasks");
    public static readonly InputParameter Model = new("model");
    public static readonly InputParameter ScaleTflops = new("scale_tflops");
    public static readonly InputParameter AllowDifferentBase = new("allow_different_base");
    public static readonly InputParameter Out = new("out");
}
