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
            var meter = new PeakMeter();
            meter.Start();
            long peakExpected;
            using (var a = ones(mib * 1024L * 1024 / 4 * 2 / 3))              // 2/3 of the size …
            using (var b = ones(mib * 1024L * 1024 / 4 / 3))                  // … plus 1/3, live together
                peakExpected = (a.numel() + b.numel()) * 4;
            using (var c = ones(mib * 1024L * 1024 / 4 / 2)) { }              // freed blocks must not add up
            Assert.True(meter.Available);
            double error = (meter.PeakBytes!.Value - peakExpected) / (double)peakExpected;
            Assert.InRange(error, -0.02, 0.02);
        }
    }
}
