using Afinado.Training.Loop;
using Afinado.Evaluation.Runs;
using Afinado.Training.Runs;

namespace Afinado.Evaluation.Reporting;

/// <summary>A figure written next to the report: PNG and SVG paths relative to the report folder.</summary>
public sealed record ReportFigure(string Name, string Caption, string Png, string Svg);

/// <summary>One run folder as reported: its pinned identity, its training summary and Evaluation's results.</summary>
public sealed record ReportRun(string Name, string Path, string ResultKey, RunManifest Manifest, RunSummary? Summary, EvaluationResult? Evaluation);

/// <summary>The report's machine-readable twin (schema <c>afinado.report/1</c>): the same content as the HTML.</summary>
public sealed record ReportDocument(IReadOnlyList<ReportRun> Runs, IReadOnlyList<string> Warnings, IReadOnlyList<ReportFigure> Figures)
{
    public const string SchemaId = "afinado.report/1";
    public string Schema { get; init; } = SchemaId;
}
