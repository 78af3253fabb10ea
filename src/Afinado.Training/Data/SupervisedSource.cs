using Afinado.Planner;
using Afinado.Training.Tokenization;
using static TorchSharp.torch;
using Afinado.Training.Loop;

namespace Afinado.Training.Data;

/// <summary>
/// Supervised batches: each example is its own sequence of <c>seq+1</c> tokens (truncated beyond, padded with end of text
/// below), and the target of every position the loss must not see — the prompt, the padding — is −100, which
/// <c>cross_entropy</c> ignores (its default ignore_index). The tokenizer's special prefix (a BOS its post-processor adds)
/// starts the example once, not every segment; the example ends with end of text, which is trained.
/// </summary>
public sealed class SupervisedSource : IBatchSource
{
    public const long Ignored = -100;

    private readonly (int[] Ids, bool[] Trained)[] _train, _validation;

    public SupervisedSource(IReadOnlyList<SupervisedExample> examples, ITextTokenizer tokenizer, int sequenceLength, string description, IReadOnlyList<string> files)
    {
        SequenceLength = sequenceLength;
        Description = description;
        Files = files;
        var prefix = tokenizer.Encode("");
        var encoded = examples.Select(e => (e, Encode(e, tokenizer, prefix, sequenceLength + 1))).ToList();
        Truncated = encoded.Count(x => x.Item2.Truncated);
        LastTurnOnly = SupervisedExamples.LastTurnOnly(examples);
        // An example whose trained tokens all fall past the window teaches nothing (and would make a batch's mean NaN).
        var usable = encoded.Where(x => x.Item2.Trained.Skip(1).Any(t => t)).ToList();
        Dropped = encoded.Count - usable.Count;
        // The split by content hash (as for text documents); a small file whose hashes all land in train gives its
        // lowest-hash example to validation, so there is always something to validate on.
        var positions = usable.Select(x => SplitAssigner.Position(x.e.Text)).ToArray();
        double cut = positions.Length > 1 && positions.All(p => p >= SplitAssigner.DefaultValidationFraction) ? positions.Min() : SplitAssigner.DefaultValidationFraction;
        bool Validation(int i) => positions[i] < cut || (positions.Length > 1 && positions[i] == cut && cut != SplitAssigner.DefaultValidationFraction);
        _train = usable.Where((_, i) => !Validation(i)).Select(x => (x.Item2.Ids, x.Item2.Trained)).ToArray();
        _validation = usable.Where((_, i) => Validation(i)).Select(x => (x.Item2.Ids, x.Item2.Trained)).ToArray();
        TrainSet = usable.Where((_, i) => !Validation(i)).Select(x => x.e).ToList();
        ValidationSet = usable.Where((_, i) => Validation(i)).Select(x => x.e).ToList();
        // Rows are padded with end of text, so that id is fed too.
        MaxTokenId = Math.Max(tokenizer.EndOfText, _train.Concat(_validation).Select(r => r.Ids.DefaultIfEmpty(0).Max()).DefaultIfEmpty(0).Max());
        if (_train.Length == 0)
            throw new InputError(TrainParameters.Data, $"no training example has a trained token within {TrainParameters.SequenceLength} {sequenceLength} ({Dropped} of {examples.Count} lose all of theirs to truncation)", $"Use a longer {TrainParameters.SequenceLength} or more examples.");
        if (_validation.Length == 0)
            throw new InputError(TrainParameters.Data, $"{usable.Count} usable example(s): too few to split into training and validation", "Add more examples.");
    }

    public int SequenceLength { get; }
    public string Description { get; }
    public IReadOnlyList<string> Files { get; }
    public long PositionsPerSample => SequenceLength;
    /// <summary>Examples longer than seq+1 tokens (cut at the end).</summary>
    public int Truncated { get; }
    /// <summary>Conversations trained on their last assistant turn only (a template that does not render incrementally).</summary>
    public int LastTurnOnly { get; }
    /// <summary>Examples left out because truncation removed every trained token.</summary>
    public int Dropped { get; }
    /// <summary>The largest id fed to the model (what its embedding table must hold).</summary>
    public int MaxTokenId { get; }
    public int TrainExamples => _train.Length;
    /// <summary>The examples of each split, as trained and validated on (evaluation scores the validation ones).</summary>
    public IReadOnlyList<SupervisedExample> TrainSet { get; }
    public IReadOnlyList<SupervisedExample> ValidationSet { get; }
    public int ValidationExamples => _validation.Length;

    internal static (int[] Ids, bool[] Trained, bool Truncated) Encode(SupervisedExample e, ITextTokenizer tokenizer, int[] prefix, int window)
    {
        var (ids, trained) = Encode(e, tokenizer, prefix);
        bool cut = ids.Length > window;
        var outIds = new int[window];
        var outTrained = new bool[window];
        for (int j = 0; j < window; j++)
        {
            outIds[j] = j < ids.Length ? ids[j] : tokenizer.EndOfText;
            outTrained[j] = j < ids.Length && trained[j];
        }
        return (outIds, outTrained, cut);
    }

    /// <summary>An example's ids as a training row holds them, unpadded and uncut, and whether each id is a trained target
    /// (predicted from the ids before it).</summary>
    public static (int[] Ids, bool[] Trained) Encode(SupervisedExample e, ITextTokenizer tokenizer) => Encode(e, tokenizer, tokenizer.Encode(""));

    private static (int[] Ids, bool[] Trained) Encode(SupervisedExample e, ITextTokenizer tokenizer, int[] prefix)
    {
        var ids = new List<int>();
        var trained = new List<bool>();
        for (int i = 0; i < e.Segments.Count; i++)
        {
            if (e.Rendered)
            {
                // A chat template wrote its own BOS and end-of-turn tokens: encode as apply_chat_template does.
                var rendered = tokenizer is HfTokenizer hf ? hf.Encode(e.Segments[i].Text, addSpecialTokens: false) : tokenizer.Encode(e.Segments[i].Text);
                ids.AddRange(rendered);
                trained.AddRange(Enumerable.Repeat(e.Segments[i].Trained, rendered.Length));
                continue;
            }
            var seg = tokenizer.Encode(e.Segments[i].Text);
            int skip = i > 0 && seg.Length >= prefix.Length && seg.AsSpan(0, prefix.Length).SequenceEqual(prefix) ? prefix.Length : 0;
            for (int j = skip; j < seg.Length; j++)
            {
                ids.Add(seg[j]);
                trained.Add(e.Segments[i].Trained && j >= (i == 0 ? prefix.Length : skip));
            }
        }
        if (!e.Rendered)
        {
            ids.Add(tokenizer.EndOfText);
            trained.Add(e.Segments[^1].Trained);
        }
        return (ids.ToArray(), trained.ToArray());
    }

    public (Tensor Input, Tensor Target) TrainBatch(long seed, long step, int micro, int batchSize)
    {
        var rng = new Random(TokenStreamSource.HashCode32(seed, step, micro));
        var picked = new (int[], bool[])[batchSize];
        for (int i = 0; i < batchSize; i++) picked[i] = _train[rng.Next(_train.Length)];
        return Batch(picked);
    }

    public IEnumerable<(Tensor Input, Tensor Target)> ValidationBatches(int batchSize, int maxBatches)
    {
        int batches = Math.Min(maxBatches, Math.Max(1, _validation.Length / batchSize));
        for (int b = 0; b < batches; b++)
            yield return Batch(Enumerable.Range(b * batchSize, batchSize).Select(i => _validation[i % _validation.Length]).ToArray());
    }

    private (Tensor, Tensor) Batch((int[] Ids, bool[] Trained)[] rows)
    {
        int t = SequenceLength;
        var x = new long[rows.Length * t];
        var y = new long[rows.Length * t];
        for (int i = 0; i < rows.Length; i++)
            for (int j = 0; j < t; j++)
            {
                x[i * t + j] = rows[i].Ids[j];
                y[i * t + j] = rows[i].Trained[j + 1] ? rows[i].Ids[j + 1] : Ignored;
            }
        return (tensor(x, new long[] { rows.Length, t }), tensor(y, new long[] { rows.Length, t }));
    }
}
