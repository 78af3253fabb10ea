using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using Afinado.Training.Tokenization;

namespace Afinado.Cli.Commands;

/// <summary>
/// <c>afinado tokenize --model FOLDER TEXT</c>: the ids and pieces a model folder's own tokenizer.json gives a text, as
/// training will see it (the file's post-processor applied, e.g. Gemma's BOS).
/// </summary>
public static class TokenizeCommand
{
    public const string Schema = "afinado.tokenize/1";

    public static Command Build()
    {
        var text = new Argument<string>("text") { Description = "The text to tokenize." };
        var model = new Option<string>("--model") { Description = "Model folder holding tokenizer.json and tokenizer_config.json.", Required = true };
        var json = new Option<bool>("--json") { Description = $"Machine-readable output (schema {Schema})." };
        var cmd = new Command("tokenize", "Tokenize a text with a model folder's own tokenizer.json: ids and pieces.");
        cmd.Arguments.Add(text);
        cmd.Options.Add(model);
        cmd.Options.Add(json);
        cmd.SetAction(parse =>
        {
            var tokenizer = HfTokenizer.Load(parse.GetValue(model)!);
            var ids = tokenizer.Encode(parse.GetValue(text)!);
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json)) WriteJson(output, tokenizer, ids);
            else
            {
                output.WriteLine($"{ids.Length} tokens (vocabulary {tokenizer.VocabSize:N0}, end of text {tokenizer.EndOfText} {Show.Plain(tokenizer.EndOfTextPiece)})");
                foreach (int id in ids) output.WriteLine($"{id,8}  {Show.Plain(tokenizer.Piece(id))}");
            }
            return CliApp.ExitOk;
        });
        return cmd;
    }

    private static void WriteJson(TextWriter output, HfTokenizer tokenizer, int[] ids)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("schema", Schema);
            w.WriteNumber("vocab_size", tokenizer.VocabSize);
            w.WriteNumber("eos_id", tokenizer.EndOfText);
            w.WriteStartArray("ids");
            foreach (int id in ids) w.WriteNumberValue(id);
            w.WriteEndArray();
            w.WriteStartArray("pieces");
            foreach (int id in ids) w.WriteStringValue(tokenizer.Piece(id));
            w.WriteEndArray();
            w.WriteEndObject();
        }
        output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }
}
