using Afinado.Evaluation.Figures;
using Afinado.Planner;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Cli.Commands;

/// <summary>Writes a plan's memory curve as PNG or SVG (<c>--plot</c>; the extension was checked before planning).</summary>
internal static class CurvePlot
{
    public static void Save(Plan plan, MemoryCurve curve, string path)
    {
        var figure = MemoryCurveFigure.Build(curve, $"{plan.Architecture.Name} — {Describe(plan.Job, curve)}", AxisLabel(plan.Job, curve));
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            if (Path.GetExtension(path).Equals(".svg", StringComparison.OrdinalIgnoreCase)) figure.SaveSvg(path);
            else figure.SavePng(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InputError("--plot", $"cannot write \"{path}\" ({e.Message})", "Give a path in a writable folder.", e);
        }
    }

    /// <summary>The x axis in words: for inference the swept sequence is the context the KV cache holds.</summary>
    public static string AxisLabel(Job job, MemoryCurve curve) => curve.Parameter == "batch" ? "batch (sequences per step)"
        : job.IsTraining ? "sequence length (tokens)" : "context (tokens in the KV cache)";

    /// <summary>The sizes the curve holds fixed (for inference the prompt stays at --seq, or the whole context when shorter).</summary>
    public static string Held(Job job, MemoryCurve curve) =>
        curve.Parameter == "batch" ? (job.IsTraining ? $"seq {job.Seq}" : $"prompt {job.Seq}, context {job.ContextTokens}")
        : job.IsTraining ? $"batch {job.Batch}" : $"batch {job.Batch}, prompt {job.Seq} (or the whole context when shorter)";

    /// <summary>The job in a title's words; the swept parameter is left out (it is the x axis).</summary>
    private static string Describe(Job job, MemoryCurve curve)
    {
        string held = curve.Parameter == "seq" && !job.IsTraining ? $"batch {job.Batch}, prompt ≤ {job.Seq}" : Held(job, curve);
        return job.IsTraining
            ? $"train {job.Method.Name()}, {job.Precision.Name()}, {(job.Rule == LearningRule.EsDirect ? "no optimizer" : job.Optimizer.Name())}, checkpointing {job.Checkpointing.ToString().ToLowerInvariant()}, {held}"
            : $"infer, {job.WeightsName} weights, {job.ResolvedKvDtype.Name()} KV, {held}";
    }
}
