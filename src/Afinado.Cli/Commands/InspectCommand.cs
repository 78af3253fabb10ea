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
    public const string Schema = "afinado.inspect/1";

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
                WriteJson(output, result.Checkpoint, result.ConfigSource, result.Architecture, result.Comparison);
            else
                WriteText(output, result.Checkpoint, result.ConfigSource, result.Architecture, result.Comparison, parse.GetValue(tensors));
            return result.Consistent ? CliApp.ExitOk : CliApp.ExitFailure;
        });
        return cmd;
    }

    private static void WriteText(TextWriter output, SafetensorsCheckpoint c, string? configSource, ModelArchitecture? arch, CheckpointComparison? cmp, bool listTensors)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(output),
        });
        console.Profile.Width = 120;
        console.WriteLine($"{c.Path}: {c.Files.Count} file(s), {c.Tensors.Count():N0} tensors, {c.TotalElements:N0} elements, {c.TotalBytes:N0} bytes of data");

        var dtypes = new Table().AddColumns("dtype", "tensors", "elements", "bytes");
        foreach (var d in c.ByDtype)
            dtypes.AddRow(d.Dtype, d.Tensors.ToString("N0"), d.Elements.ToString("N0"), d.Bytes.ToString("N0"));
        dtypes.AddRow("total", c.Tensors.Count().ToString("N0"), c.TotalElements.ToString("N0"), c.TotalBytes.ToString("N0"));
        console.Write(dtypes);

        if (listTensors)
        {
            var table = new Table().AddColumns("tensor", "dtype", "shape", "bytes", "file");
            foreach (var t in c.Tensors)
                table.AddRow(Markup.Escape(t.Name), t.Dtype, $"[[{string.Join(", ", t.Shape)}]]", t.Bytes.ToString("N0"), Markup.Escape(Path.GetFileName(t.File)));
            console.Write(table);
        }

        if (arch is null || cmp is null)
        {
            console.WriteLine(c.IsLoneShard
                ? $"This file is one shard of {SafetensorsCheckpoint.IndexFileName}: inspect the folder to cross-check against config.json."
                : "No config.json beside the checkpoint: shapes not cross-checked (use --config).");
            return;
        }
        console.WriteLine($"Config {configSource}: {arch.ModelType}, {arch.ParameterCount:N0} parameters in {arch.Tensors.Count:N0} tensors; {cmp.Matched:N0} matched.");
        if (cmp.StrippedPrefix is not null) console.WriteLine($"  Names are saved without the base-model prefix \"{cmp.StrippedPrefix}\" (a base-model export); matched after adding it.");
        if (cmp.TiedCopies.Count > 0) console.WriteLine($"  Stored copy of the tied head (shares the embedding): {string.Join(", ", cmp.TiedCopies)}");
        if (cmp.IgnoredBuffers.Count > 0) console.WriteLine($"  Ignored {cmp.IgnoredBuffers.Count} non-parameter buffers (attention masks, RoPE inv_freq), e.g. {cmp.IgnoredBuffers[0]}");
        List(console, "Missing from the checkpoint", cmp.Missing);
        List(console, "Not in the config's architecture", cmp.Unexpected);
        List(console, "Wrong shape", cmp.WrongShape.Select(w => $"{w.Name}: config [{string.Join(", ", w.Expected)}], checkpoint [{string.Join(", ", w.Actual)}]").ToList());
        console.WriteLine(cmp.Matches ? "OK: every tensor matches the config." : "MISMATCH: the checkpoint does not match its config.");
    }

    private static void List(IAnsiConsole console, string title, IReadOnlyList<string> items)
    {
        if (items.Count == 0) return;
        console.WriteLine($"  {title} ({items.Count}):");
        foreach (var i in items.Take(20)) console.WriteLine($"    {i}");
        if (items.Count > 20) console.WriteLine($"    … and {items.Count - 20} more (see --json)");
    }

    private static void WriteJson(TextWriter output, SafetensorsCheckpoint c, string? configSource, ModelArchitecture? arch, CheckpointComparison? cmp)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("schema", Schema);
            w.WriteString("path", c.Path);
            w.WriteNumber("tensor_count", c.Tensors.Count());
            w.WriteNumber("elements", c.TotalElements);
            w.WriteNumber("bytes", c.TotalBytes);
            w.WriteStartArray("files");
            foreach (var f in c.Files)
            {
                w.WriteStartObject();
                w.WriteString("path", f.Path);
                w.WriteNumber("file_bytes", f.FileBytes);
                w.WriteNumber("header_bytes", f.HeaderBytes);
                w.WriteNumber("tensors", f.Tensors.Count);
                w.WriteStartObject("metadata");
                foreach (var (k, v) in f.Metadata) w.WriteString(k, v);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("dtypes");
            foreach (var d in c.ByDtype)
            {
                w.WriteStartObject();
                w.WriteString("dtype", d.Dtype);
                w.WriteNumber("tensors", d.Tensors);
                w.WriteNumber("elements", d.Elements);
                w.WriteNumber("bytes", d.Bytes);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("tensors");
            foreach (var t in c.Tensors)
            {
                w.WriteStartObject();
                w.WriteString("name", t.Name);
                w.WriteString("dtype", t.Dtype);
                WriteShape(w, "shape", t.Shape);
                w.WriteNumber("bytes", t.Bytes);
                w.WriteString("file", Path.GetFileName(t.File));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (arch is null || cmp is null)
                w.WriteNull("config");
            else
            {
                w.WriteStartObject("config");
                w.WriteString("source", configSource);
                w.WriteString("model_type", arch.ModelType);
                w.WriteNumber("parameters", arch.ParameterCount);
                w.WriteBoolean("matches", cmp.Matches);
                w.WriteNumber("matched", cmp.Matched);
                Strings(w, "missing", cmp.Missing);
                Strings(w, "unexpected", cmp.Unexpected);
                w.WriteStartArray("wrong_shape");
                foreach (var m in cmp.WrongShape)
                {
                    w.WriteStartObject();
                    w.WriteString("name", m.Name);
                    WriteShape(w, "expected", m.Expected);
                    WriteShape(w, "actual", m.Actual);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                Strings(w, "ignored_buffers", cmp.IgnoredBuffers);
                Strings(w, "tied_copies", cmp.TiedCopies);
                if (cmp.StrippedPrefix is null) w.WriteNull("stripped_prefix"); else w.WriteString("stripped_prefix", cmp.StrippedPrefix);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        output.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static void WriteShape(Utf8JsonWriter w, string name, long[] shape)
    {
        w.WriteStartArray(name);
        foreach (var d in shape) w.WriteNumberValue(d);
        w.WriteEndArray();
    }

    private static void Strings(Utf8JsonWriter w, string name, IEnumerable<string> items)
    {
        w.WriteStartArray(name);
        foreach (var i in items) w.WriteStringValue(i);
        w.WriteEndArray();
    }
}
