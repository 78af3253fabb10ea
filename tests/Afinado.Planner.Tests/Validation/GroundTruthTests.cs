using System.Globalization;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;
using Afinado.Planner.Selection;
using Afinado.Planner.Validation;

namespace Afinado.Planner.Tests.Validation;

/// <summary>
/// The planner's validation harness without the CLI: ground-truth CSVs read, rows predicted through the plan_args parser
/// the caller gives (here a fake that maps plan_args to fixed jobs, where the CLI gives the flags of afinado plan),
/// compared and summarised, and written as afinado.validate/1.
/// </summary>
public class GroundTruthTests
{
    /// <summary>For files without plan_args (measure.py CSVs, a header-only published.csv): any call fails the test.</summary>
    internal static readonly PlanArgsParser NoPlanArgs = (planArgs, where) =>
        throw new InvalidOperationException($"{where}: plan_args \"{planArgs}\" read where none were expected");

    private const string Model = "meta-llama/Llama-3.2-1B";

    private static Job Lora(int seq) => new() { Method = TrainingMethod.Lora, Lora = new LoraConfig(), Batch = 2, Seq = seq };

    private static double Peak(Job job) => Fit.Planner.Create(ModelCatalog.Get(Model), job, [], suggestFixes: false).Ledger.PeakBytes;

    /// <summary>A single-GPU row's inputs; a GPU row's ledger does not depend on the card, so its devices must not be read.</summary>
    private sealed class FixedPlanArgs(Job job) : IPlanArgs
    {
        public string Model => GroundTruthTests.Model;
        public Job Job() => job;
        public bool OnCpu => false;
        public IReadOnlyList<Device> Devices() => throw new InvalidOperationException("devices read for a GPU row");
        public bool MultiGpu => false;
        public ParallelLayout Layout() => throw new InvalidOperationException("layout read for a single-GPU row");
    }

    [Fact]
    public void Published_rows_are_predicted_through_the_given_parser_then_compared_and_summarised()
    {
        var jobs = new Dictionary<string, Job> { ["--seq 1024"] = Lora(1024), ["--seq 2048"] = Lora(2048) };
        var calls = new List<(string PlanArgs, string Where)>();
        IPlanArgs Parse(string planArgs, string where)
        {
            calls.Add((planArgs, where));
            return new FixedPlanArgs(jobs[planArgs]);
        }
        double short1024 = Peak(jobs["--seq 1024"]), long2048 = Peak(jobs["--seq 2048"]);
        string Bytes(double b) => b.ToString("R", CultureInfo.InvariantCulture);
        var dir = Directory.CreateTempSubdirectory("afinado-gt");
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "published.csv"),
                "id,scope,metric,measured_bytes,tolerance,plan_args,note\r\n" +
                $"under,single-gpu,allocated,{Bytes(short1024 / 1.02)},0.05,--seq 1024,\"predicted 2 % over, \"\"within\"\"\"\r\n" +
                $"over,single-gpu,allocated,{Bytes(long2048 / 0.90)},0.05,--seq 2048,a miss\r\n" +
                "ref,reference,allocated,1,,--seq 4096,never predicted\r\n" +
                $"unmet,unmet,allocated,{Bytes(short1024 / 1.5)},0.05,--seq 1024,\"predicted, not asserted\"\r\n");
            var published = Assert.Single(GroundTruth.Validate(dir.FullName, Parse));

            // The parser sees each in-scope row's plan_args with the row named for its errors; a reference row is not read.
            Assert.Equal([("--seq 1024", "published.csv:under"), ("--seq 2048", "published.csv:over"), ("--seq 1024", "published.csv:unmet")], calls);
            var rows = published.Rows.ToDictionary(r => r.Id);
            Assert.Equal(short1024, rows["under"].PredictedBytes);
            Assert.Equal(long2048, rows["over"].PredictedBytes);
            Assert.Null(rows["ref"].PredictedBytes);
            Assert.Equal("predicted 2 % over, \"within\"", rows["under"].Note);
            Assert.Equal(0.02, rows["under"].RelativeError!.Value, 1e-9);
            Assert.Equal(-0.10, rows["over"].RelativeError!.Value, 1e-9);
            Assert.True(rows["under"].WithinTolerance);
            Assert.False(rows["over"].WithinTolerance);
            Assert.False(rows["unmet"].Asserted);

            // Asserted: under (2 %) and over (10 %); all predicted adds the unmet row (50 %).
            Assert.Equal(2, published.Predicted);
            Assert.Equal(0.06, published.MedianAbsError!.Value, 1e-9);
            Assert.Equal(0.10, published.WorstAbsError!.Value, 1e-9);
            Assert.Equal(1, published.Failures);
            Assert.Equal(3, published.AllPredicted);
            Assert.Equal(0.10, published.MedianAbsErrorAllPredicted!.Value, 1e-9);
            Assert.Equal(0.50, published.WorstAbsErrorAllPredicted!.Value, 1e-9);
        }
        finally { dir.Delete(recursive: true); }
    }

    [Fact]
    public void Csv_text_reads_quotes_doubled_quotes_and_line_breaks_inside_fields_and_names_a_short_line()
    {
        var rows = Csv.ReadText("id,Note\r\na,\"one, two\"\r\nb,\"say \"\"hi\"\"\nthen go\"\n\n", "mem.csv");
        Assert.Equal(2, rows.Count);
        Assert.Equal("one, two", rows[0]["note"]);
        Assert.Equal("say \"hi\"\nthen go", rows[1]["NOTE"]);
        var error = Assert.Throws<InputError>(() => Csv.ReadText("id,note\na,1\nb\n", "/tmp/short.csv"));
        Assert.Equal("short.csv line 3", error.Field);
        Assert.Equal("has 1 fields, the header has 2", error.Problem);
        Assert.Throws<InputError>(() => Csv.ReadText("", "empty.csv"));
    }

    [Fact]
    public void Validate_json_is_the_afinado_validate_1_contract_byte_for_byte()
    {
        var source = new ValidationSource("gpu-test", "/somewhere/gpu-test.csv",
        [
            new ValidationRow("a", "gpu", "allocated", 100, 110, 0.10, "peak + 10 % → ok"),
            new ValidationRow("b", "dry-run", "allocated", null, null, null, "not ground truth"),
            new ValidationRow("c", "gpu", "allocated", 300, 240, 0.10, "a miss"),
            // Predicted, not asserted, and not finite: written as null, and the worst over all predicted rows with it.
            new ValidationRow("d", "unmet", "reserved", 100, double.PositiveInfinity, null, "diverged"),
        ]);
        string expected = """
            {
              "schema": "afinado.validate/1",
              "sources": [
                {
                  "name": "gpu-test",
                  "file": "gpu-test.csv",
                  "rows_asserted": 2,
                  "median_abs_error": 0.15,
                  "worst_abs_error": 0.2,
                  "misses": 1,
                  "median_abs_error_measured_rows": 0.15,
                  "rows_predicted_all": 3,
                  "median_abs_error_all_predicted": 0.2,
                  "worst_abs_error_all_predicted": null,
                  "rows": [
                    {
                      "id": "a",
                      "scope": "gpu",
                      "metric": "allocated",
                      "predicted": 110,
                      "measured": 100,
                      "relative_error": 0.1,
                      "tolerance": 0.1,
                      "asserted": true,
                      "within_tolerance": true,
                      "note": "peak \u002B 10 % \u2192 ok"
                    },
                    {
                      "id": "b",
                      "scope": "dry-run",
                      "metric": "allocated",
                      "predicted": null,
                      "measured": null,
                      "relative_error": null,
                      "tolerance": null,
                      "asserted": false,
                      "within_tolerance": false,
                      "note": "not ground truth"
                    },
                    {
                      "id": "c",
                      "scope": "gpu",
                      "metric": "allocated",
                      "predicted": 240,
                      "measured": 300,
                      "relative_error": -0.2,
                      "tolerance": 0.1,
                      "asserted": true,
                      "within_tolerance": false,
                      "note": "a miss"
                    },
                    {
                      "id": "d",
                      "scope": "unmet",
                      "metric": "reserved",
                      "predicted": null,
                      "measured": 100,
                      "relative_error": null,
                      "tolerance": null,
                      "asserted": false,
                      "within_tolerance": false,
                      "note": "diverged"
                    }
                  ]
                }
              ]
            }
            """;
        Assert.Equal(expected.ReplaceLineEndings("\n"), ValidationJson.Serialize([source]).ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Published_csv_holds_every_measurement_of_memory_md_4_1_to_4_4()
    {
        var rows = Csv.Read(Path.Combine(GroundTruth.FindDirectory(null), "published.csv"));
        int Count(string section) => rows.Count(r => r["section"] == section);
        Assert.Equal(8, Count("4.1a"));   // 5 single-GPU + 3 multi-GPU Llama 3.1 rows
        Assert.Equal(10, Count("4.1b"));  // baseline + 7 cumulative flags + LoRA + QLoRA
        Assert.Equal(9, Count("4.1c"));   // 5 Alpaca rows + 4 earliest-README rows
        Assert.Equal(9, Count("4.2a"));   // 3 models × full / LoRA / LoRA+offload
        Assert.Equal(6, Count("4.2b"));  // 5 GPU rows + the CPU RAM of the QLoRA + FSDP offload run
        Assert.Equal(4, Count("4.3a"));
        Assert.Equal(4, Count("4.4"));
        Assert.Equal(9, Count("ext-aai")); // Answer.AI fsdp_qlora benchmarks_03_2024.md (FSDP1, 2x 24 GB)
        Assert.Equal(2, Count("ext-phil")); // Phil Schmid's Llama-3-70B FSDP1 QLoRA + offload notebook (4x A10G): GPU and CPU RAM
        Assert.All(rows, r =>
        {
            Assert.Contains(r["scope"], new[] { "single-gpu", "unmet", "multi-gpu", "unsupported", "reference" });
            Assert.False(string.IsNullOrWhiteSpace(r["note"]));
            Assert.False(string.IsNullOrWhiteSpace(r["metric"]));
            if (r["scope"] is "single-gpu" or "unmet") Assert.False(string.IsNullOrWhiteSpace(r["plan_args"]));
        });
        Assert.Equal(rows.Count, rows.Select(r => r["id"]).Distinct().Count());
    }
}

public class PublishedClaimBoundTests
{
    [Fact]
    public void A_claim_row_holds_when_the_predicted_total_stays_within_it_and_adds_no_error_to_the_medians()
    {
        var within = new ValidationRow("fits", "single-gpu", ValidationRow.FitsWithin, MeasuredBytes: 16e9, PredictedBytes: 15e9, Tolerance: null, Note: "");
        var over = within with { Id = "over", PredictedBytes = 17e9 };
        Assert.True(within.WithinTolerance);
        Assert.Equal(1e9, within.HeadroomBytes);
        Assert.False(over.WithinTolerance);
        Assert.Equal(-1e9, over.HeadroomBytes);
        Assert.Null(within.RelativeError);
        var measured = new ValidationRow("m", "single-gpu", "allocated", 100, 103, 0.05, "");
        var source = new ValidationSource("published", "published.csv", [within, over, measured]);
        Assert.Equal(1, source.Predicted);
        Assert.Equal(0.03, source.MedianAbsError!.Value, 9);
        Assert.Equal((2, 1, 1), (source.Bounds, source.BoundsMet, source.Failures));
    }
}
