using System.Diagnostics;
using System.Text.Json;
using Afinado.Planner;
using Afinado.Planner.Architecture;
using Afinado.Training.Checkpoints;
using Afinado.Training.Data;
using Afinado.Training.IO;
using Afinado.Training.Memory;
using Afinado.Training.Models;
using Afinado.Training.Optim;
using Afinado.Training.Selection;
using Afinado.Training.Tokenization;
using static TorchSharp.torch;
using Afinado.Planner.Memory;
using Afinado.Training.Runs;

namespace Afinado.Training.Loop;

/// <summary>Extra validation data scored before and after training (e.g. English while finetuning on Spanish).</summary>
public sealed record ExtraEvaluation(string Name, string Data, string? Category = null);

/// <summary>
/// A complete language-model training run in a folder: resolve data and model from a <see cref="TrainConfig"/>, apply
/// the trainable selection, train with the loop, measure peak memory against the planner's prediction, export, and
/// write <c>summary.json</c>. <see cref="Resume"/> rebuilds the same run from <c>RUN_DIR/run-config.json</c>.
/// </summary>
public sealed class LanguageModelRun
{
    public const string ConfigFile = "run-config.json";
    public const string ManifestFile = "manifest.json";
    public const string SummaryFile = "summary.json";

    private readonly TrainConfig config;
    private readonly string runDir;
    private readonly IReadOnlyList<ExtraEvaluation> extras;

    public LanguageModelRun(TrainConfig config, string runDir, IReadOnlyList<ExtraEvaluation>? extras = null)
    {
        this.config = config;
        this.runDir = Path.GetFullPath(runDir);
        this.extras = extras ?? [];
    }

    /// <summary>Predicts the run's peak; defaults to the planner's <c>--device cpu</c> mode.</summary>
    public IPeakPlanner? Planner { get; init; } = new CpuPeakPlanner();

    /// <summary>Reopens a run folder for <c>--resume</c>; <paramref name="maxSteps"/> may extend it.</summary>
    public static LanguageModelRun Resume(string runDir, int? maxSteps = null)
    {
        var path = Path.Combine(runDir, ConfigFile);
        if (!File.Exists(path))
            throw new InputError(RunParameters.Resume, $"\"{runDir}\" has no {ConfigFile}", $"Point {RunParameters.Resume} at the {RunParameters.Out} folder of an earlier afinado train run.");
        var config = RunFiles.Read(path, TrainConfig.FromJson);
        int stored = config.MaxSteps;
        if (maxSteps is { } m) config = config with { MaxSteps = m };
        var extrasPath = Path.Combine(runDir, "extra-evaluations.json");
        var extras = File.Exists(extrasPath) ? RunFiles.Read<List<ExtraEvaluation>>(extrasPath) : null;
        return new LanguageModelRun(config, runDir, extras) { IsResume = true, resumeStepBound = Math.Max(stored, config.MaxSteps) };
    }

    public bool IsResume { get; private init; }
    /// <summary>Highest step a checkpoint of this run can be at: the stored max steps, or the new one if larger.</summary>
    private long resumeStepBound;

    public RunSummary Execute(ITrainingProgress progress, CancellationToken cancel)
    {
        var warnings = TrainConfigChecks.Validate(config);
        var arch = HfConfigReader.Parse(config.ModelConfigJson, config.BaseModel is null ? "model config" : Path.Combine(config.BaseModel, "config.json"));
        TrainConfigChecks.Validate(config, arch);
        foreach (var w in warnings) progress.Message($"warning: {w}");
        if (config.Threads is { } threads) set_num_threads(threads);
        ProcessMemory.TameMalloc();
        var tokenizer = TextTokenizers.Create(config.Tokenizer, config.BaseModel);
        var data = DataCatalog.TokenSource(config.Data, config.Category, tokenizer, config.SequenceLength, config.BaseModel);
        VocabularyFit.Check(tokenizer, arch.VocabSize, [MaxTokenId(data)], TrainParameters.Data, "the training data");
        if (data is SupervisedSource supervised)
        {
            InputText note = $"supervised data: {supervised.TrainExamples} train / {supervised.ValidationExamples} validation examples, loss on the answers; " +
                $"{supervised.Truncated} truncated to {TrainParameters.SequenceLength} {config.SequenceLength} + 1 tokens, {supervised.Dropped} left out (no answer token within the window)";
            if (supervised.LastTurnOnly > 0)
                note = $"{note}; {supervised.LastTurnOnly} conversations on their last assistant turn only (the chat template does not render them incrementally)";
            progress.Message(note);
        }
        var extraSources = extras.Select(e => (e, DataCatalog.TokenSource(e.Data, e.Category, tokenizer, config.SequenceLength))).ToList();
        foreach (var (extra, source) in extraSources)
            VocabularyFit.Check(tokenizer, arch.VocabSize, [MaxTokenId(source)], TrainParameters.Data, $"the {extra.Name} evaluation data");
        var baseFiles = config.BaseModel is null ? [] : PretrainedModel.WeightFiles(config.BaseModel);
        var selection = SharedSelection.CreateParameterSelection(arch, config.Method, config.Freeze, config.LoraRank, config.LoraAlpha, config.LoraDropout, config.LoraTargets);
        var request = new PeakPlanRequest(arch, selection, config);
        long? planned = Planner?.PlanPeakBytes(request);
        EnsureFitsInMemory(request, planned);
        var manifest = PrepareRunDir(baseFiles, data.Files.Concat(extraSources.SelectMany(x => x.Item2.Files)).Distinct().ToList());

        var attention = config.Attention;
        WarmUpKernels(arch, attention, config.GradientCheckpointing, config.SequenceLength);
        var meter = new PeakMeter();
        meter.Start();

        manual_seed(config.Seed);
        using var model = new LlamaForCausalLM(arch, attention) { GradientCheckpointing = config.GradientCheckpointing };
        // Loading and the evaluation before training take a while on a real model: say what is happening (issue 17: no
        // silent minutes before "step 1").
        if (baseFiles.Count > 0)
            progress.Message($"loading the base weights: {baseFiles.Count} file{(baseFiles.Count == 1 ? "" : "s")}, {Gigabytes(baseFiles.Sum(f => new FileInfo(f).Length))} from {config.BaseModel}");
        for (int i = 0; i < baseFiles.Count; i++)
        {
            ModuleWeights.Load(model, baseFiles[i], strict: baseFiles.Count == 1, ignoreExtra: n => arch.TiedEmbeddings && n == "lm_head.weight");
            if (baseFiles.Count > 1) progress.Message($"loaded {i + 1}/{baseFiles.Count}: {Path.GetFileName(baseFiles[i])}");
        }
        var trainable = SelectionApplier.Apply(model, selection);
        long total = model.parameters().Sum(p => p.numel());
        long trainableCount = trainable.Sum(t => t.Parameter.numel());
        progress.Message(SelectionApplier.PeftSummary(model));

        using var optimizer = Optimizers.Create(config.Optimizer, trainable, config.WeightDecay, config.Momentum, config.Beta1, config.Beta2, config.Epsilon);
        var rule = LoopRules.Create(config, new RuleContext(model, trainable, optimizer, TrainingLoop.CrossEntropy, config.Seed));
        var schedule = new LearningRateSchedule(config.LearningRate, config.MinLearningRate, config.WarmupSteps, config.MaxSteps);
        var store = new CheckpointStore(runDir, manifest.ConfigSha256);
        var loop = new TrainingLoop(new LoopOptions(config.MaxSteps, config.BatchSize, config.GradientAccumulation, schedule, config.ClipNorm,
            config.EvalEvery, config.EvalBatches, config.CheckpointEvery, config.Seed), model, trainable, optimizer, rule, data, store);

        var before = ReadBefore();
        RunSummary.ResumeRecord? resumed = null;
        if (IsResume)
        {
            using var checkpoint = CheckpointRecovery.Open(store, loop.Expectation(resumeStepBound), runDir, progress, out var skipped);
            if (checkpoint.State.Step > config.MaxSteps)
                throw new InputError(TrainParameters.MaxSteps, $"{config.MaxSteps} is below the step of the run's checkpoint, {checkpoint.State.Step}", $"Use {TrainParameters.MaxSteps} {checkpoint.State.Step} or more.");
            loop.Restore(checkpoint);
            // Only now may a new --max-steps replace the stored one: a refused resume leaves the run folder as it was.
            AtomicFile.WriteAllText(Path.Combine(runDir, ConfigFile), config.ToJson());
            resumed = new RunSummary.ResumeRecord(checkpoint.Dir, checkpoint.State.Step, skipped);
            progress.Message($"resumed from {checkpoint.Dir} at step {loop.StartStep}");
        }
        else
        {
            progress.Message($"evaluating before training: up to {config.EvalBatches} validation batches of {config.BatchSize} × {config.SequenceLength} tokens" +
                (extraSources.Count > 0 ? $" on the training data and on {string.Join(", ", extraSources.Select(x => x.e.Name))}" : "") + " …");
            var clock = Stopwatch.StartNew();
            before = new Before(TrainingLoop.Evaluate(model, data, config.BatchSize, config.EvalBatches).Loss,
                extraSources.ToDictionary(x => x.e.Name, x => TrainingLoop.Evaluate(model, x.Item2, config.BatchSize, config.EvalBatches).Loss));
            progress.Message($"validation loss before training: {before.Validation:F4} ({clock.Elapsed.TotalSeconds:F1} s)");
            AtomicFile.WriteAllText(Path.Combine(runDir, "before.json"), JsonSerializer.Serialize(before, TrainConfig.Json));
        }

        var result = loop.Run(progress, cancel);
        long? measured = meter.PeakBytes;
        rule.Dispose();

        if (result.Status == LoopStatus.Completed && extraSources.Count > 0)
            progress.Message($"evaluating after training on {string.Join(", ", extraSources.Select(x => x.e.Name))} …");
        var extraAfter = result.Status == LoopStatus.Completed
            ? extraSources.ToDictionary(x => x.e.Name, x => (double?)TrainingLoop.Evaluate(model, x.Item2, config.BatchSize, config.EvalBatches).Loss)
            : new Dictionary<string, double?>();
        string? modelDir = null;
        if (result.Status == LoopStatus.Completed)
        {
            modelDir = Path.Combine(runDir, "model");
            ModelExport.Export(model, config, selection, modelDir, selection.UsesLora ? Path.Combine(runDir, "adapter") : null);
        }
        var summary = new RunSummary
        {
            Status = result.Status.ToString().ToLowerInvariant(),
            Message = result.Message,
            Method = TrainVocabulary.Word(config.Method),
            Rule = rule.Name,
            TotalParameters = total,
            TrainableParameters = trainableCount,
            PlannedPeakBytes = planned,
            MeasuredPeakBytes = measured,
            PeakError = planned is > 0 && measured is { } m ? (m - planned.Value) / (double)planned.Value : null,
            Steps = result.Steps,
            MaxSteps = config.MaxSteps,
            // Step 1's loss is computed before any update: the training loss of the base on its first batch.
            InitialTrainLoss = result.LossCurve is { Count: > 0 } curve && curve[0].Step == 1 ? curve[0].TrainLoss : null,
            InitialValidationLoss = before?.Validation,
            FinalTrainLoss = result.TrainLoss,
            FinalValidationLoss = result.ValidationLoss,
            FinalValidationAccuracy = result.ValidationAccuracy,
            ExtraValidation = extraSources.ToDictionary(x => x.e.Name,
                x => new RunSummary.LossBeforeAfter(before?.Extra.GetValueOrDefault(x.e.Name) ?? double.NaN, extraAfter.GetValueOrDefault(x.e.Name))),
            WallSeconds = result.WallSeconds,
            ForwardPasses = result.ForwardPasses,
            TrainPositions = result.TrainPositions,
            PositionsPerSecond = result.WallSeconds > 0 ? result.TrainPositions / result.WallSeconds : null,
            ModelDir = modelDir,
            Manifest = manifest,
            LossCurve = result.LossCurve,
            Resumed = resumed,
        };
        AtomicFile.WriteAllText(Path.Combine(runDir, SummaryFile), JsonSerializer.Serialize(summary, TrainConfig.Json));
        progress.Message(MemoryLine(planned, measured));
        return summary;
    }

    public static string MemoryLine(long? planned, long? measured) =>
        FormattableString.Invariant($"peak memory: planned {Mib(planned)}, measured {Mib(measured)}") +
        (planned is > 0 && measured is { } m ? FormattableString.Invariant($" ({100.0 * (m - planned.Value) / planned.Value:+0.0;-0.0}%)") : "");

    private static string Mib(long? bytes) => bytes is { } b ? FormattableString.Invariant($"{b / 1048576.0:F1} MiB") : "n/a";

    private sealed record Before(double Validation, Dictionary<string, double> Extra);

    private static string Gigabytes(long bytes) => $"{bytes / 1e9:0.##} GB";

    private Before? ReadBefore()
    {
        var p = Path.Combine(runDir, "before.json");
        return File.Exists(p) ? RunFiles.Read<Before>(p) : null;
    }

    /// <summary>Free memory of this machine (null: unknown); tests replace it to stand for a smaller machine.</summary>
    public Func<long?> AvailableMemory { get; init; } = SystemMemory.AvailableBytes;

    /// <summary>
    /// Refuses a run whose planned peak is above the memory this machine has free, before the run folder or a single
    /// weight is allocated: otherwise libtorch's allocation fails natively (or the kernel's OOM killer ends the process)
    /// after minutes of loading. The plan's CPU predictions are within 4 % of measured peaks (cpu-measured.csv).
    /// </summary>
    private void EnsureFitsInMemory(PeakPlanRequest request, long? planned)
    {
        if (planned is not { } need || AvailableMemory() is not { } free || need <= free) return;
        var fixes = Planner!.FixesWithin(request, free);
        throw new DoesNotFitError(
            FormattableString.Invariant($"the run needs {need / 1048576.0:N0} MiB at its peak (the plan for this CPU) but this machine has {free / 1048576.0:N0} MiB free"),
            fixes);
    }

    /// <summary>Writes config + manifest for a new run; for a resumed run checks that nothing it was made from changed.</summary>
    private RunManifest PrepareRunDir(IReadOnlyList<string> baseFiles, IReadOnlyList<string> dataFiles)
    {
        Directory.CreateDirectory(runDir);
        var manifestPath = Path.Combine(runDir, ManifestFile);
        var fresh = RunManifest.Create(config with { MaxSteps = 0 }, baseFiles, dataFiles);
        if (IsResume)
        {
            var old = RunFiles.Read<RunManifest>(manifestPath);
            if (old.BaseWeights.Select(b => b.Sha256).SequenceEqual(fresh.BaseWeights.Select(b => b.Sha256)) is false)
                throw new InputError(RunParameters.Resume, "the base weights changed since the run started (SHA-256 differs)", "Restore the original base model files or start a new run.");
            if (old.DataSha256 != fresh.DataSha256)
                throw new InputError(RunParameters.Resume, "the training data changed since the run started (SHA-256 differs)", "Restore the original data files or start a new run.");
            return old;
        }
        if (File.Exists(Path.Combine(runDir, ConfigFile)))
            throw new InputError(RunParameters.Out, $"\"{runDir}\" already holds a run", $"Choose a new {RunParameters.Out} folder, or continue it with {RunParameters.Resume}.");
        AtomicFile.WriteAllText(Path.Combine(runDir, ConfigFile), config.ToJson());
        AtomicFile.WriteAllText(Path.Combine(runDir, "extra-evaluations.json"), JsonSerializer.Serialize(extras, TrainConfig.Json));
        AtomicFile.WriteAllText(manifestPath, JsonSerializer.Serialize(fresh, TrainConfig.Json));
        return fresh;
    }

    /// <summary>
    /// Runs forward and backward of a one-layer, batch-1 copy of the model at the real widths and sequence length before
    /// the memory baseline, so what the first kernels fault in for good (libtorch code pages, thread pools, per-thread
    /// GEMM/attention workspaces sized by the matrix shapes) is not counted as tensor memory.
    /// </summary>
    public static void WarmUpKernels(ModelArchitecture arch, AttentionKernel attention, bool checkpointing, int sequenceLength = 16)
    {
        var tiny = arch with { NumLayers = 1, Tensors = [] };
        using (var scope = NewDisposeScope())
        {
            var m = new LlamaForCausalLM(tiny, attention) { GradientCheckpointing = checkpointing };
            var x = randint(0, tiny.VocabSize, new long[] { 1, sequenceLength });
            var loss = TrainingLoop.CrossEntropy(m.call(x), x);
            loss.backward();
            m.Dispose();
            // Guided ES orthonormalises its surrogates with a QR, and LAPACK's first call faults in memory for good
            // (measured in a test host: qr of [64, 1] grew VmHWM by 3.4 MiB, a [108544, 1] one afterwards by its 0.4 MiB
            // output; in the guided-es ground-truth runs the measured peak dropped by 0.7 MiB with this warm-up).
            linalg.qr(randn(64, 2), linalg.QRMode.Reduced);
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();
    }

    private static int MaxTokenId(IBatchSource source) => source switch
    {
        TokenStreamSource t => t.MaxTokenId,
        SupervisedSource s => s.MaxTokenId,
        _ => 0,
    };
}
