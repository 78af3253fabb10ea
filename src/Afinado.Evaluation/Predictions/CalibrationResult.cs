using Afinado.Evaluation.Metrics;

namespace Afinado.Evaluation.Predictions;

/// <summary>The <c>afinado calibration --json</c> document (schema <c>afinado.calibration/1</c>).</summary>
public sealed record CalibrationResult(
    string Schema,
    string File,
    int N,
    int Bins,
    double Accuracy,
    double Ece,
    double Mce,
    double Brier,
    BrierKind BrierKind,
    double? Auroc,
    IReadOnlyList<SelectivePoint> Selective,
    IReadOnlyList<ReliabilityBin> Reliability)
{
    public const string SchemaId = "afinado.calibration/1";

    public static CalibrationResult From(string file, CalibrationSummary s) =>
        new(SchemaId, file, s.Count, s.Bins, s.Accuracy, s.Ece, s.Mce, s.Brier, s.BrierKind, s.Auroc, s.Selective, s.Reliability);
}
