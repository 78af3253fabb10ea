using System.Diagnostics;
using Afinado.Training.Data;
using Afinado.Training.LearningRules;
using Afinado.Training.Loop;
using Afinado.Training.Optim;
using Afinado.Training.Runs;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Recipes;

/// <summary>
/// How a recipe trains: the one training loop at a constant learning rate, without the loop's evaluation or checkpoints
/// (the recipes' callers score the models themselves), logging the mean training loss of every <c>logEvery</c> steps.
/// </summary>
internal static class RecipeLoop
{
    public static TrainingLog Run(nn.Module<Tensor, Tensor> model, IReadOnlyList<Parameter> trainable, IOptimizer optimizer, ILearningRule rule,
        IBatchSource batches, long steps, double learningRate, int logEvery)
    {
        var sw = Stopwatch.StartNew();
        var log = new WindowedLoss(steps, logEvery);
        var options = new LoopOptions((int)steps, BatchSize: 1, GradientAccumulation: 1, new ConstantRate(learningRate), ClipNorm: null,
            EvalEvery: 0, EvalBatches: 0, CheckpointEvery: 0, Seed: 0);
        new TrainingLoop(options, model, Optimizers.ByPosition(trainable), optimizer, rule, batches, null).Run(log, CancellationToken.None);
        return new TrainingLog(steps, sw.Elapsed.TotalSeconds, log.Curve, rule.Counters.PeakGradientBytes);
    }

    private sealed record ConstantRate(double Rate) : ILearningRateSchedule
    {
        public double At(long step) => Rate;
    }

    /// <summary>The recipes' loss curve: the mean training loss of each window of steps, and of the last partial one.</summary>
    private sealed class WindowedLoss(long steps, int logEvery) : ITrainingProgress
    {
        private double _sum;
        private int _count;

        public List<LossPoint> Curve { get; } = [];

        public void Begin(long firstStep, long totalSteps) { }

        public void Step(long step, double loss, double learningRate, double positionsPerSecond, TimeSpan eta)
        {
            _sum += loss;
            _count++;
            if (_count == logEvery || step == steps)
            {
                Curve.Add(new LossPoint(step, _sum / _count));
                _sum = 0;
                _count = 0;
            }
        }

        public void Evaluated(long step, double validationLoss) { }
        public void Message(InputText text) { }
    }
}
