using System.Text.Json;
using Afinado.Planner.Architecture;

namespace Afinado.Planner.Safetensors;

/// <summary>The <c>afinado.inspect/1</c> JSON contract (<c>afinado inspect --json</c>): field names are stable; add, never rename.</summary>
public static class InspectJson
{
    public const string Schema = "afinado.inspect/1";

    /// <param name="configNotCompared">Why the config beside the checkpoint was skipped (<c>config_not_compared</c>).</param>
    public static void Write(TextWriter output, SafetensorsCheckpoint c, string? configSource, ModelArchitecture? arch, CheckpointComparison? cmp,
        string? configNotCompared = null)
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
            if (configNotCompared is not null)
            {
                w.WriteNull("config");
                w.WriteString("config_not_compared", configNotCompared);
            }
            else if (arch is null || cmp is null)
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
                w.WriteStartArray("ambiguous");
                foreach (var a in cmp.Ambiguous)
                {
                    w.WriteStartObject();
                    w.WriteString("name", a.Name);
                    Strings(w, "stored_as", [a.First, a.Second]);
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
