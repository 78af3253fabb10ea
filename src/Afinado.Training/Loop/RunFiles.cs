using System.Text.Json;
using Afinado.Planner;
using Afinado.Planner.Inputs;

namespace Afinado.Training.Loop;

/// <summary>Reads the JSON files of an existing run folder for <c>--resume</c>: a missing or damaged one is bad input naming the file, never a crash.</summary>
internal static class RunFiles
{
    public static T Read<T>(string path, Func<string, T?> parse) where T : class
    {
        if (!File.Exists(path))
            throw new InputError(RunParameters.Resume, $"{path} is missing", $"Point {RunParameters.Resume} at the {RunParameters.Out} folder of an earlier afinado train run, or restore the file.");
        // Regular file, bounded, strict UTF-8 first; then the parser (a lone surrogate surfaces as InvalidOperationException).
        string text = InputFile.ReadAllText(path, InputKind.RunFile, RunParameters.Resume);
        try { return parse(text) ?? throw new JsonException("the file holds null"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or NotSupportedException)
        {
            throw new InputError(RunParameters.Resume, $"{path} is damaged ({e.Message})", $"Restore the file from a backup, or start a new run with {RunParameters.Out}.", e);
        }
    }

    public static T Read<T>(string path) where T : class => Read(path, text => JsonSerializer.Deserialize<T>(text, TrainConfig.Json));
}
