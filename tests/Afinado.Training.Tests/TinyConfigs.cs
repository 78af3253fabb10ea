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

    /// <summary>Gemma (1): (1 + w) norms, √hidden embedding scale, GeGLU, tied head, head_dim set apart from hidden / heads.</summary>
    public const string Gemma = """
        {"model_type":"gemma","vocab_size":320,"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,
         "num_key_value_heads":1,"head_dim":16,"intermediate_size":96,"rms_norm_eps":1e-6,"rope_theta":10000.0,
         "hidden_activation":"gelu_pytorch_tanh","max_position_embeddings":128}
        """;

    /// <summary>Gemma 2: four norms per layer, a query_pre_attn_scalar that is not head_dim, attention and final
    /// soft-caps small enough to bite, and a sliding layer whose window is shorter than the test sequences.</summary>
    public const string Gemma2 = """
        {"model_type":"gemma2","vocab_size":320,"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,
         "num_key_value_heads":2,"head_dim":16,"intermediate_size":96,"rms_norm_eps":1e-6,"rope_theta":10000.0,
         "query_pre_attn_scalar":24,"attn_logit_softcapping":2.0,"final_logit_softcapping":3.0,"sliding_window":8,
         "layer_types":["sliding_attention","full_attention"],"hidden_activation":"gelu_pytorch_tanh","max_position_embeddings":128}
        """;

    /// <summary>Gemma 3 text: Gemma 2's layer with q/k norms, no attention soft-cap, a local RoPE base on sliding layers
    /// and linear rope_scaling on the global one.</summary>
    public const string Gemma3Text = """
        {"model_type":"gemma3_text","vocab_size":320,"hidden_size":64,"num_hidden_layers":3,"num_attention_heads":4,
         "num_key_value_heads":2,"head_dim":24,"intermediate_size":96,"rms_norm_eps":1e-6,"rope_theta":1000000.0,
         "rope_local_base_freq":10000.0,"rope_scaling":{"rope_type":"linear","factor":8.0},"query_pre_attn_scalar":24,
         "sliding_window":8,"layer_types":["sliding_attention","sliding_attention","full_attention"],
         "final_logit_softcapping":null,"attn_logit_softcapping":null,"hidden_activation":"gelu_pytorch_tanh",
         "max_position_embeddings":128}
        """;

    /// <summary>Phi-3: fused qkv_proj and gate_up_proj, half the head rotated, a sliding window on every layer.</summary>
    public const string Phi3 = """
        {"model_type":"phi3","vocab_size":320,"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,
         "num_key_value_heads":2,"intermediate_size":96,"rms_norm_eps":1e-5,"rope_theta":10000.0,"partial_rotary_factor":0.5,
         "sliding_window":8,"max_position_embeddings":128,"tie_word_embeddings":false}
        """;

    public static IEnumerable<object[]> All() =>
        new[] { Llama, GqaTied, Llama31Scaled, Qwen2Scaled, Qwen3Scaled, Gemma, Gemma2, Gemma3Text, Phi3 }.Select(c => new object[] { c });
}
