using Afinado.Planner.Architecture;
using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using Spectre.Console;

namespace Afinado.Cli.Commands;

/// <summary>The human view of a plan: ledger table with formula and source per line, peak phase, verdicts, fixes.</summary>
internal static class PlanTable
{
    /// <param name="layoutsFollow">The multi-GPU tables come next (their own search answers "how many GPUs").</param>
    /// <summary>", 2 images of 1036×1036 per sequence (1,371 tokens each)" for a plan with image inputs.</summary>
    private static string ImagesText(Plan plan)
    {
        var job = plan.Job;
        if (job.Images == 0 || plan.Architecture.Vision is not { } vision) return "";
        var image = vision.Image(job.ImageWidth, job.ImageHeight);
        string tiles = vision.Kind != VisionEncoderKind.Llama4 ? $"{image.Width}×{image.Height}"
            : image.Sequences == 1 ? $"one {image.Width}×{image.Height} tile"
            : $"{image.Sequences - 1} tiles on a {image.Width}×{image.Height} canvas and a global tile";
        return $", {job.Images} image{(job.Images == 1 ? "" : "s")} of {tiles} per sequence ({image.SequenceTokens:N0} tokens each, in the seq)";
    }

    public static void Write(Plan plan, TextWriter writer, bool layoutsFollow = false)
    {
        var console = Show.Console(writer);
        // Redirected output (files, tests, pipes) gets a fixed width instead of Spectre's 80-column fallback.
        if (Console.IsOutputRedirected || writer != Console.Out) console.Profile.Width = 180;
        var l = plan.Ledger;
        var job = plan.Job;
        string what = job.IsTraining
            ? $"train, {job.Method.ToString().ToLowerInvariant()}, {job.Precision.Name()}, {(job.Rule == LearningRule.Backprop ? "" : $"rule {job.Rule.Name()}, ")}{(job.Rule == LearningRule.EsDirect ? "no optimizer (in-place update)" : job.Optimizer.Name())}, batch {job.Batch} × seq {job.Seq}{ImagesText(plan)}, checkpointing {job.Checkpointing.ToString().ToLowerInvariant()}, {job.Attention.ToString().ToLowerInvariant()}"
            : $"infer, {plan.WeightsName} weights, {job.ResolvedKvDtype.Name()} KV, batch {job.Batch}, prompt {job.Seq}, context {job.ContextTokens}{ImagesText(plan)}, {job.Attention.ToString().ToLowerInvariant()}";
        console.MarkupLine($"[bold]{Show.Markup(plan.Architecture.Name)}[/] ({plan.Architecture.ParameterCount:N0} parameters{(plan.Architecture.IsMoE ? $", {plan.Architecture.ActiveParameterCount:N0} active" : "")}) — {Show.Markup(what)} on {plan.DeviceKind.ToString().ToLowerInvariant()}");
        if (job.IsTraining) console.MarkupLine(Show.Markup(plan.Selection.PeftSummary));
        if (plan.Architecture.Support == ModelSupport.Generic)
            console.MarkupLine($"[yellow]generic: activations approximate[/] ({Show.Markup(plan.Architecture.ModelType)} has no family here: weights from the safetensors headers, tensor roles from their names)");
        foreach (var warning in plan.Architecture.PlanWarnings(plan.Job.Images, plan.Job.TowerFrozenByMethod)) console.MarkupLine($"[yellow]warning:[/] {Show.Markup(warning)}");
        if (job.IsTraining)
            foreach (var note in plan.Selection.Notes) console.MarkupLine($"[yellow]warning:[/] {Show.Markup(note)}");

        var table = new Table().Border(TableBorder.Rounded).Expand();
        table.AddColumn("Component");
        table.AddColumn(new TableColumn("Bytes").RightAligned());
        table.AddColumn("Live in");
        table.AddColumn("Formula");
        table.AddColumn("Source");
        foreach (var e in l.Tensors.OrderByDescending(e => (e.Phases & l.PeakPhase) != 0).ThenByDescending(e => e.Bytes))
        {
            bool atPeak = (e.Phases & l.PeakPhase) != 0;
            string name = atPeak ? Show.Markup(e.Name) : $"[grey]{Show.Markup(e.Name)}[/]";
            table.AddRow(name, ByteSize.Format(e.Bytes), Show.Markup(e.Phases.Name()), Show.Markup(e.Formula), $"[grey]{Show.Markup(e.Source)}[/]");
        }
        table.AddRow($"[bold]peak ({Show.Markup(l.PeakPhase.Name())})[/]", $"[bold]{ByteSize.Format(l.PeakBytes)}[/]", "", "tensors live at the peak (≈ torch.cuda.max_memory_allocated)", "");
        foreach (var e in l.Runtime)
            table.AddRow(Show.Markup(e.Name), ByteSize.Format(e.Bytes), "whole run", Show.Markup(e.Formula), $"[grey]{Show.Markup(e.Source)}[/]");
        if (plan.DeviceKind == DeviceKind.Gpu)
            table.AddRow("[bold]reserved[/]", $"[bold]{ByteSize.Format(l.ReservedBytes)}[/]", "",
                (l.Runtime.Any(e => e.Kind == LineKind.ReplayedPeakAboveFormulas) ? "peak + the replayed peak above it" : "peak") +
                $" + workspaces + fragmentation {ByteSize.Format(l.FragmentationBytes)} (≈ torch.cuda.max_memory_reserved)", "");
        table.AddRow("[bold]total[/]", $"[bold]{ByteSize.Format(l.TotalBytes)}[/]", "",
            plan.DeviceKind == DeviceKind.Gpu ? "reserved + CUDA context and kernels (≈ nvidia-smi); used for every verdict" : "peak + runtime overheads; used for the verdict", "");
        console.Write(table);

        if (plan.Verdicts.Count > 0)
        {
            var verdicts = new Table().Border(TableBorder.Simple);
            verdicts.AddColumn("Device");
            verdicts.AddColumn(new TableColumn("Usable").RightAligned());
            verdicts.AddColumn("Verdict");
            verdicts.AddColumn(new TableColumn("Headroom").RightAligned());
            foreach (var v in plan.Verdicts)
                verdicts.AddRow(Show.Markup(v.Device.Name), v.Device.CapacityBytes > 0 ? ByteSize.Format(v.Device.CapacityBytes) : "—",
                    VerdictText(v), ByteSize.Format(v.HeadroomBytes));
            console.Write(verdicts);
            foreach (var v in plan.Verdicts.Where(v => v.Device.Interpretation is not null))
                console.MarkupLine($"[grey]--gpu-memory {Show.Markup(v.Device.Interpretation!)}[/]");
            foreach (var v in plan.Verdicts.Where(v => v.Unsupported is not null))
                console.MarkupLine($"[red]Cannot run on {Show.Markup(v.Device.Name)}:[/] {Show.Markup(v.Unsupported!.Render(CliFlags.Of))}.");
            foreach (var v in plan.Verdicts.Where(v => v.Advice is not null))
                console.MarkupLine($"[yellow]Note:[/] {Show.Markup(v.Device.Name)}: {Show.Markup(v.Advice!.Render(CliFlags.Of))}.");
            foreach (var v in plan.Verdicts.Where(v => v.SdpaMath is not null))
                console.MarkupLine($"[yellow]Note:[/] {Show.Markup(v.Device.Name)}: {Show.Markup(v.SdpaMath!)}; its verdict judges that step, total {ByteSize.Format(v.TotalOnDeviceBytes!.Value)}.");
            foreach (var v in plan.Verdicts.Where(v => v.Dequantized is not null))
                console.MarkupLine($"[yellow]Note:[/] {Show.Markup(v.Device.Name)}: {Show.Markup(v.Dequantized!.Reason)}; its verdict judges that load, " +
                    $"total {ByteSize.Format(v.TotalOnDeviceBytes!.Value)} (the plan with {CliFlags.Of(Afinado.Planner.Memory.JobParameters.WeightsDtype)} {v.Dequantized.To.Name()}).");
        }
        if (plan.AttentionFallback is { } fallback) console.MarkupLine($"[yellow]Note:[/] {Show.Markup(fallback)}.");
        if (plan.DefaultLoadNote is { } load) console.MarkupLine($"[yellow]Note:[/] {Show.Markup(load.Render(CliFlags.Of))}.");
        if (plan.KvDtypeNote is { } kvNote) console.MarkupLine($"[yellow]Note:[/] {Show.Markup(kvNote.Render(CliFlags.Of))}.");
        if (plan.KbitPrepTotalBytes is { } kbit)
            console.MarkupLine($"[yellow]Note:[/] QLoRA through TRL's SFTTrainer or PEFT's recipe runs prepare_model_for_kbit_training (fp32 embeddings, head " +
                $"and activations): with [bold]--kbit-prep[/] this job's total is {ByteSize.Format(kbit)} ({ByteSize.Format(kbit - l.TotalBytes)} more).");
        if (plan.Fixes.Count > 0)
        {
            console.MarkupLine($"[bold]To fit {Show.Markup(plan.Verdicts[0].Device.Name)}:[/]");
            foreach (var f in plan.Fixes)
                console.MarkupLine($"  {(f.Fits ? "[green]✓[/]" : "[red]✗[/]")} {Show.Markup(f.Change.Render(CliFlags.Of))} → peak {ByteSize.Format(f.PeakBytes)}, total {ByteSize.Format(f.TotalBytes)}" +
                    (f.TotalAfterReleaseBytes is { } held ? $" [yellow](fits only after the allocator frees its cache, holding {ByteSize.Format(held)})[/]" : ""));
            // Layouts over several GPUs are planned for training on GPUs: only there is the GPU search a next step.
            if (!plan.Fixes.Any(f => f.Fits))
                console.MarkupLine($"  [red]None of these fits one {Show.Markup(plan.Verdicts[0].Device.Name)}[/]" +
                    (plan.Job.IsTraining && !plan.Verdicts[0].Device.IsCpu && !layoutsFollow ? ": --fewest-gpus searches how many of them run it sharded." : "."));
        }
        else if (plan.Verdicts.Count > 0 && plan.Verdicts[0] is { Fits: false, Unsupported: null } first && first.Device.CapacityBytes > 0)
            // Every change tried (FixFinder) leaves the total where it is or raises it: say so rather than print no advice.
            console.MarkupLine($"[red]No single change or combination makes the job fit one {Show.Markup(first.Device.Name)}[/]" +
                (plan.Job.IsTraining && !first.Device.IsCpu && !layoutsFollow ? ": --fewest-gpus searches how many of them run it sharded." : "."));
        if (plan.InferenceGpuFloor is { } floor)
            console.MarkupLine($"Its weights and KV cache alone ({ByteSize.Format(floor.WeightsAndCacheBytes)}) need at least [bold]{floor.Gpus:N0}[/] " +
                $"{Show.Markup(plan.Verdicts[0].Device.Name)} ({ByteSize.Format(floor.UsablePerGpuBytes)} each beside the CUDA context): a lower bound, " +
                "since multi-GPU inference (device_map, tensor parallelism) is not planned.");
        if (plan.Search is { } s)
            console.MarkupLine($"Largest {s.Parameter} that fits {Show.Markup(plan.Verdicts[0].Device.Name)}: [bold]{s.Value}[/]" +
                (s.Value == 0 ? s.Unlock is { } u ? $" — {s.Parameter} 1 fits with {Show.Markup(u.Render(CliFlags.Of))}" : " — no single change or combination makes 1 fit" : "") +
                (s.ValueWithKbitPrep is { } k ? $" ([yellow]{k:N0}[/] with --kbit-prep, as TRL's SFTTrainer prepares a 4-bit model)" : ""));
    }

    /// <summary>fits / OOM, and "borderline: X margin" when the margin is within the planner's measured error band.</summary>
    private static string VerdictText(DeviceVerdict v)
    {
        string margin = ByteSize.Format(Math.Abs(v.HeadroomBytes));
        if (v.FitsAfterCacheRelease)
            return $"[yellow]borderline: fits only after the allocator frees its cache ({v.CacheReleases}×), holding {ByteSize.Format(v.TotalAfterReleaseBytes ?? 0)}[/]";
        if (v.Unsupported is not null) return "[red]cannot run[/] (see note)";
        string loaded = (v.Dequantized is { } d ? $" [yellow](as {d.To.Name()}, dequantized)[/]" : "") + (v.SdpaMath is not null ? " [yellow](SDPA math kernel)[/]" : "");
        if (v.Borderline) return (v.Fits ? $"[yellow]borderline: fits, {margin} margin[/]" : $"[yellow]borderline: OOM, {margin} short[/]") + loaded;
        return (v.Fits ? "[green]fits[/]" : "[red]OOM[/]") + loaded;
    }
}
