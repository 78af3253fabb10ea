using System.Text;

namespace Afinado.Planner.Validation;

/// <summary>A small RFC 4180 reader (quoted fields, doubled quotes, commas and newlines inside quotes).</summary>
public static class Csv
{
    public static List<Dictionary<string, string>> Read(string path) => ReadText(File.ReadAllText(path), path);

    /// <summary>
    /// Rows of CSV text keyed by the header's column names (case-insensitive). <paramref name="path"/> only names the
    /// source in errors, so text that was never a file reads exactly as <see cref="Read"/> would read it from one.
    /// </summary>
    public static List<Dictionary<string, string>> ReadText(string text, string path)
    {
        var records = Parse(text);
        if (records.Count == 0)
            throw new InputError(path, "is empty", "A ground-truth CSV needs a header line and rows.");
        var header = records[0];
        var rows = new List<Dictionary<string, string>>();
        for (int i = 1; i < records.Count; i++)
        {
            var r = records[i];
            if (r.Count == 1 && r[0].Length == 0) continue;
            if (r.Count != header.Count)
                throw new InputError($"{Path.GetFileName(path)} line {i + 1}", $"has {r.Count} fields, the header has {header.Count}", "Quote fields that contain commas.");
            var row = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            for (int j = 0; j < header.Count; j++) row[header[j]] = r[j];
            rows.Add(row);
        }
        return rows;
    }

    private static List<List<string>> Parse(string text)
    {
        var records = new List<List<string>>();
        var record = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < text.Length; i++)
        {
            char ch = text[i];
            if (quoted)
            {
                if (ch == '"' && i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                else if (ch == '"') quoted = false;
                else field.Append(ch);
            }
            else if (ch == '"') quoted = true;
            else if (ch == ',') { record.Add(field.ToString()); field.Clear(); }
            else if (ch == '\n' || ch == '\r')
            {
                if (ch == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
                record.Add(field.ToString()); field.Clear();
                records.Add(record); record = [];
            }
            else field.Append(ch);
        }
        if (field.Length > 0 || record.Count > 0) { record.Add(field.ToString()); records.Add(record); }
        return records;
    }
}
