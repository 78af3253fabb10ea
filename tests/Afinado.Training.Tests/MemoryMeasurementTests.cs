using Afinado.Training.Memory;
using static TorchSharp.torch;

namespace Afinado.Training.Tests;

/// <summary>
/// Tests that must run alone: memory peaks (other tests would add to them) and bit-exact runs (libtorch's global
/// generator is shared, so a parallel test drawing random numbers would change a run's dropout masks).
/// </summary>
[CollectionDefinition(nameof(SerialCollection), DisableParallelization = true)]
public class SerialCollection { }

/// <summary>Proves the peak-measurement method on allocations of known size (run alone: other tests would add to the peak).</summary>
[Collection(nameof(SerialCollection))]
public class MemoryMeasurementTests
{
    [Fact]
    public void Peak_meter_measures_known_tensor_allocations_within_two_percent()
    {
        using (var warm = ones(1024, 1024)) { } // fault in the allocator path once
        foreach (var mib in new[] { 48, 96 })
        {
            // The meter reads the process's resident high-water mark, which anything else in the process (the JIT, the
            // GC, the test host) can only raise: the smallest of three readings is the tensors' own peak. (One CI run in
            // four read +2.6 MiB over 48 MiB from such a neighbour, 2026-12-07.)
            long peakExpected = 0, peakMeasured = long.MaxValue;
            for (int attempt = 0; attempt < 3; attempt++)
            {
                var meter = new PeakMeter();
                meter.Start();
                using (var a = ones(mib * 1024L * 1024 / 4 * 2 / 3))          // 2/3 of the size …
                using (var b = ones(mib * 1024L * 1024 / 4 / 3))              // … plus 1/3, live together
                    peakExpected = (a.numel() + b.numel()) * 4;
                using (var c = ones(mib * 1024L * 1024 / 4 / 2)) { }          // freed blocks must not add up
                Assert.True(meter.Available);
                peakMeasured = Math.Min(peakMeasured, meter.PeakBytes!.Value);
            }
            double error = (peakMeasured - peakExpected) / (double)peakExpected;
            Assert.InRange(error, -0.02, 0.02);
        }
    }

    [Fact]
    public void Loading_weights_holds_one_tensor_beside_the_model_not_a_second_copy()
    {
        // A model of ~96 MiB whose largest tensor (the 48 MiB embedding, untied head alike) is half of it: loading it into
        // a built model may add that tensor, not the whole file (which would double the resident weights).
        string dir = Directory.CreateTempSubdirectory("afinado-load-").FullName;
        try
        {
            var arch = TinyConfigs.Parse("""
                {"model_type":"llama","vocab_size":24576,"hidden_size":512,"num_hidden_layers":1,"num_attention_heads":8,
                 "num_key_value_heads":8,"intermediate_size":512,"tie_word_embeddings":false,"max_position_embeddings":64}
                """);
            string file = Path.Combine(dir, "model.safetensors");
            using (var source = new Afinado.Training.Models.LlamaForCausalLM(arch)) Afinado.Training.IO.ModuleWeights.Save(source, file);
            using var model = new Afinado.Training.Models.LlamaForCausalLM(arch);
            long largest = model.parameters().Max(p => p.numel()) * 4, all = model.parameters().Sum(p => p.numel()) * 4;
            var meter = new PeakMeter();
            meter.Start();
            Afinado.Training.IO.ModuleWeights.Load(model, file);
            Assert.True(meter.Available);
            Assert.InRange(meter.PeakBytes!.Value, 0, largest + all / 8);
            Assert.True(all > 3 * largest / 2, "the whole file is well above one tensor, so a full copy would fail the bound");
        }
        finally { Directory.Delete(dir, true); }
    }
}
