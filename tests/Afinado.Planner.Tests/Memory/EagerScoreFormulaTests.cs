using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests.Memory;

/// <summary>
/// A plan's formula column must multiply out to the bytes beside it. The eager attention lines once printed the generic
/// "4 fp32 softmax + copy" and "scores before the fp32 softmax" for every family while their bytes followed the family's
/// branch (gpt-oss keeps one 16-bit softmax over s + 1 columns; bf16 scores are upcast to an fp32 copy in flight), so a
/// reader recomputing gpt-oss's 12 GiB from the text got 36.
/// </summary>
public class EagerScoreFormulaTests
{
    private static MemoryLedger Ledger(string model, Job job) =>
        Planner.Fit.Planner.Create(ModelCatalog.Get(model), job, [GpuCatalog.Get("h100")], suggestFixes: false).Ledger;

    private static LedgerEntry Line(MemoryLedger l, LineKind kind) => l.Tensors.Single(e => e.Kind == kind);

    [Fact]
    public void Gpt_oss_sinks_say_one_16_bit_softmax_over_s_plus_one_columns()
    {
        var job = new Job { Attention = AttentionKernel.Eager, Batch = 1, Seq = 512 };
        var l = Ledger("openai/gpt-oss-20b", job);
        var a = ModelCatalog.Get("openai/gpt-oss-20b");
        double rows = 1.0 * a.NumHeads * 512;
        var scores = Line(l, LineKind.ActivationsAttentionScores);
        Assert.Contains("b·heads·s·(s + 1) × 2 B", scores.Formula);
        Assert.Contains("8 B row-max indices", scores.Formula);
        Assert.Equal(a.NumLayers * (2 * rows * 513 + 8 * rows), scores.Bytes, 0.5);
        var inFlight = Line(l, LineKind.EagerScoresInFlight);
        Assert.Contains("b·a·s² × 2 B masked scores + b·a·s·(s + 1) × 2 B", inFlight.Formula);
        Assert.Equal(2 * rows * 512 + 2 * rows * 513, inFlight.Bytes, 0.5);
    }

    [Fact]
    public void Bf16_eager_says_the_fp32_softmax_its_16_bit_copy_and_the_fp32_copy_in_flight()
    {
        var job = new Job { Attention = AttentionKernel.Eager, Batch = 1, Seq = 1024 };
        var a = ModelCatalog.Get("meta-llama/Llama-3.2-1B");
        var l = Ledger("meta-llama/Llama-3.2-1B", job);
        double pairs = 1.0 * a.NumHeads * 1024 * 1024;
        var scores = Line(l, LineKind.ActivationsAttentionScores);
        Assert.Contains("b·heads·s² × (4 B fp32 softmax + 2 B copy)", scores.Formula);
        Assert.Equal(a.NumLayers * pairs * 6, scores.Bytes, 0.5);
        var inFlight = Line(l, LineKind.EagerScoresInFlight);
        Assert.Contains("b·a·s² × 4 B", inFlight.Formula);
        Assert.Equal(pairs * 4, inFlight.Bytes, 0.5);
    }

    [Fact]
    public void Dropout_and_the_soft_cap_are_named_with_their_bytes()
    {
        var a = ModelCatalog.Get("google/gemma-2-2b");
        var full = new Job { Attention = AttentionKernel.Eager, Method = TrainingMethod.Full, Precision = Precision.Fp32, Batch = 1, Seq = 256, Dropout = 0.1 };
        var scores = Line(Ledger("google/gemma-2-2b", full), LineKind.ActivationsAttentionScores);
        Assert.Contains("b·heads·s² × (4 B fp32 softmax + 4 B soft-cap tanh + 1 B dropout mask + 4 B dropped copy)", scores.Formula);
        Assert.Equal(a.NumLayers * (1.0 * a.NumHeads * 256 * 256) * (4 + 4 + 1 + 4), scores.Bytes, 0.5);
    }

    /// <summary>The prefill line names the larger of its two parts with both byte counts and what lives beside them; the
    /// three numbers add up to the line (it once printed the generic eager text for every family, gpt-oss included).</summary>
    [Theory]
    [InlineData("openai/gpt-oss-20b", "eager", "2 × b·heads·s·(s + 1) × 2 B logits with the sink column")]
    [InlineData("meta-llama/Llama-3.1-8B", "sdpa", "q,k,v,out (fused SDPA: no s² term)")]
    [InlineData("meta-llama/Llama-3.1-8B", "eager", "b·heads·s² × (2 B scores + 4 B fp32 copy + 4 B fp32 softmax)")]
    public void The_prefill_line_adds_up_from_its_formula(string model, string attention, string attentionText)
    {
        var job = new Job { Task = JobTask.Infer, Seq = 1024, Attention = attention == "eager" ? AttentionKernel.Eager : AttentionKernel.Sdpa };
        var line = Line(Ledger(model, job), LineKind.PrefillActivations);
        Assert.Contains(attentionText, line.Formula);
        var numbers = System.Text.RegularExpressions.Regex.Matches(line.Formula, @"([\d,]{5,}) B").Select(m => double.Parse(m.Groups[1].Value.Replace(",", ""))).ToList();
        Assert.Equal(3, numbers.Count);
        Assert.Equal(line.Bytes, Math.Max(numbers[0], numbers[1]) + numbers[2], 0.5);
    }

    [Theory]
    [InlineData("openai/gpt-oss-20b", "eager", "3 × b·heads·s·(s + 1) × 2 B softmax gradients")]
    [InlineData("meta-llama/Llama-3.1-8B", "sdpa", "fused SDPA")]
    [InlineData("meta-llama/Llama-3.1-8B", "eager", "b·heads·s² × (8 + 2) B softmax gradients")]
    public void The_backward_temporaries_line_adds_up_from_its_formula(string model, string attention, string attentionText)
    {
        var job = new Job { Seq = 1024, Attention = attention == "eager" ? AttentionKernel.Eager : AttentionKernel.Sdpa };
        var line = Line(Ledger(model, job), LineKind.BackwardTemporaries);
        Assert.Contains(attentionText, line.Formula);
        var numbers = System.Text.RegularExpressions.Regex.Matches(line.Formula, @"([\d,]{5,}) B").Select(m => double.Parse(m.Groups[1].Value.Replace(",", ""))).ToList();
        Assert.Equal(3, numbers.Count);
        Assert.Equal(line.Bytes, Math.Max(numbers[0], numbers[1]) + numbers[2], 0.5);
    }
}
