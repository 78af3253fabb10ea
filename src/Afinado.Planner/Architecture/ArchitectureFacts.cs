using System.Runtime.CompilerServices;

namespace Afinado.Planner.Architecture;

/// <summary>
/// Per-tensor facts derived once from an (immutable) <see cref="ModelArchitecture"/> — element counts, module names,
/// linear flags, a name index — so selections, profiles and plans do not recompute them (the planner's speed budget is
/// 0.1 ms per plan). Keyed by instance: an architecture is parsed once and planned many times.
/// </summary>
internal sealed class ArchitectureFacts
{
    private static readonly ConditionalWeakTable<ModelArchitecture, ArchitectureFacts> Cache = new();

    public static ArchitectureFacts Of(ModelArchitecture arch) => Cache.GetValue(arch, a => new ArchitectureFacts(a));

    private ArchitectureFacts(ModelArchitecture arch)
    {
        var tensors = arch.Tensors;
        int n = tensors.Count;
        Elements = new long[n];
        Modules = new string[n];
        ShortModules = new string[n];
        IsLinear = new bool[n];
        IsLinearModule = new bool[n];
        IsExpertRouter = new bool[n];
        IndexByName = new Dictionary<string, int>(n, StringComparer.Ordinal);
        for (int i = 0; i < n; i++)
        {
            var t = tensors[i];
            Elements[i] = t.Elements;
            ParameterCount = checked(ParameterCount + Elements[i]);
            Modules[i] = t.Module;
            ShortModules[i] = Modules[i][(Modules[i].LastIndexOf('.') + 1)..];
            IsLinear[i] = t.IsLinearWeight;
            // The expert router ([experts, hidden]) may be a parameter of its module; Qwen2-MoE's shared_expert_gate
            // ([1, hidden]) is an nn.Linear either way.
            bool expertRouter = t.Role == TensorRole.Router && t.Shape[0] == arch.NumExperts;
            IsExpertRouter[i] = expertRouter;
            IsLinearModule[i] = IsLinear[i] && (t.Expert is null || !arch.RoutedExpertsAreParameters) && (!expertRouter || arch.RouterIsLinearModule)
                || t.VisionLinear;
            IndexByName[t.Name] = i;
        }
    }

    public long[] Elements { get; }
    public string[] Modules { get; }
    /// <summary>The last segment of the module path (<c>q_proj</c>).</summary>
    public string[] ShortModules { get; }
    public bool[] IsLinear { get; }
    /// <summary>A linear weight that is an nn.Linear module in transformers 5: what PEFT's target_modules adapt and
    /// bitsandbytes / torchao quantize (they replace modules), a vision tower's included
    /// (<see cref="ParameterTensor.VisionLinear"/>; not <see cref="IsLinear"/>, since a text step runs nothing through
    /// them). False for routed experts held as stacked parameters and for routers held as parameters of their modules
    /// (<see cref="ModelArchitecture.RoutedExpertsAreParameters"/>).</summary>
    public bool[] IsLinearModule { get; }
    /// <summary>The weight of a MoE block's router over the routed experts ([experts, hidden]).</summary>
    public bool[] IsExpertRouter { get; }
    public Dictionary<string, int> IndexByName { get; }
    public long ParameterCount { get; }
}
