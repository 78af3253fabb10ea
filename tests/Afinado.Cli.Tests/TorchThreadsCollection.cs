namespace Afinado.Cli.Tests;

/// <summary>Tests whose expected output depends on exact floating-point results of a training run in this process: they run
/// after the parallel ones, alone, so no other test changes libtorch's process-wide thread count under them.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchThreadsCollection
{
    public const string Name = "libtorch threads";
}
