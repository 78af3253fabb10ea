using Afinado.Planner;

namespace Afinado.Training.Chat;

/// <summary>
/// A Jinja template parsed once and rendered with Jinja2's semantics, within the subset chat templates use (see
/// <see cref="JinjaParser"/> and <see cref="JinjaInterpreter"/>). Syntax errors, runtime errors and
/// <c>raise_exception</c> are <see cref="InputError"/>s naming <see cref="Origin"/> and the template line.
/// </summary>
internal sealed class JinjaTemplate
{
    private const string SubsetFix =
        "Afinado renders chat templates with a Jinja2 subset (if/for/set/namespace, filters and tests chat templates use; no macros, includes or inheritance): fix the template, or give the text yourself.";

    private readonly List<Stmt> _body;

    private JinjaTemplate(List<Stmt> body, string origin)
    {
        _body = body;
        Origin = origin;
    }

    /// <summary>Where the template came from, as InputError's field (<c>FOLDER/tokenizer_config.json: chat_template</c>).</summary>
    public string Origin { get; }

    /// <summary>The clock <c>strftime_now</c> reads; tests fix it.</summary>
    public Func<DateTime> Now { get; set; } = () => DateTime.Now;

    public static JinjaTemplate Parse(string source, string origin)
    {
        try { return new JinjaTemplate(JinjaParser.Parse(source), origin); }
        catch (TemplateSyntaxError e)
        {
            throw new InputError(origin, $"template syntax error at line {e.Line}: {TerminalText.Escape(e.Message)}", SubsetFix, e);
        }
    }

    public string Render(IReadOnlyDictionary<string, object?> variables)
    {
        try { return JinjaInterpreter.Render(_body, variables, Now); }
        catch (TemplateRuntimeError e) when (e.RaisedByTemplate)
        {
            throw new InputError(Origin, $"the template refused the conversation (raise_exception at line {e.Line}: \"{TerminalText.Escape(e.Message)}\")",
                "Give messages in the form this model's chat template accepts (the quoted text is the template's own explanation).", e);
        }
        catch (TemplateRuntimeError e)
        {
            throw new InputError(Origin, $"rendering failed at line {e.Line}: {TerminalText.Escape(e.Message)}",
                "Check the messages against what the template expects (string contents, the roles it knows), or fix the template.", e);
        }
    }
}
