using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Afinado.Planner.Architecture;
using Afinado.Training.IO;
using Afinado.Training.Loop;
using Afinado.Training.Models;
using Afinado.Training.Optim;
using static TorchSharp.torch;
using Afinado.Planner.Memory;

// TorchSharp side of bench/training: times AdamW training steps of the Llama-style model built from a config.json,
// measures the fp32 matmul peak in the same process, and reports model FLOPs utilisation (MFU).
// usage: TrainingBench CONFIG.json BATCH SEQ STEPS ATTENTION(sdpa|eager) OUT_DIR
// Writes OUT_DIR/init.safetensors (initial weights + the batch) so the PyTorch side can check it runs the same model.
if (args[0] == "savedprobe") { Afinado.Bench.Training.SavedProbe.Run(args[1], int.Parse(args[2]), args[3], args[4], args.Length > 5 ? args[5] : null); return; }
if (args[0] == "initfolder")
{
    // initfolder CONFIG.json OUT_DIR: a Hugging Face folder (config.json + model.safetensors) with seeded random weights.
    var folderArch = HfConfigReader.ReadFile(args[1]);
    Directory.CreateDirectory(args[2]);
    File.Copy(args[1], Path.Combine(args[2], "config.json"), overwrite: true);
    manual_seed(0);
    using var init0 = new LlamaForCausalLM(folderArch);
    ModuleWeights.Save(init0, Path.Combine(args[2], "model.safetensors"));
    return;
}
if (args[0] == "memprobe") { Afinado.Bench.Training.MemProbe.Run(args[1], int.Parse(args[2]), int.Parse(args[3]), args[4], args.Length > 5 ? args[5] : "full"); return; }
var inv = CultureInfo.InvariantCulture;
string configPath = args[0];
int batch = int.Parse(args[1], inv), seq = int.Parse(args[2], inv), steps = int.Parse(args[3], inv);
var attention = args[4] == "eager" ? AttentionKernel.Eager : AttentionKernel.Sdpa;
string outDir = args[5];
Directory.CreateDirectory(outDir);

var arch = HfConfigReader.ReadFile(configPath);
manual_seed(0);
using var model = new LlamaForCausalLM(arch, attention);
var named = model.named_parameters().Select(p => (p.name, p.parameter)).ToList();
var opt = new AdamW(named, 0.9, 0.95, 1e-8, 0.1);
using var data = randint(0, arch.VocabSize, new long[] { batch, seq + 1 });
using var x = data.narrow(1, 0, seq).contiguous();
using var y = data.narrow(1, 1, seq).contiguous();

var init = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
init["__x"] = x;
init["__y"] = y;
double firstLoss;
using (no_grad()) using (var l0 = TrainingLoop.CrossEntropy(model.call(x), y)) firstLoss = l0.item<float>();
AtomicFile.Write(Path.Combine(outDir, "init.safetensors"), s => SafeTensors.Write(s, init));

double Step()
{
    using var scope = NewDisposeScope();
    opt.ZeroGrad();
    var loss = TrainingLoop.CrossEntropy(model.call(x), y);
    loss.backward();
    opt.Step(3e-4);
    return loss.item<float>();
}
Step(); // warm-up (allocations, kernel selection, optimizer state)
var sw = Stopwatch.StartNew();
double last = 0;
for (int i = 0; i < steps; i++) last = Step();
double secPerStep = sw.Elapsed.TotalSeconds / steps;

// fp32 matmul peak of this process with the same thread count: best of 5 square 2048 GEMMs.
double peak = 0;
using (var a = randn(2048, 2048)) using (var b = randn(2048, 2048))
{
    for (int i = 0; i < 6; i++)
    {
        var t = Stopwatch.StartNew();
        using var c = a.matmul(b);
        double s = t.Elapsed.TotalSeconds;
        if (i > 0) peak = Math.Max(peak, 2.0 * 2048 * 2048 * 2048 / s);
    }
}
long n = model.parameters().Sum(p => p.numel());
// The embedding lookup costs no matmul FLOPs; a tied head multiplies by that same matrix, so it counts once.
long nonEmbedding = arch.TiedEmbeddings ? n : n - arch.VocabSize * (long)arch.HiddenSize;
double tokens = (double)batch * seq;
// 6·N per token for the matmuls (forward 2, backward 4) + attention scores/values: 12·layers·seq·(heads·head_dim) per token
// (PaLM appendix B), counted in full: SDPA and eager both compute the masked half too.
double flopsPerStep = 6.0 * nonEmbedding * tokens + 12.0 * arch.NumLayers * seq * arch.QueryWidth * tokens;
var result = new Dictionary<string, object>
{
    ["framework"] = "TorchSharp 0.107 / libtorch 2.10",
    ["threads"] = get_num_threads(),
    ["attention"] = args[4],
    ["parameters"] = n,
    ["batch"] = batch, ["seq"] = seq, ["steps"] = steps,
    ["seconds_per_step"] = secPerStep,
    ["steps_per_second"] = 1 / secPerStep,
    ["tokens_per_second"] = tokens / secPerStep,
    ["first_loss"] = firstLoss,
    ["last_loss"] = last,
    ["matmul_peak_flops"] = peak,
    ["achieved_flops"] = flopsPerStep / secPerStep,
    ["mfu"] = flopsPerStep / secPerStep / peak,
};
Console.WriteLine(JsonSerializer.Serialize(result));
