using System.Globalization;
using System.Text.Json;
using Afinado.Evaluation.Metrics;
using Afinado.Planner;
using Afinado.Planner.Inputs;

namespace Afinado.Evaluation.Predictions;

/// <summary>
/// Reads predictions made by any tool, one per row, so Afinado's calibration metrics work without Afinado models.
/// <list type="bullet">
/// <item>CSV (<c>.csv</c>): a header naming the columns <c>confidence,correct[,label][,probabilities]</c>; without a
/// header the first two columns are confidence and correct. <c>probabilities</c> is one field of numbers separated by
/// <c>;</c> or spaces (optionally in brackets and quotes).</item>
/// <item>JSONL (<c>.jsonl</c>/<c>.ndjson</c>/<c>.json</c>, or any file whose first character is <c>{</c>): one object per
/// line with the same keys; <c>probabilities</c> is an array.</item>
/// </list>
/// <c>correct</c> is 1/0 or true/false. <c>confidence</c> may be left out when <c>probabilities</c> is given (it is then
/// their maximum). Every bad row is an <see cref="InputError"/> naming the file, line and column.
/// </summary>
public static class PredictionFile
{
    public static IReadOnlyList<Prediction> Read(string path)
    {
        if (!File.Exists(path))
            throw new InputError("FILE", $"'{path}' does not exist", "Pass a CSV or JSONL file of predictions (rows of confidence,correct).");
        // Streamed through InputFile: regular files only, strict UTF-8, bounded lines; errors name file:line.
        IEnumerable<(int Number, string Text)> Lines() => InputFile.ReadLines(path, InputKind.Predictions);
        var ext = Path.GetExtension(path).ToLowerInvariant();
        var json = ext is ".jsonl" or ".ndjson" or ".json"
                   || (ext != ".csv" && Lines().Select(l => l.Text.TrimStart()).FirstOrDefault(l => l.Length > 0)?.StartsWith('{') == true);
        var name = InputFile.Describe(path);
        var rows = json ? ReadJsonl(name, Lines()) : ReadCsv(name, Lines());
        if (rows.Count == 0)
            throw new InputError(name, "contains no prediction rows", "Add at least one row of confidence,correct.");
        var withDistribution = rows.Count(r => r.HasDistribution);
        if (withDistribution != 0 && withDistribution != rows.Count)
            throw new InputError(name, $"{withDistribution} of {rows.Count} rows give label and probabilities, the others do not",
                "Give label and probabilities on every row (multi-class Brier) or on none (binary Brier on confidence).");
        return rows;
    }

    private static List<Prediction> ReadCsv(string path, IEnumerable<(int Number, string Text)> lines)
    {
        var rows = new List<Prediction>();
        Dictionary<string, int>? columns = null;
        foreach (var (number, line) in lines)
        {
            if (line.Trim().Length == 0 || line.TrimStart().StartsWith('#')) continue;
            var fields = SplitCsv(line);
            if (columns is null)
            {
                if (!double.TryParse(fields[0].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out _)
                    && fields.Any(f => f.Trim().Equals("correct", StringComparison.OrdinalIgnoreCase)))
                {
                    columns = fields.Select((f, i) => (f.Trim().ToLowerInvariant(), i)).ToDictionary(x => x.Item1, x => x.i);
                    if (!columns.ContainsKey("correct"))
                        throw new InputError($"{path}:{number}", "the header has no 'correct' column", "Name the columns confidence,correct[,label][,probabilities].");
                    if (!columns.ContainsKey("confidence") && !columns.ContainsKey("probabilities"))
                        throw new InputError($"{path}:{number}", "the header has neither 'confidence' nor 'probabilities'", "Add a confidence column (top-class probability).");
                    continue;
                }
                columns = new() { ["confidence"] = 0, ["correct"] = 1 };
            }
            var where = $"{path}:{number}";
            string? Field(string name) => columns.TryGetValue(name, out var i) && i < fields.Count && fields[i].Trim().Length > 0 ? fields[i].Trim() : null;
            if (fields.Count < columns.Values.Max() + 1 && Field("correct") is null)
                throw new InputError(where, $"has {fields.Count} column(s), expected {columns.Count}", "Write one prediction per line: confidence,correct.");
            var probs = Field("probabilities") is { } ps ? ParseProbabilityList(where, ps) : null;
            rows.Add(Build(where, Field("confidence"), Field("correct"), Field("label"), probs));
        }
        return rows;
    }

    private static List<Prediction> ReadJsonl(string path, IEnumerable<(int Number, string Text)> lines)
    {
        var rows = new List<Prediction>();
        foreach (var (number, line) in lines)
        {
            if (line.Trim().Length == 0) continue;
            var where = $"{path}:{number}";
            // Checked JSON: a lone surrogate escape or an out-of-range number is named here, not thrown later by GetString/GetDouble.
            using (var doc = InputJson.Parse(line, where, InputKind.Predictions))
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw new InputError(where, "is not a JSON object", "Write one JSON object per line, e.g. {\"confidence\": 0.83, \"correct\": true}.");
                var o = doc.RootElement;
                string? Text(string key) => o.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null
                    ? v.ValueKind switch { JsonValueKind.True => "true", JsonValueKind.False => "false", JsonValueKind.String => v.GetString(), _ => v.GetRawText() }
                    : null;
                double[]? probs = null;
                if (o.TryGetProperty("probabilities", out var p) && p.ValueKind != JsonValueKind.Null)
                {
                    if (p.ValueKind != JsonValueKind.Array || p.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.Number))
                        throw new InputError($"{where}: probabilities", "is not an array of numbers", "Write probabilities as [0.7, 0.2, 0.1].");
                    probs = p.EnumerateArray().Select(e => e.GetDouble()).ToArray();
                    CheckDistribution(where, probs);
                }
                rows.Add(Build(where, Text("confidence"), Text("correct"), Text("label"), probs));
            }
        }
        return rows;
    }

    private static Prediction Build(InputText where, string? confidenceText, string? correctText, string? labelText, double[]? probs)
    {
        if (correctText is null)
            throw new InputError($"{where}: correct", "is missing", "Give correct as 1/0 or true/false.");
        bool correct = correctText.ToLowerInvariant() switch
        {
            "1" or "true" or "yes" => true,
            "0" or "false" or "no" => false,
            _ => throw new InputError($"{where}: correct", $"'{correctText}' is not 1/0 or true/false", "Give correct as 1/0 or true/false."),
        };
        double confidence;
        if (confidenceText is null)
        {
            if (probs is null) throw new InputError($"{where}: confidence", "is missing", "Give the top-class probability in [0, 1], or the full probabilities.");
            confidence = probs.Max();
        }
        else if (!double.TryParse(confidenceText, NumberStyles.Float, CultureInfo.InvariantCulture, out confidence) || double.IsNaN(confidence))
            throw new InputError($"{where}: confidence", $"'{confidenceText}' is not a number", "Give the top-class probability as a decimal in [0, 1] (e.g. 0.83).");
        if (confidence < 0 || confidence > 1)
            throw new InputError($"{where}: confidence", $"{confidence.ToString(CultureInfo.InvariantCulture)} is outside [0, 1]", "Give a probability, not a percentage or a logit (divide percentages by 100; apply softmax to logits).");
        int? label = null;
        if (labelText is not null)
        {
            if (!int.TryParse(labelText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) || l < 0)
                throw new InputError($"{where}: label", $"'{labelText}' is not a class index", "Give the true class as a 0-based integer index into probabilities.");
            if (probs is not null && l >= probs.Length)
                throw new InputError($"{where}: label", $"class {l} is outside the {probs.Length} probabilities", "Give a 0-based index smaller than the number of probabilities.");
            label = l;
        }
        if (probs is not null && Math.Abs(probs.Max() - confidence) > 1e-3)
            throw new InputError($"{where}: confidence", $"{confidence.ToString(CultureInfo.InvariantCulture)} differs from the largest probability {probs.Max().ToString(CultureInfo.InvariantCulture)}",
                "Confidence must be the top-class probability; leave it out to use max(probabilities).");
        return new Prediction(confidence, correct, label, probs);
    }

    private static double[] ParseProbabilityList(InputText where, string text)
    {
        var parts = text.Trim('"', '[', ']', ' ').Split([';', ' ', ','], StringSplitOptions.RemoveEmptyEntries);
        var probs = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out probs[i]))
                throw new InputError($"{where}: probabilities", $"'{parts[i]}' is not a number", "Write probabilities as numbers separated by ';' (e.g. 0.7;0.2;0.1).");
        CheckDistribution(where, probs);
        return probs;
    }

    private static void CheckDistribution(InputText where, double[] probs)
    {
        if (probs.Length < 2)
            throw new InputError($"{where}: probabilities", "needs at least two classes", "Give the full distribution over classes, or leave the column out.");
        if (probs.Any(p => double.IsNaN(p) || p < 0 || p > 1) || Math.Abs(probs.Sum() - 1) > 1e-3)
            throw new InputError($"{where}: probabilities", $"do not form a distribution (sum {probs.Sum().ToString("0.####", CultureInfo.InvariantCulture)})",
                "Give softmax probabilities that are in [0, 1] and sum to 1.");
    }

    /// <summary>Splits one CSV line on commas outside double quotes (enough for numeric prediction files).</summary>
    private static List<string> SplitCsv(string line)
    {
        var fields = new List<string>();
        var current = new System.Text.StringBuilder();
        bool quoted = false;
        foreach (var ch in line)
        {
            if (ch == '"') { quoted = !quoted; continue; }
            if (ch == ',' && !quoted) { fields.Add(current.ToString()); current.Clear(); continue; }
            current.Append(ch);
        }
        fields.Add(current.ToString());
        return fields;
    }
}
