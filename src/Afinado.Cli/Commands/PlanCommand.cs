using System.CommandLine;
using Afinado.Planner.Catalog;
using Afinado.Planner.Fit;

namespace Afinado.Cli.Commands;

/// <summary>
/// <c>afinado plan</c>: will this job fit? Prints the memory ledger (every tensor class, its formula and source), the peak
/// phase and a verdict per GPU; <c>--json</c> writes the <c>afinado.plan/1</c> contract to stdout and the table to stderr.
/// Exit 0 when it fits at least one device, 3 when it fits none, 2 on bad input.
/// </summary>
public static class PlanCommand
{
    public static Command Build()
    {
        var o = new PlanOptions();
        var max = new Option<string?>("--max") { Description = "Search the largest batch | seq that fits the first device." };
        var json = new Option<bool>("--json") { Description = "Write the afinado.plan/1 JSON to stdout (table to stderr)." };
        var cmd = new Command("plan", "Predict the memory of a training or inference job, explain every byte, and say whether it fits.");
        foreach (var opt in o.All) cmd.Options.Add(opt);
        cmd.Options.Add(max);
        cmd.Options.Add(json);
        cmd.SetAction(parse =>
        {
            var arch = ModelSource.Resolve(parse.GetValue(o.Model)!);
            var job = o.Job(parse);
            var devices = o.Devices(parse);
            var plan = Planner.Fit.Planner.Create(arch, job, devices, parse.GetValue(max));
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            bool asJson = parse.GetValue(json);
            PlanTable.Write(plan, asJson ? error : output);
            if (asJson) output.WriteLine(PlanJson.Serialize(plan));
            return plan.FitsAny ? CliApp.ExitOk : CliApp.ExitDoesNotFit;
        });
        return cmd;
    }
}
