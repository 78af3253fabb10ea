using System.CommandLine;
using Afinado.Planner.Catalog;
using Afinado.Planner.Fit;
using Afinado.Planner.Parallel;

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
        var par = new LayoutOptions();
        var curveOptions = new CurveOptions();
        var max = new Option<string?>("--max") { Description = "Search the largest batch | seq that fits the first device." };
        var json = new Option<bool>("--json") { Description = "Write the afinado.plan/1 JSON to stdout (table to stderr)." };
        var listModels = new Option<bool>("--list-models") { Description = "List the catalog ids --model accepts (model_type, parameters) and exit." };
        var cmd = new Command("plan", "Predict the memory of a training or inference job, explain every byte, and say whether it fits.");
        foreach (var opt in o.All) cmd.Options.Add(opt);
        foreach (var opt in par.All) cmd.Options.Add(opt);
        foreach (var opt in curveOptions.All) cmd.Options.Add(opt);
        cmd.Options.Add(max);
        cmd.Options.Add(json);
        cmd.Options.Add(listModels);
        cmd.SetAction(parse =>
        {
            if (parse.GetValue(listModels)) return ListModels(parse.InvocationConfiguration.Output);
            var arch = ModelSource.Resolve(parse.GetValue(o.Model)!);
            var job = o.Job(parse);
            var devices = o.Devices(parse);
            var curve = curveOptions.Request(parse);
            string? plotPath = curveOptions.PlotPath(parse);
            if (curve is not null && ParallelPlanning.Requested(parse, par))
                throw new InputError("--curve", "sweeps single-GPU plans (one replayed ledger per value); a multi-GPU layout is planned per GPU by the layout search, which the curve does not sweep",
                    "Drop the multi-GPU flags (--gpus, --nodes, --zero, --fsdp, --tp, --offload, --fewest-gpus, --cpu-memory) for the curve, or drop --curve.");
            var plan = Planner.Fit.Planner.Create(arch, job, devices, parse.GetValue(max), curve: curve);
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            bool asJson = parse.GetValue(json);
            if (ParallelPlanning.Requested(parse, par))
            {
                // Layout flags are checked before anything is printed: a bad --gpus/--tp/--nodes gets its error alone.
                var multi = MultiGpuPlanner.Create(plan, ParallelPlanning.Request(parse, par), devices, EngineFamily.DeepSpeed);
                PlanTable.Write(plan, asJson ? error : output, layoutsFollow: true);
                ParallelPlanning.WriteTable(multi, asJson ? error : output);
                if (asJson) output.WriteLine(PlanJson.Serialize(multi, CliFlags.Of));
                return multi.FitsAny ? CliApp.ExitOk : CliApp.ExitDoesNotFit;
            }
            PlanTable.Write(plan, asJson ? error : output);
            if (plan.Curve is { } c)
            {
                CurveTable.Write(plan, c, asJson ? error : output);
                if (plotPath is not null)
                {
                    CurvePlot.Save(plan, c, plotPath);
                    (asJson ? error : output).WriteLine($"Wrote {plotPath}");
                }
            }
            if (asJson) output.WriteLine(PlanJson.Serialize(plan, CliFlags.Of));
            return plan.FitsAny ? CliApp.ExitOk : CliApp.ExitDoesNotFit;
        });
        return cmd;
    }

    /// <summary>The catalog, one model per line: what `--model ID` accepts without a config.json.</summary>
    private static int ListModels(TextWriter output)
    {
        var entries = Afinado.Planner.Catalog.ModelCatalog.Entries;
        // Columns as wide as their longest entry, so that long ids (Llama 4 Maverick's) keep the columns aligned.
        int idWidth = entries.Max(e => e.Id.Length), typeWidth = entries.Max(e => e.ModelType.Length);
        foreach (var e in entries)
            output.WriteLine(FormattableString.Invariant(
                $"{e.Id.PadRight(idWidth)} {e.ModelType.PadRight(typeWidth)} {e.Parameters / 1e9,8:0.00}B{(e.ActiveParameters != e.Parameters ? $" ({e.ActiveParameters / 1e9:0.00}B active)" : "")}"));
        return CliApp.ExitOk;
    }
}
