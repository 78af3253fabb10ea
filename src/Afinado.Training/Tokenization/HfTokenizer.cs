using System.Collections.Concurrent;
using System.Text.Json;
using Afinado.Planner;
using Afinado.Planner.Inputs;

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

    private HfTokenizer(string folder, global::Tokenizers.DotNet.Tokenizer native, string[] pieces, int endOfText, string endOfTextPiece)
    {
        Folder = folder;
        _native = native;
        _pieces = pieces;
        EndOfText = endOfText;
        EndOfTextPiece = endOfTextPiece;
    }

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

    public string Decode(IEnumerable<int> ids) => _native.Decode(ids.Where(i => i != EndOfText).Select(i => checked((uint)i)).ToArray());

    /// <summary>The vocabulary entry of <paramref name="id"/> as the file spells it (<c>Ġworld</c>, <c>▁world</c>).</summary>
    public string Piece(int id) => (uint)id < (uint)_pieces.Length ? _pieces[id] ?? "" : "";

    /// <summary>Whether <paramref name="folder"/> holds a tokenizer.json.</summary>
    public static bool In(string? folder) => folder is not null && File.Exists(Path.Combine(folder, FileName));

    // One native tokenizer per file for the process: a 33 MB vocabulary is parsed once, not per run or evaluation.
    private static readonly ConcurrentDictionary<string, Lazy<HfTokenizer>> Loaded = new(StringComparer.Ordinal);

    /// <summary>Loads <c>FOLDER/tokenizer.json</c> (and <c>tokenizer_config.json</c> for the end-of-text token).</summary>
    public static HfTokenizer Load(string folder, string field = "--model")
    {
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

    private static HfTokenizer Read(string folder, string field)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path))
            throw new InputError(field, $"folder \"{InputFile.Describe(folder)}\" has no {FileName}", "Use the model's Hugging Face folder (config.json, tokenizer.json, weights), or --tokenizer byte|gpt2 for a folder without one.");
        var pieces = Vocabulary(path, field);
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
        return new HfTokenizer(folder, native, pieces, endOfText, eos);
    }

    /// <summary>Pieces by id: the model's vocabulary (a token → id map for BPE and WordPiece, a [piece, score] list for
    /// Unigram) and the added tokens, which may extend it.</summary>
    private static string[] Vocabulary(string path, string field)
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
        return pieces;
    }

    /// <summary><c>tokenizer_config.json</c>'s <c>eos_token</c>: a string or an AddedToken object with <c>content</c>.</summary>
    private static string EndOfTextToken(string folder, string field)
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
