using System.Text.Json;
using Afinado.Planner;
using Afinado.Planner.Inputs;
using Afinado.Training.Loop;

namespace Afinado.Training.Data;

/// <summary>A piece of an example's text and whether the loss is taken on it.</summary>
public sealed record Segment(string Text, bool Trained);

/// <summary>One supervised example (its own sequence, never packed with another) and the <c>file:line</c> it came from.
/// <see cref="Rendered"/>: the text is a chat template's output, which writes its own special tokens (BOS, end of turn),
/// so it is encoded without the tokenizer adding any and without an end of text appended.</summary>
public sealed record SupervisedExample(IReadOnlyList<Segment> Segments, string Where, bool Rendered = false)
{
    /// <summary>A conversation whose template did not render incrementally: only its last assistant turn trains.</summary>
    public bool LastTurnOnly { get; init; }

    /// <summary>All the text, for the deterministic train/validation split by content.</summary>
    public string Text => string.Concat(Segments.Select(s => s.Text));

    /// <summary>A chat example's <c>messages</c> array as written in the file (null for other records): few-shot prompts
    /// put earlier conversations before it as earlier turns.</summary>
    public string? Messages { get; init; }
}

/// <summary>
/// JSONL records people finetune on, with the loss where TRL's SFTTrainer puts it by default: <c>prompt</c> +
/// <c>completion</c> (or <c>response</c>) — on the completion; alpaca's <c>instruction</c> / <c>input</c> / <c>output</c> —
/// on the output, after the prompt of the Stanford Alpaca repository (train.py PROMPT_DICT); <c>text</c> — on all of it.
/// <c>messages</c> (OpenAI / ShareGPT-style roles) — rendered with the base model's chat template, on every assistant
/// turn: each turn is the difference between the conversation rendered up to it with the generation prompt and rendered
/// through it; when a template does not render incrementally (one that rewrites earlier turns, as Qwen3's drops their
/// reasoning), on the last assistant turn only. A file with only <c>text</c> records stays a token stream
/// (<see cref="TokenStreamSource"/>), as before.
/// </summary>
public static class SupervisedExamples
{
    private const string Fix = "Write one JSON object per line: {\"prompt\", \"completion\"}, {\"instruction\", \"input\", \"output\"} or {\"text\"}, all strings.";

    // tatsu-lab/stanford_alpaca train.py PROMPT_DICT, verbatim.
    internal const string AlpacaWithInput = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{0}\n\n### Input:\n{1}\n\n### Response:\n";
    internal const string AlpacaNoInput = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{0}\n\n### Response:\n";

    /// <summary>Whether <paramref name="path"/> is a JSONL file holding at least one prompt/completion or alpaca record.</summary>
    public static bool IsSupervised(string path)
    {
        if (!path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)) return false;
        foreach (var (_, line) in InputFile.ReadLines(path, InputKind.Data))
        {
            if (line.Trim().Length == 0) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.ValueKind == JsonValueKind.Object
                    && (doc.RootElement.TryGetProperty("prompt", out _) || doc.RootElement.TryGetProperty("instruction", out _)
                        || doc.RootElement.TryGetProperty("messages", out _)))
                    return true;
            }
            catch (JsonException) { return false; } // Load names the bad line.
        }
        return false;
    }

    /// <summary>Examples whose chat template could not render every assistant turn incrementally and train on the
    /// last one only (see the class summary).</summary>
    public static int LastTurnOnly(IReadOnlyList<SupervisedExample> examples) => examples.Count(e => e.LastTurnOnly);

    public static IReadOnlyList<SupervisedExample> Load(string path, Chat.ChatTemplate? template = null)
    {
        InputFile.Check(path, InputKind.Data, TrainParameters.Data);
        string name = InputFile.Describe(path);
        var examples = new List<SupervisedExample>();
        foreach (var (number, line) in InputFile.ReadLines(path, InputKind.Data))
        {
            if (line.Trim().Length == 0) continue;
            string where = $"{name}:{number}";
            using var doc = InputJson.Parse(line, where, InputKind.Data);
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object)
                throw new InputError(where, $"is a JSON {r.ValueKind.ToString().ToLowerInvariant()}, not an object", Fix);
            examples.Add(r.TryGetProperty("messages", out var messages) ? Conversation(messages, template, where) : new SupervisedExample(Segments(r, where), where));
        }
        if (examples.Count == 0)
            throw new InputError(TrainParameters.Data, $"{name} holds no records", "Put at least one record in the file.");
        return examples;
    }

    private static List<Segment> Segments(JsonElement r, string where)
    {
        if (r.TryGetProperty("prompt", out var prompt))
        {
            string key = r.TryGetProperty("completion", out var answer) ? "completion" : r.TryGetProperty("response", out answer) ? "response"
                : throw new InputError(where, "has \"prompt\" but no \"completion\" (or \"response\")", Fix);
            return [new(Str(prompt, where, "prompt"), false), new(Str(answer, where, key), true)];
        }
        if (r.TryGetProperty("instruction", out var instruction))
        {
            if (!r.TryGetProperty("output", out var output)) throw new InputError(where, "has \"instruction\" but no \"output\"", Fix);
            string input = r.TryGetProperty("input", out var i) ? Str(i, where, "input") : "";
            string text = input.Length > 0
                ? string.Format(System.Globalization.CultureInfo.InvariantCulture, AlpacaWithInput, Str(instruction, where, "instruction"), input)
                : string.Format(System.Globalization.CultureInfo.InvariantCulture, AlpacaNoInput, Str(instruction, where, "instruction"));
            return [new(text, false), new(Str(output, where, "output"), true)];
        }
        if (r.TryGetProperty("text", out var t)) return [new(Str(t, where, "text"), true)];
        throw new InputError(where, "has none of \"prompt\"+\"completion\", \"instruction\"+\"output\" or \"text\"", Fix);
    }

    private static SupervisedExample Conversation(JsonElement messages, Chat.ChatTemplate? template, string where)
    {
        if (template is null)
            throw new InputError(where, "holds chat \"messages\", which need the base model's chat template", $"Train from a {RunParameters.Model} folder whose tokenizer_config.json has a chat_template.");
        if (messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
            throw new InputError($"{where}: messages", "must be a non-empty array of {\"role\", \"content\"} objects", Fix);
        var list = messages.EnumerateArray().ToList();
        var assistant = list.Select((m, i) => (m, i)).Where(x => x.m.ValueKind == JsonValueKind.Object && x.m.TryGetProperty("role", out var role)
            && role.ValueKind == JsonValueKind.String && role.GetString() == "assistant").Select(x => x.i).ToList();
        if (assistant.Count == 0)
            throw new InputError($"{where}: messages", "has no assistant message to learn from", "Give each conversation at least one {\"role\": \"assistant\"} message.");
        string Render(int count, bool generationPrompt)
        {
            using var doc = JsonDocument.Parse("[" + string.Join(",", list.Take(count).Select(m => m.GetRawText())) + "]");
            return template.Render(doc.RootElement, generationPrompt, $"{where}: messages");
        }
        string full = Render(list.Count, false);
        // Every assistant turn, if the template renders the conversation incrementally.
        var segments = new List<Segment>();
        int done = 0;
        bool incremental = true;
        foreach (int k in assistant)
        {
            string before = Render(k, true), through = Render(k + 1, false);
            if (!before.StartsWith(full[..done], StringComparison.Ordinal) || !through.StartsWith(before, StringComparison.Ordinal) || !full.StartsWith(through, StringComparison.Ordinal))
            {
                incremental = false;
                break;
            }
            segments.Add(new(before[done..], false));
            segments.Add(new(through[before.Length..], true));
            done = through.Length;
        }
        string raw = messages.GetRawText();
        if (incremental)
        {
            if (done < full.Length) segments.Add(new(full[done..], false));
            return new SupervisedExample(segments, where, Rendered: true) { Messages = raw };
        }
        int last = assistant[^1];
        string prompt = Render(last, true), whole = Render(last + 1, false);
        if (!whole.StartsWith(prompt, StringComparison.Ordinal))
            throw new InputError($"{where}: messages", "the chat template renders the conversation before its last assistant turn differently from its start",
                "Use a template that renders conversations incrementally, or prompt/completion records.");
        return new SupervisedExample([new(prompt, false), new(whole[prompt.Length..], true)], where, Rendered: true) { LastTurnOnly = true, Messages = raw };
    }

    /// <summary>
    /// <paramref name="item"/> prompted with <paramref name="shots"/> first, the loss still on the item's answers only: the
    /// base model's few-shot alternative to finetuning. A conversation gets the shots' user and assistant turns as earlier
    /// turns of the same chat (its own system message first), rendered by the template; a prompt/completion or alpaca
    /// record gets each shot's full text, separated by a blank line, before its prompt.
    /// </summary>
    public static SupervisedExample WithShots(SupervisedExample item, IReadOnlyList<SupervisedExample> shots, Chat.ChatTemplate? template)
    {
        if (shots.Count == 0) return item;
        if (item.Messages is null)
        {
            // The context is a segment of its own (tokenized apart from the prompt, as each segment is).
            return item with { Segments = [new(string.Concat(shots.Select(s => s.Text + "\n\n")), false), .. item.Segments] };
        }
        using var own = JsonDocument.Parse(item.Messages);
        var turns = new List<string>();
        var system = own.RootElement.EnumerateArray().Where(IsSystem).Select(m => m.GetRawText()).ToList();
        foreach (var shot in shots)
        {
            if (shot.Messages is null) throw new ArgumentException("few-shot examples of a conversation must be conversations", nameof(shots));
            using var doc = JsonDocument.Parse(shot.Messages);
            turns.AddRange(doc.RootElement.EnumerateArray().Where(m => !IsSystem(m)).Select(m => m.GetRawText()));
        }
        turns.AddRange(own.RootElement.EnumerateArray().Where(m => !IsSystem(m)).Select(m => m.GetRawText()));
        using var combined = JsonDocument.Parse("[" + string.Join(",", system.Concat(turns)) + "]");
        var prompted = Conversation(combined.RootElement, template, item.Where + " (few-shot)");
        // Only the item's own assistant turns count: the shots' answers are context.
        int ownTurns = item.Segments.Count(s => s.Trained), seen = 0, trainedTotal = prompted.Segments.Count(s => s.Trained);
        var segments = prompted.Segments.Select(s => s.Trained && ++seen <= trainedTotal - ownTurns ? s with { Trained = false } : s).ToList();
        return prompted with { Segments = segments };
    }

    private static bool IsSystem(JsonElement m) =>
        m.ValueKind == JsonValueKind.Object && m.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String && r.GetString() == "system";

    private static string Str(JsonElement value, string where, string key) =>
        value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw new InputError($"{where}: {key}", $"must be a string, found {(value.ValueKind == JsonValueKind.Null ? "null" : value.ValueKind.ToString().ToLowerInvariant())}", Fix);
}
