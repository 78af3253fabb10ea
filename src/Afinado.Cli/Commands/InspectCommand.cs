using System.CommandLine;
using System.Text.Json;
using Afinado.Planner.Architecture;
using Afinado.Planner.Safetensors;
using Spectre.Console;

namespace Afinado.Cli.Commands;

/// <summary>
/// <c>afinado inspect PATH</c>: what is in a safetensors checkpoint (headers only), and does it match its config.json?
/// Exit codes: 0 ok (and, when a config is found, every tensor matches it), 1 the checkpoint disagrees with its config,
/// 2 bad input (unreadable, truncated or hostile file).
/// </summary>
public static class InspectCommand
{
    public const string Schema = InspectJson.Schema;

    public static Command Build()
    {
        var path = new Argument<string>("path") { Description = "A .safetensors file, a model.safetensors.index.json, or a folder holding them." };
        var config = new Option<string?>("--config") { Description = "Config to check against (catalog id, config.json or folder). Default: config.json beside the checkpoint." };
        var tensors = new Option<bool>("--tensors") { Description = "List every tensor, not only the totals." };
        var json = new Option<bool>("--json") { Description = $"Machine-readable output (schema {Schema})." };
        var cmd = new Command("inspect", "Read safetensors headers: dtypes, shapes, totals, and a cross-check against config.json.");
        cmd.Arguments.Add(path);
        cmd.Options.Add(config);
        cmd.Options.Add(tensors);
        cmd.Options.Add(json);
        cmd.SetAction(parse =>
        {
            var result = CheckpointInspection.Run(parse.GetValue(path)!, parse.GetValue(config));
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
                InspectJson.Write(output, result.Checkpoint, result.ConfigSource, result.Architecture, result.Comparison, result.ConfigNotCompared);
            else
                WriteText(output, result.Checkpoint, result.ConfigSource, result.Architecture, result.Comparison, parse.GetValue(tensors), result.ConfigNotCompared);
            return result.Consistent ? CliApp.ExitOk : CliApp.ExitFailure;
        });
        return cmd;
    }

    private static void WriteText(TextWriter output, SafetensorsCheckpoint c, string? configSource, ModelArchitecture? arch, CheckpointComparison? cmp, bool listTensors,
        string? configNotCompared)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(output),
        });
        console.Profile.Width = 120;
        console.WriteLine($"{Show.Plain(c.Path)}: {c.Files.Count} file(s), {c.Tensors.Count():N0} tensors, {c.TotalElements:N0} elements, {c.TotalBytes:N0} bytes of data");

        var dtypes = new Table().AddColumns("dtype", "tensors", "elements", "bytes");
        foreach (var d in c.ByDtype)
            dtypes.AddRow(Show.Markup(d.Dtype), d.Tensors.ToString("N0"), d.Elements.ToString("N0"), d.Bytes.ToString("N0"));
        dtypes.AddRow("total", c.Tensors.Count().ToString("N0"), c.TotalElements.ToString("N0"), c.TotalBytes.ToString("N0"));
        console.Write(dtypes);

        if (listTensors)
        {
            var table = new Table().AddColumns("tensor", "dtype", "shape", "bytes", "file");
            foreach (var t in c.Tensors)
                table.AddRow(Show.Markup(t.Name), Show.Markup(t.Dtype), $"[[{string.Join(", ", t.Shape)}]]", t.Bytes.ToString("N0"), Show.Markup(Path.GetFileName(t.File)));
            console.Write(table);
        }

        if (configNotCompared is not null)
        {
            console.WriteLine($"Config {Show.Plain(configSource)} not cross-checked: {Show.Plain(configNotCompared)}.");
            return;
        }
        if (arch is null || cmp is null)
        {
            console.WriteLine(c.IsLoneShard
                ? $"This file is one shard of {SafetensorsCheckpoint.IndexFileName}: inspect the folder to cross-check against config.json."
                : "No config.json beside the checkpoint: shapes not cross-checked (use --config).");
            return;
        }
        console.WriteLine($"Config {Show.Plain(configSource)}: {Show.Plain(arch.ModelType)}, {arch.ParameterCount:N0} parameters in {arch.Tensors.Count:N0} tensors; {cmp.Matched:N0} matched.");
        if (cmp.StrippedPrefix is not null) console.WriteLine($"  Names are saved without the base-model prefix \"{Show.Plain(cmp.StrippedPrefix)}\" (a base-model export); matched after adding it.");
        if (cmp.TiedCopies.Count > 0) console.WriteLine($"  Stored copy of the tied head (shares the embedding): {string.Join(", ", cmp.TiedCopies.Select(Show.Plain))}");
        if (cmp.IgnoredBuffers.Count > 0) console.WriteLine($"  Ignored {cmp.IgnoredBuffers.Count} non-parameter buffers (attention masks, RoPE inv_freq), e.g. {Show.Plain(cmp.IgnoredBuffers[0])}");
        List(console, "Missing from the checkpoint", cmp.Missing);
        List(console, "Not in the config's architecture", cmp.Unexpected);
        List(console, "Stored twice under different names (a loader would keep either one)",
            cmp.Ambiguous.Select(a => $"{a.Name}: {a.First} and {a.Second}").ToList());
        List(console, "Wrong shape", cmp.WrongShape.Select(w => $"{w.Name}: config [{string.Join(", ", w.Expected)}], checkpoint [{string.Join(", ", w.Actual)}]").ToList());
        console.WriteLine(cmp.Matches ? "OK: every tensor matches the config." : "MISMATCH: the checkpoint does not match its config.");
    }

    private static void List(IAnsiConsole console, string title, IReadOnlyList<string> items)
    {
        if (items.Count == 0) return;
        console.WriteLine($"  {title} ({items.Count}):");
        foreach (var i in items.Take(20)) console.WriteLine($"    {Show.Plain(i)}");
        if (items.Count > 20) console.WriteLine($"    … and {items.Count - 20} more (see --json)");
    }
}
