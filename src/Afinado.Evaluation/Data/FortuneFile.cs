using System.Text;
using Afinado.Planner;
using Afinado.Planner.Inputs;

namespace Afinado.Evaluation.Data;

/// <summary>
/// Fortune files (Debian <c>fortunes</c>, <c>fortunes-es</c>): items separated by lines holding only <c>%</c>.
/// A path may be one file or a folder (every <c>*.fortunes</c> file, or every extension-less file, in it).
/// Overstrike sequences (<c>X\bX</c>, used for bold in old fortunes) are reduced to the plain character.
/// </summary>
public static class FortuneFile
{
    public static IReadOnlyList<string> Files(string path)
    {
        if (File.Exists(path)) return [path];
        if (!Directory.Exists(path))
            throw new InputError("text", $"'{path}' does not exist", "Give a fortune file or folder, e.g. /usr/share/games/fortunes/computers (apt-get install fortunes fortunes-es).");
        var files = Directory.GetFiles(path, "*.fortunes");
        if (files.Length == 0) files = Directory.GetFiles(path).Where(f => Path.GetExtension(f).Length == 0).ToArray();
        if (files.Length == 0) throw new InputError("text", $"'{path}' holds no fortune files", "Point at a folder of *.fortunes files or at one file.");
        Array.Sort(files, StringComparer.Ordinal);
        return files;
    }

    public static IReadOnlyList<string> Read(string path)
    {
        var items = new List<string>();
        foreach (var file in Files(path))
        {
            var current = new StringBuilder();
            // A task file's "text" path: any file a user names, so regular files only, strict UTF-8, bounded lines.
            foreach (var (_, raw) in InputFile.ReadLines(file, InputKind.Data))
            {
                if (raw.Trim() == "%")
                {
                    Flush(current, items);
                    continue;
                }
                current.Append(StripOverstrike(raw)).Append('\n');
            }
            Flush(current, items);
        }
        return items;
    }

    private static void Flush(StringBuilder current, List<string> items)
    {
        var text = current.ToString().Trim();
        if (text.Length > 0) items.Add(text);
        current.Clear();
    }

    private static string StripOverstrike(string line)
    {
        if (!line.Contains('\b')) return line;
        var sb = new StringBuilder();
        foreach (var ch in line)
        {
            if (ch == '\b') { if (sb.Length > 0) sb.Length--; }
            else sb.Append(ch);
        }
        return sb.ToString();
    }
}
