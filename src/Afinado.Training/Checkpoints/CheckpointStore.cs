using System.Text.Json;
using System.Text.RegularExpressions;
using Afinado.Training.IO;
using Afinado.Training.Loop;
using static TorchSharp.torch;
using Afinado.Planner;
using Afinado.Planner.Inputs;

namespace Afinado.Training.Checkpoints;

/// <summary>
/// Checkpoints under <c>RUN_DIR/checkpoints/step-NNNNNNNN/</c>: <c>trainable.safetensors</c> (the trainable tensors,
/// Hugging Face / PEFT names), <c>optimizer.safetensors</c> (optimizer and rule state), <c>state.json</c>, and
/// <c>checksums.json</c> (SHA-256 of the three, the step and the run's identity).
/// A checkpoint is written to a temporary folder, every file fsync'ed, the folder renamed into place and the parent
/// fsync'ed; only then is the <c>latest</c> pointer replaced atomically. A crash at any moment leaves the previous
/// checkpoint intact and pointed to. The newest two checkpoints are kept. Reading never trusts the folder: see
/// <see cref="FindNewestIntact"/>.
/// </summary>
public sealed partial class CheckpointStore
{
    private const string Latest = "latest";
    private readonly string root;
    private readonly string? run;

    /// <param name="run">The run's identity, recorded in every checkpoint and required when reading (null: not checked).</param>
    public CheckpointStore(string runDir, string? run = null) => (root, this.run) = (Path.Combine(Path.GetFullPath(runDir), "checkpoints"), run);

    public string Root => root;

    /// <summary>Only a folder name of this exact form may be followed from <c>latest</c>: no separators, no <c>..</c>, no absolute path.</summary>
    [GeneratedRegex(@"^step-[0-9]{8}$")]
    private static partial Regex StepName();

    public void Save(CheckpointState state, IReadOnlyDictionary<string, Tensor> trainable, IReadOnlyDictionary<string, Tensor> optimizerState)
    {
        Directory.CreateDirectory(root);
        var name = $"step-{state.Step:D8}";
        var final = Path.Combine(root, name);
        var tmp = Path.Combine(root, $".{name}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(tmp);
            WriteSynced(Path.Combine(tmp, "trainable.safetensors"), s => SafeTensors.Write(s, trainable, new Dictionary<string, string> { ["format"] = "pt" }));
            WriteSynced(Path.Combine(tmp, "optimizer.safetensors"), s => SafeTensors.Write(s, optimizerState));
            WriteSynced(Path.Combine(tmp, "state.json"), s => JsonSerializer.Serialize(s, state, TrainConfig.Json));
            CheckpointChecksums.Write(tmp, state.Step, run); // last: a folder with valid checksums is complete
            AtomicFile.SyncDirectory(tmp);
        }
        catch
        {
            // Disk full or similar: the previous checkpoint and the pointer are untouched; drop the partial copy.
            try { Directory.Delete(tmp, true); } catch (IOException) { }
            throw;
        }
        if (Directory.Exists(final)) Directory.Delete(final, recursive: true); // same step saved again after a resume
        Directory.Move(tmp, final);
        AtomicFile.SyncDirectory(root);
        AtomicFile.WriteAllText(Path.Combine(root, Latest), name);
        Prune(state.Step);
    }

    /// <summary>
    /// The checkpoint to resume from: the one <c>latest</c> names if it passes every check, else the newest
    /// <c>step-*</c> folder that does. <see cref="CheckpointSearch.Problems"/> says what was skipped and why.
    /// </summary>
    public CheckpointSearch FindNewestIntact(CheckpointExpectation expect)
    {
        var problems = new List<string>();
        if (!Directory.Exists(root)) return new CheckpointSearch(null, problems, HasDebris: false);
        var candidates = new List<string>();
        var pointer = Path.Combine(root, Latest);
        if (!File.Exists(pointer)) problems.Add($"{Latest} pointer is missing");
        else if (ReadPointer(pointer, problems) is { } text)
        {
            if (StepName().IsMatch(text)) candidates.Add(text);
            else problems.Add(text.Length == 0 ? $"{Latest} pointer is empty"
                : $"{Latest} pointer holds \"{(text.Length > 80 ? text[..80] + "…" : text)}\", not a step-NNNNNNNN folder of this run");
        }
        candidates.AddRange(Directory.GetDirectories(root).Select(Path.GetFileName).OfType<string>()
            .Where(n => StepName().IsMatch(n)).Order(StringComparer.Ordinal).Reverse());
        foreach (var name in candidates.Distinct())
        {
            var dir = Path.Combine(root, name);
            if (!Directory.Exists(dir))
            {
                problems.Add($"{name} (named by {Latest}) does not exist");
                continue;
            }
            try { return new CheckpointSearch(Read(dir, expect), problems, HasDebris: true); }
            catch (CheckpointDamagedException e) { problems.Add($"{name} {e.Message}"); }
        }
        return new CheckpointSearch(null, problems, HasDebris: Directory.EnumerateFileSystemEntries(root).Any());
    }

    /// <summary>The pointer's text (a regular file, small, UTF-8), or null with the problem recorded.</summary>
    private static string? ReadPointer(string pointer, List<string> problems)
    {
        try { return InputFile.ReadAllText(pointer, InputKind.RunFile).Trim(); }
        catch (InputError e)
        {
            problems.Add($"{Latest} pointer {e.Problem}");
            return null;
        }
    }

    /// <summary>Reads one checkpoint folder, verifying checksums, the run, ranges and tensors; throws <see cref="CheckpointDamagedException"/>.</summary>
    public Checkpoint Read(string dir, CheckpointExpectation expect)
    {
        if (new DirectoryInfo(dir).LinkTarget is not null) throw new CheckpointDamagedException("is a symbolic link, not a folder of this run");
        var sums = CheckpointChecksums.Verify(dir, run);
        if (Path.GetFileName(dir) != $"step-{sums.Step:D8}")
            throw new CheckpointDamagedException($"{CheckpointChecksums.FileName} is for step {sums.Step}");
        CheckpointState state;
        state = CheckpointChecksums.ReadJson<CheckpointState>(Path.Combine(dir, "state.json"));
        var trainable = ReadTensors(dir, "trainable.safetensors");
        Dictionary<string, Tensor>? optimizer = null;
        try
        {
            optimizer = ReadTensors(dir, "optimizer.safetensors");
            expect.Check(state, trainable, optimizer);
            if (Path.GetFileName(dir) != $"step-{state.Step:D8}" || sums.Step != state.Step)
                throw new CheckpointDamagedException($"state.json says step {state.Step}, the folder is {Path.GetFileName(dir)}");
            return new Checkpoint(dir, state, trainable, optimizer);
        }
        catch (CheckpointDamagedException)
        {
            foreach (var t in trainable.Values.Concat(optimizer?.Values.AsEnumerable() ?? [])) t.Dispose();
            throw;
        }
    }

    private static Dictionary<string, Tensor> ReadTensors(string dir, string file)
    {
        try { return SafeTensors.Read(Path.Combine(dir, file)); }
        catch (Exception e) when (e is InvalidDataException or InputError or IOException)
        {
            throw new CheckpointDamagedException($"{file} cannot be read ({e.Message})");
        }
    }

    /// <summary>Keeps the saved step and the one before it. Newer folders are dropped: after a resume from an older
    /// checkpoint they belong to the abandoned (damaged) timeline and would otherwise crowd out good ones.</summary>
    private void Prune(long saved)
    {
        foreach (var d in Directory.GetDirectories(root, ".step-*.tmp-*"))
            if (!d.Contains($".tmp-{Environment.ProcessId}-", StringComparison.Ordinal)) Directory.Delete(d, true); // debris of killed runs
        var steps = Directory.GetDirectories(root, "step-*").Where(d => StepName().IsMatch(Path.GetFileName(d)))
            .Select(d => (Dir: d, Step: long.Parse(Path.GetFileName(d)[5..]))).OrderByDescending(x => x.Step).ToList();
        var keep = steps.Where(x => x.Step <= saved).Take(2).Select(x => x.Dir).ToHashSet();
        foreach (var (d, _) in steps) if (!keep.Contains(d)) Directory.Delete(d, recursive: true);
    }

    private static void WriteSynced(string path, Action<Stream> write)
    {
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        write(fs);
        fs.Flush(flushToDisk: true);
    }
}
