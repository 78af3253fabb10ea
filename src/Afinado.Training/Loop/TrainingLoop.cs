using System.Diagnostics;
using Afinado.Training.Checkpoints;
using Afinado.Training.Data;
using Afinado.Training.LearningRules;
using Afinado.Training.Optim;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Afinado.Training.Runs;

namespace Afinado.Training.Loop;

/// <summary>How the loop runs: steps, batches, schedule, evaluation and checkpoint cadence. <see cref="EvalBatches"/> 0
/// turns the loop's own evaluation off (a host that scores the model its own way: the Fashion-MNIST bench, the recipes).</summary>
public sealed record LoopOptions(int MaxSteps, int BatchSize, int GradientAccumulation, ILearningRateSchedule Schedule,
    double? ClipNorm, int EvalEvery, int EvalBatches, int CheckpointEvery, long Seed)
{
    public bool Evaluates => EvalBatches > 0;
}

public enum LoopStatus { Completed, Interrupted, Diverged }

public sealed record LoopResult(LoopStatus Status, long Steps, double? TrainLoss, double? ValidationLoss, double? ValidationAccuracy,
    double WallSeconds, long ForwardPasses, long TrainPositions, string? Message, IReadOnlyList<LossPoint>? LossCurve = null);

/// <summary>
/// The one training loop (nanoGPT style): for each step, reseed from (seed, step), set the learning rate, let the rule
/// update on that step's micro-batches, stop on a non-finite loss, evaluate and checkpoint periodically, and stop
/// cleanly (after checkpointing) when cancelled. Everything it does is a function of the seed and the step, so a run
/// resumed from a checkpoint continues bit for bit. Every training run goes through it: <c>afinado train</c> and
/// <c>pretrain</c>, the Fashion-MNIST bench and <c>afinado eval</c>'s recipes.
/// </summary>
public sealed class TrainingLoop
{
    private readonly LoopOptions options;
    private readonly nn.Module<Tensor, Tensor> model;
    private readonly IReadOnlyList<(string Name, Parameter Parameter)> trainable;
    /// <summary>Null for a rule that keeps no optimizer (direct ES in the bench): no optimizer state to save or restore.</summary>
    private readonly IOptimizer? optimizer;
    private readonly ILearningRule rule;
    private readonly IBatchSource data;
    private readonly CheckpointStore? checkpoints;
    private CheckpointState state = new() { Step = 0 };

    public TrainingLoop(LoopOptions options, nn.Module<Tensor, Tensor> model, IReadOnlyList<(string Name, Parameter Parameter)> trainable,
        IOptimizer? optimizer, ILearningRule rule, IBatchSource data, CheckpointStore? checkpoints)
    {
        (this.options, this.model, this.trainable, this.optimizer, this.rule, this.data, this.checkpoints) =
            (options, model, trainable, optimizer, rule, data, checkpoints);
    }

    public long StartStep => state.Step;

    /// <summary>Mean cross-entropy of logits [..., C] against class ids [...].</summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor target) =>
        nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), target.reshape(-1));

    /// <summary>What a checkpoint must hold for this loop to resume from it (see <see cref="CheckpointExpectation"/>).</summary>
    public CheckpointExpectation Expectation(long maxStep)
    {
        using var rng = random.get_rng_state();
        return new CheckpointExpectation(maxStep, trainable.ToDictionary(t => t.Name, t => new TensorSpec(t.Parameter.dtype, t.Parameter.shape)), rng.shape[0]);
    }

    /// <summary>Restores trainable weights, optimizer and rule state, RNG and the step counter from a verified checkpoint.</summary>
    public void Restore(Checkpoint checkpoint)
    {
        using (no_grad())
            foreach (var (name, p) in trainable) p.copy_(checkpoint.Trainable[name]);
        var opt = checkpoint.OptimizerState;
        optimizer?.LoadStateDict(opt.Where(kv => !kv.Key.StartsWith("rule/", StringComparison.Ordinal)).ToDictionary());
        rule.LoadStateDict(opt.Where(kv => kv.Key.StartsWith("rule/", StringComparison.Ordinal)).ToDictionary(kv => kv.Key[5..], kv => kv.Value));
        // Present, base64 and of libtorch's length: CheckpointExpectation checked it (a wrong length aborts natively).
        using (var t = tensor(Convert.FromBase64String(checkpoint.State.TorchRngState!), dtype: ScalarType.Byte))
            random.set_rng_state(t);
        state = checkpoint.State;
    }

    public LoopResult Run(ITrainingProgress progress, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        double wallBefore = state.WallSeconds;
        long forward = state.ForwardPasses, positions = state.TrainPositions;
        double? trainLoss = state.LastTrainLoss, valLoss = state.LastValidationLoss, valAcc = null;
        long step = state.Step;
        long stepsThisRun = 0;
        // The curve continues across resumes: the checkpoint carries the points logged so far.
        var curve = new List<LossPoint>(state.LossCurve?.Where(p => p.Step <= step) ?? []);
        model.train();
        progress.Begin(step, options.MaxSteps);
        LoopResult Diverged(string what, long atStep)
        {
            // The advice names the loop's own parameters: the front end renders them (the CLI as its flags); the run's
            // summary keeps their neutral names.
            InputText msg = $"{what} {LastGoodCheckpoint()} Lower {TrainParameters.LearningRate}, set {TrainParameters.ClipNorm}, or check the data.";
            progress.Message(msg);
            return new LoopResult(LoopStatus.Diverged, atStep, trainLoss, valLoss, valAcc, wallBefore + clock.Elapsed.TotalSeconds, forward, positions, msg.ToString(), curve);
        }
        var samples = options.BatchSize * options.GradientAccumulation;
        while (step < options.MaxSteps)
        {
            manual_seed(unchecked(options.Seed * 1_000_003 + step));
            double lr = options.Schedule.At(step);
            long s = step;
            RuleStepResult outcome;
            // One scope per step releases every handle the rule creates (state it keeps must be detached from scopes).
            using (NewDisposeScope())
                outcome = rule.Step(new RuleStep(step, lr, options.GradientAccumulation, m =>
                {
                    var (x, y) = data.TrainBatch(options.Seed, s, m, options.BatchSize);
                    return new Batch(x, y);
                }, options.ClipNorm));
            forward += outcome.ForwardPasses;
            if (!double.IsFinite(outcome.Loss))
                return Diverged($"training loss became {outcome.Loss} at step {step} (learning rate {lr:G3}); stopped without updating.", step);
            trainLoss = outcome.Loss;
            step++;
            stepsThisRun++;
            positions += samples * data.PositionsPerSample;
            double elapsed = clock.Elapsed.TotalSeconds;
            double rate = stepsThisRun * samples * data.PositionsPerSample / Math.Max(elapsed, 1e-9);
            var eta = TimeSpan.FromSeconds(elapsed / stepsThisRun * (options.MaxSteps - step));
            progress.Step(step, outcome.Loss, lr, rate, eta);

            bool last = step == options.MaxSteps;
            double? evaluated = null;
            bool periodic = options.EvalEvery > 0 && (step % options.EvalEvery == 0 || last);
            // With --eval-every 0 the one evaluation is the final one; it too comes before the last checkpoint.
            if (options.Evaluates && (periodic || (last && options.EvalEvery <= 0)))
            {
                (valLoss, valAcc) = Evaluate(model, data, options.BatchSize, options.EvalBatches);
                if (periodic) evaluated = valLoss;
                if (!double.IsFinite(valLoss.Value))
                {
                    curve.Add(new LossPoint(step, outcome.Loss, evaluated));
                    // The update that produced these weights is not checkpointed: the last good checkpoint stays latest.
                    return Diverged($"validation loss became {valLoss.Value} at step {step} (learning rate {lr:G3}); stopped before checkpointing.", step);
                }
                if (periodic) progress.Evaluated(step, valLoss.Value);
            }
            curve.Add(new LossPoint(step, outcome.Loss, evaluated));
            bool stop = cancel.IsCancellationRequested;
            if (checkpoints is not null && (last || stop || (options.CheckpointEvery > 0 && step % options.CheckpointEvery == 0)))
            {
                // A finite loss does not prove finite weights (the update after it can overflow): never save such a state as good.
                if (NonFiniteState() is { } bad)
                    return Diverged($"{bad} became NaN or infinite in the update of step {step - 1} (learning rate {lr:G3}); this state was not checkpointed.", step - 1);
                state = new CheckpointState
                {
                    Step = step, LastTrainLoss = trainLoss, LastValidationLoss = valLoss,
                    WallSeconds = wallBefore + clock.Elapsed.TotalSeconds, ForwardPasses = forward, TrainPositions = positions,
                    TorchRngState = RngState(),
                    LossCurve = curve.ToList(),
                };
                SaveCheckpoint(step);
            }
            if (stop && !last)
            {
                var msg = $"interrupted after step {step}; checkpoint saved. Continue with: afinado train --resume <RUN_DIR>";
                progress.Message(msg);
                return new LoopResult(LoopStatus.Interrupted, step, trainLoss, valLoss, valAcc, wallBefore + clock.Elapsed.TotalSeconds, forward, positions, msg, curve);
            }
        }
        // A run resumed at its end takes no step: evaluate what the checkpoint holds.
        if (valLoss is null && options.Evaluates) (valLoss, valAcc) = Evaluate(model, data, options.BatchSize, options.EvalBatches);
        return new LoopResult(LoopStatus.Completed, step, trainLoss, valLoss, valAcc, wallBefore + clock.Elapsed.TotalSeconds, forward, positions, null, curve);
    }

    /// <summary>Names the newest checkpoint that passes every check (not merely the one <c>latest</c> points to).</summary>
    private string LastGoodCheckpoint()
    {
        if (checkpoints is null) return "No checkpoint was written yet.";
        using var found = checkpoints.FindNewestIntact(Expectation(options.MaxSteps)).Found;
        return found is null ? "No intact checkpoint exists yet." : $"The last good checkpoint is kept: {found.Dir}.";
    }

    /// <summary>"trainable tensor X" / "optimizer state X" when a tensor holds NaN or Inf, else null.</summary>
    private string? NonFiniteState()
    {
        if (CheckpointExpectation.FirstNonFinite(trainable.ToDictionary(t => t.Name, t => (Tensor)t.Parameter)) is { } w) return $"trainable tensor {w}";
        return optimizer is not null && CheckpointExpectation.FirstNonFinite(optimizer.StateDict()) is { } o ? $"optimizer state {o}" : null;
    }

    private void SaveCheckpoint(long step)
    {
        var weights = trainable.ToDictionary(t => t.Name, t => (Tensor)t.Parameter);
        var opt = optimizer?.StateDict() ?? [];
        foreach (var (k, v) in rule.StateDict()) opt["rule/" + k] = v;
        try
        {
            checkpoints!.Save(state, weights, opt);
        }
        catch (IOException e)
        {
            // Disk full or the folder gone: the store replaces the latest pointer only after a complete write, so the
            // previous checkpoint is still the one a resume starts from; say so instead of a bare IOException.
            throw new CheckpointWriteException(
                $"could not write the checkpoint of step {step}: {e.Message}. {LastGoodCheckpoint()} " +
                $"After freeing space, continue with afinado train --resume {Path.GetDirectoryName(checkpoints!.Root)}.", e);
        }
    }

    private static string RngState()
    {
        using var t = random.get_rng_state();
        return Convert.ToBase64String(t.bytes.ToArray());
    }

    /// <summary>Mean loss and argmax accuracy over the source's fixed validation batches (eval mode, no grad).</summary>
    public static (double Loss, double Accuracy) Evaluate(nn.Module<Tensor, Tensor> model, IBatchSource data, int batchSize, int maxBatches)
    {
        bool wasTraining = model.training;
        model.eval();
        double lossSum = 0, correct = 0, count = 0;
        using (no_grad())
            foreach (var (x, y) in data.ValidationBatches(batchSize, maxBatches))
            {
                using var scope = NewDisposeScope();
                var logits = model.call(x);
                long n = y.numel();
                lossSum += CrossEntropy(logits, y).item<float>() * n;
                correct += logits.argmax(-1).eq(y).sum().item<long>();
                count += n;
                x.Dispose();
                y.Dispose();
            }
        if (wasTraining) model.train();
        return (lossSum / count, correct / count);
    }
}
