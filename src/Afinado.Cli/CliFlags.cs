using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;
using Afinado.Planner.Validation;
using Afinado.Training.Chat;
using Afinado.Training.Loop;

namespace Afinado.Cli;

/// <summary>
/// How the CLI names the libraries' parameters: as its flags. The libraries speak of their own parameters (a job's
/// <c>grad_accumulation</c>, a training config's <c>learning_rate</c>); every error, fix and note the CLI prints renders
/// them through <see cref="Of"/>, so a message reads in the flags the user typed. Most flags are the parameter's name
/// with <c>--</c> in front and <c>-</c> for <c>_</c>; the rest are listed here.
/// </summary>
internal static class CliFlags
{
    private static readonly Dictionary<InputParameter, string> Exceptions = new()
    {
        [JobParameters.FreezePatterns] = "--freeze",
        [JobParameters.GuidedEsSubspace] = "--guided-es-k",
        [JobParameters.GradAccumulation] = "--grad-accum",
        [JobParameters.QuantLibrary] = "--quant-lib",
        [LayoutParameters.TensorParallel] = "--tp",
        [LayoutParameters.SequenceParallel] = "--sp",
        [LayoutParameters.ShardEmbeddingsSeparately] = "--fsdp-shard-embeddings",
        [LayoutParameters.ExpertParallel] = "--ep",
        [LayoutParameters.CpuBytesPerNode] = "--cpu-memory",
        [ValidationParameters.GroundTruthDir] = "--dir",
        [TrainParameters.SequenceLength] = "--seq",
        [TrainParameters.BatchSize] = "--batch",
        [TrainParameters.GradientAccumulation] = "--grad-accum",
        [TrainParameters.LearningRate] = "--lr",
        [TrainParameters.MinLearningRate] = "--min-lr",
        [TrainParameters.WarmupSteps] = "--warmup",
        [ChatParameters.Messages] = "--chat",
    };

    /// <summary>The flag that sets <paramref name="parameter"/>.</summary>
    public static string Of(InputParameter parameter) =>
        Exceptions.TryGetValue(parameter, out var flag) ? flag : "--" + parameter.Name.Replace('_', '-');
}
