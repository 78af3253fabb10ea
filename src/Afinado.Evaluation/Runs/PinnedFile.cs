namespace Afinado.Evaluation.Runs;

/// <summary>A model given on the command line, pinned by content: <c>Name</c> is for people (a path or a model id), <c>Sha256</c> is the identity.</summary>
public sealed record PinnedFile(string Name, string Sha256);
