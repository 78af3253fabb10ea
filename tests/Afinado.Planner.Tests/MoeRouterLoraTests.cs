using System.Text.Json;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests;

/// <summary>
/// What PEFT's LoRA layer does on an nn.Linear MoE router depends on how the block calls it (<see cref="RouterCall"/>):
/// PhimoeRouter returns its logits, so the adapter's branch runs and trains; Llama4Router returns a tuple, on which LoRA's
/// forward fails (peft lora/layer.py reads <c>result.dtype</c>); DeepseekV2Moe reads <c>gate.weight</c> itself, so the
/// adapter never runs. all-linear leaves the last two out and says so; naming them is refused.
/// </summary>
public class MoeRouterLoraTests
{
    private static readonly ModelArchitecture Scout = ModelCatalog.Get("meta-llama/Llama-4-Scout-17B-16E");
    private static readonly ModelArchitecture DeepseekV2Lite = ModelCatalog.Get("deepseek-ai/DeepSeek-V2-Lite-Chat");

    public static TheoryData<string, string, string> RoutersLoraCannotServe() => new()
    {
        { "meta-llama/Llama-4-Scout-17B-16E", "router", "'tuple' object has no attribute 'dtype'" },
        { "deepseek-ai/DeepSeek-V2-Lite-Chat", "gate", "never runs" },
    };

    [Theory]
    [MemberData(nameof(RoutersLoraCannotServe))]
    public void All_linear_leaves_the_router_out_as_exclude_modules_would_and_says_why(string model, string router, string why)
    {
        var arch = ModelCatalog.Get(model);
        var allLinear = TrainableSelection.Create(arch, TrainingMethod.Lora, lora: new LoraConfig());
        Assert.DoesNotContain(allLinear.AdaptedLinears, t => t.Role == TensorRole.Router && t.Shape[0] == arch.NumExperts);
        var note = Assert.Single(allLinear.Notes);
        Assert.Contains(why, note);
        Assert.Contains($"exclude_modules=[\"{router}\"]", note);
        // The same adapters as naming every other linear module but the head.
        var named = TrainableSelection.LinearModuleNames(arch).Where(n => n != router && n != "lm_head").ToList();
        var explicitList = TrainableSelection.Create(arch, TrainingMethod.Lora, lora: new LoraConfig { Targets = named });
        Assert.Equal(explicitList.AdapterParameters, allLinear.AdapterParameters);
        Assert.Empty(explicitList.Notes);
    }

    [Theory]
    [MemberData(nameof(RoutersLoraCannotServe))]
    public void Naming_the_router_is_refused_with_the_reason(string model, string router, string why)
    {
        var e = Assert.Throws<InputError>(() => TrainableSelection.Create(ModelCatalog.Get(model), TrainingMethod.Lora,
            lora: new LoraConfig { Targets = ["q_proj", router] }));
        Assert.Equal(JobParameters.LoraTargets, e.Parameter);
        Assert.Contains(why, e.Message);
    }

    [Fact]
    public void The_plan_shows_the_note_in_its_json_warnings()
    {
        var plan = Fit.Planner.Create(Scout, new Job { Method = TrainingMethod.QLora, Seq = 512 }, [], suggestFixes: false);
        using var json = JsonDocument.Parse(PlanJson.Serialize(plan));
        var warnings = json.RootElement.GetProperty("model").GetProperty("warnings").EnumerateArray().Select(w => w.GetString()!).ToList();
        Assert.Contains(warnings, w => w.Contains("exclude_modules=[\"router\"]"));
        // Inference selects nothing, so it carries no note.
        var infer = Fit.Planner.Create(DeepseekV2Lite, new Job { Task = JobTask.Infer, Seq = 512 }, [], suggestFixes: false);
        using var inferJson = JsonDocument.Parse(PlanJson.Serialize(infer));
        Assert.False(inferJson.RootElement.GetProperty("model").TryGetProperty("warnings", out _));
    }

    [Fact]
    public void PhiMoE_s_router_is_adapted_and_its_branch_saves_the_dropout_copy_mask_and_A_output_per_token()
    {
        var arch = PhimoeTests.Parse(PhimoeTests.Phi35Moe());
        var allLinear = TrainableSelection.Create(arch, TrainingMethod.Lora, lora: new LoraConfig());
        Assert.Empty(allLinear.Notes);
        Assert.Equal(arch.NumLayers, allLinear.AdaptedLinears.Count(t => t.Role == TensorRole.Router));

        // LoRA on the attention, with and without the router: the router's adapter adds, per layer and token, lora_dropout's
        // bf16 output and 1-byte mask over the hidden width and lora_A's output over the rank (bf16 compute, bf16 adapters).
        const int seq = 1024;
        var attention = new LoraConfig { Targets = ["q_proj", "k_proj", "v_proj", "o_proj"], Dropout = 0.05 };
        var job = new Job { Method = TrainingMethod.Lora, Lora = attention, Seq = seq, AdapterDtype = DType.Bf16 };
        var withRouter = job with { Lora = attention with { Targets = [.. attention.Targets, "gate"] } };
        double Lora(Job j) => Fit.Planner.Create(arch, j, [], suggestFixes: false).Ledger.Tensors
            .Where(e => e.Kind == LineKind.ActivationsLora).Sum(e => e.Bytes);
        long perToken = (2 + 1) * arch.HiddenSize + 2 * attention.Rank;
        Assert.Equal((double)arch.NumLayers * seq * perToken, Lora(withRouter) - Lora(job));
    }
}
