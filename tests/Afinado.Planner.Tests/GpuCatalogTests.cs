using Afinado.Planner.Fit;
using Afinado.Planner.Devices;

namespace Afinado.Planner.Tests;

public class GpuCatalogTests
{
    [Fact]
    public void Every_name_its_error_lists_is_accepted()
    {
        var e = Assert.Throws<InputError>(() => GpuCatalog.Get("no-such-card"));
        Assert.Equal(PlanParameters.Gpu, e.Parameter);
        var listed = e.Fix["Use one of: ".Length..e.Fix.IndexOf(';', StringComparison.Ordinal)].Split(", ");
        Assert.Contains("cpu", listed);
        foreach (var id in listed) Assert.NotNull(GpuCatalog.Get(id));
    }

    [Fact]
    public void Every_gpu_has_a_sourced_capacity_below_its_nominal_size_and_a_capability()
    {
        foreach (var g in GpuCatalog.All)
        {
            // Usable is what PyTorch reports (ECC and driver reservations removed): below the GiB on board, above 90 % of it.
            double onBoard = g.NominalBytes / 1e9 * ByteSize.GiB;
            Assert.InRange(g.CapacityBytes / onBoard, 0.90, 1.0);
            Assert.False(string.IsNullOrWhiteSpace(g.Source), g.Id);
            // NVIDIA cards carry their compute capability; the MI300X has none in that numbering.
            if (g.Id != "mi300x") Assert.NotNull(g.Capability);
            Assert.Equal(g.Id, GpuCatalog.Get(g.Id).Id);
        }
    }

    [Fact]
    public void Cpu_is_the_cpu_device()
    {
        var cpu = GpuCatalog.Get(" CPU ");
        Assert.True(cpu.IsCpu);
        Assert.Equal(DeviceKind.Cpu, cpu.Kind);
    }
}
