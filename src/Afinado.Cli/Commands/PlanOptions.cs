using System.CommandLine;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Cli.Commands;

/// <summary>The job and device flags of <c>afinado plan</c> (shared with commands that plan, e.g. export).</summary>
internal sealed class PlanOptions
{
    public readonly Option<string> Model = new("--model") { Description = "Catalog id, config.json path or model folder.", DefaultValueFactory = _ => "meta-llama/Llama-3.1-8B" };
    public readonly Option<string> Task = new("--task") { Description = "train | infer.", DefaultValueFactory = _ => "train" };
    public readonly Option<string> Method = new("--method") { Description = "full | freeze | lora | qlora.", DefaultValueFactory = _ => "lora" };
    public readonly Option<int> LoraRank = new("--lora-rank") { Description = "LoRA rank r.", DefaultValueFactory = _ => 16 };
    public readonly Option<double> LoraAlpha = new("--lora-alpha") { Description = "LoRA alpha (scaling = alpha / r).", DefaultValueFactory = _ => 32 };
    public readonly Option<double> LoraDropout = new("--lora-dropout") { Description = "LoRA dropout probability.", DefaultValueFactory = _ => 0.05 };
    public readonly Option<string> LoraTargets = new("--lora-targets") { Description = "Comma-separated module names (q_proj,v_proj) or all-linear.", DefaultValueFactory = _ => LoraConfig.AllLinear };
    public readonly Option<string?> LoraTargetParameters = new("--lora-target-parameters") { Description = "Comma-separated stacked expert parameters to adapt (PEFT target_parameters; gpt_oss, Llama 4: mlp.experts.gate_up_proj): per-expert adapters, ΔW added to the weight every forward and the merged weight saved for backward (needs --lora-dropout 0)." };
    public readonly Option<string[]> Freeze = new("--freeze") { Description = "Glob over tensor names to freeze (repeatable): '*' within a segment, '**' across, {0..15} ranges.", AllowMultipleArgumentsPerToken = false };
    public readonly Option<string> Precision = new("--precision") { Description = "fp32 | amp-bf16 | amp-fp16 | bf16 | fp16.", DefaultValueFactory = _ => "bf16" };
    public readonly Option<string> Optimizer = new("--optimizer") { Description = "sgd | sgd-momentum | adamw | adamw-8bit | paged-adamw-8bit | adafactor.", DefaultValueFactory = _ => "adamw" };
    public readonly Option<string> Rule = new("--rule") { Description = "Learning rule: backprop | es (estimate to --optimizer) | es-direct (MeZO: in place, no optimizer) | dfa | guided-es (DFA surrogate).", DefaultValueFactory = _ => "backprop" };
    public readonly Option<int> GuidedEsK = new("--guided-es-k") { Description = "Guided ES: surrogate gradients spanning the guiding subspace (k).", DefaultValueFactory = _ => 1 };
    public readonly Option<int> Batch = new("--batch") { Description = "Micro-batch (sequences per step).", DefaultValueFactory = _ => 1 };
    public readonly Option<int> Seq = new("--seq") { Description = "Tokens per sequence (inference: prompt tokens).", DefaultValueFactory = _ => 2048 };
    public readonly Option<int?> Context = new("--context") { Description = "Inference: tokens in the KV cache at the end (prompt + generated)." };
    public readonly Option<int> Images = new("--images") { Description = "Images per sequence through a multimodal model's vision tower (Gemma 3, Qwen2.5-VL, Qwen3-VL, Mistral 3, Llama 4); their tokens count in --seq. 0 = a text step.", DefaultValueFactory = _ => 0 };
    public readonly Option<string?> ImageSize = new("--image-size") { Description = "The images' WIDTHxHEIGHT in pixels, for processors that depend on it (Qwen2.5-VL, Qwen3-VL, Mistral 3, Llama 4 tiles); Gemma 3 resizes every image to 896x896." };
    public readonly Option<string> VisionTower = new("--vision-tower") { Description = "With --images and --method full|freeze: frozen (LLaMA-Factory's default) | projector (the projector or merger trains) | tower (the tower and projector train). LoRA reaches the tower through --lora-targets.", DefaultValueFactory = _ => "frozen" };
    public readonly Option<string> Checkpointing = new("--checkpointing") { Description = "none | full.", DefaultValueFactory = _ => "none" };
    public readonly Option<string> Attention = new("--attention") { Description = "eager | sdpa | flash (transformers flash_attention_2: 16-bit kernel, fp32 queries cast to the autocast or quantized dtype, no GQA repeat; not with --precision fp32).", DefaultValueFactory = _ => "sdpa" };
    public readonly Option<double> Dropout = new("--dropout") { Description = "Attention/hidden dropout probability.", DefaultValueFactory = _ => 0 };
    public readonly Option<string?> WeightsDtype = new("--weights-dtype") { Description = "fp32 | fp16 | bf16 | fp8 | int8 | int4 | nf4 | nf4-dq (default: from --precision; nf4 for qlora)." };
    public readonly Option<string?> AdapterDtype = new("--adapter-dtype") { Description = "LoRA adapter dtype: fp32 (PEFT default) | bf16 | fp16 (torchtune keeps the model dtype)." };
    public readonly Option<string> QuantLib = new("--quant-lib") { Description = "Library of a quantized base: bitsandbytes (transformers/PEFT; block constants stay whole on every GPU) | torchao (torchtune; shards them).", DefaultValueFactory = _ => "bitsandbytes" };
    public readonly Option<string?> KvDtype = new("--kv-dtype") { Description = "KV-cache dtype for inference (default: compute dtype)." };
    public readonly Option<string?> Experts = new("--experts") { Description = "MoE experts backend of transformers 5: grouped_mm (its default with torch >= 2.9) | eager (the loop over experts). Default: the stack's." };
    public readonly Option<string> KvCache = new("--kv-cache") { Description = "Inference cache class: dynamic (generate's default, grows by concatenation) | static (full context allocated at prefill).", DefaultValueFactory = _ => "dynamic" };
    public readonly Option<int> GradAccum = new("--grad-accum") { Description = "Gradient-accumulation steps.", DefaultValueFactory = _ => 1 };
    public readonly Option<bool> Compile = new("--compile") { Description = "torch.compile-style fused norms/activations (fewer saved tensors)." };
    public readonly Option<bool> OptimizerInBackward = new("--optimizer-in-backward") { Description = "Fuse the optimizer step into backward (torchtune optimizer_in_bwd)." };
    public readonly Option<bool> FusedOptimizer = new("--fused-optimizer") { Description = "Fused AdamW kernel (no step temporaries)." };
    public readonly Option<bool> OffloadActivations = new("--offload-activations") { Description = "Keep activation checkpoints in host memory (needs --checkpointing full)." };
    public readonly Option<int> LossChunks = new("--loss-chunks") { Description = "Cross-entropy chunks (torchtune uses 8); 1 = plain.", DefaultValueFactory = _ => 1 };
    public readonly Option<bool> KbitPrep = new("--kbit-prep") { Description = "PEFT prepare_model_for_kbit_training on the quantized base (TRL's SFTTrainer does it for 4-bit models): fp32 embeddings, norms, head and activations." };
    public readonly Option<bool> LegacyLoss = new("--legacy-loss") { Description = "transformers < 4.46 loss: fp32 logits in the model output plus a shifted copy (+2–4 B per token × vocab in forward)." };
    public readonly Option<bool> KeepOutput = new("--keep-output") { Description = "The training loop holds the model output (logits) until backward ends (HF Trainer does not)." };
    public readonly Option<string[]> Gpu = new("--gpu") { Description = "GPU to check (repeatable): " + string.Join(", ", GpuCatalog.All.Select(g => g.Id)) + ", or cpu." };
    public readonly Option<string[]> GpuMemory = new("--gpu-memory") { Description = "A GPU by its memory (repeatable): 48GB = a card sold as 48 GB (48 GiB on board, ~98% usable); 47.2GiB = exactly that much usable." };
    public readonly Option<string?> AllocConf = new("--alloc-conf") { Description = "PYTORCH_CUDA_ALLOC_CONF of the run: " + Planner.Allocator.AllocatorSettings.Accepted + " (default: PyTorch's defaults)." };
    public readonly Option<string?> Stack = new("--stack") { Description = "Software stack for the CUDA context and workspaces: " + string.Join(" | ", Planner.Allocator.RuntimeStack.All.Select(s => s.Id)) + $" (default {Planner.Allocator.RuntimeStack.Default.Id})." };
    public readonly Option<string?> Device = new("--device") { Description = "gpu (default) | cpu: plan for TorchSharp on the CPU (fp32, no CUDA context)." };

    public IEnumerable<Option> All =>
    [
        Model, Task, Method, LoraRank, LoraAlpha, LoraDropout, LoraTargets, LoraTargetParameters, Freeze, Precision, Optimizer, Rule, GuidedEsK, Batch, Seq, Context, Images, ImageSize, VisionTower,
        Checkpointing, Attention, Dropout, WeightsDtype, AdapterDtype, QuantLib, KvDtype, KvCache, Experts, GradAccum, Compile, OptimizerInBackward, FusedOptimizer, OffloadActivations, LossChunks, KbitPrep, LegacyLoss, KeepOutput, AllocConf, Stack, Gpu, GpuMemory, Device,
    ];

    public Job Job(ParseResult p)
    {
        var method = TrainingMethods.Parse(p.GetValue(Method)!);
        // The error names the LoRA flag the user gave, not a fixed one.
        Option? loraFlag = new Option[] { LoraRank, LoraAlpha, LoraDropout, LoraTargets, LoraTargetParameters }
            .FirstOrDefault(o => p.GetResult(o) is { Implicit: false });
        if (loraFlag is not null && !method.UsesAdapters())
            throw new InputError(loraFlag.Name, $"LoRA flags need --method lora or qlora (got {method.Name()})", "Drop the LoRA flags or add --method lora.");
        return new Job
        {
            Task = JobOptions.ParseTask(p.GetValue(Task)!),
            Method = method,
            FreezePatterns = p.GetValue(Freeze) ?? [],
            Lora = method.UsesAdapters()
                ? new LoraConfig
                {
                    Rank = p.GetValue(LoraRank), Alpha = p.GetValue(LoraAlpha), Dropout = p.GetValue(LoraDropout), Targets = LoraConfig.ParseTargets(p.GetValue(LoraTargets)!),
                    TargetParameters = p.GetValue(LoraTargetParameters) is { } tp ? LoraConfig.ParseTargets(tp, "--lora-target-parameters") : [],
                }
                : null,
            // The CPU computes in fp32 only, so --device cpu changes the default precision instead of rejecting it.
            Precision = p.GetResult(Precision) is { Implicit: false } || !WantsCpu(p)
                ? JobOptions.ParsePrecision(p.GetValue(Precision)!)
                : Planner.Memory.Precision.Fp32,
            Optimizer = JobOptions.ParseOptimizer(p.GetValue(Optimizer)!),
            Rule = JobOptions.ParseRule(p.GetValue(Rule)!),
            GuidedEsSubspace = p.GetValue(GuidedEsK),
            Batch = p.GetValue(Batch),
            Seq = p.GetValue(Seq),
            Context = p.GetValue(Context),
            Images = p.GetValue(Images),
            ImageWidth = ImageSizeOf(p)?.Width,
            ImageHeight = ImageSizeOf(p)?.Height,
            VisionTower = VisionTrainings.Parse(p.GetValue(VisionTower)!),
            Checkpointing = JobOptions.ParseCheckpointing(p.GetValue(Checkpointing)!),
            Attention = JobOptions.ParseAttention(p.GetValue(Attention)!),
            Dropout = p.GetValue(Dropout),
            WeightsDtype = p.GetValue(WeightsDtype) is { } w ? DTypes.Parse(w, "--weights-dtype") : null,
            KvDtype = p.GetValue(KvDtype) is { } k ? DTypes.Parse(k, "--kv-dtype") : null,
            KvCache = JobOptions.ParseKvCache(p.GetValue(KvCache)!),
            Experts = p.GetValue(Experts) is { } ex ? JobOptions.ParseExperts(ex) : null,
            AdapterDtype = p.GetValue(AdapterDtype) is { } ad ? DTypes.Parse(ad, "--adapter-dtype") : null,
            QuantLibrary = QuantLibraries.Parse(p.GetValue(QuantLib)!, "--quant-lib"),
            GradAccumulation = p.GetValue(GradAccum),
            Compile = p.GetValue(Compile),
            OptimizerInBackward = p.GetValue(OptimizerInBackward),
            LossChunks = p.GetValue(LossChunks),
            LegacyLoss = p.GetValue(LegacyLoss),
            KbitPrep = p.GetValue(KbitPrep),
            KeepOutput = p.GetValue(KeepOutput),
            FusedOptimizer = p.GetValue(FusedOptimizer),
            OffloadActivations = p.GetValue(OffloadActivations),
            AllocConf = Planner.Allocator.AllocatorSettings.Parse(p.GetValue(AllocConf)),
            Stack = Planner.Allocator.RuntimeStack.Parse(p.GetValue(Stack)),
        };
    }

    /// <summary>--image-size as WIDTHxHEIGHT (× or X accepted between them).</summary>
    private (int Width, int Height)? ImageSizeOf(ParseResult p)
    {
        if (p.GetValue(ImageSize) is not { } text) return null;
        var parts = text.Trim().Split(['x', 'X', '×']);
        if (parts.Length == 2 && int.TryParse(parts[0].Trim(), out int w) && int.TryParse(parts[1].Trim(), out int h))
            return (w, h);
        throw new InputError(ImageSize.Name, $"\"{TerminalText.Escape(text)}\" is not WIDTHxHEIGHT", "Give the images' size in pixels, e.g. --image-size 1024x768.");
    }

    private bool WantsCpu(ParseResult p) =>
        p.GetValue(Device) == "cpu" || (p.GetValue(Gpu) ?? []).Any(g => string.Equals(g, "cpu", StringComparison.OrdinalIgnoreCase));

    /// <summary>Devices in the order given; with none named, the common GPUs from the smallest up.</summary>
    public IReadOnlyList<Device> Devices(ParseResult p)
    {
        var list = new List<Device>();
        var device = p.GetValue(Device);
        if (device is not null && device is not ("gpu" or "cpu"))
            throw new InputError("--device", $"\"{device}\" is not a device kind", "Use --device gpu or --device cpu.");
        if (device == "cpu") list.Add(CpuDevice());
        foreach (var g in p.GetValue(Gpu) ?? [])
            list.Add(string.Equals(g, "cpu", StringComparison.OrdinalIgnoreCase) ? CpuDevice() : GpuCatalog.Get(g));
        foreach (var m in p.GetValue(GpuMemory) ?? [])
            list.Add(Planner.Devices.GpuMemory.Parse(m));
        if (list.Count == 0) list.AddRange(GpuCatalog.Common);
        return list;
    }

    private static Device CpuDevice() => Planner.Devices.Device.Cpu(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);
}
