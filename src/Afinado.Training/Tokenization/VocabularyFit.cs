using System.Globalization;
using Afinado.Planner;

namespace Afinado.Training.Tokenization;

/// <summary>
/// Whether a tokenizer's ids fit a model's embedding table. A tokenizer may list more ids than the model has rows — Gemma 3's
/// tokenizer.json holds 262,145 (the image soft token) while Gemma 3 1B's vocab_size is 262,144 — and transformers trains
/// such a pair as long as no input uses a missing row. So the ids actually used are checked, not the tokenizer's size:
/// an id past the table is an error naming it and its text, never an index failure inside the embedding.
/// </summary>
public static class VocabularyFit
{
    public static void Check(ITextTokenizer tokenizer, int vocabSize, IEnumerable<int> ids, InputText field, InputText where)
    {
        if (tokenizer.VocabSize <= vocabSize) return;
        int largest = ids.DefaultIfEmpty(0).Max();
        if (largest < vocabSize) return;
        throw new InputError(field, string.Create(CultureInfo.InvariantCulture,
            $"{where} uses token id {largest} ({tokenizer.Decode([largest])}), past the model's vocab_size {vocabSize} ({tokenizer.Name} has {tokenizer.VocabSize} ids)"),
            "Use the tokenizer the model was trained with, or remove that token from the text.");
    }
}
