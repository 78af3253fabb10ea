using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Training.Loop;

/// <summary>The planner's <c>--device cpu</c> prediction for a training run (fp32, no CUDA context, CPU attention kernel).</summary>
public sealed class CpuPeakPlanner : IPeakPlanner
{
    public long? PlanPeakBytes(PeakPlanRequest request)
    {
        var c = request.Config;
        if (c.Rule == "es") return EsPeakBytes(request);
        long backprop = Plan(request, JobFor(c));
        // The planner has no DFA mode yet: DFA (and Guided ES's DFA surrogate) is charged as backprop plus the fixed
        // feedback matrices B_i [vocab, hidden], one per decoder block.
        return c.Rule is "dfa" or "guided-es"
            ? backprop + (long)request.Architecture.NumLayers * request.Architecture.VocabSize * request.Architecture.HiddenSize * 4
            : backprop;
    }

    /// <summary>
    /// ES is forward-only: the planner's inference plan of the same batch (weights + no-grad activations) plus, per trainable
    /// parameter, the LoRA adapter weights (not in an inference plan), one perturbation buffer and — unless MeZO-style direct
    /// (--optimizer sgd) — the estimate, its .grad copy and the optimizer state.
    /// </summary>
    private static long EsPeakBytes(PeakPlanRequest r)
    {
        var c = r.Config;
        var job = new Job
        {
            Task = JobTask.Infer,
            Precision = Precision.Fp32,
            Batch = c.BatchSize * c.GradientAccumulation,
            Seq = c.SequenceLength,
            Context = c.SequenceLength,
            Attention = c.Attention == "eager" ? AttentionKernel.Eager : AttentionKernel.Sdpa,
        };
        long n = r.TrainableParameters, perParam = 4;
        long adapters = TrainingMethods.Parse(c.Method).UsesAdapters() ? n * perParam : 0;
        long buffers = c.Optimizer switch
        {
            "sgd" => 1,
            "momentum" => 1 + 2 + 1,
            _ => 1 + 2 + 2,
        } * n * perParam;
        return Plan(r, job) + adapters + buffers;
    }

    private static long Plan(PeakPlanRequest r, Job job) =>
        Afinado.Planner.Fit.Planner.Create(r.Architecture, job, [Device.Cpu()], suggestFixes: false).Ledger.TotalBytes;

    /// <summary>The planner job that describes this training run.</summary>
    public static Job JobFor(TrainConfig c)
    {
        var method = TrainingMethods.Parse(c.Method);
        return new Job
        {
            Task = JobTask.Train,
            Method = method,
            FreezePatterns = c.Freeze,
            Lora = method.UsesAdapters() ? new LoraConfig { Rank = c.LoraRank, Alpha = c.LoraAlpha, Dropout = c.LoraDropout, Targets = c.LoraTargets } : null,
            Precision = Precision.Fp32,
            Optimizer = c.Optimizer switch
            {
                "sgd" => OptimizerKind.Sgd,
                "momentum" => OptimizerKind.SgdMomentum,
                _ => OptimizerKind.AdamW,
            },
            Batch = c.BatchSize,
            Seq = c.SequenceLength,
            GradAccumulation = c.GradientAccumulation,
            Checkpointing = c.GradientCheckpointing ? Checkpointing.Full : Checkpointing.None,
            Attention = c.Attention == "eager" ? AttentionKernel.Eager : AttentionKernel.Sdpa,
        };
    }
}
