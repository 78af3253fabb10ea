using Afinado.Planner.Memory;
using Afinado.Training.Data;
using Afinado.Training.LearningRules;
using Afinado.Training.Models;
using Afinado.Training.Loop;
using Afinado.Training.Optim;
using static TorchSharp.torch;

namespace Afinado.Training.Tests;

/// <summary>The one loop as the bench and the recipes run it: no evaluation, no checkpoints, and (direct ES) no optimizer.</summary>
public class LoopWithoutEvaluationTests
{
    private sealed class Source : IBatchSource
    {
        public int Served { get; private set; }
        public string Description => "random";
        public IReadOnlyList<string> Files => [];
        public long PositionsPerSample => 1;

        public (Tensor Input, Tensor Target) TrainBatch(long seed, long step, int micro, int batchSize)
        {
            Served++;
            using var gen = new TorchSharp.torch.Generator((ulong)(100 + step));
            return (randn([batchSize, 8], generator: gen), randint(0, 3, [batchSize], generator: gen));
        }

        public IEnumerable<(Tensor Input, Tensor Target)> ValidationBatches(int batchSize, int maxBatches) =>
            throw new InvalidOperationException("evaluation is off");
    }

    [Theory]
    [InlineData(LearningRule.Backprop)]
    [InlineData(LearningRule.EsDirect)]
    public void A_loop_without_evaluation_never_asks_for_validation_batches_and_runs_without_an_optimizer(LearningRule ruleKind)
    {
        manual_seed(4);
        using var mlp = new MlpClassifier([8, 16, 3]);
        var trainable = Optimizers.ByPosition(mlp.TrainableParameters);
        using var optimizer = ruleKind == LearningRule.Backprop ? Optimizers.Adam(trainable) : null;
        using var rule = RuleFactory.Create(new RuleSettings { Rule = ruleKind, Es = new EsOptions { Pairs = 2, PopulationChunkPairs = 0 } }, mlp, optimizer);
        var source = new Source();
        var before = mlp.TrainableParameters[0].detach().clone();
        var loop = new TrainingLoop(new LoopOptions(5, 4, 1, new LearningRateSchedule(1e-2, 1e-2, 0, 5), null, EvalEvery: 0, EvalBatches: 0,
            CheckpointEvery: 0, Seed: 1), mlp, trainable, optimizer, rule, source, null);

        var result = loop.Run(new SilentProgress(), CancellationToken.None);

        Assert.Equal(LoopStatus.Completed, result.Status);
        Assert.Equal(5, result.Steps);
        Assert.Null(result.ValidationLoss);
        Assert.Equal(5, source.Served);
        Assert.Equal(5, rule.Counters.Steps);
        Assert.False(before.equal(mlp.TrainableParameters[0]).all().item<bool>(), "the steps must move the weights");
    }
}
