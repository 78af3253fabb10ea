namespace Afinado.Planner.Export;

/// <summary>One generated file: a suggested name, its full text, and the assumptions behind it (also written into it where the format allows comments).</summary>
public sealed record ExportedFile(string FileName, string Content, IReadOnlyList<string> Assumptions);
