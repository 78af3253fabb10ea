namespace Afinado.Training.Data;

/// <summary>One training document with where it came from. <see cref="Category"/> is the fortune file name (e.g.
/// <c>science</c>) or the user file name, so evaluations can hold out and score per category.</summary>
public sealed record TextDocument(string Text, string Language, string Category, string Source);

public enum DataSplit { Train, Validation }
