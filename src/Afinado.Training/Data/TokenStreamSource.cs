using Afinado.Planner;
using Afinado.Training.Tokenization;
using static TorchSharp.torch;
using Afinado.Training.Loop;

namespace Afinado.Training.Data;

/// <summary>
/// nanoGPT-style language-model batches: documents are tokenized and joined with end-of-text into one stream per
/// split; a sample is a random window of <c>seq+1</c> tokens (input = first seq, target = last seq). Training windows
/// come from a generator seeded by (seed, step, micro); validation windows tile the validation stream in order.
/// </summary>
public sealed class TokenStreamSource : IBatchSource
{
    private readonly int[] train, validation;

    public TokenStreamSource(IReadOnlyList<TextDocument> trainDocs, IReadOnlyList<TextDocument> validationDocs, ITextTokenizer tokenizer, int sequenceLength, string description, IReadOnlyList<string> files)
    {
        SequenceLength = sequenceLength;
        Tokenizer = tokenizer;
        Description = description;
        Files = files;
        train = Join(trainDocs, tokenizer);
        validation = Join(validationDocs, tokenizer);
        MaxTokenId = Math.Max(train.DefaultIfEmpty(0).Max(), validation.DefaultIfEmpty(0).Max());
        if (train.Length < sequenceLength + 2)
            throw new InputError(TrainParameters.SequenceLength, $"the training text has {train.Length} tokens, fewer than one window of {sequenceLength + 1}", $"Use a shorter {TrainParameters.SequenceLength} or more data.");
        if (validation.Length < sequenceLength + 2)
            throw new InputError(TrainParameters.SequenceLength, $"the validation text has {validation.Length} tokens, fewer than one window of {sequenceLength + 1}", $"Use a shorter {TrainParameters.SequenceLength} or more data.");
    }

    public int SequenceLength { get; }
    public ITextTokenizer Tokenizer { get; }
    public string Description { get; }
    public IReadOnlyList<string> Files { get; }
    public long PositionsPerSample => SequenceLength;
    /// <summary>The largest id in either stream (what the model's embedding table must hold).</summary>
    public int MaxTokenId { get; }
    public long TrainTokens => train.Length;
    public long ValidationTokens => validation.Length;

    public static TokenStreamSource FromDocuments(IReadOnlyList<TextDocument> docs, ITextTokenizer tokenizer, int sequenceLength, string description, IReadOnlyList<string> files) =>
        new(SplitAssigner.Select(docs, DataSplit.Train), SplitAssigner.Select(docs, DataSplit.Validation), tokenizer, sequenceLength, description, files);

    public (Tensor Input, Tensor Target) TrainBatch(long seed, long step, int micro, int batchSize)
    {
        var rng = new Random(HashCode32(seed, step, micro));
        var starts = new int[batchSize];
        for (int i = 0; i < batchSize; i++) starts[i] = rng.Next(0, train.Length - SequenceLength - 1);
        return Windows(train, starts);
    }

    public IEnumerable<(Tensor Input, Tensor Target)> ValidationBatches(int batchSize, int maxBatches)
    {
        int windows = (validation.Length - 1) / SequenceLength;
        int batches = Math.Min(maxBatches, Math.Max(1, windows / batchSize));
        for (int b = 0; b < batches; b++)
        {
            var starts = Enumerable.Range(b * batchSize, batchSize).Select(w => (w % windows) * SequenceLength).ToArray();
            yield return Windows(validation, starts);
        }
    }

    private (Tensor, Tensor) Windows(int[] stream, int[] starts)
    {
        int t = SequenceLength;
        var x = new long[starts.Length * t];
        var y = new long[starts.Length * t];
        for (int i = 0; i < starts.Length; i++)
            for (int j = 0; j < t; j++)
            {
                x[i * t + j] = stream[starts[i] + j];
                y[i * t + j] = stream[starts[i] + j + 1];
            }
        return (tensor(x, new long[] { starts.Length, t }), tensor(y, new long[] { starts.Length, t }));
    }

    private static int[] Join(IReadOnlyList<TextDocument> docs, ITextTokenizer tokenizer)
    {
        var ids = new List<int>();
        foreach (var d in docs)
        {
            ids.AddRange(tokenizer.Encode(d.Text));
            ids.Add(tokenizer.EndOfText);
        }
        return ids.ToArray();
    }

    /// <summary>A stable 32-bit seed from (seed, step, micro) — not <see cref="HashCode"/>, which is randomised per process.</summary>
    internal static int HashCode32(long seed, long step, int micro)
    {
        ulong h = 1469598103934665603UL;
        foreach (var v in new[] { (ulong)seed, (ulong)step, (ulong)micro })
        {
            h ^= v;
            h *= 1099511628211UL;
            h ^= h >> 29;
        }
        return (int)(h & 0x7fffffff);
    }
}
