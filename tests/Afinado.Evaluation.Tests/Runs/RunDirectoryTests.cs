using Afinado.Evaluation;
using Afinado.Evaluation.Runs;
using Afinado.Planner;

namespace Afinado.Evaluation.Tests.Runs;

public sealed class RunDirectoryTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("afinado-runs-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    internal static string Hash(char c) => new(c, 64);

    internal static string ManifestJson(string baseHash, string baseName = "fashion-mlp-base") => $$"""
        {
          "schema": "afinado.manifest/1",
          "base_weights": [ { "path": "{{baseName}}", "sha256": "{{baseHash}}", "bytes": 100 } ],
          "output_weights": [ { "path": "finetuned.safetensors", "sha256": "{{Hash('b')}}", "bytes": 100 } ],
          "data_files": [ { "path": "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "sha256": "{{Hash('c')}}", "bytes": 100 } ],
          "data_sha256": "{{Hash('e')}}",
          "config_sha256": "{{Hash('d')}}",
          "created_utc": "2026-11-26T00:00:00Z",
          "code_version": "9191967",
          "seed": 1,
          "some_field_training_adds_later": 3
        }
        """;

    private string Run(string name, string? manifest)
    {
        var dir = Path.Combine(_root, name);
        Directory.CreateDirectory(dir);
        if (manifest is not null) File.WriteAllText(Path.Combine(dir, RunDirectory.ManifestFile), manifest);
        return dir;
    }

    [Fact]
    public void A_valid_manifest_is_read_and_keys_results()
    {
        var run = RunDirectory.Open(Run("ok", ManifestJson(Hash('a'))));
        Assert.Equal(Hash('a'), run.Manifest.BaseSha256);
        Assert.Equal(1, run.Manifest.Seed);
        Assert.Null(run.Summary);
        var key = PinnedIdentity.ResultKey(run.Manifest);
        Assert.Equal(16, key.Length);
        var other = RunDirectory.Open(Run("ok2", ManifestJson(Hash('a')).Replace("\"seed\": 1", "\"seed\": 2")));
        Assert.NotEqual(key, PinnedIdentity.ResultKey(other.Manifest));
    }

    [Fact]
    public void Missing_run_dir_is_input_error()
    {
        var e = Assert.Throws<InputError>(() => RunDirectory.Open(Path.Combine(_root, "nope")));
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void Run_dir_without_manifest_is_input_error()
    {
        var e = Assert.Throws<InputError>(() => RunDirectory.Open(Run("empty", null)));
        Assert.Contains("manifest.json", e.Message);
    }

    [Theory]
    [InlineData("{ \"schema\": \"afinado.manifest/1\", \"base_weights\": ", "corrupt or incomplete")]
    [InlineData("not json at all", "corrupt or incomplete")]
    [InlineData("{ \"schema\": \"afinado.manifest/1\" }", "corrupt or incomplete")] // required fields missing
    [InlineData("{ \"schema\": \"other/9\", \"base_weights\": [{\"path\":\"x\",\"sha256\":\"x\",\"bytes\":1}], \"data_files\": [], \"data_sha256\": \"x\", \"config_sha256\": \"x\", \"code_version\": \"x\", \"seed\": 1, \"created_utc\": \"x\" }", "expected 'afinado.manifest/1'")]
    [InlineData("{ \"schema\": \"afinado.manifest/1\", \"base_weights\": {\"name\":\"x\",\"sha256\":\"x\"}, \"data\": [] }", "corrupt or incomplete")] // the pre-integration Evaluation shape
    public void Corrupt_manifest_is_input_error_naming_the_file(string text, string expected)
    {
        var dir = Run("corrupt", text);
        var e = Assert.Throws<InputError>(() => RunDirectory.Open(dir));
        Assert.Contains("manifest.json", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void A_name_where_a_hash_belongs_is_input_error()
    {
        var e = Assert.Throws<InputError>(() => RunDirectory.Open(Run("name", ManifestJson("meta-llama/Llama-3.1-8B"))));
        Assert.Contains("base_weights[0].sha256", e.Message);
    }

    [Fact]
    public void Different_bases_are_refused_unless_allowed_and_then_flagged()
    {
        var a = RunDirectory.Open(Run("a", ManifestJson(Hash('a'))));
        var b = RunDirectory.Open(Run("b", ManifestJson(Hash('e'))));
        var same = RunDirectory.Open(Run("c", ManifestJson(Hash('a'))));
        Assert.Empty(PinnedIdentity.CheckSameBase([a, same], allowDifferentBase: false));
        var e = Assert.Throws<InputError>(() => PinnedIdentity.CheckSameBase([a, b], allowDifferentBase: false));
        Assert.Equal(EvalParameters.AllowDifferentBase, e.Parameter);
        var warnings = PinnedIdentity.CheckSameBase([a, b], allowDifferentBase: true);
        Assert.Single(warnings);
        Assert.StartsWith("DIFFERENT BASE", warnings[0]);
    }

    [Fact]
    public void A_mutable_model_name_is_refused_unless_its_hash_is_recorded()
    {
        var e = Assert.Throws<InputError>(() => PinnedIdentity.PinModel("meta-llama/Llama-3.1-8B", null, []));
        Assert.Contains("mutable name", e.Message);
        var run = RunDirectory.Open(Run("m", ManifestJson(Hash('a'), "meta-llama/Llama-3.1-8B")));
        Assert.Equal(Hash('a'), PinnedIdentity.PinModel("meta-llama/Llama-3.1-8B", null, [run.Manifest]).Sha256);
        Assert.Equal(Hash('f'), PinnedIdentity.PinModel("meta-llama/Llama-3.1-8B", Hash('f'), []).Sha256);
        var file = Path.Combine(_root, "w.bin");
        File.WriteAllText(file, "abc");
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", PinnedIdentity.PinModel(file, null, []).Sha256);
        Assert.Throws<InputError>(() => PinnedIdentity.PinModel(file, Hash('a'), []));
    }

    [Theory]
    [InlineData("/dev/zero")]
    [InlineData("fifo")]
    public async Task Pinned_base_weights_that_are_a_device_or_fifo_are_refused_not_hashed_forever(string target)
    {
        var weights = Path.Combine(_root, "base.safetensors");
        if (target == "fifo") Assert.Equal(0, Mono.Unix.Native.Syscall.mkfifo(weights, Mono.Unix.Native.FilePermissions.S_IRUSR | Mono.Unix.Native.FilePermissions.S_IWUSR));
        else File.CreateSymbolicLink(weights, target);
        var manifest = RunDirectory.Open(Run("pinned", ManifestJson(Hash('a'), weights))).Manifest;
        // On a background task: a regression blocks on the FIFO or hashes /dev/zero forever, and must fail, not hang.
        var verify = Task.Run(() => PinnedIdentity.VerifyBaseWeights(manifest, "--run"));
        Assert.True(await Task.WhenAny(verify, Task.Delay(TimeSpan.FromSeconds(60))) == verify, "hashing did not return within 60 s");
        var e = await Assert.ThrowsAsync<InputError>(() => verify);
        Assert.Contains("base.safetensors", e.Message);
        Assert.Contains(target == "fifo" ? "named pipe" : "character device", e.Message);
    }
}
