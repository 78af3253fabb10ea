using System.CommandLine;
using Afinado.Cli.Commands.Bench;

namespace Afinado.Cli.Commands;

/// <summary><c>afinado bench</c>: reproducible benchmark runs whose numbers go to bench/ and the README.</summary>
public static class BenchCommand
{
    public static Command Build()
    {
        var cmd = new Command("bench", "Run a benchmark: learning-rule reproductions and measurements.");
        cmd.Subcommands.Add(GuidedEsToyCommand.Build());
        cmd.Subcommands.Add(FashionMnistBenchCommand.Build());
        return cmd;
    }
}
