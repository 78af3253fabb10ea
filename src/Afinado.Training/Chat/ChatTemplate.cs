using System.Text.Json;
using Afinado.Planner;
using Afinado.Planner.Inputs;
using Afinado.Training.Loop;

namespace Afinado.Training.Chat;

/// <summary>One message of a conversation: a role (system, user, assistant, ...) and its text.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// A Hugging Face model folder's chat template, rendered as transformers' <c>apply_chat_template(..., tokenize=False)</c>
/// does: the template is <c>chat_template.jinja</c> when the folder has one (transformers lets it replace the config's),
/// else <c>tokenizer_config.json</c>'s <c>chat_template</c> (a string, or a list of {name, template} of which "default"
/// is used). The template sees <c>messages</c>, <c>add_generation_prompt</c>, <c>tools</c> and <c>documents</c> (none),
/// and the special tokens transformers' special_tokens_map holds: bos/eos/unk/sep/pad/cls/mask tokens that are set,
/// additional_special_tokens when not empty, and the config's extra_special_tokens (Gemma 3's image tokens).
/// </summary>
public sealed class ChatTemplate
{
    public const string ConfigFileName = "tokenizer_config.json";
    public const string TemplateFileName = "chat_template.jinja";

    private static readonly string[] SpecialTokenKeys = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    private readonly JinjaTemplate _template;
    private readonly Dictionary<string, object?> _specialTokens;

    private ChatTemplate(JinjaTemplate template, string source, Dictionary<string, object?> specialTokens)
    {
        _template = template;
        Source = source;
        _specialTokens = specialTokens;
    }

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>The file and key the template came from, as error messages name it.</summary>
    public string Origin => _template.Origin;

    /// <summary>The config's bos_token (null when it sets none, as Qwen's).</summary>
    public string? BosToken => _specialTokens.GetValueOrDefault("bos_token") as string;

    /// <summary>The special-token variables the template sees (strings; additional_special_tokens is a list of strings).</summary>
    public IReadOnlyDictionary<string, object> SpecialTokens =>
        _specialTokens.ToDictionary(kv => kv.Key, kv => kv.Value is List<object?> l ? (object)l.Cast<string>().ToList() : kv.Value!);

    /// <summary>Loads the chat template of a model folder.</summary>
    public static ChatTemplate FromFolder(string folder, InputText? field = null)
    {
        field ??= RunParameters.Model;
        string configPath = Path.Combine(folder, ConfigFileName);
        string jinjaPath = Path.Combine(folder, TemplateFileName);
        if (!File.Exists(configPath))
            throw new InputError(field, $"folder \"{InputFile.Describe(folder)}\" has no {ConfigFileName}",
                "Use the model's Hugging Face folder: its tokenizer_config.json holds the chat template and the special tokens it uses.");
        using var doc = InputJson.Parse(InputFile.ReadAllBytes(configPath, InputKind.Tokenizer, field), InputFile.Describe(configPath), InputKind.Tokenizer, lenient: true);
        var config = doc.RootElement;
        if (config.ValueKind != JsonValueKind.Object)
            throw new InputError(InputFile.Describe(configPath), "is not a JSON object", "Restore tokenizer_config.json from the model's download.");
        string origin = $"{InputFile.Describe(configPath)}: chat_template";
        string source;
        if (File.Exists(jinjaPath))
        {
            source = InputFile.ReadAllText(jinjaPath, InputKind.Tokenizer, field);
            origin = InputFile.Describe(jinjaPath);
        }
        else source = TemplateFromConfig(config, origin);
        return Create(source, config, origin);
    }

    /// <summary>Whether <paramref name="folder"/> has a chat template (chat_template.jinja, or a chat_template in its
    /// tokenizer_config.json); a folder that has one and fails to load reports why through <see cref="FromFolder"/>.</summary>
    public static bool Has(string folder)
    {
        if (File.Exists(Path.Combine(folder, TemplateFileName))) return true;
        string configPath = Path.Combine(folder, ConfigFileName);
        if (!File.Exists(configPath)) return false;
        using var doc = InputJson.Parse(InputFile.ReadAllBytes(configPath, InputKind.Tokenizer), InputFile.Describe(configPath), InputKind.Tokenizer, lenient: true);
        return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("chat_template", out var t) && t.ValueKind != JsonValueKind.Null;
    }

    /// <summary>A template with the special tokens of a tokenizer_config.json object (tests and folders alike).</summary>
    internal static ChatTemplate Create(string source, JsonElement config, string origin) =>
        new(JinjaTemplate.Parse(source, origin), source, SpecialTokenVariables(config, origin));

    private static string TemplateFromConfig(JsonElement config, string origin)
    {
        if (!config.TryGetProperty("chat_template", out var t) || t.ValueKind == JsonValueKind.Null)
            throw new InputError(origin, "the tokenizer has no chat template (tokenizer_config.json sets no chat_template and the folder has no chat_template.jinja)",
                $"A base model's tokenizer usually has none: use the instruct/chat model's folder, or tokenize the text yourself without {ChatParameters.Messages}.");
        if (t.ValueKind == JsonValueKind.String) return t.GetString()!;
        if (t.ValueKind == JsonValueKind.Array)
        {
            var names = new List<string>();
            foreach (var entry in t.EnumerateArray())
            {
                if (entry.ValueKind != JsonValueKind.Object || !entry.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String
                    || !entry.TryGetProperty("template", out var body) || body.ValueKind != JsonValueKind.String)
                    throw new InputError(origin, "a chat_template list entry is not {\"name\": string, \"template\": string}", "Restore tokenizer_config.json from the model's download.");
                if (n.GetString() == "default") return body.GetString()!;
                names.Add(n.GetString()!);
            }
            throw new InputError(origin, $"lists named templates ({TerminalText.Escape(string.Join(", ", names))}) but none named \"default\"",
                "Restore tokenizer_config.json from the model's download; Afinado renders the default template.");
        }
        throw new InputError(origin, $"is a JSON {t.ValueKind.ToString().ToLowerInvariant()}, not a template string or a list of named templates", "Restore tokenizer_config.json from the model's download.");
    }

    /// <summary>transformers' special_tokens_map: a token is a string or an AddedToken object ({"content": ...}); unset
    /// (null or empty) ones are left out, so the template sees them as undefined.</summary>
    private static Dictionary<string, object?> SpecialTokenVariables(JsonElement config, string origin)
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (config.ValueKind != JsonValueKind.Object) return result;
        foreach (var key in SpecialTokenKeys)
            if (config.TryGetProperty(key, out var v) && TokenText(v, key, origin) is { Length: > 0 } text) result[key] = text;
        if (config.TryGetProperty("additional_special_tokens", out var extra) && extra.ValueKind == JsonValueKind.Array && extra.GetArrayLength() > 0)
            result["additional_special_tokens"] = extra.EnumerateArray().Select(e => (object?)(TokenText(e, "additional_special_tokens", origin) ?? "")).ToList();
        if (config.TryGetProperty("extra_special_tokens", out var named) && named.ValueKind == JsonValueKind.Object)
            foreach (var p in named.EnumerateObject())
                if (TokenText(p.Value, p.Name, origin) is { Length: > 0 } text) result[p.Name] = text;
        return result;
    }

    private static string? TokenText(JsonElement v, string key, string origin) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString(),
        JsonValueKind.Null => null,
        JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
        _ => throw new InputError(origin, $"tokenizer_config.json's {TerminalText.Escape(key)} is neither a string nor {{\"content\": string}}", "Restore tokenizer_config.json from the model's download."),
    };

    /// <summary>Renders a conversation of plain text messages.</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var list = new List<object?>(messages.Count);
        foreach (var m in messages)
            list.Add(new OrderedDictionary<string, object?>(StringComparer.Ordinal) { ["role"] = m.Role, ["content"] = m.Content });
        return Render(list, addGenerationPrompt);
    }

    /// <summary>Renders a conversation given as JSON: an array of message objects, each with a string "role"; every
    /// other field (content as text, null or a list of parts, tool_calls, reasoning_content, ...) reaches the template.</summary>
    public string Render(JsonElement messages, bool addGenerationPrompt, InputText field)
    {
        if (messages.ValueKind != JsonValueKind.Array)
            throw new InputError(field, "the conversation is not a JSON array of messages", InputKind.ChatMessages.Fix);
        if (messages.GetArrayLength() == 0)
            throw new InputError(field, "the conversation has no messages", InputKind.ChatMessages.Fix);
        int i = 0;
        foreach (var m in messages.EnumerateArray())
        {
            if (m.ValueKind != JsonValueKind.Object || !m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
                throw new InputError(field, $"message {i} is not an object with a string \"role\"", InputKind.ChatMessages.Fix);
            i++;
        }
        object? list;
        try { list = Py.FromJson(messages); }
        catch (TemplateRuntimeError e)
        {
            throw new InputError(field, TerminalText.Escape(e.Message), InputKind.ChatMessages.Fix);
        }
        return Render((List<object?>)list!, addGenerationPrompt);
    }

    /// <summary>Reads a messages file for <see cref="Render(JsonElement, bool, string)"/>.</summary>
    public static JsonDocument ReadMessages(string path, InputText field) => InputJson.ReadFile(path, InputKind.ChatMessages, field);

    private string Render(List<object?> messages, bool addGenerationPrompt)
    {
        // The keyword arguments of transformers' compiled_template.render: messages, tools, documents,
        // add_generation_prompt, then the special tokens map.
        var variables = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = messages,
            ["tools"] = null,
            ["documents"] = null,
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        foreach (var (k, v) in _specialTokens) variables[k] = v is List<object?> l ? l.ToList() : v;
        return _template.Render(variables);
    }
}
