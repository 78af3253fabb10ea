using System.Text.Json;

namespace Afinado.Planner.Validation;

/// <summary>The <c>afinado.validate/1</c> contract: every source's summaries and rows, as <c>afinado validate --json</c> prints them.</summary>
public static class ValidationJson
{
    public const string Schema = "afinado.validate/1";

    public static string Serialize(IReadOnlyList<ValidationSource> sources)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("schema", Schema);
            w.WriteStartArray("sources");
            foreach (var s in sources)
            {
                w.WriteStartObject();
                w.WriteString("name", s.Name);
                w.WriteString("file", Path.GetFileName(s.File));
                w.WriteNumber("rows_asserted", s.Predicted);
                Num(w, "median_abs_error", s.MedianAbsError);
                Num(w, "worst_abs_error", s.WorstAbsError);
                w.WriteNumber("misses", s.Failures);
                Num(w, "median_abs_error_measured_rows", s.MedianAbsErrorMeasured);
                w.WriteNumber("rows_predicted_all", s.AllPredicted);
                Num(w, "median_abs_error_all_predicted", s.MedianAbsErrorAllPredicted);
                Num(w, "worst_abs_error_all_predicted", s.WorstAbsErrorAllPredicted);
                w.WriteStartArray("rows");
                foreach (var r in s.Rows)
                {
                    w.WriteStartObject();
                    w.WriteString("id", r.Id);
                    w.WriteString("scope", r.Scope);
                    w.WriteString("metric", r.Metric);
                    Num(w, "predicted", r.PredictedBytes);
                    Num(w, "measured", r.MeasuredBytes);
                    Num(w, "relative_error", r.RelativeError);
                    if (r.IsBound) Num(w, "headroom_bytes", r.HeadroomBytes);
                    Num(w, "tolerance", r.Tolerance);
                    w.WriteBoolean("asserted", r.Asserted);
                    w.WriteBoolean("within_tolerance", r.WithinTolerance);
                    w.WriteString("note", r.Note);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void Num(Utf8JsonWriter w, string name, double? value)
    {
        // A non-finite figure is written as null, as everywhere else (FiniteJson); Utf8JsonWriter would throw on it.
        if (value is { } v && double.IsFinite(v)) w.WriteNumber(name, Math.Round(v, 6)); else w.WriteNull(name);
    }
}
