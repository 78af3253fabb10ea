using Afinado.Planner.Architecture;

namespace Afinado.Training.Tests;

/// <summary>Small configs for fast tests: hand-written tiny ones and scaled-down copies of real models' shapes.</summary>
internal static class TinyConfigs
{
    public static ModelArchitecture Parse(string json) => HfConfigReader.Parse(json, "test-config.json");

    /// <summary>Tiny Llama: MHA, untied embeddings, byte vocabulary.</summary>
    public const string Llama = """
        {"model_type":"llama","vocab_size":256,"hidden_size":32,"num_hidden_layers":2,"num_attention_heads":4,
         "num_key_value_heads":4,"intermediate_size":64,"rms_norm_eps":1e-5,"max_position_embeddings":64}
        """;

    /// <summary>Tiny GQA with tied embeddings (TinyLlama/Llama-3.2-style shape).</summary>
    public const string GqaTied = """
        {"model_type":"llama","vocab_size":96,"hidden_size":48,"num_hidden_layers":3,"num_attention_heads":6,
         "num_key_value_heads":2,"intermediate_size":80,"tie_word_embeddings":true,"rope_theta":500000.0}
        """;

    /// <summary>Llama-3.1-8B proportions scaled down 64×: 32 heads / 8 kv heads, head_dim 4, untied.</summary>
    public const string Llama31Scaled = """
        {"model_type":"llama","vocab_size":2004,"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":16,
         "num_key_value_heads":4,"intermediate_size":224,"rope_theta":500000.0,"rms_norm_eps":1e-5,"tie_word_embeddings":false}
        """;

    /// <summary>Qwen2-style: q/k/v biases, GQA, tied.</summary>
    public const string Qwen2Scaled = """
        {"model_type":"qwen2","vocab_size":300,"hidden_size":56,"num_hidden_layers":2,"num_attention_heads":7,
         "num_key_value_heads":1,"intermediate_size":96,"tie_word_embeddings":true,"rope_theta":1000000.0,"rms_norm_eps":1e-6}
        """;

    /// <summary>Qwen3-style: explicit head_dim ≠ hidden/heads and per-head q/k RMSNorm.</summary>
    public const string Qwen3Scaled = """
        {"model_type":"qwen3","vocab_size":128,"hidden_size":32,"num_hidden_layers":2,"num_attention_heads":4,
         "num_key_value_heads":2,"head_dim":16,"intermediate_size":64,"tie_word_embeddings":true}
        """;

    public static IEnumerable<object[]> All() =>
        new[] { Llama, GqaTied, Llama31Scaled, Qwen2Scaled, Qwen3Scaled }.Select(c => new object[] { c });
}
