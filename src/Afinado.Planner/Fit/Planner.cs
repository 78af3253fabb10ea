using Afinado.Planner.Architecture;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Fit;

/// <summary>The planner's entry point: job + architecture + devices → <see cref="Plan"/>.</summary>
public static class Planner
{
    /// <summary>Which selection a job trains (inference: nothing trains; the full selection is used only for counts).</summary>
    public static TrainableSelection SelectionFor(ModelArchitecture arch, Job job) =>
        job.IsTraining
            ? TrainableSelection.Create(arch, job.Method, job.FreezePatterns.Count > 0 ? job.FreezePatterns : null,
                job.Method.UsesAdapters() ? job.Lora ?? new LoraConfig() : null, job.VisionTower)
            : TrainableSelection.Full(arch);

    /// <summary>Validates device/job combinations shared by every entry point.</summary>
    public static DeviceKind DeviceKindOf(IReadOnlyList<Device> devices, Job job)
    {
        bool cpu = devices.Any(d => d.IsCpu);
        if (cpu && devices.Count > 1)
            throw new InputError(PlanParameters.Gpu, "cpu cannot be mixed with GPUs in one plan", $"Plan for {PlanParameters.Gpu} cpu alone, or list GPUs only.");
        if (cpu && job.Precision != Precision.Fp32)
            throw new InputError(JobParameters.Precision, $"the CPU device computes in fp32 (bf16/fp16 matmuls are 30–90× slower there), got {job.Precision.Name()}", $"Use {JobParameters.Precision} fp32 with {PlanParameters.Gpu} cpu.");
        if (cpu && job.Method == TrainingMethod.QLora)
            throw new InputError(JobParameters.Method, "QLoRA's NF4 kernels need CUDA", $"Use {JobParameters.Method} lora on the CPU.");
        // The CPU device is TorchSharp's libtorch: fp32 tensors, no bitsandbytes, MXFP4 or FP8 kernels (transformers, too,
        // dequantizes MXFP4 and FP8 checkpoints on load without a GPU).
        if (cpu && job.WeightsDtype is { } w && w.IsQuantized())
            throw new InputError(JobParameters.WeightsDtype, $"{w.Name()} weights need a GPU's kernels, and the CPU device computes in fp32",
                $"Drop {JobParameters.WeightsDtype} on the CPU: the model is planned in fp32 there.");
        if (cpu && job.KvDtype is { } kv && kv.Bits() < 16)
            throw new InputError(JobParameters.KvDtype, $"a {kv.Name()} cache needs a GPU's kernels, and the CPU device keeps it in fp32",
                $"Drop {JobParameters.KvDtype} on the CPU.");
        return cpu ? DeviceKind.Cpu : DeviceKind.Gpu;
    }

    /// <summary>
    /// The job as it runs on this checkpoint: inference on a checkpoint stored in a format the planner models (gpt-oss's
    /// MXFP4 experts) keeps that format unless --weights-dtype says otherwise, as transformers loads it. A GPTQ, AWQ or
    /// bitsandbytes checkpoint keeps its format for training too: PEFT trains adapters over its frozen quantized linears.
    /// </summary>
    /// <remarks>On the CPU device MXFP4 and FP8 stay unapplied: without a GPU transformers dequantizes them on load, and the
    /// CPU device computes in fp32 (its weights follow the precision).</remarks>
    public static Job ForCheckpoint(ModelArchitecture arch, Job job, DeviceKind kind = DeviceKind.Gpu) =>
        job.WeightsDtype is not null ? job
        // A job planned for another architecture carries that checkpoint's format: this one's replaces it.
        : job.Checkpoint != arch.Quantization ? ForCheckpoint(arch, job with { Checkpoint = arch.Quantization }, kind)
        : job.IsTraining || job.Checkpoint is not null || kind == DeviceKind.Cpu ? job
        : arch.CheckpointQuantMethod switch
        {
            "mxfp4" => job with { WeightsDtype = DType.Mxfp4 },
            "fp8" => job with { WeightsDtype = DType.Fp8 },
            _ => job,
        };

    /// <summary>
    /// The attention kernel as transformers runs it on this architecture. Without an SDPA path (gpt_oss's sinks) the default
    /// attn_implementation falls back to eager, and so does the plan (<see cref="Plan.AttentionFallback"/> says so). A
    /// flash kernel for sinks exists for inference only (kernels-community/vllm-flash-attn3, no backward for the sinks).
    /// </summary>
    public static Job ForAttention(ModelArchitecture arch, Job job)
    {
        if (arch.SupportsSdpa) return job;
        if (job.Attention == AttentionKernel.Flash && job.IsTraining)
            throw new InputError(JobParameters.Attention, $"{arch.ModelType}'s attention sinks have no flash kernel with a backward in transformers (kernels-community/vllm-flash-attn3 runs inference only)",
                $"Use {JobParameters.Attention} eager to train it.");
        return job.Attention == AttentionKernel.Sdpa ? job with { Attention = AttentionKernel.Eager } : job;
    }

    /// <summary>Settings that exist only for some architectures: MXFP4 stores stacked expert weights and nothing else; an
    /// experts backend needs experts (on a dense model the setting would change nothing, silently).</summary>
    private static void CheckWeightsFormat(ModelProfile profile, Job job)
    {
        if (job.Experts is { } backend && !profile.Architecture.IsMoE)
            throw new InputError(JobParameters.Experts, $"{backend.Name()} runs mixture-of-experts blocks, and {profile.Architecture.ModelType} is dense (no experts)",
                "Drop it for this model; it applies to MoE models such as Qwen3-30B-A3B or gpt-oss.");
        if (job.ResolvedWeightsDtype == DType.Mxfp4 && profile.ExpertStackElements == 0)
            throw new InputError(JobParameters.WeightsDtype, $"mxfp4 stores stacked expert weights (gpt_oss), and {profile.Architecture.ModelType} has none",
                "Use nf4, int8, int4, fp8 or a 16-bit dtype.");
    }

    /// <summary>Image inputs need a vision tower whose processor and step the planner models, and a sequence that holds their
    /// tokens.</summary>
    internal static void CheckImages(ModelArchitecture arch, Job job, DeviceKind kind)
    {
        if (job.Images == 0) return;
        if (arch.Vision is not { } vision)
        {
            if (arch.HasVisionTower)
                throw new InputError(JobParameters.Images, $"{arch.ModelType}'s image inputs are not planned (Gemma 3's, Qwen2.5-VL's, Qwen3-VL's, Mistral 3's and Llama 4's are)",
                    $"Drop {JobParameters.Images} and plan a text step, with the images' tokens counted in {JobParameters.Seq}.");
            throw new InputError(JobParameters.Images, $"{arch.ModelType} is a text model: it has no vision tower",
                $"Drop {JobParameters.Images}, or plan a multimodal model such as google/gemma-3-4b-it or Qwen/Qwen2.5-VL-7B-Instruct.");
        }
        if (kind == DeviceKind.Cpu)
            throw new InputError(JobParameters.Images, "the CPU device is Afinado's TorchSharp trainer, which trains text models", $"Plan image inputs on a GPU, or drop {JobParameters.Images}.");
        if (job.IsTraining && job.Rule != LearningRule.Backprop)
            throw new InputError(JobParameters.Images, $"the {job.Rule.Name()} rule's step is planned for text models", $"Use {JobParameters.Rule} backprop with image inputs.");
        if (vision.NeedsImageSize && job.ImageWidth is null)
            throw new InputError(JobParameters.ImageSize, $"{arch.ModelType}'s processor {vision.SizeRule}, so its tokens depend on the size",
                $"Give the images' size, e.g. 1024x768 (a 1024x1024 image is {vision.Image(1024, 1024).SequenceTokens:N0} tokens).");
        if (!vision.NeedsImageSize && job.ImageWidth is not null)
            throw new InputError(JobParameters.ImageSize, $"{arch.ModelType}'s processor {vision.SizeRule}, whatever its size",
                $"Drop {JobParameters.ImageSize}.");
        ImageGeometry image;
        try { image = vision.Image(job.ImageWidth, job.ImageHeight); }
        catch (ArgumentOutOfRangeException)
        {
            throw new InputError(JobParameters.ImageSize, $"{job.ImageWidth} × {job.ImageHeight} has an aspect ratio above 200, which the processor refuses", "Give a less extreme size.");
        }
        long tokens = job.Images * image.SequenceTokens;
        if (job.Seq < tokens)
            throw new InputError(JobParameters.Seq, $"{job.Seq:N0} tokens cannot hold {job.Images} image(s) of {image.SequenceTokens:N0} tokens each ({tokens:N0})",
                $"Make {JobParameters.Seq} the whole tokenized sequence, images included: at least {tokens:N0}.");
    }

    public static Plan Create(ModelArchitecture arch, Job job, IReadOnlyList<Device> devices, string? maxParameter = null, bool suggestFixes = true,
        CurveRequest? curve = null)
    {
        // The device kind first: on the CPU a checkpoint's MXFP4 / FP8 format is not applied (ForCheckpoint).
        var kind = DeviceKindOf(devices, job);
        job = ForCheckpoint(arch, job, kind);
        var asked = job.Attention;
        job = ForAttention(arch, job);
        job.Validate();
        CheckImages(arch, job, kind);
        var profile = ModelProfile.Create(SelectionFor(arch, job));
        CheckWeightsFormat(profile, job);
        // The curve's own values are checked before anything else is planned: a bad --curve-points fails at once.
        var memoryCurve = curve is null ? null : MemoryCurves.Build(profile, job, devices, kind, curve);
        var ledger = LedgerBuilder.Build(profile, job, kind);
        var verdicts = devices.Select(d => FitCheck.Verdict(d, ledger, profile, job)).ToList();
        // Fixes and searches answer for the first device, with the job as it loads there (dequantized where it must be).
        var primary = devices.Count > 0 ? DeviceSupport.OnDevice(arch, job, devices[0]) : job;
        SearchResult? search = null;
        if (maxParameter is not null)
        {
            if (devices.Count == 0)
                throw new InputError(PlanParameters.Max, "needs a device to search against", $"Add {PlanParameters.Gpu} NAME or {PlanParameters.GpuMemory} SIZE.");
            int largest = FitSearch.Largest(profile, primary, devices[0], kind, maxParameter);
            ParameterChange? unlock = null;
            if (largest == 0 && devices[0].CapacityBytes > 0)
            {
                // Nothing fits even at 1: say which change makes 1 fit.
                bool batch = maxParameter == "batch";
                var one = FitSearch.With(primary, batch, FitSearch.Floor(arch, primary, batch));
                unlock = FixFinder.Find(arch, profile, one, devices[0], kind).FirstOrDefault(f => f.Fits)?.Change;
            }
            search = new SearchResult(maxParameter, largest, unlock);
        }
        var fixes = suggestFixes && devices.Count > 0 && !verdicts[0].Fits && devices[0].CapacityBytes > 0
            ? FixFinder.Find(arch, profile, primary, devices[0], kind, verdicts[0].TotalOnDeviceBytes ?? ledger.TotalBytes)
            : [];
        bool kbitHint = kind == DeviceKind.Gpu && job.IsTraining && job.Method == TrainingMethod.QLora && !job.KbitPrep
            && job.QuantLibrary == QuantLibrary.BitsAndBytes;
        long? kbit = kbitHint ? LedgerBuilder.Build(profile, job with { KbitPrep = true }, kind, explain: false).TotalBytes : null;
        if (kbitHint && search is not null && maxParameter is not null)
            search = search with { ValueWithKbitPrep = FitSearch.Largest(profile, primary with { KbitPrep = true }, devices[0], kind, maxParameter) };
        var (loadNote, loadTotal) = DefaultLoad.For(arch, profile, job, kind);
        // Counted as the first GPU holds the job: where it dequantizes the weights, that job's formulas (the bound reads weights,
        // KV cache and the runtime outside the allocator, none of which the replay changes).
        var floor = devices.Count == 0 || verdicts[0].Fits ? null
            : InferenceGpuFloor.For(ReferenceEquals(primary, job) ? ledger : LedgerBuilder.Build(profile, primary, kind, explain: false, replay: false), job, devices[0]);
        return new Plan(arch, job, profile.Selection, kind, ledger, verdicts, fixes, search)
        {
            Curve = memoryCurve, KbitPrepTotalBytes = kbit, DefaultLoadNote = loadNote, DefaultLoadTotalBytes = loadTotal,
            KvDtypeNote = Fit.KvDtypeNote.For(job, kind),
            InferenceGpuFloor = floor,
            AttentionFallback = asked != job.Attention
                ? $"transformers has no {asked.ToString().ToLowerInvariant()} path for {arch.ModelType}'s attention sinks (_supports_sdpa = False): planned with {job.Attention.ToString().ToLowerInvariant()} attention, as transformers falls back to it"
                : null,
        };
    }

}
