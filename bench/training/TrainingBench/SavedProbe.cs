using Afinado.Planner.Architecture;
using Afinado.Planner.Memory;
using Afinado.Training.Loop;
using Afinado.Training.Memory;
using Afinado.Training.Models;
using Afinado.Training.Selection;
using static TorchSharp.torch;

namespace Afinado.Bench.Training;

/// <summary>
/// Diagnostic: bytes per token that a training forward keeps (saved tensors + logits), measured as the RSS difference of
/// two batch sizes (constants cancel), beside the planner's forward-saved entries differenced the same way.
/// usage: TrainingBench savedprobe CONFIG.json SEQ ATTENTION METHOD [FREEZE]
/// </summary>
internal static class SavedProbe
{
    public static void Run(string configPath, int seq, string attention, string method, string? freeze)
    {
        set_num_threads(1);
        ProcessMemory.TameMalloc();
        var json = File.ReadAllText(configPath);
        var arch = HfConfigReader.Parse(json);
        var kernel = attention == "eager" ? AttentionKernel.Eager : AttentionKernel.Sdpa;
        LanguageModelRun.WarmUpKernels(arch, kernel, false, seq);
        manual_seed(0);
        var model = new LlamaForCausalLM(arch, kernel);
        string[] frz = freeze is null ? [] : [freeze];
        var selection = SharedSelection.CreateParameterSelection(arch, method, frz, 8, 16, 0, ["all-linear"]);
        SelectionApplier.Apply(model, selection);
        double Measure(int batch)
        {
            var x = randint(0, arch.VocabSize, new long[] { batch, seq });
            GC.Collect(); ProcessMemory.Trim();
            ProcessMemory.ResetPeak();
            long before = ProcessMemory.ResidentBytes;
            var logits = model.call(x);
            long after = ProcessMemory.ResidentBytes;
            Console.WriteLine($"  b={batch}: forward peak above its end {(ProcessMemory.PeakResidentBytes - after) / 1048576.0:F2} MiB");
            logits.Dispose(); x.Dispose();
            GC.Collect(); GC.WaitForPendingFinalizers(); ProcessMemory.Trim();
            return after - before;
        }
        double Planned(int batch)
        {
            var config = new TrainConfig { ModelConfigJson = json, Data = "fortunes-en", BatchSize = batch, SequenceLength = seq, Method = TrainVocabulary.Method(method),
                Freeze = frz, LoraRank = 8, LoraAlpha = 16, LoraDropout = 0, Attention = kernel };
            var plan = Afinado.Planner.Fit.Planner.Create(arch, CpuPeakPlanner.JobFor(config), [Afinado.Planner.Devices.Device.Cpu()], suggestFixes: false);
            return plan.Ledger.Tensors.Where(e => e.Phases.HasFlag(Phase.Forward) && e.Category is Category.Activations).Sum(e => e.Bytes)
                + (double)batch * seq * arch.VocabSize * 4;
        }
        {
            using var ids = randint(0, arch.VocabSize, new long[] { 8, seq });
            var h = model.Model.EmbedTokens.call(ids);
            foreach (var layer in model.Model.Layers)
            {
                ProcessMemory.ResetPeak();
                long b0 = ProcessMemory.ResidentBytes;
                var a = layer.SelfAttention.call(h);
                long a1 = ProcessMemory.ResidentBytes, ap = ProcessMemory.PeakResidentBytes;
                ProcessMemory.ResetPeak();
                long l0 = ProcessMemory.ResidentBytes;
                h = layer.call(h);
                long l1 = ProcessMemory.ResidentBytes, lp = ProcessMemory.PeakResidentBytes;
                Console.WriteLine($"  layer: attention kept {(a1 - b0) / 1048576.0:F2} MiB, peak above kept {(ap - a1) / 1048576.0:F2}; layer kept {(l1 - l0) / 1048576.0:F2}, peak above {(lp - l1) / 1048576.0:F2}");
            }
        }
        int b1 = 8, b2 = 24;
        Measure(b1);
        double m1 = Measure(b1), m2 = Measure(b2);
        double tokens = (b2 - b1) * (double)seq;
        double perTokMeasured = (m2 - m1) / tokens, perTokPlanned = (Planned(b2) - Planned(b1)) / tokens;
        Console.WriteLine($"{method} {attention} s={seq}: measured {perTokMeasured:F0} B/token ({m1 / 1048576:F2}/{m2 / 1048576:F2} MiB), planned {perTokPlanned:F0} B/token, gap {perTokMeasured - perTokPlanned:F0} B/token = {(perTokMeasured - perTokPlanned) / 4 / arch.NumLayers:F1} fp32/layer");
    }
}
