using System.Diagnostics;
using Afinado.Training.LearningRules.Memory;
using Afinado.Training.Memory;
using Afinado.Training.LearningRules.Models;
using Afinado.Training.Optim;
using TorchSharp;
using static TorchSharp.torch;
using Afinado.Planner.Memory;

namespace Afinado.Training.LearningRules.Bench;

/// <summary>
/// Trains one network with one learning rule on Fashion-MNIST and measures test accuracy, wall time, forward/backward
/// passes and (in a tamed child process) peak memory. Rules are built through <see cref="RuleFactory"/>, exactly as the
/// training loop would.
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

        long n = data.TrainImages.shape[0];
        var (mean, std) = spec.StandardizeInputs ? PixelStatistics(data.TrainImages) : (0.0, 1.0);
        using var gen = new Generator(spec.Seed + 100);
        var perm = randperm(n, generator: gen).DetachFromDisposeScope();
        long cursor = 0;
        double lossEma = double.NaN;
        var sw = Stopwatch.StartNew();
        for (int step = 0; step < spec.Steps; step++)
        {
            using var scope = NewDisposeScope();
            if (cursor + spec.BatchSize > n)
            {
                perm.Dispose();
                perm = randperm(n, generator: gen).DetachFromDisposeScope();
                cursor = 0;
            }
            var idx = perm.narrow(0, cursor, spec.BatchSize);
            cursor += spec.BatchSize;
            var images = data.TrainImages.index_select(0, idx);
            if (spec.HorizontalFlip) images = FlipHalf(images, gen);
            if (spec.StandardizeInputs) images = images.sub(mean).div_(std);
            var batch = new Batch(images, data.TrainLabels.index_select(0, idx));
            var r = rule.Step(RuleStep.Of(step, LearningRate(spec, optimizer, step), batch));
            lossEma = double.IsNaN(lossEma) ? r.Loss : 0.98 * lossEma + 0.02 * r.Loss;
            if ((step + 1) % Math.Max(1, spec.Steps / 20) == 0)
                progress?.Report($"{spec.Id}: step {step + 1}/{spec.Steps}, loss {lossEma:F4}, {sw.Elapsed.TotalSeconds:F0} s");
        }
        double seconds = sw.Elapsed.TotalSeconds;
        long peak = ProcessMemory.PeakResidentBytes;
        perm.Dispose();

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
        using var mlp = new RuleMlp([16, 8, 4]);
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
        "mlp" => new RuleMlp(spec.MlpWidths),
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
    private static double LearningRate(FashionMnistRunSpec spec, IOptimizer? optimizer, int step) =>
        spec.CosineDecay && optimizer is not null ? spec.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * step / spec.Steps)) : spec.LearningRate;
}
