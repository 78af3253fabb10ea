using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using Afinado.Planner;
using Afinado.Training.Chat;
using Afinado.Training.Tokenization;

namespace Afinado.Cli.Commands;

/// <summary>
/// <c>afinado tokenize --model FOLDER TEXT</c>: the ids and pieces a model folder's own tokenizer.json gives a text, as
/// training will see it (the file's post-processor applied, e.g. Gemma's BOS). With <c>--chat MESSAGES.json</c> the
/// text is the folder's chat template rendered for those messages, tokenized as transformers'
/// <c>apply_chat_template(tokenize=True)</c> does: without adding special tokens, since the template writes them.
/// </summary>
public static class TokenizeCommand
{
    public const string Schema = "afinado.tokenize/1";

    public static Command Build()
    {
        var text = new Argument<string?>("text") { Description = "The text to tokenize (or give --chat).", Arity = ArgumentArity.ZeroOrOne };
        var model = new Option<string>("--model") { Description = "Model folder holding tokenizer.json and tokenizer_config.json.", Required = true };
        var chat = new Option<string?>("--chat") { Description = "A JSON file holding an array of {\"role\", \"content\"} messages: render the folder's chat template for them and tokenize the result." };
        var generationPrompt = new Option<bool>("--generation-prompt") { Description = "With --chat: end with the template's opening of the assistant's turn (add_generation_prompt)." };
        var json = new Option<bool>("--json") { Description = $"Machine-readable output (schema {Schema})." };
        var cmd = new Command("tokenize", "Tokenize a text, or a conversation rendered with the model's chat template, with a model folder's own tokenizer.json: ids and pieces.");
        cmd.Arguments.Add(text);
        foreach (var o in new Option[] { model, chat, generationPrompt, json }) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            string folder = parse.GetValue(model)!;
            string? plain = parse.GetValue(text), messages = parse.GetValue(chat);
            bool prompt = parse.GetValue(generationPrompt);
            if ((plain is null) == (messages is null))
                throw new InputError(messages is null ? "text" : "--chat", messages is null ? "no text to tokenize" : "both a text and --chat were given",
                    "Give either a TEXT argument or --chat MESSAGES.json.");
            if (prompt && messages is null)
                throw new InputError("--generation-prompt", "applies to a chat template only", "Give --chat MESSAGES.json with it, or leave it out.");
            var tokenizer = HfTokenizer.Load(folder);
            int[] ids;
            string input;
            if (messages is null)
            {
                input = plain!;
                ids = tokenizer.Encode(input);
            }
            else
            {
                var template = ChatTemplate.FromFolder(folder);
                using var doc = ChatTemplate.ReadMessages(messages, "--chat");
                input = template.Render(doc.RootElement, prompt, "--chat");
                ids = tokenizer.Encode(input, addSpecialTokens: false);
            }
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json)) WriteJson(output, tokenizer, input, ids);
            else
            {
                if (messages is not null)
                {
                    output.WriteLine($"chat template rendered (add_generation_prompt={(prompt ? "true" : "false")}):");
                    output.WriteLine(TerminalText.Escape(input, keepLayout: true));
                    output.WriteLine("--");
                }
                output.WriteLine($"{ids.Length} tokens (vocabulary {tokenizer.VocabSize:N0}, end of text {tokenizer.EndOfText} {Show.Plain(tokenizer.EndOfTextPiece)})");
                foreach (int id in ids) output.WriteLine($"{id,8}  {Show.Plain(tokenizer.Piece(id))}");
            }
            return CliApp.ExitOk;
        });
        return cmd;
    }

    private static void WriteJson(TextWriter output, HfTokenizer tokenizer, string text, int[] ids)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("schema", Schema);
            w.WriteNumber("vocab_size", tokenizer.VocabSize);
            w.WriteNumber("eos_id", tokenizer.EndOfText);
            w.WriteString("text", text);
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
