using System.CommandLine;
using Afinado.Cli.Commands;
using Afinado.Planner;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;
using Afinado.Planner.Validation;

namespace Afinado.Cli.Validation;

/// <summary>
/// A ground-truth row's <c>plan_args</c> read with the flags of <c>afinado plan</c> (<see cref="PlanOptions"/>,
/// <see cref="LayoutOptions"/>): the <see cref="PlanArgsParser"/> the CLI gives <see cref="GroundTruth"/>, so a row
/// means exactly what the same flags mean on the command line.
/// </summary>
internal static class PlanArgsFlags
{
    public static IPlanArgs Parse(string planArgs, string where)
    {
        var options = new PlanOptions();
        var parallel = new LayoutOptions();
        var cmd = new Command("plan");
        foreach (var o in options.All) cmd.Options.Add(o);
        foreach (var o in parallel.All) cmd.Options.Add(o);
        var tokens = planArgs.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToArray();
        var parse = cmd.Parse(tokens);
        if (parse.Errors.Count > 0)
            throw new InputError(where, $"plan_args do not parse: {parse.Errors[0].Message}", "Use the flags of `afinado plan`.");
        return new Parsed(parse, options, parallel);
    }

    /// <summary>Each part is built from the parse when asked (see <see cref="IPlanArgs"/>), as <c>afinado plan</c> builds it.</summary>
    private sealed class Parsed(ParseResult parse, PlanOptions options, LayoutOptions parallel) : IPlanArgs
    {
        public string Model => parse.GetValue(options.Model)!;

        public Job Job() => options.Job(parse);

        public bool OnCpu => parse.GetValue(options.Device) == "cpu" || (parse.GetValue(options.Gpu) ?? []).Contains("cpu");

        public IReadOnlyList<Device> Devices() => options.Devices(parse);

        public bool MultiGpu => ParallelPlanning.Requested(parse, parallel);

        public ParallelLayout Layout() => parallel.Layout(parse);
    }
}
