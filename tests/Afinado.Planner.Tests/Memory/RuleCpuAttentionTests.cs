using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests.Memory;

/// <summary>
/// A learning rule's no-grad forward on the CPU runs Afinado's TorchSharp attention, which takes its explicit path for
/// Gemma 2's soft-cap (or a query_pre_attn_scalar other than head_dim) whatever --attention says, and keeps five
/// b·a·s² tensors there (scores, tanh's output, its product with the cap, the masked copy, the softmax); its soft-capped
/// head holds the final hidden state and four T·V tensors. Measured (bench/ground-truth/cpu-rules-measured.csv, the
/// gemma2-small rows): ES on a 4-layer Gemma 2 at 8 × 256 held 106.1 MB where the SDPA-only plan said 47.3 MB.
/// </summary>
public class RuleCpuAttentionTests
{
    private static readonly ModelArchitecture Gemma2 = ModelCatalog.Get("google/gemma-2-2b");

    private static double Line(ModelArchitecture a, Job job, LineKind kind) =>
        Ledger(a, job, DeviceKind.Cpu).Tensors.Where(e => e.Kind == kind).Sum(e => e.Bytes);

    [Fact]
    public void The_soft_capped_no_grad_forward_keeps_five_score_tensors_under_sdpa_as_under_eager()
    {
        var job = new Job { Method = TrainingMethod.Lora, Precision = Precision.Fp32, Batch = 1, Seq = 2048, Rule = LearningRule.EsDirect, Attention = AttentionKernel.Sdpa };
        // Without the cap and at the 1/√head_dim scale the trainer calls SDPA (no score matrix); --attention eager keeps
        // scores, masked copy and softmax. At 2,048 tokens those outweigh the MLP's moment, so the layer peaks in attention.
        var plain = Gemma2 with { AttnLogitSoftcap = null, QueryPreAttnScalar = Gemma2.HeadDim };
        double eager3 = Line(plain, job with { Attention = AttentionKernel.Eager }, LineKind.NoGradForwardLayer);
        Assert.True(Line(plain, job, LineKind.NoGradForwardLayer) < eager3);
        // Another scale alone leaves SDPA for the explicit path: the same three tensors although --attention sdpa.
        Assert.Equal(eager3, Line(plain with { QueryPreAttnScalar = 2 * Gemma2.HeadDim }, job, LineKind.NoGradForwardLayer));
        // The cap adds tanh's output and its product: two more b·a·s² tensors, under sdpa as under eager.
        double capped = Line(Gemma2, job, LineKind.NoGradForwardLayer);
        Assert.Equal(2.0 * 4 * Gemma2.NumHeads * 2048 * 2048, capped - eager3);
        Assert.Equal(capped, Line(Gemma2, job with { Attention = AttentionKernel.Eager }, LineKind.NoGradForwardLayer));
    }

    [Fact]
    public void The_soft_capped_head_holds_four_logit_tensors_and_the_final_hidden_state()
    {
        var job = new Job { Method = TrainingMethod.Lora, Precision = Precision.Fp32, Batch = 1, Seq = 128, Rule = LearningRule.EsDirect };
        double tv = 128.0 * Gemma2.VocabSize;
        Assert.Equal(4 * (4 * tv + 128.0 * Gemma2.HiddenSize), Line(Gemma2, job, LineKind.NoGradForwardLoss));
        Assert.Equal(4 * 2 * tv, Line(Gemma2 with { FinalLogitSoftcap = null }, job, LineKind.NoGradForwardLoss));
    }
}
