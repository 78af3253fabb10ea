using System.CommandLine;
using System.Globalization;
using Afinado.Planner;
using Afinado.Planner.Parallel;

namespace Afinado.Cli.Commands;

/// <summary>The multi-GPU flags shared by <c>afinado plan</c> and <c>afinado export</c>: layout and CPU RAM.</summary>
internal sealed class LayoutOptions
{
    public readonly Option<int> Gpus = new("--gpus") { Description = "GPUs in the job (all of one type).", DefaultValueFactory = _ => 1 };
    public readonly Option<int> Nodes = new("--nodes") { Description = "Nodes the GPUs are spread over (must divide --gpus).", DefaultValueFactory = _ => 1 };
    public readonly Option<int?> Zero = new("--zero") { Description = "DeepSpeed ZeRO stage 0|1|2|3." };
    public readonly Option<string?> Fsdp = new("--fsdp") { Description = "FSDP sharding: full | grad-op | hybrid." };
    public readonly Option<int> FsdpVersion = new("--fsdp-version") { Description = "PyTorch FSDP API: 1 (FullyShardedDataParallel, accelerate's default) | 2 (fully_shard, torchtune).", DefaultValueFactory = _ => 1 };
    public readonly Option<bool> FsdpShardEmbeddings = new("--fsdp-shard-embeddings") { Description = "Shard the token embedding and the head as FSDP units of their own (torchtune custom_sharded_layers: ['tok_embeddings', 'output'])." };
    public readonly Option<string?> FsdpShardedDtype = new("--fsdp-sharded-dtype") { Description = "Dtype the frozen base was loaded in when FSDP MixedPrecision computes in 16-bit (fp32 for PEFT's SFT example without quantization)." };
    public readonly Option<int> Tp = new("--tp") { Description = "Tensor-parallel degree (must divide attention and KV heads).", DefaultValueFactory = _ => 1 };
    public readonly Option<bool> Sp = new("--sp") { Description = "Sequence parallelism over the tensor-parallel group." };
    public readonly Option<int> Ep = new("--ep") { Description = "Expert-parallel degree for MoE models (DeepSpeed AutoEP, with --zero 1|2): each rank holds 1/EP of the routed experts; must divide the experts and --gpus.", DefaultValueFactory = _ => 1 };
    public readonly Option<string> Offload = new("--offload") { Description = "none | optimizer | params (to CPU RAM).", DefaultValueFactory = _ => "none" };
    public readonly Option<string?> CpuMemory = new("--cpu-memory") { Description = "CPU RAM per node, e.g. 512GB; plans needing more fail." };
    public readonly Option<bool> FewestGpus = new("--fewest-gpus") { Description = "Search the smallest number of the first --gpu type that runs the job." };
    public readonly Option<int> GpusPerNode = new("--gpus-per-node") { Description = "GPUs per node for --fewest-gpus.", DefaultValueFactory = _ => 8 };

    public IEnumerable<Option> All => [Gpus, Nodes, Zero, Fsdp, FsdpVersion, FsdpShardEmbeddings, FsdpShardedDtype, Tp, Sp, Ep, Offload, CpuMemory, FewestGpus, GpusPerNode];

    /// <summary>True when the user named a sharding (otherwise the search may choose one).</summary>
    public bool ShardingGiven(ParseResult p) => p.GetValue(Zero) is not null || p.GetValue(Fsdp) is not null;

    /// <summary>True when the user chose FSDP (the search then stays within FSDP strategies).</summary>
    public bool WantsFsdp(ParseResult p) => p.GetValue(Fsdp) is not null;

    public ParallelLayout Layout(ParseResult p)
    {
        int? zero = p.GetValue(Zero);
        string? fsdp = p.GetValue(Fsdp);
        if (zero is not null && fsdp is not null)
            throw new InputError("--zero/--fsdp", "DeepSpeed ZeRO and FSDP are two engines; a run uses one", "Give either --zero N or --fsdp full|grad-op|hybrid.");
        var sharding = zero switch
        {
            null => fsdp switch
            {
                null => Sharding.None,
                _ => fsdp.Trim().ToLowerInvariant() switch
                {
                    "full" => Sharding.FsdpFull,
                    "grad-op" => Sharding.FsdpGradOp,
                    "hybrid" => Sharding.FsdpHybrid,
                    _ => throw new InputError("--fsdp", $"\"{fsdp}\" is not an FSDP strategy", "Use full, grad-op or hybrid."),
                },
            },
            0 => Sharding.None,
            1 => Sharding.Zero1,
            2 => Sharding.Zero2,
            3 => Sharding.Zero3,
            _ => throw new InputError("--zero", $"{zero} is not a ZeRO stage", "Use 0, 1, 2 or 3."),
        };
        var offload = p.GetValue(Offload)!.Trim().ToLowerInvariant() switch
        {
            "none" => Planner.Parallel.Offload.None,
            "optimizer" => Planner.Parallel.Offload.Optimizer,
            "params" => Planner.Parallel.Offload.Params,
            var o => throw new InputError("--offload", $"\"{o}\" is not an offload target", "Use none, optimizer or params."),
        };
        return new ParallelLayout
        {
            Gpus = p.GetValue(Gpus),
            Nodes = p.GetValue(Nodes),
            Sharding = sharding,
            TensorParallel = p.GetValue(Tp),
            SequenceParallel = p.GetValue(Sp),
            ExpertParallel = p.GetValue(Ep),
            Offload = offload,
            FsdpVersion = p.GetValue(FsdpVersion),
            ShardEmbeddingsSeparately = p.GetValue(FsdpShardEmbeddings),
            FsdpShardedDtype = p.GetValue(FsdpShardedDtype) is { } sd ? Planner.Memory.DTypes.Parse(sd, "--fsdp-sharded-dtype") : null,
        };
    }

    public long? CpuBytesPerNode(ParseResult p) => p.GetValue(CpuMemory) is { } text ? ParseSize(text, "--cpu-memory") : null;

    /// <summary>Sizes such as 512GB (10⁹) or 480GiB (2³⁰).</summary>
    public static long ParseSize(string text, string field)
    {
        var t = text.Trim();
        int split = 0;
        while (split < t.Length && (char.IsDigit(t[split]) || t[split] == '.')) split++;
        if (split == 0 || !double.TryParse(t[..split], NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
            throw new InputError(field, $"\"{text}\" is not a size", "Write a number with a unit, e.g. 512GB or 480GiB.");
        double factor = t[split..].Trim().ToUpperInvariant() switch
        {
            "MB" => 1e6, "GB" => 1e9, "TB" => 1e12,
            "MIB" => 1 << 20, "GIB" => 1 << 30, "TIB" => 1024.0 * (1 << 30),
            "" => throw new InputError(field, $"\"{text}\" has no unit", "Add GB (10⁹ bytes) or GiB (2³⁰ bytes)."),
            var u => throw new InputError(field, $"unknown unit {u}", "Use MB, GB, TB, MiB, GiB or TiB."),
        };
        double bytes = value * factor;
        if (bytes < 1e6 || bytes > 1e16)
            throw new InputError(field, $"{text} is not a plausible memory size", "Give between 1 MB and 10 PB.");
        return (long)bytes;
    }
}
