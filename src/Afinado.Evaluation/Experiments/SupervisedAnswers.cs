using Afinado.Evaluation.Tasks;
using Afinado.Planner;
using Afinado.Training.Chat;
using Afinado.Training.Data;
using Afinado.Training.Loop;
using Afinado.Training.Models;
using Afinado.Training.Tokenization;

namespace Afinado.Evaluation.Experiments;

/// <summary>
/// The target task of a run trained on prompt/completion, alpaca or chat data: the held-out (validation-split) examples
/// the run validated on, scored on their answer tokens only, as trained. Was finetuning needed? The alternative people
/// try first is prompting: the base model sees up to <see cref="TrainedRunOptions.Shots"/> training examples before each
/// held-out prompt (earlier turns of the same chat for conversations), as many as its context holds, and is scored on the
/// same answer tokens.
/// </summary>
internal sealed class SupervisedAnswers
{
    public const string FewShot = "few-shot";

    private readonly AnswerModellingTask _task;
    private readonly AnswerModellingTask? _fewShot;

    private SupervisedAnswers(AnswerModellingTask task, AnswerModellingTask? fewShot, string? shotsLabel)
    {
        _task = task;
        _fewShot = fewShot;
        ShotsLabel = shotsLabel;
    }

    public int Items => _task.ItemCount;
    /// <summary>How the verdict names the few-shot alternative (null when there is none).</summary>
    public string? ShotsLabel { get; }

    public static SupervisedAnswers Build(TrainConfig config, ITextTokenizer tokenizer, int contextTokens, TrainedRunOptions options, Action<string> progress)
    {
        var source = (SupervisedSource)DataCatalog.TokenSource(config.Data, null, tokenizer, config.SequenceLength, config.BaseModel);
        var template = config.BaseModel is not null && ChatTemplate.Has(config.BaseModel) ? ChatTemplate.FromFolder(config.BaseModel) : null;
        // An item is what a training row held: seq + 1 tokens. Longer examples are left out rather than cut, so the
        // few-shot prompt scores exactly the same answer tokens.
        int limit = Math.Min(options.MaxTokens, config.SequenceLength) + 1;
        var heldOut = source.ValidationSet.ToArray();
        new Random(options.Seed).Shuffle(heldOut);
        var items = new List<(SupervisedExample Example, long[] Ids, bool[] Scored)>();
        int tooLong = 0;
        foreach (var e in heldOut)
        {
            if (items.Count == options.ItemsPerTask) break;
            var (ids, scored) = SupervisedSource.Encode(e, tokenizer);
            if (ids.Length > limit) { tooLong++; continue; }
            if (!scored.Skip(1).Any(s => s)) continue;
            items.Add((e, ids.Select(i => (long)i).ToArray(), scored));
        }
        string name = config.Data;
        if (items.Count < 10)
            throw new InputError(EvalParameters.Run, $"task '{name}' has only {items.Count} held-out examples within {limit} tokens ({heldOut.Length} held out, {tooLong} longer)",
                $"Train on a data set with more examples (about a tenth are held out), or raise {TrainParameters.SequenceLength}.");
        var info = AnswerModellingTask.Describe(name, TaskRole.Target);
        var task = new AnswerModellingTask(info, items.Select(i => (i.Ids, i.Scored)).ToList());
        progress($"scoring {name} (target, {items.Count} held-out examples ≤ {limit} tokens, {task.Tokens:N0} answer tokens{(tooLong > 0 ? $"; {tooLong} longer left out" : "")})");
        if (options.Shots == 0) return new SupervisedAnswers(task, null, null);

        var pool = source.TrainSet.ToArray();
        new Random(options.Seed + 1).Shuffle(pool);
        var prompted = new List<(long[], bool[])>();
        var used = new List<int>();
        foreach (var (example, ids, scored) in items)
        {
            // As many shots as the context holds, up to the cap.
            for (int k = Math.Min(options.Shots, pool.Length); ; k--)
            {
                var (fewIds, fewScored) = k == 0 ? (ids.Select(i => (int)i).ToArray(), scored)
                    : SupervisedSource.Encode(SupervisedExamples.WithShots(example, pool[..k], template), tokenizer);
                if (k > 0 && fewIds.Length > contextTokens) continue;
                prompted.Add((fewIds.Select(i => (long)i).ToArray(), fewScored));
                used.Add(k);
                break;
            }
        }
        int fewest = used.Min(), most = used.Max();
        if (most == 0) return new SupervisedAnswers(task, null, null);
        string label = $"the base model prompted with {(fewest == most ? $"{most}" : $"{fewest}–{most}")} training examples ({FewShot})";
        var fewShot = new AnswerModellingTask(info, prompted);
        progress($"few-shot alternative: {fewest}–{most} examples before each prompt, up to {fewShot.LongestItem} tokens (context {contextTokens})");
        return new SupervisedAnswers(task, fewShot, label);
    }

    public IReadOnlyDictionary<string, TaskScores> Score(LlamaForCausalLM baseModel, LlamaForCausalLM finetuned)
    {
        var scores = new Dictionary<string, TaskScores>
        {
            [FinetuneComparison.Base] = _task.Score(baseModel, FinetuneComparison.Base),
            [FinetuneComparison.Finetuned] = _task.Score(finetuned, FinetuneComparison.Finetuned),
        };
        if (_fewShot is not null) scores[FewShot] = _fewShot.Score(baseModel, FewShot);
        return scores;
    }
}
