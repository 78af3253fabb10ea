namespace Afinado;

/// <summary>
/// A parameter a library takes: a <c>Job</c> property, a training config key, an API argument, named in the library's own
/// vocabulary (<c>precision</c>, <c>grad_accumulation</c>, <c>sequence_length</c>). Libraries declare each once, beside what it
/// describes, and name it in errors as a typed value; a front end renders it its own way (the CLI as a flag such as
/// <c>--precision</c>, a page as a form field), so no library speaks of the CLI's flags.
/// </summary>
public readonly record struct InputParameter(string Name)
{
    public override string ToString() => Name;
}
