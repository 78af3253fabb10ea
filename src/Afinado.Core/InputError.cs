namespace Afinado;

/// <summary>
/// Bad input from the user: a parameter, a config field, a file. The message names the field and says how to fix it.
/// Libraries name their own <see cref="InputParameter"/>s (<see cref="Exception.Message"/> shows their neutral names);
/// the CLI renders them as its flags through <see cref="Render"/>, and turns this into exit code 2 and a one-paragraph
/// message, never a stack trace.
/// </summary>
public sealed class InputError(InputText field, InputText problem, InputText fix, Exception? inner = null)
    : Exception(Compose(field, problem, fix, p => p.Name), inner)
{
    /// <summary>The field as text: a parameter's neutral name, a file, a model's config key (e.g. <c>config.json: num_attention_heads</c>).</summary>
    public string Field => FieldText.ToString();
    public string Problem => ProblemText.ToString();
    public string Fix => FixText.ToString();

    /// <summary>The parameter the problem is in, when the field is exactly one parameter.</summary>
    public InputParameter? Parameter => FieldText.AsParameter;

    public InputText FieldText { get; } = field;
    public InputText ProblemText { get; } = problem;
    public InputText FixText { get; } = fix;

    /// <summary>The message with each parameter named by <paramref name="name"/>: the CLI passes its flag map.</summary>
    public string Render(Func<InputParameter, string> name) => Compose(FieldText, ProblemText, FixText, name);

    private static string Compose(InputText field, InputText problem, InputText fix, Func<InputParameter, string> name) =>
        $"{field.Render(name)}: {problem.Render(name)}. {fix.Render(name)}";
}
