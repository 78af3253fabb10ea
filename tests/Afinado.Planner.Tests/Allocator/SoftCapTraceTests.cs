using Afinado.Planner.Allocator;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests.Allocator;

/// <summary>
/// Gemma 2's soft-caps (transformers models/gemma2: the attention scores and the final logits each go through
/// <c>x / cap</c>, <c>tanh</c>, <c>· cap</c>, and tanh keeps its output for backward): the trace runs them op by op and
/// must agree with the ledger, which charges tanh's saved output (and on the CPU what Afinado's step holds).
/// </summary>
public class SoftCapTraceTests
{
    private static readonly Job[] Jobs =
    [
        new() { Method = TrainingMethod.Lora, Seq = 2048, Attention = AttentionKernel.Eager },
        new() { Method = TrainingMethod.Lora, Seq = 2048, Attention = AttentionKernel.Eager, Precision = Precision.AmpBf16 },
        new() { Method = TrainingMethod.Full, Seq = 1024, Attention = AttentionKernel.Eager },
        new() { Method = TrainingMethod.QLora, Seq = 4096, Attention = AttentionKernel.Eager, Checkpointing = Checkpointing.Full },
        // SDPA drops the attention cap (transformers' sdpa_attention_forward takes no soft-cap); the final cap stays.
        new() { Method = TrainingMethod.Lora, Seq = 2048 },
    ];

    public static TheoryData<string, int> Cases() => TraceAgreement.Cases(["google/gemma-2-2b", "google/gemma-2-9b"], Jobs.Length);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Gemma_2_s_soft_capped_step_peaks_where_the_ledger_does(string id, int jobIndex)
    {
        var job = Jobs[jobIndex];
        // Measured 0.994–1.000.
        Assert.InRange(TraceAgreement.TraceOverLedger(TraceAgreement.Profile(ModelCatalog.Get(id), job), job), 0.985, 1.015);
    }

    [Fact]
    public void The_caps_add_tanh_s_saved_output_to_the_scores_and_the_logits()
    {
        var arch = ModelCatalog.Get("google/gemma-2-2b");
        var uncapped = arch with { AttnLogitSoftcap = null, FinalLogitSoftcap = null };
        var job = new Job { Method = TrainingMethod.Lora, Seq = 1024, Attention = AttentionKernel.Eager };
        double Line(ModelArchitecture a, LineKind kind) => Planner.Fit.Planner.Create(a, job, [], suggestFixes: false).Ledger.Tensors
            .Where(e => e.Kind == kind).Sum(e => e.Bytes);
        double pairs = (double)arch.NumHeads * 1024 * 1024, tv = 1024.0 * arch.VocabSize;
        // bf16: 2 B per score per layer, 2 B per logit.
        Assert.Equal(arch.NumLayers * pairs * 2, Line(arch, LineKind.ActivationsAttentionScores) - Line(uncapped, LineKind.ActivationsAttentionScores));
        Assert.Equal(tv * 2, Line(arch, LineKind.LossForward) - Line(uncapped, LineKind.LossForward));
    }
    [Fact]
    public void On_the_cpu_a_capped_model_plans_the_trainers_explicit_attention_whatever_the_kernel()
    {
        // Afinado's TorchSharp attention calls SDPA only at the 1/√head_dim scale and without a cap (measured: a tiny
        // Gemma 2 full run holds 1.204 GB with --attention sdpa and with eager alike).
        long Peak(string id, AttentionKernel kernel) => Planner.Fit.Planner.Create(ModelCatalog.Get(id),
            new Job { Method = TrainingMethod.Lora, Seq = 512, Attention = kernel, Precision = Precision.Fp32 }, [Device.Cpu()], suggestFixes: false).Ledger.PeakBytes;
        Assert.Equal(Peak("google/gemma-2-2b", AttentionKernel.Eager), Peak("google/gemma-2-2b", AttentionKernel.Sdpa));
        // Gemma 3 4B (query_pre_attn_scalar = head_dim, no cap) keeps SDPA's smaller plan.
        Assert.True(Peak("google/gemma-3-4b-it", AttentionKernel.Sdpa) < Peak("google/gemma-3-4b-it", AttentionKernel.Eager));
    }
}
