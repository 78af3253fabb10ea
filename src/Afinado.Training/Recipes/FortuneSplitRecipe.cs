using System.Diagnostics;
using System.Text;
using Afinado.Planner.Memory;
using Afinado.Training.Data;
using Afinado.Training.Runs;
using TorchSharp;
using Afinado.Training.Loop;

namespace Afinado.Training.Recipes;

/// <summary>A fortune file or folder the fortune split learns from: the target (what the finetune learns) or retained (what
/// the base learns and the finetune should not forget).</summary>
public sealed record SplitText(string Name, string Path, bool Target);

/// <summary>
/// The fortune language-modelling split's settings (its run folder's <c>config.json</c>): a byte-level window LM learns
/// the retained texts (English fortune categories by default), a finetune (full backprop) learns the target (Spanish
/// fortunes), and the cheaper alternative trains only the output layer. Sizes default to a seconds-long run.
/// </summary>
public sealed record FortuneSplitTraining
{
    public const string FortunesDir = FortuneCorpus.DefaultRoot;

    /// <summary>The texts in the order they were declared (their files are pinned in that order).</summary>
    public IReadOnlyList<SplitText> Texts { get; init; } =
    [
        new("spanish", $"{FortunesDir}/es", Target: true),
        new("computers", $"{FortunesDir}/computers", Target: false),
        new("science", $"{FortunesDir}/science", Target: false),
        new("literature", $"{FortunesDir}/literature", Target: false),
    ];
    public int TrainItemsPerTask { get; init; } = 200;
    public int TestItemsPerTask { get; init; } = 50;
    /// <summary>Items are truncated to this many UTF-8 bytes (tokens) to bound the cost.</summary>
    public int MaxTokens { get; init; } = 200;
    public int Context { get; init; } = 4;
    public int Embedding { get; init; } = 32;
    public int Hidden { get; init; } = 128;
    public int BaseSteps { get; init; } = 300;
    public int FinetuneSteps { get; init; } = 150;
    public int Batch { get; init; } = 32;
    public int Window { get; init; } = 64;
    public double LearningRate { get; init; } = 3e-3;
    public double LastLayerLearningRate { get; init; } = 1e-2;
    public int Seed { get; init; } = 1;
}

/// <summary>What the fortune split trained: its weights files, each stage's log, the summary it wrote (with the manifest)
/// and each text's held-out items as byte tokens (the first <see cref="FortuneSplitTraining.TestItemsPerTask"/> of its
/// seeded shuffle, never trained on), by text name.</summary>
public sealed record FortuneSplitRun(FortuneSplitTraining Settings, string BasePath, string FinetunedPath, string LastLayerPath,
    TrainingLog BaseLog, TrainingLog FinetuneLog, TrainingLog LastLayerLog, RunSummary Summary, IReadOnlyDictionary<string, long[][]> HeldOut);

/// <summary>
/// Trains the fortune split and writes its run folder (the class split's files: three weights files, <c>config.json</c>,
/// <c>manifest.json</c>, <c>summary.json</c>). Tokens are UTF-8 bytes (vocabulary 256), so no tokenizer is needed.
/// </summary>
public static class FortuneSplitRecipe
{
    public const string BaseFile = ClassSplitRecipe.BaseFile, FinetunedFile = ClassSplitRecipe.FinetunedFile, LastLayerFile = ClassSplitRecipe.LastLayerFile;
    public const int Vocab = 256;
    private const long Separator = '\n';

    public static FortuneSplitRun Run(FortuneSplitTraining t, string outDir, Action<string>? progress = null)
    {
        progress ??= _ => { };
        if (t.Texts.Count(x => x.Target) != 1 || !t.Texts.Any(x => !x.Target))
            throw new InputError(RunParameters.Tasks, "the fortune split needs one target text and at least one retained text", "Declare one target and one or more retained language-modelling tasks.");
        Directory.CreateDirectory(outDir);
        var split = new Dictionary<string, (long[][] Train, long[][] Test)>();
        var files = new List<string>();
        foreach (var text in t.Texts)
        {
            InputText field = $"{RunParameters.Tasks}: {text.Name}.text";
            files.AddRange(FortuneCorpus.FilesAt(text.Path, field));
            var items = FortuneCorpus.ReadItems(text.Path, field).ToArray();
            new Random(t.Seed).Shuffle(items);
            if (items.Length < t.TestItemsPerTask + 10)
                throw new InputError($"{RunParameters.Tasks}: {text.Name}", $"'{text.Path}' has only {items.Length} fortunes", $"Give a text with at least {t.TestItemsPerTask + 10} items, or lower the held-out count.");
            var tokens = items.Select(Tokenize(t.MaxTokens)).Where(x => x.Length >= 2).ToArray();
            split[text.Name] = (tokens.Skip(t.TestItemsPerTask).Take(t.TrainItemsPerTask).ToArray(), tokens.Take(t.TestItemsPerTask).ToArray());
        }
        var target = t.Texts.Single(x => x.Target);
        var retained = t.Texts.Where(x => !x.Target).ToList();
        var baseStream = Stream(retained.SelectMany(r => split[r.Name].Train), t.Seed);
        var targetStream = Stream(split[target.Name].Train, t.Seed + 1);

        torch.manual_seed(t.Seed);
        using var baseModel = NewModel(t);
        progress($"training the base byte-level LM on {string.Join(", ", retained.Select(r => r.Name))} ({baseStream.Length:N0} tokens, {t.BaseSteps} steps)");
        var baseLog = WindowLmTrainer.Train(baseModel, baseStream, t.BaseSteps, t.Batch, t.Window, t.LearningRate, t.Seed);
        var basePath = Path.GetFullPath(Path.Combine(outDir, BaseFile));
        baseModel.save(basePath);

        progress($"finetuning all layers on '{target.Name}' ({targetStream.Length:N0} tokens, {t.FinetuneSteps} steps, backprop)");
        using var finetuned = NewModel(t);
        finetuned.load(basePath);
        var ftLog = WindowLmTrainer.Train(finetuned, targetStream, t.FinetuneSteps, t.Batch, t.Window, t.LearningRate, t.Seed + 2);
        var peak = Process.GetCurrentProcess().PeakWorkingSet64;
        var finetunedPath = Path.GetFullPath(Path.Combine(outDir, FinetunedFile));
        finetuned.save(finetunedPath);

        progress("training only the output layer (the cheaper alternative)");
        using var lastLayer = NewModel(t);
        lastLayer.load(basePath);
        WindowLanguageModel.FreezeAllButHead(lastLayer);
        var llLog = WindowLmTrainer.Train(lastLayer, targetStream, t.FinetuneSteps, t.Batch, t.Window, t.LastLayerLearningRate, t.Seed + 2);
        var lastLayerPath = Path.GetFullPath(Path.Combine(outDir, LastLayerFile));
        lastLayer.save(lastLayerPath);

        var manifest = SplitRunFolder.WriteConfigAndManifest(outDir, t, [RunManifest.Hash(basePath)], [finetunedPath], files, t.Seed);
        var summary = SplitRunFolder.WriteSummary(outDir, manifest, finetuned, ftLog, "backprop", t.FinetuneSteps,
            forwardPasses: ftLog.Steps, trainPositions: ftLog.Steps * t.Batch * t.Window, peak,
            RecipeMemory.FullAdamW(finetuned.parameters().Sum(p => p.numel())), measuredGradients: true);
        return new FortuneSplitRun(t, basePath, finetunedPath, lastLayerPath, baseLog, ftLog, llLog, summary,
            split.ToDictionary(kv => kv.Key, kv => kv.Value.Test));
    }

    /// <summary>The recipe's window LM; with <paramref name="weights"/>, loaded from that file.</summary>
    public static WindowLanguageModel NewModel(FortuneSplitTraining t, string? weights = null)
    {
        var model = new WindowLanguageModel(Vocab, t.Context, t.Embedding, t.Hidden);
        if (weights is not null) model.load(weights);
        return model;
    }

    private static Func<string, long[]> Tokenize(int maxTokens) => text =>
        Encoding.UTF8.GetBytes(text).Take(maxTokens).Select(b => (long)b).ToArray();

    /// <summary>Training items in a seeded order, joined by newlines into one token stream.</summary>
    private static long[] Stream(IEnumerable<long[]> items, int seed)
    {
        var list = items.ToArray();
        new Random(seed).Shuffle(list);
        return list.SelectMany(i => i.Append(Separator)).ToArray();
    }
}
