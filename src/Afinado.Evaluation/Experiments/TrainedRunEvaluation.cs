using Afinado.Evaluation.Runs;
using Afinado.Evaluation.Tasks;
using Afinado.Planner;
using Afinado.Planner.Inputs;
using Afinado.Training.Data;
using Afinado.Training.Loop;
using Afinado.Training.Models;
using Afinado.Training.Tokenization;
using Afinado.Training.Runs;

namespace Afinado.Evaluation.Experiments;

/// <summary>
/// Scores a finetuning run written by <c>afinado train</c> against the base it pinned: loads the exported model
/// (<c>RUN_DIR/model</c>) and the base weights the manifest records (refusing them if their SHA-256 changed), scores
/// per-token loss and next-token calibration on the held-out target data and on held-out English fortune categories
/// (the retained tasks), and writes an evaluation run folder with the same manifest/summary contract plus eval.json.
/// The cheaper alternative is the base model as is; a run on prompt/completion, alpaca or chat data is scored on the
/// answers of its held-out examples, and the base model prompted with training examples is a second alternative
/// (<see cref="SupervisedAnswers"/>).
/// </summary>
public static class TrainedRunEvaluation
{
    public static EvaluationResult Run(string runDir, TrainedRunOptions options, string outDir, Action<string>? progress = null)
    {
        progress ??= _ => { };
        var run = RunDirectory.Open(runDir, EvalParameters.Run);
        var configPath = Path.Combine(runDir, LanguageModelRun.ConfigFile);
        if (!File.Exists(configPath))
            throw new InputError(EvalParameters.Run, $"'{runDir}' has no {LanguageModelRun.ConfigFile}, so it is not a language-model run of `afinado train`",
                $"Pass the {RunParameters.Out} folder of `afinado train` (e.g. {RunParameters.Recipe} fortunes-es).");
        var summary = run.Summary ?? throw new InputError(EvalParameters.Run, $"'{runDir}' has no {RunDirectory.SummaryFile}: the run did not finish", "Finish it with `afinado train --resume RUN_DIR`.");
        var modelDir = Path.Combine(runDir, "model");
        if (summary.Status != "completed" || !File.Exists(Path.Combine(modelDir, "config.json")))
            throw new InputError(EvalParameters.Run, $"run '{runDir}' is {summary.Status} and has no exported model in {modelDir}", "Finish it with `afinado train --resume RUN_DIR`, then evaluate.");
        var config = InputJson.Deserialize<TrainConfig>(configPath, InputKind.RunFile, TrainConfig.Json);
        if (config.BaseModel is null)
            throw new InputError(EvalParameters.Run, "the run trained a model from scratch, so it has no base to compare against", "Evaluate a finetuning run (e.g. `afinado train --recipe fortunes-es`).");
        PinnedIdentity.VerifyBaseWeights(run.Manifest, EvalParameters.Run);
        var folderFiles = PretrainedModel.WeightFiles(config.BaseModel).Select(Path.GetFullPath);
        if (!folderFiles.SequenceEqual(run.Manifest.BaseWeights.Select(b => Path.GetFullPath(b.Path))))
            throw new InputError(EvalParameters.Run, $"the base folder '{config.BaseModel}' now holds other weight files than the manifest pins", "Restore the base folder the run was finetuned from.");

        var tokenizer = TextTokenizers.Create(config.Tokenizer, config.BaseModel);
        int maxTokens = Math.Min(options.MaxTokens, config.SequenceLength);
        // Prompt/completion, alpaca and chat data trained on its answers: the target task scores those answers.
        bool supervised = config.Category is null && File.Exists(config.Data) && SupervisedExamples.IsSupervised(config.Data);
        var specs = new List<(string Name, TaskRole Role, IReadOnlyList<TextDocument> Docs)>();
        if (!supervised)
            specs.Add((config.Data, TaskRole.Target, SplitAssigner.Select(DataCatalog.Resolve(config.Data, config.Category).Documents, DataSplit.Validation)));
        foreach (var category in options.RetainedCategories)
            specs.Add((category, TaskRole.Retained, FortuneCorpus.Load(FortuneLanguage.English, DataSplit.Validation, category)));

        progress($"loading base {config.BaseModel} (sha256 {PinnedIdentity.Short(run.Manifest.BaseSha256)}) and finetuned {modelDir}");
        using var baseModel = PretrainedModel.Load(config.BaseModel);
        using var finetuned = PretrainedModel.Load(modelDir);
        var scores = new List<IReadOnlyDictionary<string, TaskScores>>();
        var itemCounts = new List<string>();
        var alternatives = new Dictionary<string, string>();
        string alternativeText = "the base model as is";
        if (supervised)
        {
            var answers = SupervisedAnswers.Build(config, tokenizer, baseModel.Architecture.MaxPositionEmbeddings, options, progress);
            scores.Add(answers.Score(baseModel, finetuned));
            itemCounts.Add($"{config.Data} {answers.Items} (answers only)");
            if (answers.ShotsLabel is { } label)
            {
                alternatives[SupervisedAnswers.FewShot] = label;
                alternativeText += $" and {label}";
            }
        }
        foreach (var (name, role, docs) in specs)
        {
            var items = docs.Select(d => tokenizer.Encode(d.Text).Take(maxTokens).Select(t => (long)t).ToArray()).Where(t => t.Length >= 2).ToArray();
            new Random(options.Seed).Shuffle(items);
            items = items.Take(options.ItemsPerTask).ToArray();
            if (items.Length < 10)
                throw new InputError(EvalParameters.Run, $"task '{name}' has only {items.Length} held-out items", "Use a data set with more held-out documents.");
            progress($"scoring {name} ({role.ToString().ToLowerInvariant()}, {items.Length} held-out items ≤ {maxTokens} tokens)");
            var task = new LanguageModellingTask(LanguageModellingTask.Describe(name, role), items);
            scores.Add(new Dictionary<string, TaskScores>
            {
                [FinetuneComparison.Base] = task.Score(baseModel, FinetuneComparison.Base),
                [FinetuneComparison.Finetuned] = task.Score(finetuned, FinetuneComparison.Finetuned),
            });
            itemCounts.Add($"{name} {items.Length}");
        }
        Directory.CreateDirectory(outDir);
        Predictions.PredictionWriter.Write(outDir, scores);
        var cost = new Verdicts.FinetuneCost(summary.WallSeconds, summary.MeasuredPeakBytes ?? summary.ProcessPeakBytes);
        var (tasks, gains, forgetting, verdict) = FinetuneComparison.Compare(scores, alternatives, cost,
            options.Policy, options.Bins, options.Resamples, options.Seed);

        // Same contract as the training run: its manifest (so the base hash matches for `report`) plus the output weights scored.
        var manifest = run.Manifest with { OutputWeights = PretrainedModel.WeightFiles(modelDir).Select(f => RunManifest.Hash(Path.GetFullPath(f))).ToList() };
        File.WriteAllText(Path.Combine(outDir, "eval-config.json"), EvalJson.Serialize(options));
        var result = new EvaluationResult
        {
            ResultKey = PinnedIdentity.ResultKey(manifest),
            BaseSha256 = manifest.BaseSha256!,
            FinetunedSha256 = manifest.OutputSha256,
            Description = $"Training run {Path.GetFullPath(runDir)}: {summary.Method} finetune ({summary.Rule}, {summary.Steps} steps, " +
                          $"{summary.TrainableParameters:N0} of {summary.TotalParameters:N0} parameters trainable) of {config.BaseModel} on {config.Data}; " +
                          $"scored on held-out (validation-split) items, {config.Tokenizer} tokens ≤ {maxTokens} per item: {string.Join(", ", itemCounts)}; " +
                          $"cheaper alternatives: {alternativeText}; seed {options.Seed}",
            Tasks = tasks,
            Gains = gains,
            Forgetting = forgetting,
            Verdict = verdict,
            Cost = cost,
        };
        RunFolderWriter.Write(outDir, manifest, summary with { Manifest = manifest }, result);
        return result;
    }
}
