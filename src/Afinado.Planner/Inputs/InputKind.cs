namespace Afinado.Planner.Inputs;

/// <summary>
/// A kind of file Afinado reads but did not write, with the most it reads of one. A file over the limit is refused
/// before it is read (a link to <c>/dev/zero</c> or a weights file passed as a config must not grow memory until the
/// process dies); data files are streamed line by line, so they have a limit per line instead of per file.
/// </summary>
/// <param name="Name">What the file is, for messages ("config.json", "data file").</param>
/// <param name="MaxBytes">The largest file accepted (null: streamed, no limit on the whole).</param>
/// <param name="MaxLineBytes">The longest line a line reader accepts.</param>
/// <param name="Fix">What to do instead, for messages.</param>
public sealed record InputKind(string Name, long? MaxBytes, int MaxLineBytes, string Fix)
{
    private const long MiB = 1L << 20;

    /// <summary>config.json: a few KB in practice (the largest Hugging Face configs, with quantization tables, are under 1 MB).</summary>
    public static readonly InputKind Config = new("config.json", 16 * MiB, 0, "Point at the model's config.json, not a weights file.");

    /// <summary>model.safetensors.index.json: ~100 bytes per tensor; 405B's index is ~100 KB.</summary>
    public static readonly InputKind SafetensorsIndex = new("safetensors index", 64 * MiB, 0, "Point at the checkpoint's model.safetensors.index.json unchanged.");

    /// <summary>A .safetensors file: opened for its header only (the header has its own 100 MB limit), so any size.</summary>
    public static readonly InputKind SafetensorsFile = new("safetensors file", null, 0, "The file is truncated, corrupt or not a safetensors file; download it again.");

    /// <summary>Weights hashed or loaded whole (any format): opened as a stream, so any size, but never a FIFO or device.</summary>
    public static readonly InputKind Weights = new("weights file", null, 0, "Point at the model's weights file itself.");

    /// <summary>Files of a run folder (state, manifest, config, summary, metrics): small JSON Afinado wrote, possibly damaged since.</summary>
    public static readonly InputKind RunFile = new("run file", 256 * MiB, 64 * (int)MiB, "Point at a run folder written by `afinado train`, or rerun it.");

    /// <summary>Evaluation task files (<c>afinado.tasks/1</c> JSON): names, class lists and text paths, a few KB; read whole.</summary>
    public static readonly InputKind Tasks = new("task file", 64 * MiB, 0,
        "Write {\"schema\": \"afinado.tasks/1\", \"tasks\": [{\"name\", \"role\", \"kind\", \"classes\" or \"text\"}]} as `afinado eval --help` describes.");

    /// <summary>A model folder's tokenizer.json / tokenizer_config.json: Gemma 3's tokenizer.json is 33 MB, the largest
    /// vocabularies (262k tokens with merges) stay under 64 MB.</summary>
    public static readonly InputKind Tokenizer = new("tokenizer file", 128 * MiB, 0, "Point at the model folder holding its Hugging Face tokenizer.json and tokenizer_config.json.");

    /// <summary>A conversation for a chat template (<c>--chat</c>): a JSON array of {role, content} messages, a few KB.</summary>
    public static readonly InputKind ChatMessages = new("chat messages file", 64 * MiB, 0, "Give a JSON array of {\"role\": ..., \"content\": ...} messages.");

    /// <summary>Training text or JSONL data: streamed, any size; one record (line) at most 16 MiB.</summary>
    public static readonly InputKind Data = new("data file", null, 16 * (int)MiB, "Give UTF-8 text or JSONL, one record per line.");

    /// <summary>Predictions files for calibration and evaluation (JSONL).</summary>
    public static readonly InputKind Predictions = new("predictions file", null, 16 * (int)MiB, "Give the JSONL predictions file written by `afinado eval`.");
}
