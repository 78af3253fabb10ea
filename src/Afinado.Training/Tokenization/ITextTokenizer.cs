using Afinado.Training.Loop;

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

public static class TextTokenizers
{
    /// <summary>
    /// <c>model</c> (the base folder's own tokenizer.json, see <see cref="HfTokenizer"/>), <c>byte</c> (256 ids, UTF-8 bytes)
    /// or <c>gpt2</c> (50,257-id BPE from Microsoft.ML.Tokenizers). A base folder with its own tokenizer.json takes only
    /// <c>model</c>: its embeddings were trained on those ids, and byte or GPT-2 ids would finetune it on noise.
    /// </summary>
    public static ITextTokenizer Create(string name, string? modelFolder = null)
    {
        if (name != "model" && HfTokenizer.In(modelFolder))
            throw new InputError(TrainParameters.Tokenizer, $"the base model folder has its own {HfTokenizer.FileName}, and {name} ids are not the text its embeddings know",
                $"Drop {TrainParameters.Tokenizer} (the folder's tokenizer is used) or pass {TrainParameters.Tokenizer} model.");
        return name switch
        {
            "model" => modelFolder is not null ? HfTokenizer.Load(modelFolder, TrainParameters.Tokenizer)
                : throw new InputError(TrainParameters.Tokenizer, "model reads the base folder's tokenizer.json, and this run has no base model", $"Add {TrainParameters.BaseModel} FOLDER, or use {TrainParameters.Tokenizer} byte or gpt2."),
            "byte" => new ByteTokenizer(),
            "gpt2" => new Gpt2Tokenizer(),
            _ => throw new InputError(TrainParameters.Tokenizer, $"\"{name}\" is not a tokenizer", "Use model, byte or gpt2."),
        };
    }
}
