using Afinado.Planner;
using Afinado.Training.Tokenization;
using Afinado.Training.Loop;

namespace Afinado.Training.Data;

/// <summary>Resolves a <c>--data</c> value (<c>fortunes-en</c>, <c>fortunes-es</c>, or a .txt/.jsonl path) into documents and the files read.</summary>
public static class DataCatalog
{
    public static (IReadOnlyList<TextDocument> Documents, IReadOnlyList<string> Files) Resolve(string data, string? category = null)
    {
        switch (data)
        {
            case "fortunes-en":
            {
                var docs = FortuneCorpus.Load(FortuneLanguage.English, category);
                return (docs, docs.Select(d => d.Source).Distinct().ToList());
            }
            case "fortunes-es":
            {
                if (category is not null)
                    throw new InputError(TrainParameters.Category, "categories apply to English fortunes only", $"Drop {TrainParameters.Category} or use {TrainParameters.Data} fortunes-en.");
                return (FortuneCorpus.Load(FortuneLanguage.Spanish), FortuneCorpus.Files(FortuneLanguage.Spanish));
            }
            default:
                if (!File.Exists(data))
                    throw new InputError(TrainParameters.Data, $"\"{data}\" is neither fortunes-en, fortunes-es nor an existing file", "Use a built-in corpus or a .txt/.jsonl path.");
                return (UserTextFiles.Load(data), [Path.GetFullPath(data)]);
        }
    }

    /// <summary>The batches of a <c>--data</c> value: a JSONL file with prompt/completion or alpaca records gives
    /// supervised examples (loss on the answers, <see cref="SupervisedSource"/>); anything else a token stream.</summary>
    /// <param name="modelFolder">The base model folder: its chat template renders <c>messages</c> records.</param>
    public static IBatchSource TokenSource(string data, string? category, ITextTokenizer tokenizer, int sequenceLength, string? modelFolder = null)
    {
        string description = $"{data}{(category is null ? "" : "/" + category)}/{tokenizer.Name}/seq{sequenceLength}";
        if (category is null && File.Exists(data) && SupervisedExamples.IsSupervised(data))
        {
            var template = modelFolder is not null && Chat.ChatTemplate.Has(modelFolder) ? Chat.ChatTemplate.FromFolder(modelFolder) : null;
            return new SupervisedSource(SupervisedExamples.Load(data, template), tokenizer, sequenceLength, description + "/supervised", [Path.GetFullPath(data)]);
        }
        var (docs, files) = Resolve(data, category);
        return TokenStreamSource.FromDocuments(docs, tokenizer, sequenceLength, description, files);
    }
}
