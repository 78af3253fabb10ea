using Afinado.Planner.Allocator;
using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Bench;

/// <summary>
/// <c>dotnet run -c Release --project bench/Afinado.Bench -- tracehash &gt; before.txt</c>: for every catalog model under
/// 24 jobs (LoRA, QLoRA, full in each precision, checkpointing, eager attention, dropout, chunked loss, optimizer in
/// backward, 8-bit AdamW, gradient accumulation, ES rules, prefill and decode with dynamic and static caches), one line
/// with the step's allocator-call count, an FNV-1a hash of every call (kind, tensor, bytes, stream) and the replay's
/// reserved and allocated peaks. Run it before and after a refactor of the tracer or the allocator and compare the files:
/// identical files mean every traced call and every replayed figure is unchanged. Sequence 256 keeps it to minutes.
/// </summary>
internal static class TraceHashes
{
    public static void Run()
    {
        (string Name, Job Job)[] jobs =
        [
            ("lora", new Job()), ("infer", new Job { Task = JobTask.Infer }),
            ("full-amp", new Job { Method = TrainingMethod.Full, Precision = Precision.AmpBf16 }),
            ("qlora", new Job { Method = TrainingMethod.QLora }), ("qlora-amp", new Job { Method = TrainingMethod.QLora, Precision = Precision.AmpBf16 }),
            ("qlora-kbit", new Job { Method = TrainingMethod.QLora, KbitPrep = true }), ("lora-eager", new Job { Attention = AttentionKernel.Eager }),
            ("full-fp32", new Job { Method = TrainingMethod.Full, Precision = Precision.Fp32 }), ("lora-ckpt", new Job { Checkpointing = Checkpointing.Full }),
            ("full-ckpt", new Job { Method = TrainingMethod.Full, Checkpointing = Checkpointing.Full }),
            ("infer-eager", new Job { Task = JobTask.Infer, Attention = AttentionKernel.Eager }),
            ("optbwd", new Job { Method = TrainingMethod.Full, OptimizerInBackward = true }), ("lora-drop", new Job { Dropout = 0.05 }),
            ("chunks", new Job { LossChunks = 8, Method = TrainingMethod.Full }), ("es", new Job { Rule = LearningRule.Es }),
            ("es-direct", new Job { Rule = LearningRule.EsDirect, Method = TrainingMethod.Full }), ("ga2", new Job { GradAccumulation = 2 }),
            ("keep-legacy", new Job { KeepOutput = true, LegacyLoss = true }),
            ("amp-fp16-ckpt", new Job { Method = TrainingMethod.Full, Precision = Precision.AmpFp16, Checkpointing = Checkpointing.Full }),
            ("qlora-ckpt-drop", new Job { Method = TrainingMethod.QLora, Checkpointing = Checkpointing.Full, Dropout = 0.1 }),
            ("decode", new Job { Task = JobTask.Infer, Context = 600 }),
            ("decode-static", new Job { Task = JobTask.Infer, Context = 600, KvCache = KvCacheKind.Static }),
            ("optbwd-lora", new Job { OptimizerInBackward = true }), ("adam8", new Job { Method = TrainingMethod.Full, Optimizer = OptimizerKind.AdamW8bit }),
        ];
        long calls = 0;
        foreach (var id in ModelCatalog.Ids)
        {
            var arch = ModelCatalog.Get(id);
            foreach (var (name, template) in jobs)
            {
                var job = template with { Seq = 256 };
                try
                {
                    var profile = ModelProfile.Create(Afinado.Planner.Fit.Planner.SelectionFor(arch, job));
                    var trace = StepTraces.For(profile, job);
                    ulong h = 14695981039346656037UL;
                    foreach (var e in trace.Events)
                        foreach (ulong part in new[] { (ulong)e.Kind, (ulong)e.Tensor, (ulong)e.Bytes, (ulong)e.Stream })
                            h = (h ^ part) * 1099511628211UL;
                    var replay = AllocatorReplay.Run(trace, job.AllocConf);
                    Console.WriteLine($"{id} {name} {trace.Events.Count} {h:X16} {replay.PeakReservedBytes} {replay.PeakAllocatedBytes}");
                    calls += trace.Events.Count;
                }
                catch (InputError e)
                {
                    Console.WriteLine($"{id} {name} refused: {e.Field}");
                }
            }
        }
        Console.WriteLine($"calls {calls}");
    }
}
