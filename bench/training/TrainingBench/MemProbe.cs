using Afinado.Planner.Architecture;
using Afinado.Training.Loop;
using Afinado.Training.Memory;
using Afinado.Training.Models;
using Afinado.Training.Optim;
using static TorchSharp.torch;
using Afinado.Planner.Memory;

namespace Afinado.Bench.Training;

/// <summary>Diagnostic: RSS growth over the pre-model baseline at each phase of two training steps (where does memory go?).</summary>
internal static class MemProbe
{
    public static void Run(string configPath, int batch, int seq, string attention, string method = "full")
    {
        set_num_threads(1);
        ProcessMemory.TameMalloc();
        var arch = HfConfigReader.ReadFile(configPath);
        var kernel = attention == "eager" ? AttentionKernel.Eager : AttentionKernel.Sdpa;
        LanguageModelRun.WarmUpKernels(arch, kernel, false, seq);
        var meter = new PeakMeter();
        meter.Start();
        void Line(string what) => Console.WriteLine($"{what,-28} rss {(ProcessMemory.ResidentBytes - meter.BaselineBytes) / 1048576.0,8:F2} MiB  peak {meter.PeakBytes / 1048576.0,8:F2} MiB");
        Line("baseline");
        manual_seed(0);
        var model = new LlamaForCausalLM(arch, kernel);
        Line("model");
        var selection = Afinado.Training.Selection.SharedSelection.CreateParameterSelection(arch, method, [], 8, 16, 0, ["all-linear"]);
        var named = Afinado.Training.Selection.SelectionApplier.Apply(model, selection);
        Line($"selection {method}");
        var opt = new AdamW(named, 0.9, 0.95, 1e-8, 0.1);
        var x = randint(0, arch.VocabSize, new long[] { batch, seq });
        int steps = int.TryParse(Environment.GetEnvironmentVariable("AFINADO_PROBE_STEPS"), out var n) ? n : 3;
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            opt.ZeroGrad();
            var logits = model.call(x);
            Line($"step {step} forward");
            var loss = TrainingLoop.CrossEntropy(logits, x);
            Line($"step {step} loss");
            loss.backward();
            Line($"step {step} backward");
            opt.Step(1e-3);
            Line($"step {step} optimizer");
        }
    }
}
