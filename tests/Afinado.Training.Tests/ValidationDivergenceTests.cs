using Afinado.Planner.Memory;
using Afinado.Training.Checkpoints;
using Afinado.Training.Data;
using Afinado.Training.Loop;
using Afinado.Training.Optim;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Tests;

/// <summary>The loop's NaN stop covers the validation loss too, not only the training loss.</summary>
public class ValidationDivergenceTests
{
    /// <summary>A linear classifier that is healthy in training mode and yields NaN logits in eval mode, so only the
    /// validation loss goes non-finite (as when an update breaks the weights right before an evaluation).</summary>
    private sealed class NanInEval : nn.Module<Tensor, Tensor>
    {
        private readonly Linear linear;
        public NanInEval() : base(nameof(NanInEval))
        {
            linear = nn.Linear(4, 3);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => training ? linear.call(x) : linear.call(x) * double.NaN;
    }

    private sealed class RandomSource : IBatchSource
    {
        public string Description => "random";
        public IReadOnlyList<string> Files => [];
        public long PositionsPerSample => 1;
        public (Tensor Input, Tensor Target) TrainBatch(long seed, long step, int micro, int batchSize) =>
            (randn(batchSize, 4), randint(0, 3, new long[] { batchSize }));
        public IEnumerable<(Tensor Input, Tensor Target)> ValidationBatches(int batchSize, int maxBatches)
        {
            for (int i = 0; i < maxBatches; i++) yield return (randn(batchSize, 4), randint(0, 3, new long[] { batchSize }));
        }
    }

    [Theory]
    [InlineData(3, 3, "step-00000002")] // periodic evaluation at step 3; step 2 was the last checkpoint
    [InlineData(0, 6, "step-00000004")] // --eval-every 0: the one evaluation at the end comes before the final checkpoint
    public void Nan_validation_loss_stops_the_run_and_keeps_the_last_good_checkpoint(int evalEvery, long stoppedAt, string kept)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"afinado-valnan-{Guid.NewGuid():N}");
        try
        {
            using var model = new NanInEval();
            var trainable = model.named_parameters().Select(p => (p.name, p.parameter)).ToList();
            var optimizer = Optimizers.Create("sgd", trainable, 0, 0, 0.9, 0.95, 1e-8);
            var store = new CheckpointStore(dir);
            var options = new LoopOptions(MaxSteps: 6, BatchSize: 4, GradientAccumulation: 1, new LearningRateSchedule(1e-2, 1e-3, 0, 6),
                ClipNorm: null, EvalEvery: evalEvery, EvalBatches: 1, CheckpointEvery: 2, Seed: 1);
            using var rule = LoopRules.Create(RunTests.TinyRun(1) with { Rule = LearningRule.Backprop }, new RuleContext(model, trainable, optimizer, TrainingLoop.CrossEntropy, Seed: 1));
            var loop = new TrainingLoop(options, model, trainable, optimizer, rule, new RandomSource(), store);

            var said = new SaidLines();
            var result = loop.Run(said, CancellationToken.None);

            Assert.Equal(LoopStatus.Diverged, result.Status);
            Assert.Equal(stoppedAt, result.Steps);
            Assert.Contains($"validation loss became NaN at step {stoppedAt}", result.Message);
            Assert.Contains("last good checkpoint is kept", result.Message);
            // The advice names the loop's parameters, typed for the front end (the CLI shows its flags), neutral in the summary.
            var advice = Assert.Single(said.Lines);
            Assert.Equal([TrainParameters.LearningRate, TrainParameters.ClipNorm], advice.Parameters);
            Assert.Equal(advice.ToString(), result.Message);
            Assert.Contains("Lower learning_rate, set clip_norm", result.Message);
            // The weights that evaluated to NaN were never checkpointed.
            Assert.Equal(kept, File.ReadAllText(Path.Combine(dir, "checkpoints", "latest")).Trim());
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    private sealed class SaidLines : ITrainingProgress
    {
        public List<InputText> Lines { get; } = [];
        public void Begin(long firstStep, long totalSteps) { }
        public void Step(long step, double loss, double learningRate, double positionsPerSecond, TimeSpan eta) { }
        public void Evaluated(long step, double validationLoss) { }
        public void Message(InputText text) => Lines.Add(text);
    }
}
