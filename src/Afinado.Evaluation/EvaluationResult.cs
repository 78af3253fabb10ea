using Afinado.Evaluation.Metrics;
using Afinado.Evaluation.Tasks;
using Afinado.Evaluation.Verdicts;

namespace Afinado.Evaluation;

/// <summary>One model's score on one task, with its calibration when the task yields confidences.</summary>
public sealed record ModelScore(string Model, double Score, CalibrationSummary? Calibration);

/// <summary>
/// One task compared across models. <c>Change</c> is finetuned − base in raw units with a paired bootstrap CI;
/// <c>Tax</c> (retained tasks) is the same change oriented so positive means worse; <c>EceChange</c> is finetuned − base ECE.
/// </summary>
public sealed record TaskEvaluation(
    TaskInfo Task,
    int Items,
    IReadOnlyList<ModelScore> Scores,
    Estimate Change,
    Estimate? Tax,
    double? RelativeTax,
    Estimate? EceChange);

/// <summary>Continual-learning summaries over the retained tasks (two stages: base then finetuned).</summary>
public sealed record ForgettingSummary(double AverageForgetting, double BackwardTransfer, string Metric);

/// <summary>Evaluation's output for one finetune, keyed by the pinned identity (schema <c>afinado.eval/1</c>).</summary>
public sealed record EvaluationResult
{
    public const string SchemaId = "afinado.eval/1";

    public string Schema { get; init; } = SchemaId;
    /// <summary>Short hash over base/output weights, data, config, code and seed: results with the same key are the same experiment.</summary>
    public required string ResultKey { get; init; }
    public required string BaseSha256 { get; init; }
    public string? FinetunedSha256 { get; init; }
    public required string Description { get; init; }
    public required IReadOnlyList<TaskEvaluation> Tasks { get; init; }
    /// <summary>Target gain of the finetuned model over each cheaper alternative (oriented: positive = better).</summary>
    public required IReadOnlyList<BaselineGain> Gains { get; init; }
    public ForgettingSummary? Forgetting { get; init; }
    public required Verdict Verdict { get; init; }
    public FinetuneCost? Cost { get; init; }
    public IReadOnlyList<string> Warnings { get; init; } = [];
}
