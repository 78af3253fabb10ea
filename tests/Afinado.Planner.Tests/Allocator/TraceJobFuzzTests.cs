using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests.Allocator;

/// <summary>
/// Seeded random jobs on the families the step trace follows op by op (MoE blocks under both experts backends, PhiMoE's
/// sparsemixer, DeepSeek's latent attention and routers, gpt-oss's sinks, q/k norms, Conv1D): every plan either refuses
/// its input by name or plans, and the trace never frees a tensor twice or reads one it never made (the tape throws then).
/// One token, odd lengths, more experts than routed pairs, checkpointing,
/// gradient accumulation, AMP and kbit preparation are all in the mix.
/// </summary>
public class TraceJobFuzzTests
{
    [Fact]
    public void Random_jobs_on_traced_families_plan_or_say_why()
    {
        var rnd = new Random(7);
        string[] ids = ["mistralai/Mixtral-8x7B-v0.1", "Qwen/Qwen1.5-MoE-A2.7B-Chat", "Qwen/Qwen3-30B-A3B", "openai/gpt-oss-20b",
            "Qwen/Qwen3-8B", "google/gemma-3-4b-it", "allenai/OLMo-2-1124-7B", "openai-community/gpt2", "phimoe",
            "deepseek-ai/DeepSeek-V2-Lite-Chat"];
        // Phi-3.5-MoE is not in the catalog: its config as its config.json sets the jitter.
        var phimoe = PhimoeTests.Phi35Moe();
        phimoe["input_jitter_noise"] = 0.01;
        phimoe["router_jitter_noise"] = 0.01;
        var phi35Moe = PhimoeTests.Parse(phimoe);
        var failures = new List<string>();
        int replayed = 0;
        for (int i = 0; i < 300; i++)
        {
            string id = ids[rnd.Next(ids.Length)];
            var method = new[] { TrainingMethod.Lora, TrainingMethod.QLora, TrainingMethod.Full, TrainingMethod.Freeze }[rnd.Next(4)];
            bool infer = rnd.Next(4) == 0, moeStacks = !id.Contains("gemma") && !id.Contains("Qwen3-8B") && !id.Contains("OLMo") && !id.Contains("gpt2");
            var lora = rnd.Next(3) == 0 && moeStacks
                ? new LoraConfig { Targets = ["q_proj"], TargetParameters = ["mlp.experts.gate_up_proj"], Dropout = 0 }
                : new LoraConfig { Dropout = rnd.Next(2) == 0 ? 0 : 0.05 };
            int seq = new[] { 1, 3, 17, 64, 130 }[rnd.Next(5)];
            var arch = id == "phimoe" ? phi35Moe : ModelCatalog.Get(id);
            // Settings of the other task, or an experts backend on a dense model, are refused (InputError): the mix keeps
            // each setting where it applies.
            var job = new Job
            {
                Task = infer ? JobTask.Infer : JobTask.Train,
                Method = method,
                Lora = method is TrainingMethod.Lora or TrainingMethod.QLora ? lora : null,
                FreezePatterns = method == TrainingMethod.Freeze ? ["model.layers.{0..1}.**"] : [],
                Precision = new[] { Precision.Bf16, Precision.AmpBf16, Precision.Fp32 }[rnd.Next(3)],
                Batch = 1 + rnd.Next(3),
                Seq = seq,
                Context = infer && rnd.Next(2) == 0 ? seq + 5 : null,
                Checkpointing = !infer && rnd.Next(2) == 0 ? Checkpointing.Full : Checkpointing.None,
                Experts = !arch.IsMoE ? null : rnd.Next(2) == 0 ? ExpertsBackend.Eager : ExpertsBackend.GroupedMm,
                Attention = new[] { AttentionKernel.Sdpa, AttentionKernel.Eager }[rnd.Next(2)],
                KbitPrep = method == TrainingMethod.QLora && !infer && rnd.Next(2) == 0,
                GradAccumulation = infer ? 1 : 1 + rnd.Next(2),
            };
            try
            {
                if (Planner.Fit.Planner.Create(arch, job, [], suggestFixes: false).Ledger.Replay is not null) replayed++;
            }
            catch (InputError) { }
            catch (Exception e) { failures.Add($"{id} {job}: {e.GetType().Name} {e.Message}"); }
        }
        Assert.Empty(failures);
        // Most of the mix is traced (the rest says why: the eager loop with trainable experts, MXFP4 inference …).
        Assert.True(replayed > 200, $"{replayed} of 300 replayed");
    }
}
