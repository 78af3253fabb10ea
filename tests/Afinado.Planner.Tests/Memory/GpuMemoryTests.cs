using Afinado.Planner.Fit;
using Afinado.Planner.Devices;

namespace Afinado.Planner.Tests.Memory;

public class GpuMemoryTests
{
    [Fact]
    public void A_size_in_GB_is_a_card_sold_as_that_size_with_the_catalogs_usable_share()
    {
        var d = GpuMemory.Parse("80GB");
        Assert.Equal(80 * ByteSize.GiB, d.NominalBytes, precision: 0);
        // The H100 80GB reports 79.14 GiB usable: a card "sold as 80 GB" read this way lands within 1 % of it.
        Assert.InRange(d.CapacityBytes / (double)GpuCatalog.Get("h100").CapacityBytes, 0.99, 1.01);
        Assert.Contains("sold as 80 GB", d.Interpretation);
        Assert.Contains("GiB usable", d.Interpretation);
    }

    [Fact]
    public void A_size_in_GB_names_the_cards_with_ECC_on_whose_share_is_lower()
    {
        // An L40S sold as 48 GB reports 44.42 GiB: "48GB" read with the median share is 2.6 GiB more than it holds.
        var d = GpuMemory.Parse("48GB");
        var l40s = GpuCatalog.Get("l40s");
        Assert.True(d.CapacityBytes - l40s.CapacityBytes > 2 * ByteSize.GiB);
        Assert.Contains("ECC on", d.Interpretation);
        Assert.Contains("l40s", d.Interpretation);
        Assert.Contains("t4", d.Interpretation);
        Assert.DoesNotContain("rtx-a6000", d.Interpretation);
        Assert.DoesNotContain("ECC", GpuMemory.Parse("44.42GiB").Interpretation);
    }

    [Theory]
    [InlineData("3060", "rtx3060")]
    [InlineData("RTX 5060 Ti", "rtx5060ti-16gb")]
    [InlineData("a6000", "rtx-a6000")]
    [InlineData("rtx6000_ada", "rtx6000-ada")]
    [InlineData("RTX-PRO-6000", "rtx-pro-6000")]
    [InlineData("H100-SXM", "h100")]
    [InlineData("RTX 4090", "rtx4090")]
    [InlineData("RTX 6000 Ada", "rtx6000-ada")]
    [InlineData("H100 SXM", "h100")]
    [InlineData("RTX PRO 6000", "rtx-pro-6000")]
    public void Cards_are_found_by_the_names_people_write(string written, string id) =>
        Assert.Equal(id, GpuCatalog.Get(written).Id);

    [Fact]
    public void A_size_in_GiB_is_exact_usable_memory()
    {
        var d = GpuMemory.Parse("44.7GiB");
        Assert.Equal((long)(44.7 * ByteSize.GiB), d.CapacityBytes);
        Assert.Contains("usable memory", d.Interpretation);
    }

    [Fact]
    public void Forty_eight_GB_no_longer_means_44_7_GiB()
    {
        // Issue 14: "--gpu-memory 48GB" used to mean 48e9 B = 44.7 GiB, enough to flip a 70B QLoRA verdict.
        Assert.True(GpuMemory.Parse("48GB").CapacityBytes > 46.5 * ByteSize.GiB);
    }

    [Fact]
    public void The_usable_ratio_comes_from_the_catalog_and_is_below_one()
    {
        Assert.InRange(GpuMemory.UsableRatio, 0.95, 0.999);
    }

    [Theory]
    [InlineData("48")]
    [InlineData("lots")]
    public void Bad_sizes_name_the_flag(string text) =>
        Assert.Equal(PlanParameters.GpuMemory, Assert.Throws<InputError>(() => GpuMemory.Parse(text)).Parameter);

    [Theory]
    [InlineData("48TB", "48GB")]
    [InlineData("80TiB", "80GiB")]
    [InlineData("3000GB", "48GB or 80GB")]
    public void More_memory_than_one_GPU_carries_is_refused_with_the_likely_size(string text, string suggested)
    {
        // A plan against 48 TB says "fits" for anything: the likely typo is refused, the fix names the size meant.
        var e = Assert.Throws<InputError>(() => GpuMemory.Parse(text));
        Assert.Equal(PlanParameters.GpuMemory, e.Parameter);
        Assert.Contains("more memory than one GPU carries", e.Message);
        Assert.Contains(suggested, e.Fix);
    }

    [Theory]
    [InlineData("2TB")]
    [InlineData("1.5TiB")]
    [InlineData("288GB")]
    public void The_largest_cards_people_plan_for_are_accepted(string text) =>
        Assert.True(GpuMemory.Parse(text).CapacityBytes > 0);
}
