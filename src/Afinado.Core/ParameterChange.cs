namespace Afinado;

/// <summary>One parameter set to a value; a switch (a parameter that is on or off) has no value.</summary>
public readonly record struct Setting(InputParameter Parameter, string? Value = null);

/// <summary>
/// A change to a job that a library suggests (e.g. checkpointing full, seq 4096): typed settings, so each front end
/// renders them in its own words (the CLI as <c>--checkpointing full --seq 4096</c>).
/// </summary>
public sealed class ParameterChange(IReadOnlyList<Setting> settings) : IEquatable<ParameterChange>
{
    public ParameterChange(params Setting[] settings) : this((IReadOnlyList<Setting>)settings) { }

    public IReadOnlyList<Setting> Settings { get; } = settings;

    /// <summary>"NAME VALUE" for each setting, space-separated, each parameter named by <paramref name="name"/>.</summary>
    public string Render(Func<InputParameter, string> name) =>
        string.Join(' ', Settings.Select(s => s.Value is null ? name(s.Parameter) : $"{name(s.Parameter)} {s.Value}"));

    /// <summary>The change with each parameter under its neutral name.</summary>
    public override string ToString() => Render(p => p.Name);

    public bool Equals(ParameterChange? other) => other is not null && Settings.SequenceEqual(other.Settings);
    public override bool Equals(object? obj) => Equals(obj as ParameterChange);
    public override int GetHashCode() => Settings.Aggregate(0, (h, s) => HashCode.Combine(h, s));
}
