using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using Afinado.Training.Generation;
using Afinado.Training.Models;
using Afinado.Training.Tokenization;

namespace Afinado.Cli.Commands;

/// <summary>
/// <c>afinado generate --model FOLDER PROMPT</c>: text from a Hugging Face folder (a base model, or a run's exported
/// <c>model/</c>), with a KV cache, greedy or sampled, streamed to the terminal; <c>--json</c> gives the prompt ids, the
/// generated ids, text and each token's log-probability.
/// </summary>
public static class GenerateCommand
{
    public const string Schema = "afinado.generate/1";

    public static Command Build()
    {
        var prompt = new Argument<string>("prompt") { Description = "The text to continue." };
        var model = new Option<string>("--model") { Description = "Model folder: config.json, model.safetensors (or shards), and its tokenizer.json.", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "model (the folder's tokenizer.json; the default when it has one), byte or gpt2." };
        var sampling = new SamplingFlags(defaultMaxNewTokens: 64);
        var json = new Option<bool>("--json") { Description = $"Machine-readable output (schema {Schema})." };
        var cmd = new Command("generate", "Generate text from a model folder (KV cache; greedy, temperature, top-k, top-p; seeded).");
        cmd.Arguments.Add(prompt);
        foreach (var o in new Option[] { model, tokenizer, json }.Concat(sampling.All)) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            string folder = parse.GetValue(model)!;
            var options = sampling.Read(parse);
            var tok = TextTokenizers.Create(parse.GetValue(tokenizer) ?? (HfTokenizer.In(folder) ? "model" : "byte"), folder);
            using var lm = PretrainedModel.Load(folder);
            var output = parse.InvocationConfiguration.Output;
            bool asJson = parse.GetValue(json);
            if (!asJson) output.Write(TerminalText.Escape(parse.GetValue(prompt), keepLayout: true));
            var result = TextGenerator.Run(lm, tok, parse.GetValue(prompt)!, options,
                asJson ? null : t => { if (t.Id != tok.EndOfText) { output.Write(TerminalText.Escape(t.Text, keepLayout: true)); output.Flush(); } });
            if (asJson) WriteJson(output, result);
            else output.WriteLine();
            return CliApp.ExitOk;
        });
        return cmd;
    }

    private static void WriteJson(TextWriter output, Generation g) => GenerationJson.Print(output, w =>
    {
        w.WriteStartObject();
        w.WriteString("schema", Schema);
        GenerationJson.WriteFields(w, g);
        w.WriteEndObject();
    });
}

/// <summary>The fields of one generation, as <c>generate --json</c> and each turn of <c>chat --json</c> write them.</summary>
internal static class GenerationJson
{
    public static void WriteFields(Utf8JsonWriter w, Generation g)
    {
        w.WriteStartArray("prompt_ids");
        foreach (int id in g.PromptIds) w.WriteNumberValue(id);
        w.WriteEndArray();
        w.WriteStartArray("ids");
        foreach (var t in g.Tokens) w.WriteNumberValue(t.Id);
        w.WriteEndArray();
        w.WriteString("text", g.Text);
        w.WriteString("stop_reason", g.StopReason);
        w.WriteStartArray("tokens");
        foreach (var t in g.Tokens)
        {
            w.WriteStartObject();
            w.WriteNumber("id", t.Id);
            w.WriteString("text", t.Text);
            w.WriteNumber("logprob", t.LogProbability);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>Writes one indented JSON document (non-ASCII text kept readable) and a newline.</summary>
    public static void Print(TextWriter output, Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            write(w);
        output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }
}
