using Afinado.Planner.Allocator;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests.Allocator;

/// <summary>
/// torchtune's optimizer_in_bwd (<c>--optimizer-in-backward</c>) is traced: each parameter's step and <c>zero_grad()</c>
/// run in a post-accumulate-grad hook as soon as its gradient is complete, so the step is replayed instead of given the
/// 5 % reserve. The trace must peak where the ledger (gradients one tensor at a time, per-tensor temporaries) does; the
/// tape steps a weight used twice (a tied head) once, after its last use; and the step in backward holds far less than
/// the step after it.
/// </summary>
public class OptimizerInBackwardTraceTests
{
    private static readonly Job[] Jobs =
    [
        new() { Method = TrainingMethod.Full, Batch = 2, Seq = 1024, OptimizerInBackward = true },
        new() { Method = TrainingMethod.Full, Batch = 1, Seq = 4096, OptimizerInBackward = true, Checkpointing = Checkpointing.Full },
        new() { Method = TrainingMethod.Full, Batch = 2, Seq = 1024, OptimizerInBackward = true, Precision = Precision.AmpBf16 },
        new() { Method = TrainingMethod.Full, Batch = 2, Seq = 1024, OptimizerInBackward = true, Precision = Precision.Fp32 },
        new() { Method = TrainingMethod.Full, Batch = 2, Seq = 1024, OptimizerInBackward = true, FusedOptimizer = true },
        new() { Method = TrainingMethod.Full, Batch = 2, Seq = 1024, OptimizerInBackward = true, Optimizer = OptimizerKind.AdamW8bit },
        new() { Method = TrainingMethod.Lora, Batch = 2, Seq = 1024, OptimizerInBackward = true },
        new() { Method = TrainingMethod.Full, Batch = 2, Seq = 2048, OptimizerInBackward = true, LossChunks = 8, Checkpointing = Checkpointing.Full },
        new() { Method = TrainingMethod.Full, Batch = 2, Seq = 2048, OptimizerInBackward = true, LossChunks = 8 },
    ];

    public static TheoryData<string, int> Cases() => TraceAgreement.Cases(["meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-0.5B", "meta-llama/Llama-3.1-8B", "google/gemma-2-2b"], Jobs.Length);

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_step_in_backward_peaks_where_the_ledger_does(string id, int jobIndex) =>
        TraceAgreement.ReplayedAndAgrees(ModelCatalog.Get(id), Jobs[jobIndex]);

    [Fact]
    public void A_weight_used_twice_is_stepped_once_after_its_last_use_and_its_gradient_freed_there()
    {
        var tape = new AutogradTape(new AllocationTrace());
        var tied = new Param(elements: 50, bytes: 2, trainable: true, storageBytes: 100, quantized: false);
        var other = new Param(elements: 10, bytes: 2, trainable: true, storageBytes: 20, quantized: false);
        var stepped = new List<(Param Param, int Grad, int EventsSoFar)>();
        tape.GradReady = p =>
        {
            stepped.Add((p, p.Grad, tape.Trace.Events.Count));
            tape.Drop(p.Grad);
            p.Grad = -1;
        };
        int ids = tape.New(8);
        // embedding(ids) with the tied table, a layer with its own weight, then the head with the tied table again.
        int x = tape.New(300);
        tape.Op(x, [], weights: [new WeightGrad(tied, 2)]);
        int y = tape.New(300);
        tape.Op(y, [x], saved: [x], weights: [new WeightGrad(other, 2)]);
        tape.Drop(x);
        int logits = tape.New(700);
        tape.Op(logits, [y], saved: [y], weights: [new WeightGrad(tied, 2)]);
        tape.Drop(y);
        int loss = tape.New(4);
        tape.Op(loss, [logits]);
        tape.Drop(logits, ids);
        tape.Backward(loss);
        // The head's share of the tied gradient comes first but the step waits for the embedding's: the layer's weight
        // is stepped first, the tied table once, last, and each gradient is freed by its hook.
        Assert.Equal([other, tied], stepped.Select(s => s.Param));
        Assert.Equal(stepped.Count, stepped.Select(s => s.Grad).Distinct().Count());
        foreach (var (_, grad, _) in stepped)
            Assert.Single(tape.Trace.Events, e => e.Kind == TraceEventKind.Free && e.Tensor == grad);
        Assert.True(stepped[1].EventsSoFar > stepped[0].EventsSoFar);
        Assert.All(new[] { tied, other }, p => Assert.Equal(0, p.PendingGrads));
    }

    [Fact]
    public void Full_finetuning_with_the_step_in_backward_holds_less_than_the_step_after_it_and_is_replayed()
    {
        var arch = ModelCatalog.Get("meta-llama/Llama-3.1-8B");
        var job = new Job { Method = TrainingMethod.Full, Batch = 1, Seq = 2048 };
        var oib = job with { OptimizerInBackward = true };
        var profile = TraceAgreement.Profile(arch, job);
        var after = ReservedMemory.Replay(profile, job);
        var inBackward = ReservedMemory.Replay(profile, oib);
        // Without the hook every bf16 gradient (8.0 B params × 2 B) is live at the step; with it one at a time.
        long gradients = 2L * profile.Selection.TrainableParameters;
        Assert.True(after.PeakAllocatedBytes - inBackward.PeakAllocatedBytes > 0.8 * gradients,
            $"{after.PeakAllocatedBytes:N0} vs {inBackward.PeakAllocatedBytes:N0}");
        Assert.Equal(2, inBackward.Iterations.Count);
    }
}
