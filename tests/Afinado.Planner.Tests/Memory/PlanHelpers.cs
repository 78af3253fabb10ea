using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Tests.Memory;

internal static class PlanHelpers
{
    public static ModelArchitecture Llama31_8B => ModelCatalog.Get("meta-llama/Llama-3.1-8B");
    public static ModelArchitecture Llama2_7B => ModelCatalog.Get("meta-llama/Llama-2-7b-hf");

    public static MemoryLedger Ledger(ModelArchitecture arch, Job job, DeviceKind device = DeviceKind.Gpu)
    {
        job.Validate();
        return LedgerBuilder.Build(ModelProfile.Create(Planner.Fit.Planner.SelectionFor(arch, job)), job, device);
    }

    /// <summary>The one tensor line of <paramref name="kind"/>.</summary>
    public static LedgerEntry Line(this MemoryLedger l, LineKind kind) => l.Tensors.Single(e => e.Kind == kind);

    /// <summary>Bytes of the tensor lines of the given kinds (0 when there are none).</summary>
    public static double Bytes(this MemoryLedger l, params LineKind[] kinds) => l.Tensors.Where(e => kinds.Contains(e.Kind)).Sum(e => e.Bytes);

    public static double Sum(this MemoryLedger l, Category c, Phase at) =>
        l.Tensors.Where(e => e.Category == c && (e.Phases & at) != 0).Sum(e => e.Bytes);

    /// <summary>A config.json for a llama-type model with the given sizes (for synthetic and absurd cases).</summary>
    public static ModelArchitecture Synthetic(int hidden, int layers, int heads, int kvHeads, int inter, int vocab) =>
        HfConfigReader.Parse($$"""
            {"model_type":"llama","hidden_size":{{hidden}},"num_hidden_layers":{{layers}},"num_attention_heads":{{heads}},
             "num_key_value_heads":{{kvHeads}},"intermediate_size":{{inter}},"vocab_size":{{vocab}},"max_position_embeddings":4096}
            """, "synthetic");

    public static Plan Plan(ModelArchitecture arch, Job job, params Device[] devices) => Planner.Fit.Planner.Create(arch, job, devices);
}
