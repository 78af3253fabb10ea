using System.Diagnostics;
using Afinado.Training.LearningRules.Memory;
using Afinado.Training.Memory;
using Afinado.Training.LearningRules.Models;
using Afinado.Training.Models;
using Afinado.Training.Loop;
using Afinado.Training.Optim;
using TorchSharp;
using static TorchSharp.torch;
using Afinado.Planner.Memory;

namespace Afinado.Training.LearningRules.Bench;

/// <summary>
/// Trains one network with one learning rule on Fashion-MNIST and measures test accuracy, wall time, forward/backward
/// passes and (in a tamed child process) peak memory. Rules are built through <see cref="RuleFactory"/> and trained by the
/// one <see cref="TrainingLoop"/>, as <c>afinado train</c>'s are.
/// </summary>
public static class FashionMnistBench
{
    public sealed record Data(Tensor TrainImages, Tensor TrainLabels, Tensor TestImages, Tensor TestLabels);

    public static FashionMnistRunResult Run(FashionMnistRunSpec spec, Data data, IProgress<string>? progress = null)
    {
        if (spec.Steps < 1) throw new ArgumentOutOfRangeException(nameof(spec), "steps must be ≥ 1");
        Warmup();
        WarmupAtShape(spec, data);
        // Freed managed objects and their native tensors first, so the baseline holds no old garbage.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        ProcessMemory.Trim();
        long baseline = ProcessMemory.ResidentBytes;
        ProcessMemory.ResetPeak();

        torch.manual_seed((long)spec.Seed);
        using var model = BuildModel(spec);
        var lossModel = (IFeedbackModel)model;
        var parameters = lossModel.TrainableParameters;
        using var optimizer = BuildOptimizer(spec, parameters);   // null for direct ES
        using var rule = BuildRule(spec, lossModel, optimizer);

        var (mean, std) = spec.StandardizeInputs ? PixelStatistics(data.TrainImages) : (0.0, 1.0);
        using var order = new TrainingOrder(spec, data, mean, std);
        var reporter = new EmaProgress(spec, progress);
        var sw = Stopwatch.StartNew();
        // The one training loop, without its evaluation and checkpoints: the bench scores the test set itself below.
        var loop = new TrainingLoop(new LoopOptions(spec.Steps, spec.BatchSize, 1, new BenchSchedule(spec, optimizer is not null), ClipNorm: null,
            EvalEvery: 0, EvalBatches: 0, CheckpointEvery: 0, Seed: (long)spec.Seed), model, Optimizers.ByPosition(parameters), optimizer, rule,
            new global::Afinado.Training.Data.WalkBatches($"fashion-mnist/{spec.Id}", order.Next), null);
        loop.Run(reporter, CancellationToken.None);
        double seconds = sw.Elapsed.TotalSeconds;
        long peak = ProcessMemory.PeakResidentBytes;
        double lossEma = reporter.LossEma;

        double accuracy;
        using (var testImages = spec.StandardizeInputs ? data.TestImages.sub(mean).div_(std) : data.TestImages.alias())
            accuracy = Accuracy(model, testImages, data.TestLabels);
        return new FashionMnistRunResult
        {
            Spec = spec,
            Parameters = parameters.Sum(p => p.numel()),
            TestAccuracy = accuracy,
            FinalTrainLoss = lossEma,
            TrainSeconds = seconds,
            Steps = rule.Counters.Steps,
            MemorySteps = rule.Counters.Steps,
            ForwardPasses = rule.Counters.ForwardPasses,
            BackwardPasses = rule.Counters.BackwardPasses,
            BaselineRssBytes = baseline,
            PeakRssBytes = peak,
            MallocTamed = ProcessMemory.MallocTamed,
            PredictedPeakBytes = spec.Network == "mlp" ? RuleMemory.Peak(MemoryJob(spec)) : 0,
        };
    }

    /// <summary>Global mean and standard deviation of all training pixels (one scalar each, as torchvision's Normalize).</summary>
    private static (double Mean, double Std) PixelStatistics(Tensor images)
    {
        using var scope = NewDisposeScope();
        return (images.mean().ToDouble(), images.std().ToDouble());
    }

    /// <summary>Mirrors a seeded random half of the batch left-right (images stored as flat 784-vectors or N×1×28×28).</summary>
    private static Tensor FlipHalf(Tensor images, Generator gen)
    {
        var square = images.reshape(images.shape[0], 28, 28);
        var flip = rand(new long[] { images.shape[0], 1, 1 }, generator: gen).lt(0.5);
        return where(flip, square.flip(2), square).reshape(images.shape);
    }

    /// <summary>The ledger job that describes this row (MLP rows).</summary>
    public static MlpMemoryJob MemoryJob(FashionMnistRunSpec spec) => new()
    {
        Widths = spec.MlpWidths,
        Batch = spec.BatchSize,
        Rule = spec.Rule,
        Optimizer = spec.Optimizer,
        EsChunkPairs = spec.Rule == LearningRule.Es ? spec.Es.PopulationChunkPairs : spec.GuidedEs.PopulationChunkPairs,
        EsPairs = spec.Rule == LearningRule.Es ? spec.Es.Pairs : spec.GuidedEs.Pairs,
        SubspaceDim = spec.GuidedEs.SubspaceDim,
        EsNoiseRank = spec.Rule == LearningRule.Es ? spec.Es.NoiseRank : 0,
    };

    /// <summary>
    /// One tiny step of every kind (autograd backward, Adam, bmm, custom function) before the baseline, so thread pools,
    /// kernels and allocator arenas libtorch sets up on first use are not charged to the measured row.
    /// </summary>
    private static void Warmup()
    {
        using var scope = NewDisposeScope();
        using var mlp = new MlpClassifier([16, 8, 4]);
        using var opt = Optimizers.Adam(Optimizers.ByPosition(mlp.TrainableParameters));
        var step = RuleStep.Of(0, 1e-3, new Batch(randn(4, 16), tensor(new long[] { 0, 1, 2, 3 })));
        using var dfa = new DfaRule(mlp, opt, new DfaFeedback(1));
        dfa.Step(step);
        using var bp = new BackpropRule(mlp, opt);
        bp.Step(step);
        using var es = new EsRule(mlp, opt, new EsOptions { Pairs = 2, PopulationChunkPairs = 2 });
        es.Step(step);
        using var lenet = new RuleLeNet();
        lenet.Loss(new Batch(randn(2, 1, 28, 28), tensor(new long[] { 0, 1 }))).backward();
    }

    /// <summary>
    /// One step of this row's own model, rule and batch before the baseline. What a kernel faults in for good on its first
    /// call at a given shape (GEMM/bmm workspaces, code pages) is not tensor memory: measured on the 784-32-10 ES row, the
    /// first population bmm ([32 members, 256, 784] × [784, 32]) grew VmHWM by 10.9 MiB, the same call again by 1.5 MiB.
    /// The language-model trainer warms up the same way (LanguageModelRun.WarmUpKernels). Seeds are set after this.
    /// </summary>
    private static void WarmupAtShape(FashionMnistRunSpec spec, Data data)
    {
        using (var scope = NewDisposeScope())
        {
            using var model = BuildModel(spec);
            var lossModel = (IFeedbackModel)model;
            using var optimizer = BuildOptimizer(spec, lossModel.TrainableParameters);
            using var rule = BuildRule(spec, lossModel, optimizer);
            long b = Math.Min(spec.BatchSize, data.TrainImages.shape[0]);
            rule.Step(RuleStep.Of(0, spec.LearningRate, new Batch(data.TrainImages.narrow(0, 0, b), data.TrainLabels.narrow(0, 0, b))));
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();
    }

    public static double Accuracy(nn.Module<Tensor, Tensor> model, Tensor images, Tensor labels)
    {
        using var _ = no_grad();
        long correct = 0, n = images.shape[0];
        for (long i = 0; i < n; i += 1000)
        {
            using var scope = NewDisposeScope();
            long len = Math.Min(1000, n - i);
            correct += model.call(images.narrow(0, i, len)).argmax(1).eq(labels.narrow(0, i, len)).sum().ToInt64();
        }
        return (double)correct / n;
    }

    private static nn.Module<Tensor, Tensor> BuildModel(FashionMnistRunSpec spec) => spec.Network switch
    {
        "mlp" => new MlpClassifier(spec.MlpWidths),
        "lenet" => new RuleLeNet(spec.LeNetChannels[0], spec.LeNetChannels[1]),
        _ => throw new ArgumentOutOfRangeException(nameof(spec), spec.Network, "network must be mlp or lenet"),
    };

    /// <summary>The row's optimizer: Adam (β 0.9/0.999, ε 1e-8), AdamW with the row's weight decay, or SGD with momentum
    /// 0.9; null for direct ES. Its state is created at the first step, as PyTorch's.</summary>
    private static IOptimizer? BuildOptimizer(FashionMnistRunSpec spec, IReadOnlyList<TorchSharp.Modules.Parameter> ps) => spec.Optimizer switch
    {
        "none" => null,
        "adam" => Optimizers.Adam(Optimizers.ByPosition(ps)),
        "adamw" => new AdamW(Optimizers.ByPosition(ps), 0.9, 0.999, 1e-8, spec.WeightDecay),
        "sgd" => new Sgd(Optimizers.ByPosition(ps), momentum: 0.9, weightDecay: 0),
        _ => throw new ArgumentOutOfRangeException(nameof(spec), spec.Optimizer, "optimizer must be adam or sgd"),
    };

    private static ILearningRule BuildRule(FashionMnistRunSpec spec, IFeedbackModel model, IOptimizer? optimizer) =>
        RuleFactory.Create(new RuleSettings
        {
            Rule = spec.Rule,
            Es = spec.Es with { Seed = spec.Seed },
            GuidedEs = spec.GuidedEs with { Seed = spec.Seed },
            Surrogate = spec.Surrogate,
            StaleEvery = spec.StaleEvery,
            FeedbackSeed = spec.Seed + 7,
        }, model, optimizer);

    /// <summary>Step t's rate: lr₀·½(1 + cos(πt/T)) with cosine decay, else lr₀; direct ES keeps its constant step size.</summary>
    private sealed record BenchSchedule(FashionMnistRunSpec Spec, bool HasOptimizer) : ILearningRateSchedule
    {
        public double At(long step) =>
            Spec.CosineDecay && HasOptimizer ? Spec.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * step / Spec.Steps)) : Spec.LearningRate;
    }

    /// <summary>
    /// The row's minibatches in its own order: a seeded permutation of the training images, drawn anew when the next batch
    /// would run past its end, with the row's flips (from the same generator) and standardization.
    /// </summary>
    private sealed class TrainingOrder : IDisposable
    {
        private readonly FashionMnistRunSpec _spec;
        private readonly FashionMnistBench.Data _data;
        private readonly double _mean, _std;
        private readonly Generator _gen;
        private Tensor _perm;
        private long _cursor;

        public TrainingOrder(FashionMnistRunSpec spec, FashionMnistBench.Data data, double mean, double std)
        {
            (_spec, _data, _mean, _std) = (spec, data, mean, std);
            _gen = new Generator(spec.Seed + 100);
            _perm = randperm(data.TrainImages.shape[0], generator: _gen).DetachFromDisposeScope();
        }

        public Batch Next()
        {
            long n = _data.TrainImages.shape[0];
            if (_cursor + _spec.BatchSize > n)
            {
                _perm.Dispose();
                _perm = randperm(n, generator: _gen).DetachFromDisposeScope();
                _cursor = 0;
            }
            var idx = _perm.narrow(0, _cursor, _spec.BatchSize);
            _cursor += _spec.BatchSize;
            var images = _data.TrainImages.index_select(0, idx);
            if (_spec.HorizontalFlip) images = FlipHalf(images, _gen);
            if (_spec.StandardizeInputs) images = images.sub(_mean).div_(_std);
            return new Batch(images, _data.TrainLabels.index_select(0, idx));
        }

        public void Dispose()
        {
            _perm.Dispose();
            _gen.Dispose();
        }
    }

    /// <summary>The bench's progress line: an exponential moving average of the training loss, twenty times a row.</summary>
    private sealed class EmaProgress(FashionMnistRunSpec spec, IProgress<string>? progress) : ITrainingProgress
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();

        public double LossEma { get; private set; } = double.NaN;

        public void Begin(long firstStep, long totalSteps) { }

        public void Step(long step, double loss, double learningRate, double positionsPerSecond, TimeSpan eta)
        {
            LossEma = double.IsNaN(LossEma) ? loss : 0.98 * LossEma + 0.02 * loss;
            if (step % Math.Max(1, spec.Steps / 20) == 0)
                progress?.Report($"{spec.Id}: step {step}/{spec.Steps}, loss {LossEma:F4}, {_clock.Elapsed.TotalSeconds:F0} s");
        }

        public void Evaluated(long step, double validationLoss) { }

        public void Message(InputText text) => progress?.Report($"{spec.Id}: {text}");
    }
}
