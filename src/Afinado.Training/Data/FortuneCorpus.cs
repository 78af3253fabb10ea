using System.Text;
using Afinado.Planner;
using Afinado.Planner.Inputs;
using Afinado.Training.Loop;

namespace Afinado.Training.Data;

public enum FortuneLanguage { English, Spanish }

/// <summary>
/// The Debian fortune databases as documents: English from the <c>fortunes</c> package (one category per file in
/// /usr/share/games/fortunes, e.g. <c>science</c>, <c>literature</c>) and Spanish from <c>fortunes-es</c>
/// (/usr/share/games/fortunes/es/*.fortunes). Fortunes are separated by lines holding only <c>%</c>.
/// Offensive collections (<c>off/</c>) are never read.
/// </summary>
public static class FortuneCorpus
{
    public const string DefaultRoot = "/usr/share/games/fortunes";

    /// <summary>All documents of a language, optionally one category only, in a stable order (category, then file order).</summary>
    public static IReadOnlyList<TextDocument> Load(FortuneLanguage language, string? category = null, string root = DefaultRoot)
    {
        var files = Files(language, root);
        if (category is not null)
        {
            files = files.Where(f => CategoryOf(f, language) == category).ToList();
            if (files.Count == 0)
                throw new InputError(TrainParameters.Category, $"\"{category}\" is not a {language} fortune category",
                    $"Categories: {string.Join(", ", Categories(language, root))}.");
        }
        var docs = new List<TextDocument>();
        foreach (var file in files)
        {
            var cat = CategoryOf(file, language);
            // Installed by a package, but a path like any other: read it as an input (regular file, UTF-8, bounded lines).
            foreach (var text in ParseFortunes(InputFile.ReadLines(file, InputKind.Data).Select(l => l.Text)))
                docs.Add(new TextDocument(text, language == FortuneLanguage.English ? "en" : "es", cat, file));
        }
        return docs;
    }

    /// <summary>Documents of one split (deterministic by content hash, see <see cref="SplitAssigner"/>).</summary>
    public static IReadOnlyList<TextDocument> Load(FortuneLanguage language, DataSplit split, string? category = null, string root = DefaultRoot) =>
        SplitAssigner.Select(Load(language, category, root), split);

    public static IReadOnlyList<string> Categories(FortuneLanguage language, string root = DefaultRoot) =>
        Files(language, root).Select(f => CategoryOf(f, language)).Distinct().Order(StringComparer.Ordinal).ToList();

    /// <summary>The data files read for a language (also what the run manifest hashes).</summary>
    public static IReadOnlyList<string> Files(FortuneLanguage language, string root = DefaultRoot)
    {
        string dir = language == FortuneLanguage.English ? root : Path.Combine(root, "es");
        string package = language == FortuneLanguage.English ? "fortunes" : "fortunes-es";
        IEnumerable<string> files = Directory.Exists(dir) ? Directory.EnumerateFiles(dir) : [];
        files = language == FortuneLanguage.English
            ? files.Where(f => Path.GetExtension(f) == "" && File.Exists(f + ".dat"))
            : files.Where(f => f.EndsWith(".fortunes", StringComparison.Ordinal));
        var list = files.Order(StringComparer.Ordinal).ToList();
        if (list.Count == 0)
            throw new InputError($"{language} fortunes", $"no fortune files in {dir}: the Debian package {package} is not installed",
                $"Install it: sudo apt-get install -y {package}");
        return list;
    }

    private static string CategoryOf(string file, FortuneLanguage language) =>
        language == FortuneLanguage.English ? Path.GetFileName(file) : Path.GetFileNameWithoutExtension(file);

    /// <summary>
    /// The fortunes of a file or folder a user names (an evaluation task's <c>text</c>): one file, or a folder's
    /// <c>*.fortunes</c> files, else its extension-less files, in ordinal order; each read as an input (regular files,
    /// strict UTF-8, bounded lines) and split by <see cref="ParseFortunes"/>.
    /// </summary>
    public static IReadOnlyList<string> ReadItems(string path, InputText field) =>
        FilesAt(path, field).SelectMany(f => ParseFortunes(InputFile.ReadLines(f, InputKind.Data).Select(l => l.Text))).ToList();

    /// <summary>The files <see cref="ReadItems"/> reads for <paramref name="path"/> (also what a run manifest hashes).</summary>
    public static IReadOnlyList<string> FilesAt(string path, InputText field)
    {
        if (File.Exists(path)) return [path];
        if (!Directory.Exists(path))
            throw new InputError(field, $"'{path}' does not exist", "Give a fortune file or folder, e.g. /usr/share/games/fortunes/computers (apt-get install fortunes fortunes-es).");
        var files = Directory.GetFiles(path, "*.fortunes");
        if (files.Length == 0) files = Directory.GetFiles(path).Where(f => Path.GetExtension(f).Length == 0).ToArray();
        if (files.Length == 0) throw new InputError(field, $"'{path}' holds no fortune files", "Point at a folder of *.fortunes files or at one file.");
        Array.Sort(files, StringComparer.Ordinal);
        return files;
    }

    /// <summary>
    /// Splits a strfile source's lines on lines that are exactly <c>%</c> (strfile's delimiter rule, fortune-mod
    /// strfile.c: the delimiter character followed by the line's end; a <c>"% "</c> line is text, as <c>fortune</c>
    /// shows it); trims trailing whitespace, drops empties. Every other byte is kept as the file has it (leading
    /// indentation, and the overstrike sequences <c>X\bX</c> of old fortunes): the training corpus and the evaluation
    /// tasks read the same items.
    /// </summary>
    public static IEnumerable<string> ParseFortunes(IEnumerable<string> lines)
    {
        var sb = new StringBuilder();
        foreach (var raw in lines)
        {
            var line = raw.TrimEnd('\r');
            if (line == "%")
            {
                var text = sb.ToString().TrimEnd();
                if (text.Length > 0) yield return text;
                sb.Clear();
            }
            else sb.Append(line).Append('\n');
        }
        var last = sb.ToString().TrimEnd();
        if (last.Length > 0) yield return last;
    }
}
