using Afinado.Planner.Devices;
using static Afinado.Planner.Memory.LedgerBuilder;

namespace Afinado.Planner.Memory;

/// <summary>
/// The training ledger of the learning rules other than backprop (learning-rules.md; issue 4):
/// <list type="bullet">
/// <item><c>es</c> / <c>es-direct</c>: weights + one perturbation buffer ε (regenerated from per-pair seeds, so the
/// population costs nothing) + the working set of a forward without autograd over the full training sequence, its logits
/// and loss included. Only <c>es</c> adds the estimate Σcᵢεᵢ, its <c>.grad</c> copy and the optimizer's state; MeZO-style
/// <c>es-direct</c> updates θ in place pair by pair and has none of them.</item>
/// <item><c>dfa</c>: every block sees a detached input, so each keeps only the tensors its own weights need (no block input
/// needs a gradient), plus the block outputs the error is injected into, the fixed feedback matrices B_i [V, h] and the
/// injected errors e·B_i; gradients and optimizer state as for backprop.</item>
/// <item><c>guided-es</c> (DFA surrogate): the DFA surrogate's backward, then ES on the same step, plus the k remembered
/// surrogates, the orthonormal basis U [n, k] and the current surrogate.</item>
/// </list>
/// The trainer concatenates a step's micro-batches into one batch for these rules, so activations scale with b·k·s.
/// </summary>
internal static class RuleLedger
{
    public static List<LedgerEntry> Entries(ModelProfile p, Job job, DeviceKind device, bool explain)
    {
        if (job.GradAccumulation > 1) job = job with { Batch = job.Batch * job.GradAccumulation, GradAccumulation = 1 };
        var e = job.Rule switch
        {
            LearningRule.Es or LearningRule.EsDirect => Es(p, job, device, explain),
            LearningRule.Dfa => Dfa(p, job, device, explain),
            LearningRule.GuidedEs => GuidedEs(p, job, device, explain),
            _ => throw new ArgumentOutOfRangeException(nameof(job), job.Rule, "backprop has the training ledger"),
        };
        // What lives through the whole step (weights, optimizer state) is also live while the perturbed forwards run; a
        // forward-only rule has no backprop moments at all.
        const Phase backpropOnly = Phase.Forward | Phase.ForwardLastLayer | Phase.BackwardStart | Phase.BackwardEnd;
        for (int i = 0; i < e.Count; i++)
        {
            // Whole step, or all of forward and backward (the QLoRA dequantization buffer, which skips the optimizer step).
            if ((e[i].Phases & backpropOnly) != backpropOnly) continue;
            var phases = e[i].Phases | Phase.Perturbed;
            if (job.Rule.IsForwardOnly()) phases &= ~backpropOnly;
            e[i] = e[i] with { Phases = phases };
        }
        return e;
    }

    private static List<LedgerEntry> Es(ModelProfile p, Job job, DeviceKind device, bool explain)
    {
        var e = new List<LedgerEntry>(12);
        TrainingLedger.AddWeights(e, p, job, explain, ampCopies: false);
        AddPerturbation(e, p, job, explain);
        if (job.Rule == LearningRule.Es)
        {
            AddEstimate(e, p, job, explain);
            // ES steps every parameter that requires grad, a vision tower's adapters included.
            TrainingLedger.AddOptimizer(e, p, job, device == DeviceKind.Cpu, TrainingLedger.TrainableBytes(job), explain, visionAdaptersStepped: true);
        }
        AddForward(e, p, job, device, explain);
        return e;
    }

    private static List<LedgerEntry> Dfa(ModelProfile p, Job job, DeviceKind device, bool explain)
    {
        var a = p.Architecture;
        var detached = p.ForDetachedBlocks();
        var e = TrainingLedger.Entries(detached, job, device, explain);
        double c = job.Precision.ComputeBytes(), T = (double)job.Batch * job.Seq, h = a.HiddenSize, L = a.NumLayers;
        double r = TrainingLedger.Settings(detached, job, c).R;
        e.Add(new(LineKind.DfaFeedbackMatrices, "DFA feedback matrices B_i (fixed, random)", Phase.Training, L * a.VocabSize * h * c,
            explain ? $"L {L} × V {N(a.VocabSize)} × h {N(h)} × {B(c)} B, drawn once at the first backward, never trained" : "",
            "Nøkland 2016 (DFA); learning-rules.md; DfaFeedback [output, hidden] per block"));
        e.Add(new(LineKind.DfaBlockOutputs, "DFA: block outputs the error is injected into", Phase.Training, L * T * h * r,
            explain ? $"L {L} × T {N(T)} × h {N(h)} × {B(r)} B: each h_i is kept for e·B_i; the next block gets h_i.detach() (no inter-layer graph)" : "",
            "DfaTap.Hidden / DfaInject; the step's dispose scope holds them to its end"));
        if (device == DeviceKind.Cpu)
        {
            // The tapped forward runs in the step's dispose scope: the embedding output and the final norm's output stay to
            // the step's end even where autograd saves neither (frozen embedding, frozen head: LoRA).
            double held = (detached.Layers.Length > 0 && !detached.Layers[0].InputRequiresGrad ? r : 0) + (detached.HeadTrainable ? 0 : c);
            TrainingLedger.AddIf(e, LineKind.DfaHeldOutputs, "DFA: embedding and final-norm outputs held by the step", Phase.Training, held * T * h,
                explain ? $"T {N(T)} × h {N(h)} × {B(held)} B: not saved for backward here, but the tapped forward has no dispose scope of its own" : "",
                "LlamaForCausalLM.Forward(input, tap): no scope, so the step's scope holds its top-level tensors");
        }
        e.Add(new(LineKind.DfaInjectedErrors, "DFA: injected errors e·B_i", Phase.BackwardStart, L * T * h * c,
            explain ? $"L {L} × T {N(T)} × h {N(h)} × {B(c)} B, all returned by the injection node at once" : "",
            "DfaInject.backward (one [T, h] error per block)"));
        return e;
    }

    private static List<LedgerEntry> GuidedEs(ModelProfile p, Job job, DeviceKind device, bool explain)
    {
        var e = Dfa(p, job, device, explain);
        long n = p.Selection.TrainableParameters;
        double tb = TrainableBytes(job);
        double k = job.GuidedEsSubspace;
        AddPerturbation(e, p, job, explain);
        AddForward(e, p, job, device, explain);
        e.Add(new(LineKind.EsEstimate, "Guided ES: estimate Σ cᵢ·εᵢ", Phase.OptimizerStep, n * tb,
            explain ? $"{N(n)} trainable × {B(tb)} B, handed to the optimizer as .grad (the .grad copy is the gradients line)" : "",
            "Maheswaranathan et al. 2019; GuidedEsRule"));
        e.Add(new(LineKind.GuidedEsSurrogateHistory, $"Guided ES: surrogate history (k = {k})", Phase.Training, k * n * tb,
            explain ? $"k {k} × {N(n)} × {B(tb)} B: the last k DFA pseudo-gradients" : "", "GuidedEsRule (FIFO of k surrogates)"));
        e.Add(new(LineKind.GuidedEsSurrogateAndBasis, "Guided ES: current surrogate and basis U", Phase.BackwardEnd | Phase.Perturbed | Phase.OptimizerStep, (1 + k) * n * tb,
            explain ? $"flat surrogate {N(n)} + U [n, k] from reduced QR, × {B(tb)} B, live for the rest of the step" : "",
            "GuidedEsRule.GuidingBasis (linalg.qr reduced); Σ = α/n·I + (1−α)/k·UUᵀ is never formed"));
        return e;
    }

    private static double TrainableBytes(Job job) => TrainingLedger.TrainableBytes(job);

    private static void AddPerturbation(List<LedgerEntry> e, ModelProfile p, Job job, bool explain)
    {
        long n = p.Selection.TrainableParameters;
        double tb = TrainableBytes(job);
        e.Add(new(LineKind.EsPerturbation, "ES perturbation buffer ε (one)", Phase.Perturbed, n * tb,
            explain ? $"{N(n)} trainable × {B(tb)} B; θ±ε applied in place, εᵢ regenerated from (seed, step, pair) — O(n), not O(population·n)" : "",
            "Salimans et al. 2017; MeZO (Malladi et al. 2023); learning-rules.md"));
    }

    private static void AddEstimate(List<LedgerEntry> e, ModelProfile p, Job job, bool explain)
    {
        long n = p.Selection.TrainableParameters;
        double tb = TrainableBytes(job);
        e.Add(new(LineKind.EsEstimate, "ES estimate Σ cᵢ·εᵢ and its .grad copy", Phase.OptimizerStep, 2.0 * n * tb,
            explain ? $"2 × {N(n)} trainable × {B(tb)} B: summed from regenerated εᵢ, copied into .grad for the optimizer" : "",
            "OpenAI-ES with an optimizer (EsRule.Combine, ParameterVector.SetGradients)"));
    }

    /// <summary>The perturbed forward without autograd: the largest moment inside the last block, then logits + loss.</summary>
    private static void AddForward(List<LedgerEntry> e, ModelProfile p, Job job, DeviceKind device, bool explain)
    {
        var a = p.Architecture;
        double c = job.Precision.ComputeBytes();
        var s = ActivationModel.WithCpuKernel(a, TrainingLedger.Settings(p, job with { Task = JobTask.Infer }, c) with { Cpu = device == DeviceKind.Cpu });
        double T = s.Tokens, tv = T * a.VocabSize;
        if (device == DeviceKind.Cpu)
        {
            e.Add(new(LineKind.NoGradForwardLayer, "no-grad forward: working set in the last block", Phase.PerturbedLayer,
                TorchSharpNoGradForward.LayerPeak(a, p.Layers[^1], s),
                explain ? $"T = {N(T)} × {B(c)} B × (L·h held hidden states + the block's largest moment: norms, attention or SwiGLU 3·f + LoRA outputs)"
                    + (s.Kernel == AttentionKernel.Eager ? $"; explicit attention: {TorchSharpNoGradForward.ScoreTensors(a)} b·a·s² score tensors{(a.AttnLogitSoftcap is null ? "" : " (soft-cap: tanh and its product too)")}" : "") : "",
                "Afinado TorchSharp decoder, op by op (dispose scopes hold module temporaries to the module's end)"));
            e.Add(new(LineKind.NoGradForwardLoss, "no-grad forward: logits and log-softmax", Phase.PerturbedLoss, TorchSharpNoGradForward.LossPeak(a, s),
                explain ? (a.FinalLogitSoftcap is null
                    ? $"2 × T·V {N(tv)} × {B(c)} B (full sequence: the training loss needs every position)"
                    : $"the larger of 2 × T·V {N(tv)} (loss) and 4 × T·V + T·h (the soft-capped head's scope), × {B(c)} B") : "",
                "cross_entropy = log_softmax + nll_loss; LlamaForCausalLM.Head"));
            return;
        }
        e.Add(new(LineKind.NoGradForwardLayer, "no-grad forward: one layer's temporaries", Phase.PerturbedLayer, ActivationModel.LayerInferenceTransient(a, s),
            explain ? ActivationModel.LayerInferenceTransientFormula(a, s) + "; full training sequence, no KV cache (use_cache=False)" : "",
            "memory.md §1.2; nothing is saved for backward"));
        // transformers < 4.46 (--legacy-loss) upcast inside the model and copied the shifted slice: fp32 logits, the copy
        // and its log_softmax, the 16-bit logits gone by then (as TrainingLedger.AddLogits' legacy forward).
        double perLogit = job.LegacyLoss ? 12 : c + (c < 4 ? 4 : 0) + 4;
        double logits = perLogit * tv + c * T * a.HiddenSize;
        e.Add(new(LineKind.NoGradForwardLoss, "no-grad forward: logits and cross-entropy (full sequence)", Phase.PerturbedLoss, logits,
            explain ? (job.LegacyLoss
                ? $"fp32 logits 4 + shifted copy 4 + log_softmax 4 B per T·V {N(tv)} + last hidden state (transformers < 4.46)"
                : $"logits {B(c)} + fp32 copy {(c < 4 ? 4 : 0)} + log_softmax 4 B per T·V {N(tv)} + last hidden state") : "",
            job.LegacyLoss ? "transformers < 4.46 modeling_llama.py (logits.float(), shift_logits .contiguous())"
                : "transformers ForCausalLMLoss (every position, unlike generation's last-token logits)"));
    }
}
