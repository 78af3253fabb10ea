using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Afinado.Planner;
using Afinado.Planner.Inputs;
using Afinado.Training.Chat;
using Afinado.Training.Generation;
using Afinado.Training.Models;
using Afinado.Training.Tokenization;

namespace Afinado.Cli.Commands;

/// <summary>
/// <c>afinado chat --model FOLDER</c>: a conversation with a model folder (a chat model, or a run's exported
/// <c>model/</c> of one): each user line is added to the messages, the folder's chat template renders them with the
/// generation prompt, and the reply is generated (KV cache, as <c>generate</c>) until an end-of-turn token, streamed.
/// User turns come from the terminal, or from a file (<c>--from</c>, one per line). <c>--json</c> prints the conversation
/// instead (schema <c>afinado.chat/1</c>): each turn's user text and its reply as <c>generate --json</c> gives one.
/// </summary>
public static class ChatCommand
{
    public const string Schema = "afinado.chat/1";

    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "Model folder: config.json, weights, tokenizer.json and a tokenizer_config.json with a chat_template.", Required = true };
        var system = new Option<string?>("--system") { Description = "A system message to start the conversation with." };
        var from = new Option<string?>("--from") { Description = "Read the user turns from this file (one per line) instead of the terminal." };
        var sampling = new SamplingFlags(defaultMaxNewTokens: 256);
        var json = new Option<bool>("--json") { Description = $"Print the whole conversation as JSON (schema {Schema}) at its end instead of streaming the replies." };
        var cmd = new Command("chat", "Chat with a model folder through its chat template (an empty line or end of input ends the conversation).");
        foreach (var o in new Option[] { model, system, from, json }.Concat(sampling.All)) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            string folder = parse.GetValue(model)!;
            var template = ChatTemplate.FromFolder(folder);
            var tokenizer = HfTokenizer.Load(folder);
            var options = sampling.Read(parse, StopIds(folder, tokenizer));
            using var lm = PretrainedModel.Load(folder);
            var output = parse.InvocationConfiguration.Output;
            var turns = parse.GetValue(from) is { } file ? InputFile.ReadLines(file, InputKind.Data, "--from").Select(l => l.Text) : ReadTerminal();
            bool asJson = parse.GetValue(json);
            var replies = new List<(string User, Generation Reply)>();
            var messages = new JsonArray();
            if (parse.GetValue(system) is { } s) messages.Add(new JsonObject { ["role"] = "system", ["content"] = s });
            foreach (var turn in turns)
            {
                if (turn.Trim().Length == 0) break;
                messages.Add(new JsonObject { ["role"] = "user", ["content"] = turn });
                using var doc = JsonDocument.Parse(messages.ToJsonString());
                string prompt = template.Render(doc.RootElement, addGenerationPrompt: true, "--from");
                var reply = TextGenerator.Run(lm, tokenizer, tokenizer.Encode(prompt, addSpecialTokens: false), options with { Seed = options.Seed + messages.Count },
                    asJson ? null : t => { if (!options.StopIds.Contains(t.Id) && t.Id != tokenizer.EndOfText) { output.Write(TerminalText.Escape(t.Text, keepLayout: true)); output.Flush(); } });
                if (asJson) replies.Add((turn, reply));
                else output.WriteLine();
                messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = reply.Text });
            }
            if (asJson) GenerationJson.Print(output, w =>
            {
                w.WriteStartObject();
                w.WriteString("schema", Schema);
                w.WriteStartArray("turns");
                foreach (var (user, reply) in replies)
                {
                    w.WriteStartObject();
                    w.WriteString("user", user);
                    GenerationJson.WriteFields(w, reply);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            });
            return CliApp.ExitOk;
        });
        return cmd;
    }

    private static IEnumerable<string> ReadTerminal()
    {
        while (Console.ReadLine() is { } line) yield return line;
    }

    /// <summary>The end-of-turn ids: the tokenizer's eos_token and generation_config.json's eos_token_id (a number or a
    /// list: Llama 3 Instruct ends turns with &lt;|eot_id|&gt; besides &lt;|end_of_text|&gt;).</summary>
    private static IReadOnlyCollection<int> StopIds(string folder, HfTokenizer tokenizer)
    {
        var ids = new HashSet<int> { tokenizer.EndOfText };
        string path = Path.Combine(folder, "generation_config.json");
        if (!File.Exists(path)) return ids;
        using var doc = InputJson.Parse(InputFile.ReadAllBytes(path, InputKind.Config, "--model"), InputFile.Describe(path), InputKind.Config, lenient: true);
        if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("eos_token_id", out var eos))
        {
            if (eos.ValueKind == JsonValueKind.Number && eos.TryGetInt32(out int one)) ids.Add(one);
            if (eos.ValueKind == JsonValueKind.Array)
                foreach (var e in eos.EnumerateArray())
                    if (e.TryGetInt32(out int id)) ids.Add(id);
        }
        return ids;
    }
}
