using System.Diagnostics;
using Afinado.Training.IO;
using Afinado.Training.Models;
using static TorchSharp.torch;

namespace Afinado.Training.Tests;

public class SafeTensorsTests
{
    [Fact]
    public void Model_weights_round_trip_through_safetensors()
    {
        var arch = TinyConfigs.Parse(TinyConfigs.GqaTied);
        manual_seed(5);
        using var a = new LlamaForCausalLM(arch);
        manual_seed(6);
        using var b = new LlamaForCausalLM(arch);
        var path = Path.Combine(Path.GetTempPath(), $"afinado-st-{Guid.NewGuid():N}.safetensors");
        try
        {
            ModuleWeights.Save(a, path);
            ModuleWeights.Load(b, path);
            foreach (var (name, p) in a.named_parameters())
                Assert.True(p.Equals(b.get_parameter(name)!), name);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Python_numpy_reads_what_we_write()
    {
        var path = Path.Combine(Path.GetTempPath(), $"afinado-np-{Guid.NewGuid():N}.safetensors");
        using var w = arange(0, 12, dtype: ScalarType.Float32).reshape(3, 4).mul(0.5);
        using var ids = tensor(new long[] { 7, -3, 1L << 40 });
        try
        {
            using (var fs = File.Create(path))
                SafeTensors.Write(fs, new Dictionary<string, Tensor> { ["model.layers.0.mlp.up_proj.weight"] = w, ["ids"] = ids },
                    new Dictionary<string, string> { ["format"] = "pt" });
            const string script = """
                import json, struct, sys, numpy as np
                raw = open(sys.argv[1], 'rb').read()
                n = struct.unpack('<Q', raw[:8])[0]
                hdr = json.loads(raw[8:8 + n]); data = raw[8 + n:]
                codes = {'F32': '<f4', 'I64': '<i8'}
                for name in sorted(k for k in hdr if k != '__metadata__'):
                    d = hdr[name]; s, e = d['data_offsets']
                    a = np.frombuffer(data[s:e], dtype=codes[d['dtype']]).reshape(d['shape'])
                    print(name, list(a.shape), repr(a.ravel().tolist()))
                print('format', hdr['__metadata__']['format'])
                """;
            // Debian's interpreter is the one python3-numpy installs into (a pyenv shim may come first on PATH).
            var psi = new ProcessStartInfo(File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(script);
            psi.ArgumentList.Add(path);
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEnd();
            var stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"python3 failed (CI installs python3-numpy): {stderr}");
            var lines = stdout.Trim().Split('\n');
            Assert.Equal($"ids [3] [7, -3, {1L << 40}]", lines[0]);
            Assert.Equal("model.layers.0.mlp.up_proj.weight [3, 4] [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5]", lines[1]);
            Assert.Equal("format pt", lines[2]);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Atomic_write_leaves_the_old_file_when_the_writer_fails()
    {
        var path = Path.Combine(Path.GetTempPath(), $"afinado-atomic-{Guid.NewGuid():N}.txt");
        try
        {
            AtomicFile.WriteAllText(path, "old");
            Assert.Throws<IOException>(() => AtomicFile.Write(path, s => { s.WriteByte(1); throw new IOException("disk full"); }));
            Assert.Equal("old", File.ReadAllText(path));
            Assert.Empty(Directory.GetFiles(Path.GetTempPath(), $".{Path.GetFileName(path)}.tmp-*"));
        }
        finally { File.Delete(path); }
    }

    [Theory]
    [InlineData("/dev/zero")]
    [InlineData("fifo")]
    public async Task Weights_that_are_a_device_or_fifo_are_refused_before_reading(string target)
    {
        var dir = Directory.CreateTempSubdirectory("afinado-st-hostile-").FullName;
        try
        {
            var path = Path.Combine(dir, "model.safetensors");
            if (target == "fifo") Assert.Equal(0, Mono.Unix.Native.Syscall.mkfifo(path, Mono.Unix.Native.FilePermissions.S_IRUSR | Mono.Unix.Native.FilePermissions.S_IWUSR));
            else File.CreateSymbolicLink(path, target);
            // On a background task: opening a FIFO blocks forever if the check regresses, and the test must fail, not hang.
            var read = Task.Run(() => SafeTensors.Read(path));
            // A hang guard, not a time limit: a check takes milliseconds, a blocked open never returns.
            Assert.True(await Task.WhenAny(read, Task.Delay(TimeSpan.FromMinutes(5))) == read, "reading did not return within 5 min");
            var e = await Assert.ThrowsAsync<InputError>(() => read);
            Assert.Contains("model.safetensors", e.Message);
            Assert.Contains(target == "fifo" ? "named pipe" : "character device", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
