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
    public void Cpu_is_the_cpu_device()
    {
        var cpu = GpuCatalog.Get(" CPU ");
        Assert.True(cpu.IsCpu);
        Assert.Equal(DeviceKind.Cpu, cpu.Kind);
    }
}
