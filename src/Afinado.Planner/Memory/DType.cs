namespace Afinado.Planner.Memory;

/// <summary>Storage formats for weights, gradients, optimizer states and the KV cache.</summary>
public enum DType { Fp32, Fp16, Bf16, Fp8, Int8, Int4, Nf4, Nf4Dq, Mxfp4 }

public static class DTypes
{
    /// <summary>
    /// Bits per element including block constants. NF4: 4 bits + one fp32 absmax per 64 values = 4.5 (QLoRA paper);
    /// with double quantization the absmax is 8-bit with an fp32 constant per 256 blocks: 4 + 8/64 + 32/(64·256) ≈ 4.127.
    /// int4/int8/fp8 are counted as raw bits (per-group scales of GPTQ/AWQ, about 0.25 bit at group 128, are not included).
    /// </summary>
    public static double Bits(this DType d) => d switch
    {
        DType.Fp32 => 32,
        DType.Fp16 or DType.Bf16 => 16,
        DType.Fp8 or DType.Int8 => 8,
        DType.Int4 => 4,
        DType.Nf4 => 4 + 32.0 / 64,
        DType.Nf4Dq => 4 + 8.0 / 64 + 32.0 / (64 * 256),
        // OCP Microscaling MXFP4: FP4 (E2M1) values in blocks of 32 sharing one 8-bit (E8M0) scale; gpt_oss checkpoints
        // store the expert weights as *_blocks (two values per byte) and *_scales (one byte per 32 values).
        DType.Mxfp4 => 4 + 8.0 / 32,
        _ => throw new ArgumentOutOfRangeException(nameof(d)),
    };

    public static double Bytes(this DType d) => d.Bits() / 8;

    /// <summary>
    /// Bits of the quantized codes alone, without block constants: 4 for NF4 (bitsandbytes packs two codes per byte);
    /// other formats are counted as raw bits already (see <see cref="Bits"/>).
    /// </summary>
    public static double CodeBits(this DType d) => d is DType.Nf4 or DType.Nf4Dq or DType.Mxfp4 ? 4 : d.Bits();

    /// <summary>Below 16 bits: only linear layers are stored this way (embeddings, norms and the head stay 16-bit, as bitsandbytes/GPTQ do).</summary>
    public static bool IsQuantized(this DType d) => d.Bits() < 16;

    public static string Name(this DType d) => d switch
    {
        DType.Nf4Dq => "nf4-dq",
        _ => d.ToString().ToLowerInvariant(),
    };

    public static DType Parse(string text, InputText field)
    {
        foreach (var d in Enum.GetValues<DType>())
            if (string.Equals(d.Name(), text.Trim(), StringComparison.OrdinalIgnoreCase)) return d;
        // A plan names a GPTQ/AWQ/bitsandbytes checkpoint's weights by their stored format (gptq-int4, bnb-nf4-dq): that is
        // what the config's quantization_config gives, not a dtype to convert to.
        if (text.Trim().StartsWith("gptq-", StringComparison.OrdinalIgnoreCase) || text.Trim().StartsWith("awq-", StringComparison.OrdinalIgnoreCase)
            || text.Trim().StartsWith("bnb-", StringComparison.OrdinalIgnoreCase))
            throw new InputError(field, $"\"{TerminalText.Escape(text)}\" is a checkpoint's stored format, not a dtype to convert to",
                "Drop the flag: a config whose quantization_config says gptq, awq or bitsandbytes is planned in its stored format by default; " +
                $"or convert with one of: {string.Join(", ", Enum.GetValues<DType>().Select(d => d.Name()))}.");
        throw new InputError(field, $"\"{text}\" is not a dtype", $"Use one of: {string.Join(", ", Enum.GetValues<DType>().Select(d => d.Name()))}.");
    }
}
