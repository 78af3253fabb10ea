using System.Text;
using Afinado.Evaluation.Tasks;
using Afinado.Planner;
using Xunit.Abstractions;

namespace Afinado.Cli.Tests.Fuzz;

/// <summary>
/// Issue 15's corpus (about 10,700 cases in all, see <see cref="HostileCorpus"/>), run through the command line
/// in-process. Each test covers one family and lists every failing case with its command line, so a regression names
/// its reproducer. The sizes are part of the guarantee README states; change them there too.
/// </summary>
[Collection("hostile corpus")]
public class HostileCorpusTests(ITestOutputHelper log)
{
    private async Task Expect(string family, IEnumerable<HostileCase> cases, int atLeast)
    {
        var o = await CorpusRunner.Run(cases);
        log.WriteLine($"{family}: {o.Cases} cases, exits {string.Join(", ", o.ByExit.Select(kv => $"{kv.Key}: {kv.Value}"))}, {o.Failures.Count} failures");
        foreach (var f in o.Failures.Take(200)) log.WriteLine(f);
        Assert.True(o.Cases >= atLeast, $"{family}: only {o.Cases} cases generated");
        Assert.True(o.Failures.Count == 0, $"{family}: {o.Failures.Count} of {o.Cases} cases failed, first ones:\n{string.Join("\n", o.Failures.Take(15))}");
    }

    [Fact]
    public Task Plan_flags_at_their_edges() => Expect("plan flags", HostileCorpus.PlanFlags(combinations: 2500), 3100);

    [Fact]
    public Task Plan_with_mutated_configs() => Expect("plan configs", HostileCorpus.PlanConfigs(2000), 2000);

    [Fact]
    public Task Inspect_damaged_safetensors() => Expect("safetensors", HostileCorpus.Safetensors(2000), 2000);

    [Fact]
    public Task Inspect_damaged_indexes() => Expect("indexes", HostileCorpus.Indexes(300), 300);

    [Fact]
    public Task Special_files_and_odd_paths_for_every_file_flag() => Expect("special paths", HostileCorpus.SpecialPaths(), 90);

    [Fact]
    public Task Train_options_at_their_edges() => Expect("train options", HostileCorpus.TrainOptions(), 250);

    [Fact]
    public Task Train_with_hostile_data() => Expect("train data", HostileCorpus.TrainData(300), 300);

    [Fact]
    public Task Calibration_with_hostile_predictions() => Expect("predictions", HostileCorpus.Predictions(1500), 1500);

    /// <summary>A run folder damaged in every file it holds, then resumed: exit 0 (resumed from an intact checkpoint, which
    /// it names) or 2 (none intact), never a silent restart or a crash.</summary>
    [Fact]
    public async Task Resume_from_damaged_run_folders()
    {
        var work = Directory.CreateTempSubdirectory("afinado-goodrun-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(work, "tiny.json"), HostileCorpus.TinyConfig);
            File.WriteAllText(Path.Combine(work, "text.txt"), HostileCorpus.TinyText);
            var good = Path.Combine(work, "run");
            var (code, _, err) = await CliRun.Run("train", "--model", Path.Combine(work, "tiny.json"), "--data", Path.Combine(work, "text.txt"),
                "--tokenizer", "byte", "--seq", "8", "--batch", "2", "--max-steps", "3", "--eval-every", "1", "--eval-batches", "1",
                "--checkpoint-every", "1", "--threads", "1", "--out", good);
            Assert.True(code == 0, err);
            await Expect("checkpoints", HostileCorpus.Checkpoints(good, 200), 200);
        }
        finally { Directory.Delete(work, true); }
    }

    /// <summary>Task files are checked before an experiment starts; a valid mutation would start a long experiment, so
    /// the reader itself is fuzzed here: it returns tasks or raises an input error naming the file, nothing else.</summary>
    [Fact]
    public void Task_files_read_or_raise_input_errors()
    {
        var rng = new Random(15_007);
        string[] bodies =
        [
            """{"schema":"afinado.tasks/1","tasks":[{"name":"a","role":"target","kind":"classification","classes":[5,6]},{"name":"b","role":"retained","kind":"classification","classes":[0,1]}]}""",
            """{"schema":"afinado.tasks/1","tasks":[{"name":"a","role":"target","kind":"language_modelling","text":"/usr/share/games/fortunes/science"},{"name":"b","role":"retained","kind":"language_modelling","text":"/nonexistent"}]}""",
        ];
        string[] inserts = ["\"x\\ud800\"", "1e999", "null", "[]", "{}", "-1", "9223372036854775808", "\"\\u001b[2J\"", "\"../../etc/passwd\"", "true", "\"\""];
        var dir = Directory.CreateTempSubdirectory("afinado-tasks-").FullName;
        var failures = new List<string>();
        int read = 0, rejected = 0;
        try
        {
            var path = Path.Combine(dir, "tasks.json");
            for (int i = 0; i < 1000; i++)
            {
                string body = bodies[rng.Next(bodies.Length)];
                body = rng.Next(4) switch
                {
                    0 => body[..rng.Next(body.Length)],
                    1 => ReplaceValue(body, inserts[rng.Next(inserts.Length)], rng),
                    2 => body.Replace("\"name\":\"a\"", "\"name\":\"a\",\"name\":\"b\"", StringComparison.Ordinal),
                    _ => ReplaceValue(ReplaceValue(body, inserts[rng.Next(inserts.Length)], rng), inserts[rng.Next(inserts.Length)], rng),
                };
                File.WriteAllText(path, body);
                try { TaskFile.Read(path); read++; }
                catch (InputError e) when (!string.IsNullOrWhiteSpace(e.Field)) { rejected++; }
                catch (Exception e) { failures.Add($"{e.GetType().Name}: {e.Message}\n    {body}"); }
            }
        }
        finally { Directory.Delete(dir, true); }
        log.WriteLine($"task files: 1000 cases, {read} read, {rejected} rejected, {failures.Count} failures");
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(10)));
    }

    /// <summary>Replaces one JSON value (after a random colon) with <paramref name="value"/>.</summary>
    private static string ReplaceValue(string json, string value, Random rng)
    {
        var colons = Enumerable.Range(0, json.Length).Where(i => json[i] == ':').ToList();
        if (colons.Count == 0) return json;
        int at = colons[rng.Next(colons.Count)] + 1;
        int end = at;
        int depth = 0;
        for (; end < json.Length; end++)
        {
            char c = json[end];
            if (c is '[' or '{') depth++;
            else if (c is ']' or '}') { if (depth == 0) break; depth--; }
            else if (c == ',' && depth == 0) break;
        }
        return new StringBuilder(json).Remove(at, end - at).Insert(at, value).ToString();
    }
}

/// <summary>The corpus trains tiny models in-process: run it alone, not beside other in-process runs whose measured
/// peaks (the process's resident high-water mark) and libtorch settings (threads, seeds) it would disturb.</summary>
[CollectionDefinition("hostile corpus", DisableParallelization = true)]
public class HostileCorpusCollection;
