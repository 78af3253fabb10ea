using Afinado.Planner;
using Afinado.Planner.Inputs;

namespace Afinado.Training.Loop;

/// <summary>
/// Built-in recipes: complete, tested run configurations that work on a fresh machine once the Debian data packages are
/// installed. <c>fortunes-es</c> finetunes the shipped English base (<c>models/fortunes-base</c>) on Spanish fortunes
/// and scores English before/after; <c>fortunes-base</c> is the pretraining recipe that produced that base.
/// </summary>
public static class Recipes
{
    public const string BaseModelFolder = "models/fortunes-base";

    public static IReadOnlyList<string> Names => ["fortunes-es", "fortunes-base"];

    /// <summary>Model shape of the shipped base: a 1.67M-parameter Llama (byte vocabulary, 4 layers, GQA 6/2, SwiGLU, untied head), small enough to pretrain on 2 shared CPU cores.</summary>
    public const string FortunesBaseConfig = """
        {
          "architectures": ["LlamaForCausalLM"],
          "model_type": "llama",
          "vocab_size": 256,
          "hidden_size": 192,
          "intermediate_size": 512,
          "num_hidden_layers": 4,
          "num_attention_heads": 6,
          "num_key_value_heads": 2,
          "max_position_embeddings": 256,
          "rms_norm_eps": 1e-05,
          "rope_theta": 10000.0,
          "hidden_act": "silu",
          "initializer_range": 0.02,
          "tie_word_embeddings": false,
          "attention_bias": false,
          "mlp_bias": false,
          "torch_dtype": "float32"
        }
        """;

    public static (TrainConfig Config, IReadOnlyList<ExtraEvaluation> Extras) Get(string name, string? baseModel = null) => name switch
    {
        "fortunes-es" => FortunesEs(baseModel ?? FindBaseModel()),
        "fortunes-base" => (new TrainConfig
        {
            ModelConfigJson = FortunesBaseConfig,
            Data = "fortunes-en",
            Tokenizer = "byte",
            SequenceLength = 128,
            BatchSize = 16,
            MaxSteps = 600,
            LearningRate = 3e-3,
            MinLearningRate = 3e-4,
            WarmupSteps = 30,
            WeightDecay = 0.1,
            Method = Planner.Selection.TrainingMethod.Full,
            EvalEvery = 100,
            EvalBatches = 16,
            CheckpointEvery = 100,
            Seed = 1337,
        }, []),
        _ => throw new InputError(RunParameters.Recipe, $"\"{name}\" is not a recipe", $"Recipes: {string.Join(", ", Names)}."),
    };

    private static (TrainConfig, IReadOnlyList<ExtraEvaluation>) FortunesEs(string baseModel)
    {
        var config = new TrainConfig
        {
            BaseModel = baseModel,
            // The folder may come from AFINADO_BASE_MODEL: read its config as any user config.
            ModelConfigJson = InputFile.ReadAllText(Path.Combine(baseModel, "config.json"), InputKind.Config),
            Data = "fortunes-es",
            Tokenizer = "byte",
            SequenceLength = 128,
            BatchSize = 16,
            MaxSteps = 300,
            LearningRate = 2e-3,
            MinLearningRate = 2e-4,
            WarmupSteps = 20,
            WeightDecay = 0.0,
            Method = Planner.Selection.TrainingMethod.Lora,
            LoraRank = 8,
            LoraAlpha = 16,
            LoraDropout = 0.05,
            LoraTargets = ["all-linear"],
            EvalEvery = 50,
            EvalBatches = 16,
            CheckpointEvery = 50,
            Seed = 1337,
        };
        return (config, [new ExtraEvaluation("fortunes-en", "fortunes-en")]);
    }

    /// <summary>
    /// Finds the shipped base: <c>$AFINADO_BASE_MODEL</c>, else <c>models/fortunes-base</c> in the current directory or
    /// any parent, else next to the executable (the CLI copies it into its output).
    /// </summary>
    public static string FindBaseModel()
    {
        var env = Environment.GetEnvironmentVariable("AFINADO_BASE_MODEL");
        if (!string.IsNullOrEmpty(env)) return env;
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, BaseModelFolder);
                if (File.Exists(Path.Combine(candidate, "config.json"))) return candidate;
            }
        throw new InputError(RunParameters.Recipe, $"the base model folder {BaseModelFolder} was not found",
            "Run from the repository checkout, set AFINADO_BASE_MODEL, or regenerate it with `afinado pretrain --out models/fortunes-base`.");
    }
}
