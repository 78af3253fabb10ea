using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests.Memory;

public class LineKindTests
{
    [Fact]
    public void Every_kind_has_a_category_and_runtime_kinds_sit_outside_or_inside_the_allocator()
    {
        foreach (var kind in Enum.GetValues<LineKind>())
        {
            var category = kind.CategoryOf();
            Assert.False(kind.IsRuntimeOutsideAllocator() && kind.IsReservedInsideAllocator(), kind.ToString());
            Assert.Equal(category == Category.Runtime, kind.IsRuntimeOutsideAllocator() || kind.IsReservedInsideAllocator());
        }
    }

    [Theory]
    [InlineData(LearningRule.Backprop, DeviceKind.Gpu)]
    [InlineData(LearningRule.Backprop, DeviceKind.Cpu)]
    [InlineData(LearningRule.Es, DeviceKind.Gpu)]
    [InlineData(LearningRule.EsDirect, DeviceKind.Cpu)]
    [InlineData(LearningRule.Dfa, DeviceKind.Cpu)]
    [InlineData(LearningRule.GuidedEs, DeviceKind.Gpu)]
    public void A_kind_names_at_most_one_line_of_a_single_gpu_ledger(LearningRule rule, DeviceKind device)
    {
        var precisions = device == DeviceKind.Cpu ? [Precision.Fp32] : new[] { Precision.Bf16, Precision.AmpBf16 };
        foreach (var method in new[] { TrainingMethod.Full, TrainingMethod.Lora, TrainingMethod.QLora })
        foreach (var precision in precisions)
        foreach (var checkpointing in new[] { Checkpointing.None, Checkpointing.Full })
        {
            // Only backprop has a graph to recompute.
            if (checkpointing == Checkpointing.Full && rule != LearningRule.Backprop) continue;
            if (method == TrainingMethod.QLora && device == DeviceKind.Cpu) continue;
            var job = new Job { Method = method, Precision = precision, Checkpointing = checkpointing, Rule = rule, Attention = AttentionKernel.Eager, Batch = 1, Seq = 64 };
            var l = Ledger(Llama31_8B, job, device);
            Assert.All(l.Tensors.Concat(l.Runtime).GroupBy(e => e.Kind), g => Assert.Single(g));
        }
        var infer = Ledger(Llama31_8B, new Job { Task = JobTask.Infer, WeightsDtype = DType.Nf4, Attention = AttentionKernel.Eager, Batch = 1, Seq = 64 });
        Assert.All(infer.Tensors.Concat(infer.Runtime).GroupBy(e => e.Kind), g => Assert.Single(g));
    }
}
