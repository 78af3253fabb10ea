using Afinado.Training.Recipes;
using Afinado.Training.Loop;
using System.Diagnostics;
using System.Text;
using Afinado.Training.Data;
using Afinado.Evaluation.Runs;
using Afinado.Evaluation.Tasks;
using Afinado.Evaluation.Verdicts;
using Afinado.Planner;
using TorchSharp;
using Afinado.Training.Runs;

namespace Afinado.Evaluation.Experiments;

/// <summary>
/// Runs the fortune language-modelling split end to end and writes a pinned run folder (same files as the class
/// split). Tokens are UTF-8 bytes (vocabulary 256), so no tokenizer download is needed; the tax is measured in
/// per-token loss on each held-out English category.
/// </summary>
public static class FortuneSplitExperiment
{
    public const string LastLayer = "last-layer";
    private const int Vocab = 256;
    private const long Separator = '\n';

    public static EvaluationResult Run(FortuneSplitOptions options, string outDir, Action<string>? progress = null)
    {
        progress ??= _ => { };
        TaskFile.Validate("--tasks", options.Tasks);
        if (options.Tasks.Any(t => t.Kind != TaskInfo.LanguageModelling))
            throw new InputError("--tasks", "the fortune experiment takes language-modelling tasks only", "Declare tasks with \"kind\": \"language_modelling\" and a \"text\" path.");
        if (options.ScaleModel is { } early) ScaleCostEstimate.ForTokens(early, 1, options.ScaleTflops); // bad --scale-model fails before training
        Directory.CreateDirectory(outDir);
        var split = new Dictionary<string, (long[][] Train, long[][] Test)>();
        var files = new List<string>();
        foreach (var spec in options.Tasks)
        {
            files.AddRange(FortuneCorpus.FilesAt(spec.Text!, $"--tasks: {spec.Name}.text"));
            var items = FortuneCorpus.ReadItems(spec.Text!, $"--tasks: {spec.Name}.text").ToArray();
            new Random(options.Seed).Shuffle(items);
            if (items.Length < options.TestItemsPerTask + 10)
                throw new InputError($"--tasks: {spec.Name}", $"'{spec.Text}' has only {items.Length} fortunes", $"Give a text with at least {options.TestItemsPerTask + 10} items, or lower the held-out count.");
            var tokens = items.Select(Tokenize(options.MaxTokens)).Where(t => t.Length >= 2).ToArray();
            split[spec.Name] = (tokens.Skip(options.TestItemsPerTask).Take(options.TrainItemsPerTask).ToArray(), tokens.Take(options.TestItemsPerTask).ToArray());
        }
        var target = options.Tasks.Single(t => t.Role == TaskRole.Target);
        var retained = options.Tasks.Where(t => t.Role == TaskRole.Retained).ToList();
        var baseStream = Stream(retained.SelectMany(t => split[t.Name].Train), options.Seed);
        var targetStream = Stream(split[target.Name].Train, options.Seed + 1);

        torch.manual_seed(options.Seed);
        var baseModel = NewModel(options);
        progress($"training the base byte-level LM on {string.Join(", ", retained.Select(r => r.Name))} ({baseStream.Length:N0} tokens, {options.BaseSteps} steps)");
        var baseLog = WindowLmTrainer.Train(baseModel, baseStream, options.BaseSteps, options.Batch, options.Window, options.LearningRate, options.Seed);
        var basePath = Path.GetFullPath(Path.Combine(outDir, "base.weights"));
        baseModel.save(basePath);

        progress($"finetuning all layers on '{target.Name}' ({targetStream.Length:N0} tokens, {options.FinetuneSteps} steps, backprop)");
        var finetuned = NewModel(options);
        finetuned.load(basePath);
        var ftLog = WindowLmTrainer.Train(finetuned, targetStream, options.FinetuneSteps, options.Batch, options.Window, options.LearningRate, options.Seed + 2);
        var peak = Process.GetCurrentProcess().PeakWorkingSet64;
        var finetunedPath = Path.GetFullPath(Path.Combine(outDir, "finetuned.weights"));
        finetuned.save(finetunedPath);

        progress("training only the output layer (the cheaper alternative)");
        var lastLayer = NewModel(options);
        lastLayer.load(basePath);
        WindowLanguageModel.FreezeAllButHead(lastLayer);
        var llLog = WindowLmTrainer.Train(lastLayer, targetStream, options.FinetuneSteps, options.Batch, options.Window, options.LastLayerLearningRate, options.Seed + 2);

        progress("scoring per-token loss and next-token calibration on held-out fortunes");
        var scores = new List<IReadOnlyDictionary<string, TaskScores>>();
        foreach (var spec in options.Tasks.OrderBy(t => t.Role))
        {
            var task = new LanguageModellingTask(LanguageModellingTask.Describe(spec.Name, spec.Role), split[spec.Name].Test);
            var byModel = new Dictionary<string, TaskScores>
            {
                [FinetuneComparison.Base] = task.Score(baseModel, FinetuneComparison.Base),
                [FinetuneComparison.Finetuned] = task.Score(finetuned, FinetuneComparison.Finetuned),
            };
            if (spec.Role == TaskRole.Target) byModel[LastLayer] = task.Score(lastLayer, LastLayer);
            scores.Add(byModel);
        }
        Predictions.PredictionWriter.Write(outDir, scores);
        var cost = new FinetuneCost(ftLog.WallSeconds, peak);
        if (options.ScaleModel is { } scaleModel)
        {
            var tokens = (long)options.FinetuneSteps * options.Batch * options.Window;
            var (hours, name, parameters) = ScaleCostEstimate.ForTokens(scaleModel, tokens, options.ScaleTflops);
            cost = cost with { GpuHoursAtScale = hours, ScaleModel = $"{name} ({parameters / 1e9:0.##}B parameters, {tokens:N0} tokens, 6·P·D at {options.ScaleTflops:0.#} TFLOP/s)" };
        }
        var (tasks, gains, forgetting, verdict) = FinetuneComparison.Compare(scores, new Dictionary<string, string> { [LastLayer] = "training only the output layer" },
            cost, options.Policy, options.Bins, options.Resamples, options.Seed);

        var configPath = Path.Combine(outDir, "config.json");
        File.WriteAllText(configPath, EvalJson.Serialize(options));
        var manifest = RunFolderWriter.Manifest([RunManifest.Hash(basePath)], [finetunedPath], files, configPath, options.Seed, ClassSplitExperiment.CodeVersion());
        long total = finetuned.parameters().Sum(p => p.numel());
        var summary = new RunSummary
        {
            Status = "completed",
            Method = "full",
            Rule = "backprop",
            MaxSteps = options.FinetuneSteps,
            ForwardPasses = ftLog.Steps,
            TrainPositions = ftLog.Steps * options.Batch * options.Window,
            Manifest = manifest,
            TotalParameters = total,
            TrainableParameters = total,
            ProcessPeakBytes = peak,
            FinalTrainLoss = ftLog.FinalLoss,
            Steps = ftLog.Steps,
            WallSeconds = ftLog.WallSeconds,
            LossCurve = ftLog.LossCurve,
            PlannedBreakdown = RunSummary.Breakdown(PlannedMemory.FullAdamW(total)),
            MeasuredBreakdown = new Dictionary<string, long>
            {
                ["weights"] = finetuned.parameters().Sum(p => p.numel() * p.element_size()),
                // The rule drops the gradients at the end of each step; it measured them while the optimizer stepped.
                ["gradients"] = ftLog.PeakGradientBytes,
            },
        };
        var result = new EvaluationResult
        {
            ResultKey = PinnedIdentity.ResultKey(manifest),
            BaseSha256 = manifest.BaseSha256!,
            FinetunedSha256 = manifest.OutputSha256,
            Description = $"Fortunes split: byte-level window LM (context {options.Context}, {total:N0} parameters) base on {string.Join(", ", retained.Select(r => r.Name))} " +
                          $"({options.BaseSteps} steps, final loss {baseLog.FinalLoss:0.000}), finetuned by backprop on '{target.Name}' ({options.FinetuneSteps} steps, final loss {ftLog.FinalLoss:0.000}); " +
                          $"output-layer alternative final loss {llLog.FinalLoss:0.000}; {options.TrainItemsPerTask} train / {options.TestItemsPerTask} held-out fortunes per task, ≤ {options.MaxTokens} bytes each; seed {options.Seed}",
            Tasks = tasks,
            Gains = gains,
            Forgetting = forgetting,
            Verdict = verdict,
            Cost = cost,
        };
        RunFolderWriter.Write(outDir, manifest, summary, result);
        baseModel.Dispose();
        finetuned.Dispose();
        lastLayer.Dispose();
        return result;
    }

    private static WindowLanguageModel NewModel(FortuneSplitOptions o) => new(Vocab, o.Context, o.Embedding, o.Hidden);

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
