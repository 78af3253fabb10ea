using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests.Memory;

public class MemoryCurveTests
{
    private static readonly Device[] Cards = [GpuCatalog.Get("t4"), GpuCatalog.Get("l4"), GpuCatalog.Get("a100-40gb"), GpuCatalog.Get("h100")];

    private static (MemoryCurve Curve, ModelProfile Profile) Curve(Job job, CurveRequest request, params Device[] devices)
    {
        var arch = Llama31_8B;
        var plan = Planner.Fit.Planner.Create(arch, job, devices.Length > 0 ? devices : Cards, curve: request, suggestFixes: false);
        return (plan.Curve!, ModelProfile.Create(plan.Selection));
    }

    public static TheoryData<string, bool> Sweeps => new()
    {
        { "seq", true }, { "batch", true }, { "seq", false }, { "batch", false },
    };

    [Theory]
    [MemberData(nameof(Sweeps))]
    public void Points_rise_and_each_device_fits_exactly_up_to_its_searched_largest(string parameter, bool training)
    {
        var job = training ? new Job { Checkpointing = Checkpointing.Full } : new Job { Task = JobTask.Infer, Batch = 8 };
        var (curve, profile) = Curve(job, new CurveRequest(parameter));
        Assert.Equal(Cards.Length, curve.Devices.Count);
        long previous = 0;
        foreach (var p in curve.Points)
        {
            Assert.True(p.AllocatedBytes <= p.ReservedBytes && p.ReservedBytes <= p.TotalBytes, $"{parameter} {p.Value}: allocated ≤ reserved ≤ total");
            Assert.True(p.AllocatedBytes >= previous, $"{parameter} {p.Value}: the tensors never shrink");
            previous = p.AllocatedBytes;
        }
        Assert.Equal(curve.Points.Select(p => p.Value).Order(), curve.Points.Select(p => p.Value));
        Assert.Equal(curve.Points.Count, curve.Points.Select(p => p.Value).Distinct().Count());
        for (int d = 0; d < Cards.Length; d++)
        {
            int largest = curve.Largest[d].Value;
            Assert.Equal(FitSearch.Largest(profile, job, Cards[d], DeviceKind.Gpu, parameter), largest);
            // The sampled verdicts agree with the search on both sides of the boundary.
            foreach (var p in curve.Points)
                Assert.True(p.Verdicts[d].Fits == p.Value <= largest, $"{Cards[d].Id} at {parameter} {p.Value}: fits {p.Verdicts[d].Fits}, largest {largest}");
        }
    }

    [Fact]
    public void Sampled_verdicts_are_the_plans_own_verdicts()
    {
        var job = new Job { Seq = 1024 };
        var (curve, _) = Curve(job, new CurveRequest("seq") { Points = [1024] });
        var plan = Planner.Fit.Planner.Create(Llama31_8B, job, Cards, suggestFixes: false);
        Assert.Equal(plan.Ledger.TotalBytes, curve.Points[0].TotalBytes);
        Assert.Equal(plan.Ledger.ReservedBytes, curve.Points[0].ReservedBytes);
        Assert.Equal(plan.Ledger.PeakBytes, curve.Points[0].AllocatedBytes);
        Assert.Equal(plan.Verdicts.Select(v => v.Fits), curve.Points[0].Fits);
    }

    [Fact]
    public void Largest_agrees_with_max()
    {
        foreach (var parameter in new[] { "seq", "batch" })
        {
            var plan = Planner.Fit.Planner.Create(Llama31_8B, new Job(), [GpuCatalog.Get("a100-80gb")], parameter, curve: new CurveRequest(parameter));
            Assert.Equal(plan.Search!.Value, plan.Curve!.Largest[0].Value);
        }
    }

    [Fact]
    public void Default_seq_points_double_from_128_to_max_position_embeddings()
    {
        var (curve, _) = Curve(new Job(), new CurveRequest("seq"));
        Assert.Equal([128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072], curve.Points.Select(p => p.Value));
        Assert.Equal(131072, curve.Limit);
        // Short-context models start lower so the curve still has 8 points; a limit off the doublings comes last.
        Assert.Equal([8, 16, 32, 64, 128, 256, 512, 1024], CurvePoints.Defaults(batch: false, limit: 1024, largestFitting: 0));
        Assert.Equal([128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 40960], CurvePoints.Defaults(batch: false, limit: 40960, largestFitting: 0));
    }

    [Fact]
    public void Default_batch_points_go_one_doubling_past_what_any_device_holds()
    {
        var (curve, _) = Curve(new Job { Seq = 512, Checkpointing = Checkpointing.Full }, new CurveRequest("batch"));
        int most = curve.Largest.Max(l => l.Value);
        Assert.True(most > 8);
        Assert.Equal(1, curve.Points[0].Value);
        Assert.True(curve.Points[^1].Value > most && curve.Points[^2].Value <= most);
        Assert.DoesNotContain(true, curve.Points[^1].Fits);
        Assert.Equal([1, 2, 4, 8], CurvePoints.Defaults(batch: true, limit: Job.MaxBatch, largestFitting: 0));
        Assert.Equal(Job.MaxBatch, CurvePoints.Defaults(batch: true, limit: Job.MaxBatch, largestFitting: Job.MaxBatch)[^1]);
    }

    [Fact]
    public void A_range_doubles_from_its_start_and_ends_on_its_end()
    {
        Assert.Equal([100, 200, 400, 800, 1000], CurvePoints.FromRange(100, 1000, 4096, "seq"));
        var (curve, _) = Curve(new Job(), new CurveRequest("seq") { Range = (256, 4096) }, GpuCatalog.Get("h100"));
        Assert.Equal([256, 512, 1024, 2048, 4096], curve.Points.Select(p => p.Value));
    }

    [Fact]
    public void Every_catalog_model_draws_a_seq_curve()
    {
        foreach (var id in ModelCatalog.Ids)
        {
            var arch = ModelCatalog.Get(id);
            var plan = Planner.Fit.Planner.Create(arch, new Job { Seq = 128 }, [GpuCatalog.Get("h100")], suggestFixes: false, curve: new CurveRequest("seq"));
            var points = plan.Curve!.Points;
            Assert.True(points.Count >= 8, $"{id}: {points.Count} points");
            Assert.Equal(Math.Min(Job.MaxSeq, arch.MaxPositionEmbeddings), points[^1].Value);
        }
    }

    [Theory]
    [InlineData("rank", null, "curve")]
    [InlineData("seq", "0,512", "curve_points")]
    [InlineData("seq", "1024,512", "curve_points")]
    [InlineData("seq", "512,512", "curve_points")]
    [InlineData("seq", "262144", "curve_points")]
    [InlineData("batch", "2000000", "curve_points")]
    public void Bad_values_name_their_parameter(string parameter, string? points, string named)
    {
        var request = new CurveRequest(parameter) { Points = points?.Split(',').Select(int.Parse).ToList() };
        var e = Assert.Throws<InputError>(() => Planner.Fit.Planner.Create(Llama31_8B, new Job(), Cards, curve: request));
        Assert.Equal(new InputParameter(named), e.Parameter);
    }

    [Theory]
    [InlineData(512, 256)]
    [InlineData(0, 256)]
    [InlineData(256, 262144)]
    public void Bad_ranges_name_the_range_flag(int from, int to)
    {
        var request = new CurveRequest("seq") { Range = (from, to) };
        Assert.Equal(PlanParameters.CurveRange, Assert.Throws<InputError>(() => Planner.Fit.Planner.Create(Llama31_8B, new Job(), Cards, curve: request)).Parameter);
    }

    [Fact]
    public void Too_many_points_are_refused()
    {
        var request = new CurveRequest("batch") { Points = Enumerable.Range(1, CurvePoints.MaxPoints + 1).ToList() };
        Assert.Equal(PlanParameters.CurvePoints, Assert.Throws<InputError>(() => Planner.Fit.Planner.Create(Llama31_8B, new Job(), Cards, curve: request)).Parameter);
    }
}
