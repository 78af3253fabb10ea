using Afinado.Planner.Allocator;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests.Memory;

/// <summary>
/// Sliding-window layers under SDPA once the sequence reaches the window (Gemma 3 4B: window 1,024, 29 of its 34 layers
/// sliding, 8 query and 4 key/value heads): transformers builds a boolean mask, repeats K/V to the query's heads itself,
/// and SDPA's memory-efficient kernel keeps the mask converted to the query's dtype in every sliding layer.
/// </summary>
public class SlidingWindowMaskTests
{
    private static readonly Planner.Architecture.ModelArchitecture Gemma3 = ModelCatalog.Get("google/gemma-3-4b-it");

    private static MemoryLedger Ledger(int seq, AttentionKernel kernel = AttentionKernel.Sdpa, int batch = 1)
    {
        var job = new Job { Method = TrainingMethod.Lora, Seq = seq, Batch = batch, Attention = kernel };
        return LedgerBuilder.Build(ModelProfile.Create(Planner.Fit.Planner.SelectionFor(Gemma3, job)), job, DeviceKind.Gpu);
    }

    private static double Line(MemoryLedger l, LineKind kind) => l.Tensors.Where(e => e.Kind == kind).Sum(e => e.Bytes);

    [Fact]
    public void Each_sliding_layer_keeps_its_bf16_mask_once_the_sequence_reaches_the_window()
    {
        Assert.Equal(29, Gemma3.SlidingLayerCount);
        Assert.Equal(29.0 * 2 * 4096 * 4096 * 2, Line(Ledger(4096, batch: 2), LineKind.ActivationsAttentionScores));
        // The boolean mask itself: one [1, 1, s, s] per forward.
        Assert.Equal(4096.0 * 4096, Line(Ledger(4096), LineKind.SlidingWindowMask));
        // Below the window SDPA runs causal without a mask.
        Assert.Equal(0, Line(Ledger(1000), LineKind.ActivationsAttentionScores));
        Assert.Equal(0, Line(Ledger(1000), LineKind.SlidingWindowMask));
        // flash_attention_2 takes the window as an argument.
        Assert.Equal(0, Line(Ledger(4096, AttentionKernel.Flash), LineKind.ActivationsAttentionScores));
    }

    [Fact]
    public void An_unaligned_sequence_pads_the_bias_over_every_head()
    {
        // preprocess_mask → pad_bias: the head-expanded bias padded to a multiple of 16 columns.
        Assert.Equal(29.0 * 8 * 4100 * 4112 * 2, Line(Ledger(4100), LineKind.ActivationsAttentionScores));
    }

    [Fact]
    public void With_a_mask_the_sliding_layers_keep_k_and_v_at_the_query_s_width()
    {
        // Flash keeps K/V at their 4 heads; SDPA with a mask keeps them repeated to 8 (2 × 1,024 more per token, bf16).
        double sdpa = Line(Ledger(4096), LineKind.ActivationsAttentionCore), flash = Line(Ledger(4096, AttentionKernel.Flash), LineKind.ActivationsAttentionCore);
        Assert.Equal(29.0 * 4096 * 2 * 2 * (2048 - 1024), sdpa - flash);
    }

    [Fact]
    public void A_prefill_that_reaches_the_window_holds_the_mask_and_one_layer_s_copy_and_repeated_k_v()
    {
        const double s = 32768;
        var job = new Job { Task = JobTask.Infer, Seq = (int)s };
        var ledger = LedgerBuilder.Build(ModelProfile.Create(Planner.Fit.Planner.SelectionFor(Gemma3, job)), job, DeviceKind.Gpu);
        Assert.Equal(s * s, Line(ledger, LineKind.SlidingWindowMask));
        // While a sliding layer's SDPA runs: its bf16 copy of the mask and K/V repeated to 8 heads, on top of q, k, v and
        // the output; at 32,768 tokens that outweighs the MLP's 3 · 2 B · 10,240 per token.
        double attention = 2 * s * (2048 + 2 * 1024) + 2 * s * 2048 + s * s * 2 + 2.0 * 2 * s * 2048;
        Assert.True(attention > 3 * 2 * 10240 * s);
        double around = 2.0 * 2 * s * 2560 + 2.0 * 2560 * s;
        Assert.Equal(attention + around, Line(ledger, LineKind.PrefillActivations));
        var shortPrompt = job with { Seq = 512 };
        Assert.Equal(0, Line(LedgerBuilder.Build(ModelProfile.Create(Planner.Fit.Planner.SelectionFor(Gemma3, shortPrompt)), shortPrompt, DeviceKind.Gpu), LineKind.SlidingWindowMask));
    }

    [Theory]
    [InlineData("meta-llama/Llama-3.1-8B")]
    [InlineData("mistralai/Mixtral-8x7B-v0.1")]
    [InlineData("Qwen/Qwen3-30B-A3B")]
    [InlineData("deepseek-ai/DeepSeek-V2-Lite-Chat")]
    [InlineData("meta-llama/Llama-4-Scout-17B-16E")]
    [InlineData("google/gemma-3-4b-it")]
    public void Generation_s_traced_peak_is_the_ledger_s(string id)
    {
        // A long prefill (past Gemma 3's window and Llama 4's chunk) and a short prompt with decode steps.
        foreach (var job in new[] { new Job { Task = JobTask.Infer, Seq = 16384 }, new Job { Task = JobTask.Infer, Seq = 512, Context = 4096 } })
        {
            var profile = ModelProfile.Create(Planner.Fit.Planner.SelectionFor(ModelCatalog.Get(id), job));
            var ledger = LedgerBuilder.Build(profile, job, DeviceKind.Gpu);
            long traced = StepTraces.For(profile, job).PeakLiveBytes;
            // Measured 0.9984–1.0070.
            Assert.InRange(traced / (double)(ledger.PeakBytes + RuntimeStack.Default.WorkspaceBytes), 0.985, 1.015);
        }
    }

    [Fact]
    public void The_traced_step_holds_the_masks_as_the_ledger_does()
    {
        var job = new Job { Method = TrainingMethod.Lora, Seq = 8192 };
        var profile = ModelProfile.Create(Planner.Fit.Planner.SelectionFor(Gemma3, job));
        var ledger = LedgerBuilder.Build(profile, job, DeviceKind.Gpu);
        long traced = StepTraces.For(profile, job).PeakLiveBytes;
        // 3.6 GiB of masks at 8,192 tokens: a trace without them would sit near 0.96.
        Assert.InRange(traced / (double)(ledger.PeakBytes + RuntimeStack.Default.WorkspaceBytes), 0.985, 1.015);
    }
}
