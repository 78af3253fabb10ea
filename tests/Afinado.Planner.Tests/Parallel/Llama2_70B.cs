using Afinado.Planner.Architecture;

namespace Afinado.Planner.Tests.Parallel;

/// <summary>meta-llama/Llama-2-70b-hf's config.json (the PEFT docs' model), inline so the test does not depend on the catalog.</summary>
internal static class Llama2_70B
{
    public const string ConfigJson = """
    {"architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 8192,
     "initializer_range": 0.02, "intermediate_size": 28672, "max_position_embeddings": 4096, "model_type": "llama",
     "num_attention_heads": 64, "num_hidden_layers": 80, "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
     "rope_scaling": null, "tie_word_embeddings": false, "torch_dtype": "float16", "vocab_size": 32000}
    """;

    public static ModelArchitecture Model { get; } = HfConfigReader.Parse(ConfigJson, "test:Llama-2-70b-hf") with { Name = "meta-llama/Llama-2-70b-hf" };
}
