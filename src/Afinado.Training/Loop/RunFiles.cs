using System.Text.Json;
using Afinado.Planner;

namespace Afinado.Training.Loop;

/// <summary>Reads the JSON files of an existing run folder for <c>--resume</c>: a missing or damaged one is bad input naming the file, never a crash.</summary>
internal static class RunFiles
{
    public static T Read<T>(string path, Func<string, T?> parse) where T : class
    {
        if (!File.Exists(path))
            throw new InputError("--resume", $"{path} is missing", "Point --resume at the --out folder of an earlier afinado train run, or restore the file.");
        try { return parse(File.ReadAllText(path)) ?? throw new JsonException("the file holds null"); }
        catch (JsonException e)
        {
            throw new InputError("--resume", $"{path} is damaged ({e.Message})", "Restore the file from a backup, or start a new run with --out.", e);
        }
    }

    public static T Read<T>(string path) where T : class => Read(path, text => JsonSerializer.Deserialize<T>(text, TrainConfig.Json));
}
