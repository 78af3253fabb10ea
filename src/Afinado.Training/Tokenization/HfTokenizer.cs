using System.Collections.Concurrent;
using System.Text.Json;
using Afinado.Planner;
using Afinado.Planner.Inputs;
using Afinado.Training.Loop;

namespace Afinado.Training.Tokenization;

/// <summary>
/// A Hugging Face model folder's own tokenizer: <c>tokenizer.json</c> run by Hugging Face's Rust tokenizers (through
/// Tokenizers.DotNet), so byte-level BPE (Llama 3, Qwen, GPT-2), BPE with byte fallback (Llama 2, Mistral, Gemma) and
/// Unigram files all behave as the model was trained. Encoding applies the file's post-processor as
/// <c>tokenizer(text)</c> does in transformers (add_special_tokens=True: Gemma's and Llama 2's BOS). The end-of-text id
/// between training documents is <c>tokenizer_config.json</c>'s <c>eos_token</c>.
/// </summary>
public sealed class HfTokenizer : ITextTokenizer
{
    public const string FileName = "tokenizer.json";
    public const string ConfigFileName = "tokenizer_config.json";

    private readonly global::Tokenizers.DotNet.Tokenizer _native;
    private readonly string[] _pieces;

    private readonly SpecialTokenFrame _frame;

    private HfTokenizer(string folder, global::Tokenizers.DotNet.Tokenizer native, string[] pieces, int endOfText, string endOfTextPiece, SpecialTokenFrame frame)
    {
        Folder = folder;
        _native = native;
        _pieces = pieces;
        EndOfText = endOfText;
        EndOfTextPiece = endOfTextPiece;
        _frame = frame;
    }

    /// <summary>The ids tokenizer.json's post-processor puts before and after a single text (Gemma's and Llama 2's BOS),
    /// or why they are unknown (a post-processor type this reader does not interpret).</summary>
    private sealed record SpecialTokenFrame(int[] Prefix, int[] Suffix, string? Unknown = null);

    public string Name => "model";
    public string Folder { get; }
    public int VocabSize => _pieces.Length;
    public int EndOfText { get; }
    public string EndOfTextPiece { get; }

    public int[] Encode(string text)
    {
        var ids = _native.Encode(text);
        var result = new int[ids.Length];
        for (int i = 0; i < ids.Length; i++) result[i] = checked((int)ids[i]);
        return result;
    }

    /// <summary>
    /// Encodes with or without the post-processor's special tokens, as <c>tokenizer(text, add_special_tokens=...)</c>.
    /// Without them is how transformers' <c>apply_chat_template(tokenize=True)</c> encodes a rendered chat, whose template
    /// already wrote the BOS. The native binding always applies the post-processor, and the ids it adds around the text
    /// are the ones its single-sequence template names, so they are removed from both ends.
    /// </summary>
    public int[] Encode(string text, bool addSpecialTokens)
    {
        var ids = Encode(text);
        if (addSpecialTokens) return ids;
        if (_frame.Unknown is not null)
            throw new InputError(RunParameters.Model, $"{FileName}'s post_processor ({TerminalText.Escape(_frame.Unknown)}) is not one Afinado can undo to encode without special tokens",
                "Use a folder whose tokenizer.json has a TemplateProcessing, ByteLevel, Bert, Roberta or no post_processor.");
        int p = _frame.Prefix.Length, q = _frame.Suffix.Length;
        if (ids.Length < p + q || !ids.AsSpan(0, p).SequenceEqual(_frame.Prefix) || !ids.AsSpan(ids.Length - q).SequenceEqual(_frame.Suffix))
            throw new InputError(RunParameters.Model, $"{FileName}'s post_processor did not frame the text with the special tokens it declares (truncation set in the file?)",
                "Restore tokenizer.json from the model's download.");
        return ids[p..(ids.Length - q)];
    }

    public string Decode(IEnumerable<int> ids) => _native.Decode(ids.Where(i => i != EndOfText).Select(i => checked((uint)i)).ToArray());

    /// <summary>The vocabulary entry of <paramref name="id"/> as the file spells it (<c>Ġworld</c>, <c>▁world</c>).</summary>
    public string Piece(int id) => (uint)id < (uint)_pieces.Length ? _pieces[id] ?? "" : "";

    /// <summary>Whether <paramref name="folder"/> holds a tokenizer.json.</summary>
    public static bool In(string? folder) => folder is not null && File.Exists(Path.Combine(folder, FileName));

    // One native tokenizer per file for the process: a 33 MB vocabulary is parsed once, not per run or evaluation.
    private static readonly ConcurrentDictionary<string, Lazy<HfTokenizer>> Loaded = new(StringComparer.Ordinal);

    /// <summary>Loads <c>FOLDER/tokenizer.json</c> (and <c>tokenizer_config.json</c> for the end-of-text token).</summary>
    public static HfTokenizer Load(string folder, InputText? field = null)
    {
        field ??= RunParameters.Model;
        string path = Path.GetFullPath(Path.Combine(folder, FileName));
        var entry = Loaded.GetOrAdd(path, p => new Lazy<HfTokenizer>(() => Read(Path.GetDirectoryName(p)!, field)));
        try { return entry.Value; }
        catch
        {
            // A folder that failed (a missing or damaged file) is read again next time, once fixed.
            Loaded.TryRemove(new KeyValuePair<string, Lazy<HfTokenizer>>(path, entry));
            throw;
        }
    }

    private static HfTokenizer Read(string folder, InputText field)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path))
            throw new InputError(field, $"folder \"{InputFile.Describe(folder)}\" has no {FileName}", $"Use the model's Hugging Face folder (config.json, tokenizer.json, weights), or {TrainParameters.Tokenizer} byte|gpt2 for a folder without one.");
        var (pieces, frame) = Vocabulary(path, field);
        string eos = EndOfTextToken(folder, field);
        int endOfText = Array.IndexOf(pieces, eos);
        if (endOfText < 0)
            throw new InputError(field, $"{ConfigFileName}'s eos_token \"{TerminalText.Escape(eos)}\" is not in {FileName}'s vocabulary", "Restore both files from the same model download.");
        global::Tokenizers.DotNet.Tokenizer native;
        try { native = new global::Tokenizers.DotNet.Tokenizer(vocabPath: path); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InputError(field, $"{InputFile.Describe(path)} could not be loaded by Hugging Face tokenizers ({TerminalText.Escape(e.Message)})", "Restore tokenizer.json from the model's download.");
        }
        return new HfTokenizer(folder, native, pieces, endOfText, eos, frame);
    }

    /// <summary>Pieces by id: the model's vocabulary (a token → id map for BPE and WordPiece, a [piece, score] list for
    /// Unigram) and the added tokens, which may extend it; and the ids the post-processor frames a text with.</summary>
    private static (string[] Pieces, SpecialTokenFrame Frame) Vocabulary(string path, InputText field)
    {
        using var doc = InputJson.Parse(InputFile.ReadAllBytes(path, InputKind.Tokenizer, field), InputFile.Describe(path), InputKind.Tokenizer, lenient: true);
        var root = doc.RootElement;
        var byId = new Dictionary<int, string>();
        if (root.TryGetProperty("model", out var model) && model.TryGetProperty("vocab", out var vocab))
        {
            if (vocab.ValueKind == JsonValueKind.Object)
                foreach (var p in vocab.EnumerateObject())
                    if (p.Value.TryGetInt32(out int id) && id >= 0) byId[id] = p.Name;
            if (vocab.ValueKind == JsonValueKind.Array)
            {
                int id = 0;
                foreach (var entry in vocab.EnumerateArray())
                {
                    if (entry.ValueKind == JsonValueKind.Array && entry.GetArrayLength() > 0 && entry[0].ValueKind == JsonValueKind.String) byId[id] = entry[0].GetString()!;
                    id++;
                }
            }
        }
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
            foreach (var t in added.EnumerateArray())
                if (t.TryGetProperty("id", out var idElement) && idElement.TryGetInt32(out int id) && id >= 0
                    && t.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
                    byId[id] = content.GetString()!;
        if (byId.Count == 0)
            throw new InputError(field, $"{InputFile.Describe(path)} has no model.vocab", "Restore tokenizer.json from the model's download.");
        int size = byId.Keys.Max() + 1;
        if (size > 10_000_000)
            throw new InputError(field, $"{InputFile.Describe(path)} claims {size:N0} token ids", "Restore tokenizer.json from the model's download.");
        var pieces = new string[size];
        foreach (var (id, piece) in byId) pieces[id] = piece;
        var frame = root.TryGetProperty("post_processor", out var post) ? Frame(post) : new SpecialTokenFrame([], []);
        return (pieces, frame);
    }

    /// <summary>
    /// What the post-processor adds around one sequence: TemplateProcessing's special tokens before and after "$A"
    /// (with the ids its special_tokens map gives), Bert/Roberta's cls and sep, nothing for ByteLevel, and for a
    /// Sequence each processor's frame around the previous ones'.
    /// </summary>
    private static SpecialTokenFrame Frame(JsonElement post)
    {
        if (post.ValueKind == JsonValueKind.Null) return new SpecialTokenFrame([], []);
        string type = post.ValueKind == JsonValueKind.Object && post.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "no type";
        switch (type)
        {
            case "ByteLevel":
                return new SpecialTokenFrame([], []);
            case "BertProcessing":
            case "RobertaProcessing":
                int? Id(string key) => post.TryGetProperty(key, out var pair) && pair.ValueKind == JsonValueKind.Array && pair.GetArrayLength() == 2
                    && pair[1].TryGetInt32(out int id) ? id : null;
                return Id("cls") is int cls && Id("sep") is int sep ? new SpecialTokenFrame([cls], [sep]) : new SpecialTokenFrame([], [], $"{type} without cls/sep ids");
            case "TemplateProcessing":
                if (!post.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array
                    || !post.TryGetProperty("special_tokens", out var specials) || specials.ValueKind != JsonValueKind.Object)
                    return new SpecialTokenFrame([], [], "TemplateProcessing without single/special_tokens");
                var prefix = new List<int>();
                var suffix = new List<int>();
                bool seenSequence = false;
                foreach (var piece in single.EnumerateArray())
                {
                    if (piece.ValueKind == JsonValueKind.Object && piece.TryGetProperty("Sequence", out _))
                    {
                        seenSequence = true;
                        continue;
                    }
                    if (piece.ValueKind != JsonValueKind.Object || !piece.TryGetProperty("SpecialToken", out var special)
                        || !special.TryGetProperty("id", out var name) || name.ValueKind != JsonValueKind.String
                        || !specials.TryGetProperty(name.GetString()!, out var entry) || !entry.TryGetProperty("ids", out var ids) || ids.ValueKind != JsonValueKind.Array)
                        return new SpecialTokenFrame([], [], "TemplateProcessing with an unreadable single template");
                    foreach (var id in ids.EnumerateArray())
                    {
                        if (!id.TryGetInt32(out int value)) return new SpecialTokenFrame([], [], "TemplateProcessing with a non-integer id");
                        (seenSequence ? suffix : prefix).Add(value);
                    }
                }
                return new SpecialTokenFrame(prefix.ToArray(), suffix.ToArray());
            case "Sequence":
                if (!post.TryGetProperty("processors", out var processors) || processors.ValueKind != JsonValueKind.Array)
                    return new SpecialTokenFrame([], [], "Sequence without processors");
                int[] before = [], after = [];
                foreach (var p in processors.EnumerateArray())
                {
                    var inner = Frame(p);
                    if (inner.Unknown is not null) return inner;
                    before = [.. inner.Prefix, .. before];
                    after = [.. after, .. inner.Suffix];
                }
                return new SpecialTokenFrame(before, after);
            default:
                return new SpecialTokenFrame([], [], type);
        }
    }

    /// <summary><c>tokenizer_config.json</c>'s <c>eos_token</c>: a string or an AddedToken object with <c>content</c>.</summary>
    private static string EndOfTextToken(string folder, InputText field)
    {
        string path = Path.Combine(folder, ConfigFileName);
        if (!File.Exists(path))
            throw new InputError(field, $"folder \"{InputFile.Describe(folder)}\" has {FileName} but no {ConfigFileName}", "Copy the model's tokenizer_config.json beside tokenizer.json: it names the end-of-text token.");
        using var doc = InputJson.Parse(InputFile.ReadAllBytes(path, InputKind.Tokenizer, field), InputFile.Describe(path), InputKind.Tokenizer, lenient: true);
        if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("eos_token", out var eos))
        {
            if (eos.ValueKind == JsonValueKind.String) return eos.GetString()!;
            if (eos.ValueKind == JsonValueKind.Object && eos.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String) return c.GetString()!;
        }
        throw new InputError(field, $"{InputFile.Describe(path)} has no eos_token", "Restore tokenizer_config.json from the model's download.");
    }
}
