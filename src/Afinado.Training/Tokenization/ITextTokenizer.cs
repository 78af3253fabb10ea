namespace Afinado.Training.Tokenization;

/// <summary>Text ↔ token ids. <see cref="EndOfText"/> separates documents in a training stream.</summary>
public interface ITextTokenizer
{
    string Name { get; }
    int VocabSize { get; }
    int EndOfText { get; }
    int[] Encode(string text);
    string Decode(IEnumerable<int> ids);
}

public static class Tokenizers
{
    /// <summary><c>byte</c> (256 ids, UTF-8 bytes) or <c>gpt2</c> (50,257-id BPE from Microsoft.ML.Tokenizers).</summary>
    public static ITextTokenizer Create(string name) => name switch
    {
        "byte" => new ByteTokenizer(),
        "gpt2" => new Gpt2Tokenizer(),
        _ => throw new Afinado.Planner.InputError("--tokenizer", $"\"{name}\" is not a tokenizer", "Use byte or gpt2."),
    };
}
