using System.CommandLine;
using System.Text.Json.Nodes;
using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;
using Spectre.Console;

namespace Afinado.Cli.Commands;

/// <summary>One device's multi-GPU verdict: the layout planned (given, or the least-communication one that fits) and its ledger.</summary>
internal sealed record ParallelVerdict(Device Device, ParallelLedger Ledger, bool Fits, IReadOnlyList<LayoutOption> Alternatives, int RequestedGpus,
    long? CpuLimitBytesPerNode = null)
{
    /// <summary>The search found no layout on all the GPUs given, and chose one on fewer of them.</summary>
    public bool UsesFewerGpus => Fits && Ledger.Layout.Gpus < RequestedGpus;

    public bool FitsGpuMemory => Device.CapacityBytes <= 0 || Ledger.FitsGpu(Device.CapacityBytes);

    public bool FitsCpuMemory => Ledger.FitsCpu(CpuLimitBytesPerNode);

    /// <summary>The verdict cell: which memory runs out, so "OOM" is never shown for a job the GPU would hold.</summary>
    public string VerdictMarkup => UsesFewerGpus ? $"[yellow]fits on {Ledger.Layout.Gpus} of {RequestedGpus}[/]"
        : Fits ? "[green]fits[/]"
        : !FitsGpuMemory ? "[red]OOM[/]"
        : $"[red]CPU RAM short: {ByteSize.Format(Ledger.CpuBytesPerNode)} per node > --cpu-memory {ByteSize.Format(CpuLimitBytesPerNode ?? 0)}[/]";
}

/// <summary>
/// The multi-GPU part of <c>afinado plan</c> and <c>afinado export</c>: turns the single-GPU plan into per-GPU ledgers
/// for the layout the flags give (or the one the search picks per device), and adds them to the table and the JSON.
/// </summary>
internal static class ParallelPlanning
{
    /// <summary>True when any multi-GPU flag was given (the plan is then made per GPU of the layout).</summary>
    public static bool Requested(ParseResult p, LayoutOptions o) =>
        p.GetValue(o.Gpus) != 1 || p.GetValue(o.Nodes) != 1 || o.ShardingGiven(p) || p.GetValue(o.Tp) != 1 || p.GetValue(o.Offload) != "none"
        || p.GetValue(o.FewestGpus) || p.GetValue(o.CpuMemory) is not null;

    public static IReadOnlyList<ParallelVerdict> Verdicts(Plan plan, ParseResult p, LayoutOptions o, IReadOnlyList<Device> devices, EngineFamily family)
    {
        var job = PlanBridge.FromPlan(plan);
        var layout = o.Layout(p).Validate(plan.Architecture);
        long? cpu = o.CpuBytesPerNode(p);
        var result = new List<ParallelVerdict>();
        foreach (var d in devices.Where(d => !d.IsCpu))
        {
            if (o.ShardingGiven(p) || layout.Offload != Offload.None)
            {
                var ledger = ParallelMemory.Plan(job, layout);
                result.Add(new(d, ledger, (d.CapacityBytes <= 0 || ledger.FitsGpu(d.CapacityBytes)) && ledger.FitsCpu(cpu), [], layout.Gpus, cpu));
            }
            else
            {
                var search = ParallelSearch.LeastCommunication(job, layout.Gpus, layout.Nodes, d.CapacityBytes, cpu,
                    o.WantsFsdp(p) ? EngineFamily.Fsdp : family, layout.TensorParallel, layout.SequenceParallel);
                result.Add(new(d, (search.Chosen ?? search.Ranked[0]).Ledger, search.Chosen is not null, search.Ranked, layout.Gpus, cpu));
            }
        }
        if (result.Count == 0)
            throw new Planner.InputError("--gpu", "multi-GPU layouts need a GPU", "Give --gpu NAME or --gpu-memory SIZE.");
        return result;
    }

    /// <summary>The smallest GPU count of the first device's type that runs the job (null when none up to 1024).</summary>
    public static LayoutSearchResult? FewestGpus(Plan plan, ParseResult p, LayoutOptions o, Device device, EngineFamily family) =>
        ParallelSearch.SmallestGpuCount(PlanBridge.FromPlan(plan), device.CapacityBytes, o.CpuBytesPerNode(p), p.GetValue(o.GpusPerNode),
            1024, o.WantsFsdp(p) ? EngineFamily.Fsdp : family, p.GetValue(o.Tp), p.GetValue(o.Sp));

    public static void WriteTable(IReadOnlyList<ParallelVerdict> verdicts, LayoutSearchResult? fewest, TextWriter writer)
    {
        var console = Show.Console(writer);
        if (Console.IsOutputRedirected || writer != Console.Out) console.Profile.Width = 180;
        var first = verdicts[0];
        var l = first.Ledger;
        console.MarkupLine($"[bold]Per GPU[/] — {Show.Markup(l.Layout.Describe())} on {Show.Markup(first.Device.Name)}: peak {ByteSize.Format(l.GpuPeakBytes)} at {Show.Markup(l.GpuPeakPhase.StepName())}");
        var table = new Table().Border(TableBorder.Rounded).Expand();
        table.AddColumn("Component");
        table.AddColumn(new TableColumn("Bytes").RightAligned());
        table.AddColumn("Live in");
        table.AddColumn("Formula");
        table.AddColumn("Source");
        foreach (var line in l.Gpu)
            table.AddRow(Show.Markup(line.Name), ByteSize.Format(line.Bytes), Show.Markup(line.Phases.StepName()), Show.Markup(line.Formula), $"[grey]{Show.Markup(line.Source)}[/]");
        table.AddRow("[bold]peak per GPU[/]", $"[bold]{ByteSize.Format(l.GpuPeakBytes)}[/]", Show.Markup(l.GpuPeakPhase.StepName()), "largest sum over the step's moments", "");
        foreach (var line in l.CpuPerNode)
            table.AddRow($"CPU: {Show.Markup(line.Name)}", ByteSize.Format(line.Bytes), Show.Markup(line.Phases.StepName()), Show.Markup(line.Formula), $"[grey]{Show.Markup(line.Source)}[/]");
        table.AddRow("[bold]CPU RAM per node[/]", $"[bold]{ByteSize.Format(l.CpuBytesPerNode)}[/]", "", "larger of checkpoint loading and offloaded states", "");
        console.Write(table);

        var v = new Table().Border(TableBorder.Simple);
        v.AddColumn("Device");
        v.AddColumn("Layout");
        v.AddColumn(new TableColumn("Per GPU").RightAligned());
        v.AddColumn("Verdict");
        foreach (var x in verdicts)
            v.AddRow(Show.Markup(x.Device.Name), Show.Markup(x.Ledger.Layout.Describe()), ByteSize.Format(x.Ledger.GpuPeakBytes), x.VerdictMarkup);
        console.Write(v);
        if (first.Ledger.GpuNvidiaSmiUpperBytes is { } upper)
            console.MarkupLine($"[grey]nvidia-smi may read up to {ByteSize.Format(upper)} per GPU: " + (first.Ledger.Layout.Offload == Offload.Params
                ? $"published FSDP1 runs with CPU offload read up to {ParallelLedger.Fsdp1OffloadPublishedOverPredicted - 1:P0} above this planner's estimate " +
                  "(PEFT docs' Llama-2-70B QLoRA run; Answer.AI's and Phil Schmid's 26–28 %), a gap no modelled tensor explains. "
                : $"published FSDP1 runs kept up to {ParallelLedger.Fsdp1MeasuredReservedRatio - 1:P0} reserved above what they allocated " +
                  "(Answer.AI fsdp_qlora, Llama-2-7B LoRA: 10.24 GiB reserved for 8.28 allocated). ") +
                "The verdict uses the peak above: PyTorch frees cached blocks and retries before it reports out of memory.[/]");
        foreach (var x in verdicts.Where(x => x.UsesFewerGpus))
            console.MarkupLine($"[yellow]{Show.Markup(x.Device.Name)}:[/] no layout fits on all {x.RequestedGpus} GPUs (more ranks need more CPU RAM " +
                $"per node: an offloaded copy per rank, and FSDP1 pins buffers rounded up to powers of two); run on {x.Ledger.Layout.Gpus} of them.");
        if (first.Alternatives.Count > 1)
        {
            console.MarkupLine($"Alternatives on {Show.Markup(first.Device.Name)} (least communication first):");
            foreach (var a in first.Alternatives)
                console.MarkupLine($"  {(a.Fits ? "[green]fits[/]" : "[red]no  [/]")} {Show.Markup(a.Layout.Describe())}: {ByteSize.Format(a.Ledger.GpuPeakBytes)} per GPU, {ByteSize.Format(a.Ledger.CpuBytesPerNode)} CPU per node"
                    + (!a.Fits && (first.Device.CapacityBytes <= 0 || a.Ledger.FitsGpu(first.Device.CapacityBytes)) ? " [red](CPU RAM short)[/]" : ""));
        }
        if (fewest is not null)
            console.MarkupLine($"Fewest GPUs: [bold]{fewest.Gpus}[/] ({Show.Markup(fewest.Chosen!.Layout.Describe())})");
    }

    /// <summary>Adds <c>parallel</c>, <c>cpu_bytes_per_node</c>, per-GPU verdicts and alternatives to the plan JSON.</summary>
    public static string Json(string planJson, IReadOnlyList<ParallelVerdict> verdicts, LayoutSearchResult? fewest)
    {
        var root = JsonNode.Parse(planJson)!.AsObject();
        var first = verdicts[0];
        foreach (var (key, value) in ParallelJson.Ledger(first.Ledger).ToList())
            root[key] = value?.DeepClone();
        root["gpus"] = new JsonArray(verdicts.Select(x => (JsonNode)new JsonObject
        {
            ["gpu"] = x.Device.Id,
            ["name"] = x.Device.Name,
            ["capacity_bytes"] = x.Device.CapacityBytes,
            ["fits"] = x.Fits,
            ["fits_gpu_memory"] = x.FitsGpuMemory,
            ["fits_cpu_memory"] = x.FitsCpuMemory,
            ["cpu_limit_bytes_per_node"] = x.CpuLimitBytesPerNode,
            ["headroom_bytes"] = x.Device.CapacityBytes - x.Ledger.GpuPeakBytes,
            ["per_gpu_bytes"] = x.Ledger.GpuPeakBytes,
            ["cpu_bytes_per_node"] = x.Ledger.CpuBytesPerNode,
            ["layout"] = x.Ledger.Layout.Describe(),
            ["nvidia_smi_upper_bytes"] = x.Ledger.GpuNvidiaSmiUpperBytes,
            ["gpus_requested"] = x.RequestedGpus,
            ["gpus_used"] = x.Ledger.Layout.Gpus,
        }).ToArray());
        if (first.Alternatives.Count > 0)
            root["alternatives"] = new JsonArray(first.Alternatives.Select(a => (JsonNode)new JsonObject
            {
                ["layout"] = ParallelJson.Layout(a.Layout),
                ["gpu_peak_bytes"] = a.Ledger.GpuPeakBytes,
                ["cpu_bytes_per_node"] = a.Ledger.CpuBytesPerNode,
                ["fits"] = a.Fits,
            }).ToArray());
        if (fewest is not null)
            root["gpu_search"] = new JsonObject { ["parameter"] = "gpus", ["value"] = fewest.Gpus, ["layout"] = ParallelJson.Layout(fewest.Chosen!.Layout) };
        return root.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }
}
