using System.CommandLine;
using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;
using Spectre.Console;

namespace Afinado.Cli.Commands;

/// <summary>The verdict cell of a multi-GPU verdict: which memory runs out, so "OOM" is never shown for a job the GPU would hold.</summary>
internal static class ParallelVerdictMarkup
{
    public static string VerdictMarkup(this ParallelVerdict v) => v.Unsupported is { } why ? $"[red]cannot run: {Show.Markup(why.Render(CliFlags.Of))}[/]"
        : v.UsesFewerGpus ? $"[yellow]fits on {v.Ledger.Layout.Gpus} of {v.RequestedGpus}[/]"
        : v.Fits ? "[green]fits[/]"
        : !v.FitsGpuMemory ? "[red]OOM[/]"
        : $"[red]CPU RAM short: {ByteSize.Format(v.Ledger.CpuBytesPerNode)} per node > --cpu-memory {ByteSize.Format(v.CpuLimitBytesPerNode ?? 0)}[/]";
}

/// <summary>
/// The multi-GPU flags of <c>afinado plan</c> and <c>afinado export</c> read into a <see cref="LayoutRequest"/> for the
/// planner's <see cref="MultiGpuPlanner"/>, and its verdicts printed as tables.
/// </summary>
internal static class ParallelPlanning
{
    /// <summary>True when any multi-GPU flag was given (the plan is then made per GPU of the layout, whose checks refuse a
    /// flag the layout does not use — <c>--fsdp-version</c> without <c>--fsdp</c> — instead of ignoring it).</summary>
    public static bool Requested(ParseResult p, LayoutOptions o) =>
        p.GetValue(o.Gpus) != 1 || p.GetValue(o.Nodes) != 1 || o.ShardingGiven(p) || p.GetValue(o.Tp) != 1 || p.GetValue(o.Ep) != 1 || p.GetValue(o.Offload) != "none"
        || p.GetValue(o.FewestGpus) || p.GetValue(o.CpuMemory) is not null
        || p.GetResult(o.FsdpVersion) is { Implicit: false } || p.GetValue(o.FsdpShardEmbeddings) || p.GetValue(o.FsdpShardedDtype) is not null || p.GetValue(o.Sp)
        || p.GetResult(o.GpusPerNode) is { Implicit: false };

    /// <summary>The layout request the flags make (validated against the model by the planner).</summary>
    public static LayoutRequest Request(ParseResult p, LayoutOptions o)
    {
        if (p.GetResult(o.GpusPerNode) is { Implicit: false } && !p.GetValue(o.FewestGpus))
            throw new InputError("--gpus-per-node", "sets the node shape of the --fewest-gpus search", "Add --fewest-gpus, or give --nodes for a layout of your own.");
        return new(o.Layout(p), o.ShardingGiven(p), o.WantsFsdp(p), o.CpuBytesPerNode(p), p.GetValue(o.FewestGpus), p.GetValue(o.GpusPerNode));
    }

    public static void WriteTable(MultiGpuPlan multi, TextWriter writer)
    {
        var (verdicts, fewest) = (multi.Verdicts, multi.Fewest);
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
            v.AddRow(Show.Markup(x.Device.Name), Show.Markup(x.Ledger.Layout.Describe()), ByteSize.Format(x.Ledger.GpuPeakBytes), x.VerdictMarkup());
        console.Write(v);
        foreach (var x in verdicts.Where(x => x.Dequantized is not null))
            console.MarkupLine($"[yellow]Note:[/] {Show.Markup(x.Device.Name)}: {Show.Markup(x.Dequantized!.Reason)}; its per-GPU figures are that load's " +
                $"(the plan with {CliFlags.Of(JobParameters.WeightsDtype)} {x.Dequantized.To.Name()}).");
        foreach (var x in verdicts.Where(x => x.SdpaMath is not null))
            console.MarkupLine($"[yellow]Note:[/] {Show.Markup(x.Device.Name)}: {Show.Markup(x.SdpaMath!)}; its per-GPU figures hold them.");
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
        if (multi.FewestNotFound is { } none)
        {
            // Say why no count is enough: the floor more GPUs leave, and its largest part at the peak.
            var lowest = none.Ranked[0].Ledger;
            var largest = lowest.Gpu.Where(e => (e.Phases & lowest.GpuPeakPhase) != 0).MaxBy(e => e.Bytes);
            console.MarkupLine($"[red]Fewest GPUs: no count up to {none.Gpus} runs it on {Show.Markup(first.Device.Name)}[/] ({ByteSize.Format(first.Device.CapacityBytes)} usable): " +
                $"on {none.Gpus} GPUs the lowest per-GPU peak is {ByteSize.Format(lowest.GpuPeakBytes)} ({Show.Markup(lowest.Layout.Describe())})" +
                (largest is null ? "" : $", of which {Show.Markup(largest.Name)} is {ByteSize.Format(largest.RoundedBytes)}") +
                ". More GPUs do not lower it; the single-GPU fixes above (checkpointing, a shorter sequence) and --tp do.");
        }
    }
}
