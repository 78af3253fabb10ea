using System.Text.Json;
using System.Text.Json.Serialization;
using Afinado.Planner;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Training.Loop;

/// <summary>
/// The trainer's choices in the planner's own types (<see cref="TrainingMethod"/>, <see cref="LearningRule"/>,
/// <see cref="OptimizerKind"/>, <see cref="AttentionKernel"/>), with the subset the CPU trainer runs and the words
/// <c>afinado train</c> and <c>run-config.json</c> spell them with (unchanged from the string fields they replace, so
/// a run folder written before reads back, and hashes, the same).
/// </summary>
public static class TrainVocabulary
{
    public static readonly IReadOnlyList<(TrainingMethod Value, string Word)> Methods =
        [(TrainingMethod.Full, "full"), (TrainingMethod.Freeze, "freeze"), (TrainingMethod.Lora, "lora")];

    /// <summary>The trainer's rules. MeZO-style direct ES is <c>es</c> with the <c>sgd</c> optimizer (the planner's
    /// <see cref="LearningRule.EsDirect"/>, see <see cref="PlannerRule"/>).</summary>
    public static readonly IReadOnlyList<(LearningRule Value, string Word)> Rules =
        [(LearningRule.Backprop, "backprop"), (LearningRule.Es, "es"), (LearningRule.GuidedEs, "guided-es"), (LearningRule.Dfa, "dfa")];

    public static readonly IReadOnlyList<(OptimizerKind Value, string Word)> Optimizers =
        [(OptimizerKind.AdamW, "adamw"), (OptimizerKind.Sgd, "sgd"), (OptimizerKind.SgdMomentum, "momentum")];

    public static readonly IReadOnlyList<(AttentionKernel Value, string Word)> AttentionKernels =
        [(AttentionKernel.Sdpa, "sdpa"), (AttentionKernel.Eager, "eager")];

    public static TrainingMethod Method(string word, InputText? field = null) => Parse(Methods, word, field ?? TrainParameters.Method, "a training method",
        InputText.When(word.Trim().Equals("qlora", StringComparison.OrdinalIgnoreCase), "QLoRA's NF4 kernels need CUDA: use lora on the CPU."));

    public static LearningRule Rule(string word, InputText? field = null) => Parse(Rules, word, field ?? TrainParameters.Rule, "a learning rule",
        InputText.When(word.Trim().Equals("es-direct", StringComparison.OrdinalIgnoreCase), $"Direct (MeZO-style) ES is {TrainParameters.Rule} es {TrainParameters.Optimizer} sgd."));

    public static OptimizerKind Optimizer(string word, InputText? field = null) => Parse(Optimizers, word, field ?? TrainParameters.Optimizer, "an optimizer the CPU trainer has", null);

    public static AttentionKernel Attention(string word, InputText? field = null) => Parse(AttentionKernels, word, field ?? TrainParameters.Attention, "an attention kernel the CPU trainer has", null);

    public static string Word(TrainingMethod m) => WordOf(Methods, m);
    public static string Word(LearningRule r) => WordOf(Rules, r);
    public static string Word(OptimizerKind o) => WordOf(Optimizers, o);
    public static string Word(AttentionKernel a) => WordOf(AttentionKernels, a);

    /// <summary>The planner's rule for a run: <c>es</c> with <c>sgd</c> is the MeZO-style direct update.</summary>
    public static LearningRule PlannerRule(LearningRule rule, OptimizerKind optimizer) =>
        rule == LearningRule.Es && optimizer == OptimizerKind.Sgd ? LearningRule.EsDirect : rule;

    private static T Parse<T>(IReadOnlyList<(T Value, string Word)> words, string text, InputText field, string what, InputText? hint) where T : struct, Enum
    {
        var w = text.Trim();
        foreach (var (value, word) in words)
            if (word.Equals(w, StringComparison.OrdinalIgnoreCase)) return value;
        throw new InputError(field, $"\"{TerminalText.Escape(text)}\" is not {what}", hint ?? $"Use one of: {string.Join(", ", words.Select(x => x.Word))}.");
    }

    private static string WordOf<T>(IReadOnlyList<(T Value, string Word)> words, T value) where T : struct, Enum
    {
        foreach (var (v, word) in words)
            if (EqualityComparer<T>.Default.Equals(v, value)) return word;
        throw new ArgumentOutOfRangeException(nameof(value), value, $"the CPU trainer has no {typeof(T).Name} {value}");
    }

    /// <summary>Reads and writes the words above in <c>run-config.json</c>; a word it does not know names the field.</summary>
    internal sealed class WordConverter<T>(IReadOnlyList<(T Value, string Word)> words, Func<string, InputText?, T> parse, InputText field) : JsonConverter<T>
        where T : struct, Enum
    {
        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.String
                ? parse(reader.GetString()!, field)
                : throw new InputError(field, $"must be a string ({string.Join(", ", words.Select(x => x.Word))})", "Restore the run's run-config.json.");

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(WordOf(words, value));
    }

    internal static IEnumerable<JsonConverter> Converters() =>
    [
        new WordConverter<TrainingMethod>(Methods, Method, "run-config.json method"),
        new WordConverter<LearningRule>(Rules, Rule, "run-config.json rule"),
        new WordConverter<OptimizerKind>(Optimizers, Optimizer, "run-config.json optimizer"),
        new WordConverter<AttentionKernel>(AttentionKernels, Attention, "run-config.json attention"),
    ];
}
