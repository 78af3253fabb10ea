using System.Globalization;
using System.Text;
using Afinado.Evaluation.Tasks;

namespace Afinado.Evaluation.Predictions;

/// <summary>
/// Writes every model's predictions on every task as JSONL (<c>predictions/TASK.MODEL.jsonl</c>) in the format
/// <c>afinado calibration</c> reads, so the calibration numbers in eval.json can be reproduced or re-binned from the files.
/// </summary>
public static class PredictionWriter
{
    public static void Write(string outDir, IEnumerable<IReadOnlyDictionary<string, TaskScores>> scores)
    {
        var dir = Path.Combine(outDir, "predictions");
        Directory.CreateDirectory(dir);
        var c = CultureInfo.InvariantCulture;
        foreach (var byModel in scores)
            foreach (var (model, s) in byModel)
            {
                var sb = new StringBuilder();
                foreach (var p in s.AllPredictions)
                {
                    sb.Append(c, $"{{\"confidence\": {p.Confidence.ToString("R", c)}, \"correct\": {(p.Correct ? "true" : "false")}");
                    if (p.HasDistribution)
                        sb.Append(c, $", \"label\": {p.Label}, \"probabilities\": [{string.Join(", ", p.Probabilities!.Select(x => x.ToString("R", c)))}]");
                    sb.Append("}\n");
                }
                File.WriteAllText(Path.Combine(dir, $"{FileName(s.Task.Name)}.{FileName(model)}.jsonl"), sb.ToString());
            }
    }

    public static string FileName(string s) => new(s.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' ? ch : '-').ToArray());
}
