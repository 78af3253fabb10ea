using System.Text.Json.Nodes;
using Afinado.Training.Checkpoints;
using Afinado.Training.IO;
using static TorchSharp.torch;

namespace Afinado.Training.Tests;

/// <summary>
/// The checkpoint store never trusts what is on disk: every damaged pointer or folder is skipped with a reason and the
/// newest intact checkpoint is found. Fast: one 2×3 "model" tensor, no training.
/// </summary>
public sealed class CheckpointStoreTests : IDisposable
{
    private const string Run = "run-a";
    private readonly string runDir = Directory.CreateTempSubdirectory("afinado-ckpt-").FullName;
    private readonly CheckpointStore store;
    private readonly CheckpointExpectation expect;
    private readonly string rng;

    public CheckpointStoreTests()
    {
        store = new CheckpointStore(runDir, Run);
        using var state = random.get_rng_state();
        rng = Convert.ToBase64String(state.bytes.ToArray());
        expect = new CheckpointExpectation(10, new Dictionary<string, TensorSpec> { ["w"] = new(ScalarType.Float32, [2, 3]) }, state.shape[0]);
        Save(store, 2);
        Save(store, 4);
    }

    public void Dispose() => Directory.Delete(runDir, true);

    private void Save(CheckpointStore s, long step, Tensor? weights = null)
    {
        using var w = weights ?? full(2, 3, (float)step);
        using var m = zeros(2, 3);
        using var n = tensor(step);
        s.Save(new CheckpointState { Step = step, TorchRngState = rng }, new Dictionary<string, Tensor> { ["w"] = w },
            new Dictionary<string, Tensor> { ["exp_avg/w"] = m, ["step"] = n });
    }

    private string Step(long step) => Path.Combine(store.Root, $"step-{step:D8}");

    /// <summary>Stands for a writer that produced consistent files with wrong content: re-records the checksums.</summary>
    private void Reseal(long step) => CheckpointChecksums.Write(Step(step), step, Run);

    private void EditState(long step, Action<JsonObject> edit)
    {
        var path = Path.Combine(Step(step), "state.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
        Reseal(step);
    }

    private void WriteTrainable(long step, Dictionary<string, Tensor> tensors)
    {
        using (var fs = File.Create(Path.Combine(Step(step), "trainable.safetensors"))) SafeTensors.Write(fs, tensors);
        Reseal(step);
    }

    /// <summary>Asserts step-4 was skipped for <paramref name="reason"/> and step-2 was found instead.</summary>
    private void AssertFallsBackToStep2(string reason)
    {
        var search = store.FindNewestIntact(expect);
        using (search.Found)
        {
            Assert.NotNull(search.Found);
            Assert.Equal(2, search.Found.State.Step);
            Assert.Equal(Step(2), search.Found.Dir);
            Assert.Equal(2f, search.Found.Trainable["w"][0, 0].item<float>());
            Assert.Contains(search.Problems, p => p.Contains(reason, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Intact_latest_is_found_with_nothing_skipped()
    {
        var search = store.FindNewestIntact(expect);
        using (search.Found)
        {
            Assert.Equal(4, search.Found!.State.Step);
            Assert.Empty(search.Problems);
            Assert.True(File.Exists(Path.Combine(Step(4), CheckpointChecksums.FileName)));
        }
    }

    [Theory]
    [InlineData("step-00000009", "step-00000009 (named by latest) does not exist")]
    [InlineData("garbage \u0001 text", "latest pointer holds \"garbage")]
    [InlineData("", "latest pointer is empty")]
    [InlineData("../../elsewhere/checkpoints/step-00000004", "not a step-NNNNNNNN folder")]
    public void Bad_latest_pointer_falls_back_to_the_newest_intact_step(string pointer, string reason)
    {
        Directory.Delete(Step(4), true); // so a pointer problem cannot be masked by step-4 itself
        File.WriteAllText(Path.Combine(store.Root, "latest"), pointer);
        AssertFallsBackToStep2(reason);
    }

    [Fact]
    public void Deleted_latest_pointer_falls_back_to_the_newest_step_folder()
    {
        File.Delete(Path.Combine(store.Root, "latest"));
        var search = store.FindNewestIntact(expect);
        using (search.Found)
        {
            Assert.Equal(4, search.Found!.State.Step);
            Assert.Contains("latest pointer is missing", search.Problems);
        }
    }

    [Fact]
    public void Latest_pointing_at_another_runs_checkpoint_by_absolute_path_is_not_followed()
    {
        var other = Directory.CreateTempSubdirectory("afinado-other-").FullName;
        try
        {
            Save(new CheckpointStore(other, Run), 8); // same run identity and shapes: only the pointer rule stops it
            File.WriteAllText(Path.Combine(store.Root, "latest"), Path.Combine(other, "checkpoints", "step-00000008"));
            var search = store.FindNewestIntact(expect);
            using (search.Found)
            {
                Assert.Equal(Step(4), search.Found!.Dir);
                Assert.Contains(search.Problems, p => p.Contains("not a step-NNNNNNNN folder", StringComparison.Ordinal));
            }
        }
        finally { Directory.Delete(other, true); }
    }

    [Fact]
    public void Missing_checkpoints_folder_finds_nothing_and_no_debris()
    {
        Directory.Delete(store.Root, true);
        var search = store.FindNewestIntact(expect);
        Assert.Null(search.Found);
        Assert.False(search.HasDebris);
    }

    [Fact]
    public void Bit_flip_in_trainable_tensors_is_caught_by_the_checksum()
    {
        var path = Path.Combine(Step(4), "trainable.safetensors");
        var bytes = File.ReadAllBytes(path);
        bytes[^3] ^= 0x10; // inside the float data: the file still parses, only the checksum can tell
        File.WriteAllBytes(path, bytes);
        AssertFallsBackToStep2("trainable.safetensors does not match its SHA-256");
    }

    [Fact]
    public void Truncated_optimizer_state_is_caught()
    {
        var path = Path.Combine(Step(4), "optimizer.safetensors");
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..20]);
        AssertFallsBackToStep2("optimizer.safetensors has 20 bytes");
    }

    [Fact]
    public void Missing_checksums_file_is_damage()
    {
        File.Delete(Path.Combine(Step(4), CheckpointChecksums.FileName));
        AssertFallsBackToStep2("has no checksums.json");
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(-5)]
    public void State_step_outside_the_run_is_damage(long step)
    {
        EditState(4, s => s["step"] = step);
        AssertFallsBackToStep2($"state.json says step {step}, outside this run's 0..10");
    }

    [Fact]
    public void State_step_that_disagrees_with_the_folder_is_damage()
    {
        EditState(4, s => s["step"] = 3);
        AssertFallsBackToStep2("state.json says step 3, the folder is step-00000004");
    }

    [Fact]
    public void Missing_state_json_is_damage()
    {
        File.Delete(Path.Combine(Step(4), "state.json"));
        AssertFallsBackToStep2("state.json is missing");
    }

    [Fact]
    public void Invalid_state_json_is_damage_not_a_crash()
    {
        File.WriteAllText(Path.Combine(Step(4), "state.json"), "{\"step\": \"four\"");
        Reseal(4);
        AssertFallsBackToStep2("state.json is not valid");
    }

    [Fact]
    public void Rng_state_of_the_wrong_length_is_damage_not_a_native_abort()
    {
        EditState(4, s => s["torch_rng_state"] = Convert.ToBase64String(new byte[16]));
        AssertFallsBackToStep2("torch_rng_state has 16 bytes");
    }

    [Fact]
    public void Renamed_trainable_tensor_is_damage()
    {
        using var w = full(2, 3, 4f);
        WriteTrainable(4, new Dictionary<string, Tensor> { ["w_renamed"] = w });
        AssertFallsBackToStep2("trainable.safetensors lacks w");
    }

    [Fact]
    public void Trainable_tensor_of_the_wrong_shape_is_damage()
    {
        using var w = full(3, 2, 4f);
        WriteTrainable(4, new Dictionary<string, Tensor> { ["w"] = w });
        AssertFallsBackToStep2("holds w as Float32 [3,2], the model needs Float32 [2,3]");
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void Non_finite_weights_are_damage(float bad)
    {
        using var w = full(2, 3, 4f);
        using (var element = w[1, 2]) element.fill_(bad);
        WriteTrainable(4, new Dictionary<string, Tensor> { ["w"] = w });
        AssertFallsBackToStep2("trainable.safetensors holds NaN or infinite values in w");
    }

    [Fact]
    public void Checkpoint_of_another_run_is_damage()
    {
        Directory.Delete(Step(4), true);
        Save(new CheckpointStore(runDir, "run-b"), 4); // a foreign checkpoint copied into this run's folder
        AssertFallsBackToStep2("belongs to another run");
    }

    [Fact]
    public void All_damaged_finds_nothing_but_reports_debris_and_every_reason()
    {
        foreach (var s in new long[] { 2, 4 }) File.Delete(Path.Combine(Step(s), "state.json"));
        var search = store.FindNewestIntact(expect);
        Assert.Null(search.Found);
        Assert.True(search.HasDebris);
        Assert.Equal(["step-00000004 state.json is missing", "step-00000002 state.json is missing"], search.Problems);
    }

    [Fact]
    public void Saving_after_a_fallback_drops_the_abandoned_newer_folder_and_keeps_two_good_ones()
    {
        File.Delete(Path.Combine(Step(4), "state.json"));
        Save(store, 3);
        Assert.Equal(["step-00000002", "step-00000003"], Directory.GetDirectories(store.Root).Select(Path.GetFileName).Order());
        Assert.Equal("step-00000003", File.ReadAllText(Path.Combine(store.Root, "latest")));
    }

    [Fact]
    public void Failed_save_leaves_the_previous_checkpoint_intact_and_no_partial_folder()
    {
        using var w = full(2, 3, 6f);
        using var disposed = zeros(1);
        disposed.Dispose(); // writing a disposed tensor throws midway, like a full disk
        Assert.ThrowsAny<Exception>(() => store.Save(new CheckpointState { Step = 6, TorchRngState = rng },
            new Dictionary<string, Tensor> { ["w"] = w }, new Dictionary<string, Tensor> { ["exp_avg/w"] = disposed }));
        Assert.Equal(["step-00000002", "step-00000004"], Directory.GetDirectories(store.Root).Select(Path.GetFileName).Order());
        var search = store.FindNewestIntact(expect);
        using (search.Found) Assert.Equal(4, search.Found!.State.Step);
    }
}
