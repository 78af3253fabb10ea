using System.Text.Json;
using Afinado.Training.IO;
using Afinado.Training.Loop;
using static TorchSharp.torch;

namespace Afinado.Training.Checkpoints;

/// <summary>
/// Checkpoints under <c>RUN_DIR/checkpoints/step-NNNNNNNN/</c>: <c>trainable.safetensors</c> (the trainable tensors,
/// Hugging Face / PEFT names), <c>optimizer.safetensors</c> (optimizer and rule state), <c>state.json</c>.
/// A checkpoint is written to a temporary folder, every file fsync'ed, the folder renamed into place and the parent
/// fsync'ed; only then is the <c>latest</c> pointer replaced atomically. A crash at any moment leaves the previous
/// checkpoint intact and pointed to. The newest two checkpoints are kept.
/// </summary>
public sealed class CheckpointStore
{
    private const string Latest = "latest";
    private readonly string root;

    public CheckpointStore(string runDir) => root = Path.Combine(runDir, "checkpoints");

    public string Root => root;

    public void Save(CheckpointState state, IReadOnlyDictionary<string, Tensor> trainable, IReadOnlyDictionary<string, Tensor> optimizerState)
    {
        Directory.CreateDirectory(root);
        var name = $"step-{state.Step:D8}";
        var final = Path.Combine(root, name);
        var tmp = Path.Combine(root, $".{name}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        WriteSynced(Path.Combine(tmp, "trainable.safetensors"), s => SafeTensors.Write(s, trainable, new Dictionary<string, string> { ["format"] = "pt" }));
        WriteSynced(Path.Combine(tmp, "optimizer.safetensors"), s => SafeTensors.Write(s, optimizerState));
        WriteSynced(Path.Combine(tmp, "state.json"), s => JsonSerializer.Serialize(s, state, TrainConfig.Json));
        AtomicFile.SyncDirectory(tmp);
        if (Directory.Exists(final)) Directory.Delete(final, recursive: true); // same step saved again after a resume
        Directory.Move(tmp, final);
        AtomicFile.SyncDirectory(root);
        AtomicFile.WriteAllText(Path.Combine(root, Latest), name);
        Prune(keep: 2);
    }

    /// <summary>The latest complete checkpoint folder, or null when there is none.</summary>
    public string? LatestPath()
    {
        var pointer = Path.Combine(root, Latest);
        if (!File.Exists(pointer)) return null;
        var dir = Path.Combine(root, File.ReadAllText(pointer).Trim());
        return Directory.Exists(dir) ? dir : null;
    }

    public (CheckpointState State, Dictionary<string, Tensor> Trainable, Dictionary<string, Tensor> OptimizerState) Load(string dir)
    {
        var state = JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(Path.Combine(dir, "state.json")), TrainConfig.Json)!;
        return (state, SafeTensors.Read(Path.Combine(dir, "trainable.safetensors")), SafeTensors.Read(Path.Combine(dir, "optimizer.safetensors")));
    }

    private void Prune(int keep)
    {
        foreach (var d in Directory.GetDirectories(root, ".step-*.tmp-*"))
            if (!d.Contains($".tmp-{Environment.ProcessId}-", StringComparison.Ordinal)) Directory.Delete(d, true); // debris of killed runs
        var all = Directory.GetDirectories(root, "step-*").Order(StringComparer.Ordinal).ToList();
        foreach (var d in all.Take(Math.Max(0, all.Count - keep))) Directory.Delete(d, recursive: true);
    }

    private static void WriteSynced(string path, Action<Stream> write)
    {
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        write(fs);
        fs.Flush(flushToDisk: true);
    }
}
