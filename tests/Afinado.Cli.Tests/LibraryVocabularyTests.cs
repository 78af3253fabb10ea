using System.Text.RegularExpressions;
using Afinado.Planner.Validation;

namespace Afinado.Cli.Tests;

/// <summary>
/// The libraries speak of their own parameters (<see cref="InputParameter"/>) and leave flags to the CLI: a string
/// literal that starts with a flag (<c>"--precision"</c>, <c>$"--seq {n}"</c>) in Planner, Training or Evaluation is
/// an error or a hint that would name a flag the library does not own. Only the files below may hold such literals,
/// each for a reason.
/// </summary>
public partial class LibraryVocabularyTests
{
    private static readonly Dictionary<string, string> Allowed = new()
    {
        ["src/Afinado.Planner/Export/TorchrunCommandWriter.cs"] = "writes a launch script: torchrun's and the transformers Trainer's own flags",
        ["src/Afinado.Training/Runs/RunManifest.cs"] = "runs git (rev-parse --show-toplevel, describe --always) to pin the source",
    };

    private static string RepoRoot => Path.GetFullPath(Path.Combine(GroundTruth.FindDirectory(null), "..", ".."));

    // A literal's opening quote (plain, interpolated or verbatim) followed by two dashes and a letter.
    [GeneratedRegex("""(?<![\\"\w])(?:\$@|@\$|\$|@)?"--[A-Za-z]""")]
    private static partial Regex FlagLiteral();

    [Theory]
    [InlineData("src/Afinado.Planner")]
    [InlineData("src/Afinado.Training")]
    [InlineData("src/Afinado.Evaluation")]
    public void Library_sources_hold_no_cli_flag_literals(string library)
    {
        var root = RepoRoot;
        var hits = new List<string>();
        var files = Directory.EnumerateFiles(Path.Combine(root, library), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToList();
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            string relative = Path.GetRelativePath(root, file).Replace(Path.DirectorySeparatorChar, '/');
            if (Allowed.ContainsKey(relative)) continue;
            int number = 0;
            foreach (var line in File.ReadLines(file))
            {
                number++;
                if (FlagLiteral().IsMatch(CodeOf(line))) hits.Add($"{relative}:{number}: {line.Trim()}");
            }
        }
        Assert.Empty(hits);
    }

    [Fact]
    public void The_allowed_files_still_exist_and_hold_what_they_are_allowed_for()
    {
        foreach (var file in Allowed.Keys)
            Assert.Matches(FlagLiteral(), File.ReadAllText(Path.Combine(RepoRoot, file)));
    }

    [Theory]
    [InlineData("throw new InputError(\"--batch\", \"x\", \"y\");", true)]
    [InlineData("var s = $\"--seq {n}\";", true)]
    [InlineData("// a comment on \"--batch\"", false)]
    [InlineData("x.Replace(\"--\", \"/\")", false)]
    [InlineData("\"Use a shorter --seq.\"", false)]
    public void The_check_sees_flag_literals_and_not_comments(string line, bool flagged) =>
        Assert.Equal(flagged, FlagLiteral().IsMatch(CodeOf(line)));

    /// <summary>The line without a trailing // comment (a // inside a string literal is kept: it needs a quote before it).</summary>
    private static string CodeOf(string line)
    {
        int comment = line.IndexOf("//", StringComparison.Ordinal);
        return comment >= 0 && line[..comment].Count(c => c == '"') % 2 == 0 ? line[..comment] : line;
    }
}
