using Afinado.Planner.Devices;
using System.Text.Encodings.Web;
using Afinado.Planner.Architecture;
using System.Text.Json;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Fit;

/// <summary>
/// The stable <c>afinado.plan/1</c> JSON contract. <c>components</c> are the tensors live at the peak (they sum to
/// <c>peak_bytes</c> up to per-line rounding); <c>other_components</c> are live in other phases; <c>runtime</c> are the
/// overheads that make <c>total_bytes</c>.
/// </summary>
public static class PlanJson
{
    /// <param name="parameterName">How the fixes name a job's parameters (the CLI passes its flags); null: their neutral names.</param>
    public static string Serialize(Plan plan, Func<InputParameter, string>? parameterName = null) => Serialize(plan, null, parameterName);

    /// <summary>A plan made per GPU of a layout: the same contract, its <c>gpus</c> the per-GPU verdicts, followed by the
    /// layout's ledger (<c>parallel</c>, <c>cpu_bytes_per_node</c>), the search's <c>alternatives</c> and <c>gpu_search</c>.</summary>
    public static string Serialize(Parallel.MultiGpuPlan multi, Func<InputParameter, string>? parameterName = null) => Serialize(multi.Plan, multi, parameterName);

    private static string Serialize(Plan plan, Parallel.MultiGpuPlan? multi, Func<InputParameter, string>? parameterName)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            Write(w, plan, multi, parameterName);
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    public static void Write(Utf8JsonWriter w, Plan plan, Parallel.MultiGpuPlan? multi = null, Func<InputParameter, string>? parameterName = null)
    {
        parameterName ??= p => p.Name;
        var l = plan.Ledger;
        var job = plan.Job;
        var sel = plan.Selection;
        w.WriteStartObject();
        w.WriteString("schema", Plan.Schema);
        w.WriteStartObject("model");
        w.WriteString("name", plan.Architecture.Name);
        w.WriteString("model_type", plan.Architecture.ModelType);
        w.WriteNumber("parameters", plan.Architecture.ParameterCount);
        // Mixture of experts: parameters one token touches (routers, shared experts and num_experts_per_tok routed experts).
        if (plan.Architecture.IsMoE) w.WriteNumber("active_parameters", plan.Architecture.ActiveParameterCount);
        // "generic": read from safetensors headers, weights exact and activations the generic decoder's (approximate).
        w.WriteString("support", plan.Architecture.Support == ModelSupport.Generic ? "generic" : "exact");
        // The config's warnings, then (training) where the selection departs from what PEFT would do with the same flags.
        IReadOnlyList<string> warnings = job.IsTraining ? [.. plan.Architecture.PlanWarnings(job.Images, job.TowerFrozenByMethod), .. sel.Notes] : plan.Architecture.PlanWarnings(job.Images);
        if (warnings.Count > 0)
        {
            w.WriteStartArray("warnings");
            foreach (var warning in warnings) w.WriteStringValue(warning);
            w.WriteEndArray();
        }
        w.WriteNumber("trainable_parameters", job.IsTraining ? sel.TrainableParameters : 0);
        w.WriteNumber("adapter_parameters", job.IsTraining ? sel.AdapterParameters : 0);
        // Adapters on a vision tower's linears: trainable by PEFT's count, but a backprop text step gives them no gradient.
        if (job.IsTraining && sel.VisionAdapterParameters > 0) w.WriteNumber("vision_adapter_parameters", sel.VisionAdapterParameters);
        if (job.IsTraining) w.WriteString("peft_summary", sel.PeftSummary);
        w.WriteEndObject();

        w.WriteStartObject("job");
        w.WriteString("task", job.Task.ToString().ToLowerInvariant());
        if (job.IsTraining) w.WriteString("method", job.Method.Name());
        if (job.IsTraining && sel.Lora is { } lora)
        {
            w.WriteStartObject("lora");
            w.WriteNumber("rank", lora.Rank);
            w.WriteNumber("alpha", lora.Alpha);
            w.WriteNumber("dropout", lora.Dropout);
            w.WriteString("adapter_dtype", job.ResolvedAdapterDtype.Name());
            w.WriteStartArray("targets");
            foreach (var t in lora.Targets) w.WriteStringValue(t);
            w.WriteEndArray();
            if (lora.TargetParameters.Count > 0)
            {
                w.WriteStartArray("target_parameters");
                foreach (var t in lora.TargetParameters) w.WriteStringValue(t);
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        w.WriteString("precision", job.Precision.Name());
        if (job.IsTraining) w.WriteString("optimizer", job.Optimizer.Name());
        if (job.IsTraining) w.WriteString("rule", job.Rule.Name());
        if (job.IsTraining && job.Rule == LearningRule.GuidedEs) w.WriteNumber("guided_es_k", job.GuidedEsSubspace);
        w.WriteNumber("batch", job.Batch);
        w.WriteNumber("seq", job.Seq);
        if (!job.IsTraining) w.WriteNumber("context", job.ContextTokens);
        if (job.Images > 0 && plan.Architecture.Vision is { } vision)
        {
            var image = vision.Image(job.ImageWidth, job.ImageHeight);
            w.WriteNumber("images", job.Images);
            w.WriteStartObject("image");
            w.WriteNumber("width", image.Width);
            w.WriteNumber("height", image.Height);
            w.WriteNumber("patches", image.Patches);
            // The tower's sequences per image (Llama 4: its tiles and the global tile; 1 elsewhere).
            w.WriteNumber("tower_sequences", image.Sequences);
            w.WriteNumber("sequence_tokens", image.SequenceTokens);
            w.WriteEndObject();
            if (job.IsTraining && !job.Method.UsesAdapters()) w.WriteString("vision_tower", job.VisionTower.Name());
        }
        w.WriteString("checkpointing", job.Checkpointing.ToString().ToLowerInvariant());
        w.WriteString("attention", job.Attention.ToString().ToLowerInvariant());
        w.WriteNumber("dropout", job.Dropout);
        w.WriteString("weights_dtype", plan.WeightsName);
        if (!job.IsTraining) w.WriteString("kv_dtype", job.ResolvedKvDtype.Name());
        if (!job.IsTraining) w.WriteString("kv_cache", job.KvCache.ToString().ToLowerInvariant());
        if (plan.Architecture.IsMoE) w.WriteString("experts", job.ResolvedExperts.Name());
        w.WriteNumber("grad_accumulation", job.GradAccumulation);
        w.WriteBoolean("compile", job.Compile);
        w.WriteBoolean("optimizer_in_backward", job.OptimizerInBackward);
        w.WriteNumber("loss_chunks", job.LossChunks);
        if (job.IsTraining) w.WriteBoolean("legacy_loss", job.LegacyLoss);
        if (job.IsTraining) w.WriteBoolean("kbit_prep", job.KbitPrep);
        if (job.IsTraining) w.WriteBoolean("keep_output", job.KeepOutput);
        w.WriteBoolean("fused_optimizer", job.FusedOptimizer);
        w.WriteBoolean("offload_activations", job.OffloadActivations);
        if (plan.DeviceKind == DeviceKind.Gpu)
        {
            w.WriteString("alloc_conf", job.AllocConf.ToString());
            w.WriteString("stack", job.Stack.Id);
        }
        w.WriteEndObject();

        w.WriteString("device", plan.DeviceKind.ToString().ToLowerInvariant());
        w.WriteNumber("peak_bytes", l.PeakBytes);
        w.WriteNumber("total_bytes", l.TotalBytes);
        w.WriteNumber("runtime_bytes", l.RuntimeBytes);
        if (plan.DeviceKind == DeviceKind.Gpu)
        {
            // reserved ≈ torch.cuda.max_memory_reserved; total = reserved + the runtime outside the allocator (≈ NVML / nvidia-smi).
            w.WriteNumber("reserved_bytes", l.ReservedBytes);
            w.WriteNumber("fragmentation_bytes", l.FragmentationBytes);
            w.WriteBoolean("allocator_replayed", l.Replay is not null);
        }
        w.WriteString("peak_phase", l.PeakPhase.Name());
        w.WriteStartObject("phases");
        foreach (var m in Phases.Moments)
            if (l.Tensors.Any(e => (e.Phases & m) != 0)) w.WriteNumber(m.Name(), (long)Math.Ceiling(l.BytesAt(m)));
        w.WriteEndObject();
        WriteEntries(w, "components", l.AtPeak);
        WriteEntries(w, "other_components", l.Tensors.Where(e => (e.Phases & l.PeakPhase) == 0));
        WriteEntries(w, "runtime", l.Runtime);

        if (multi is not null) Parallel.MultiGpuJson.WriteVerdicts(w, multi, parameterName);
        else WriteVerdicts(w, plan, parameterName);
        // The layout's verdicts decide a multi-GPU plan (as its exit code does), not the single-GPU ones it was built from.
        w.WriteBoolean("fits_any", multi?.FitsAny ?? plan.FitsAny);
        if (plan.KbitPrepTotalBytes is { } kbit) w.WriteNumber("kbit_prep_total_bytes", kbit);
        if (plan.AttentionFallback is { } fallback) w.WriteString("attention_note", fallback);
        if (plan.DefaultLoadNote is { } load) w.WriteString("default_load_note", load.Render(parameterName));
        if (plan.KvDtypeNote is { } kvNote) w.WriteString("kv_dtype_note", kvNote.Render(parameterName));
        if (plan.InferenceGpuFloor is { } floor)
        {
            w.WriteStartObject("inference_gpus_lower_bound");
            w.WriteNumber("gpus", floor.Gpus);
            w.WriteNumber("weights_and_kv_cache_bytes", floor.WeightsAndCacheBytes);
            w.WriteNumber("usable_per_gpu_bytes", floor.UsablePerGpuBytes);
            w.WriteEndObject();
        }
        if (plan.DefaultLoadTotalBytes is { } loadTotal) w.WriteNumber("default_load_total_bytes", loadTotal);

        w.WriteStartArray("fixes");
        foreach (var f in plan.Fixes)
        {
            w.WriteStartObject();
            w.WriteString("change", f.Change.Render(parameterName));
            w.WriteNumber("peak_bytes", f.PeakBytes);
            w.WriteNumber("total_bytes", f.TotalBytes);
            w.WriteBoolean("fits", f.Fits);
            if (f.TotalAfterReleaseBytes is { } held) w.WriteNumber("total_after_release_bytes", held);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        if (plan.Search is { } s)
        {
            w.WriteStartObject("search");
            w.WriteString("parameter", s.Parameter);
            w.WriteNumber("value", s.Value);
            if (s.Unlock is { } unlock) w.WriteString("unlock", unlock.Render(parameterName));
            if (s.ValueWithKbitPrep is { } prepared) w.WriteNumber("value_with_kbit_prep", prepared);
            w.WriteEndObject();
        }
        if (plan.Curve is { } curve) WriteCurve(w, curve);
        if (multi is not null) Parallel.MultiGpuJson.WriteLayout(w, multi);
        w.WriteEndObject();
    }

    private static void WriteVerdicts(Utf8JsonWriter w, Plan plan, Func<InputParameter, string> parameterName)
    {
        w.WriteStartArray("gpus");
        foreach (var v in plan.Verdicts)
        {
            w.WriteStartObject();
            w.WriteString("gpu", v.Device.Id);
            w.WriteString("name", v.Device.Name);
            w.WriteNumber("capacity_bytes", v.Device.CapacityBytes);
            w.WriteBoolean("fits", v.Fits);
            w.WriteNumber("headroom_bytes", v.HeadroomBytes);
            w.WriteBoolean("borderline", v.Borderline);
            w.WriteBoolean("fits_after_cache_release", v.FitsAfterCacheRelease);
            if (v.ReservedAfterReleaseBytes is { } reservedAfter)
            {
                w.WriteNumber("reserved_after_release_bytes", reservedAfter);
                w.WriteNumber("total_after_release_bytes", v.TotalAfterReleaseBytes!.Value);
            }
            if (v.Device.Interpretation is { } how) w.WriteString("interpretation", how);
            if (v.Device.Capability is { } cc) w.WriteString("compute_capability", cc.ToString());
            if (v.Dequantized is { } d) WriteDequantized(w, d, v.TotalOnDeviceBytes!.Value);
            if (v.SdpaMath is { } math) w.WriteString("sdpa_math_kernel", math);
            if (v.TotalOnDeviceBytes is { } onDevice) w.WriteNumber("total_on_device_bytes", onDevice);
            if (v.Unsupported is { } why) w.WriteString("unsupported", why.Render(parameterName));
            if (v.Advice is { } advice) w.WriteString("advice", advice.Render(parameterName));
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary><c>dequantized</c>: the device cannot compute the stored weights, so its verdict judges the 16-bit load
    /// (<paramref name="totalBytes"/>: that load's total, per GPU in a multi-GPU verdict).</summary>
    internal static void WriteDequantized(Utf8JsonWriter w, Dequantization d, long totalBytes)
    {
        w.WriteStartObject("dequantized");
        w.WriteString("from", d.From.Name());
        w.WriteString("to", d.To.Name());
        w.WriteString("needs_compute_capability", d.Needs.ToString());
        w.WriteNumber("total_bytes", totalBytes);
        w.WriteString("reason", d.Reason);
        w.WriteEndObject();
    }

    /// <summary><c>curve</c>: the sampled points in ascending order, with fits per device id, and the exact largest value per device.</summary>
    private static void WriteCurve(Utf8JsonWriter w, MemoryCurve curve)
    {
        w.WriteStartObject("curve");
        w.WriteString("parameter", curve.Parameter);
        // A largest value equal to the limit means every value up to it fits (seq stops at max_position_embeddings).
        w.WriteNumber("limit", curve.Limit);
        w.WriteStartArray("points");
        foreach (var p in curve.Points)
        {
            w.WriteStartObject();
            w.WriteNumber("value", p.Value);
            w.WriteNumber("allocated_bytes", p.AllocatedBytes);
            if (curve.DeviceKind == DeviceKind.Gpu) w.WriteNumber("reserved_bytes", p.ReservedBytes);
            w.WriteNumber("total_bytes", p.TotalBytes);
            w.WriteStartObject("fits");
            foreach (var v in p.Verdicts) w.WriteBoolean(v.Device.Id, v.Fits);
            w.WriteEndObject();
            if (curve.DeviceKind == DeviceKind.Gpu)
            {
                // Fits only because PyTorch frees its cached blocks and retries: the total is above the capacity.
                w.WriteStartObject("fits_after_cache_release");
                foreach (var v in p.Verdicts) w.WriteBoolean(v.Device.Id, v.FitsAfterCacheRelease);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartObject("largest");
        foreach (var l in curve.Largest) w.WriteNumber(l.Device.Id, l.Value);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteEntries(Utf8JsonWriter w, string name, IEnumerable<LedgerEntry> entries)
    {
        w.WriteStartArray(name);
        foreach (var e in entries)
        {
            w.WriteStartObject();
            w.WriteString("name", e.Name);
            // The stable identity scripts can match on; the name is display text and may be reworded.
            w.WriteString("kind", e.Kind.ToString());
            w.WriteNumber("bytes", e.RoundedBytes);
            w.WriteString("formula", e.Formula);
            w.WriteString("source", e.Source);
            w.WriteString("category", e.Category.ToString());
            w.WriteString("phases", e.Phases.Name());
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}
