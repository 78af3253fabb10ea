using Afinado.Planner.Architecture;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests.Memory;

/// <summary>
/// The activation ledger on qwen MoE layouts: routed experts are moe_intermediate_size wide, and dense layers and
/// qwen2_moe's shared expert cost what a dense MLP of their width costs in a Llama of the same shape.
/// </summary>
public class QwenMoeActivationTests
{
    private static Job FullBf16 => new() { Method = TrainingMethod.Full, Batch = 1, Seq = 256 };

    private static ModelArchitecture Qwen(string type, int inter, int moeInter, int experts, string extra = "") => HfConfigReader.Parse($$"""
        {"model_type":"{{type}}","hidden_size":1024,"num_hidden_layers":4,"num_attention_heads":16,"num_key_value_heads":4,
         "intermediate_size":{{inter}},"moe_intermediate_size":{{moeInter}},"num_experts":{{experts}},"num_experts_per_tok":2,
         "vocab_size":32000,"max_position_embeddings":4096{{extra}}}
        """, type + "-test");

    private static double Mlp(ModelArchitecture a) => Ledger(a, FullBf16).Line(LineKind.ActivationsMlp).Bytes;

    [Fact]
    public void Routed_experts_are_sized_by_moe_intermediate_size_not_intermediate_size()
    {
        // Every qwen3_moe layer is sparse here, so intermediate_size is unused and must not move the ledger.
        Assert.Equal(Mlp(Qwen("qwen3_moe", 4096, 512, 8)), Mlp(Qwen("qwen3_moe", 16384, 512, 8)));
        // …and moe_intermediate_size does: the routed experts' saved tensors grow linearly with it (the routing terms,
        // hidden-wide, do not).
        double step = Mlp(Qwen("qwen3_moe", 4096, 1024, 8)) - Mlp(Qwen("qwen3_moe", 4096, 512, 8));
        Assert.True(step > 0);
        Assert.Equal(step, Mlp(Qwen("qwen3_moe", 4096, 1536, 8)) - Mlp(Qwen("qwen3_moe", 4096, 1024, 8)), 6);
    }

    [Fact]
    public void Shared_expert_costs_what_a_dense_mlp_of_its_width_costs()
    {
        double shared(int width) => Mlp(Qwen("qwen2_moe", 4096, 512, 8, $",\"shared_expert_intermediate_size\":{width}"));
        double dense(int width) => Mlp(Synthetic(1024, 4, 16, 4, width, 32000));
        Assert.Equal(dense(4096) - dense(1024), shared(4096) - shared(1024), 6);
        Assert.True(shared(1024) > 0);
    }

    [Fact]
    public void A_qwen_moe_config_without_sparse_layers_saves_what_a_dense_llama_saves()
    {
        Assert.Equal(Mlp(Synthetic(1024, 4, 16, 4, 2816, 32000)), Mlp(Qwen("qwen3_moe", 2816, 512, 0)), 6);
        Assert.Equal(Mlp(Synthetic(1024, 4, 16, 4, 2816, 32000)),
            Mlp(Qwen("qwen3_moe", 2816, 512, 8, ",\"mlp_only_layers\":[0,1,2,3]")), 6);
    }
}
