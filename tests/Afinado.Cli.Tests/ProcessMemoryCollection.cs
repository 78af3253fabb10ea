namespace Afinado.Cli.Tests;

/// <summary>Tests that assert on a run's measured memory: the meter reads this process's resident set (its growth over a
/// baseline taken at the run's start), which a test running beside it can raise at the start and release before the run's
/// peak, leaving a growth of 0. They run after the parallel ones, alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessMemoryCollection
{
    public const string Name = "process memory";
}
