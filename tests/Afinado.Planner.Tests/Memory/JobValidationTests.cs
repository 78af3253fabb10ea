using Afinado.Planner.Fit;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests.Memory;

public class JobValidationTests
{
    public static TheoryData<Job, InputParameter> BadJobs => new()
    {
        { new Job { Batch = 0 }, JobParameters.Batch },
        { new Job { Seq = -5 }, JobParameters.Seq },
        { new Job { Seq = Job.MaxSeq + 1 }, JobParameters.Seq },
        { new Job { Dropout = 1.5 }, JobParameters.Dropout },
        { new Job { GradAccumulation = 0 }, JobParameters.GradAccumulation },
        { new Job { Context = 4096 }, JobParameters.Context },
        { new Job { Task = JobTask.Infer, Seq = 4096, Context = 100 }, JobParameters.Context },
        { new Job { Method = TrainingMethod.Full, WeightsDtype = DType.Nf4 }, JobParameters.WeightsDtype },
        { new Job { Method = TrainingMethod.QLora, WeightsDtype = DType.Bf16 }, JobParameters.WeightsDtype },
        { new Job { Method = TrainingMethod.Full, Precision = Precision.Bf16, WeightsDtype = DType.Fp32 }, JobParameters.WeightsDtype },
        { new Job { Task = JobTask.Infer, KvDtype = DType.Nf4 }, JobParameters.KvDtype },
        { new Job { OffloadActivations = true }, JobParameters.OffloadActivations },
        { new Job { OptimizerInBackward = true, GradAccumulation = 4 }, JobParameters.OptimizerInBackward },
        { new Job { Rule = LearningRule.Es, LossChunks = 8 }, JobParameters.LossChunks },
        { new Job { Rule = LearningRule.Dfa, Checkpointing = Checkpointing.Full }, JobParameters.Checkpointing },
        // A setting of the other task, rule or base would be ignored without a word.
        { new Job { KvDtype = DType.Fp8 }, JobParameters.KvDtype },
        { new Job { KvCache = KvCacheKind.Static }, JobParameters.KvCache },
        { new Job { Task = JobTask.Infer, Checkpointing = Checkpointing.Full }, JobParameters.Checkpointing },
        { new Job { Task = JobTask.Infer, Optimizer = OptimizerKind.AdamW8bit }, JobParameters.Optimizer },
        { new Job { Task = JobTask.Infer, GradAccumulation = 4 }, JobParameters.GradAccumulation },
        { new Job { Task = JobTask.Infer, LossChunks = 8 }, JobParameters.LossChunks },
        { new Job { Task = JobTask.Infer, Compile = true }, JobParameters.Compile },
        { new Job { Task = JobTask.Infer, FusedOptimizer = true }, JobParameters.FusedOptimizer },
        { new Job { GuidedEsSubspace = 4 }, JobParameters.GuidedEsSubspace },
        { new Job { QuantLibrary = QuantLibrary.TorchAo }, JobParameters.QuantLibrary },
    };

    [Fact]
    public void Each_setting_is_accepted_where_it_applies()
    {
        new Job { Task = JobTask.Infer, KvDtype = DType.Fp8, KvCache = KvCacheKind.Static }.Validate();
        new Job { Checkpointing = Checkpointing.Full, Optimizer = OptimizerKind.AdamW8bit, GradAccumulation = 4, LossChunks = 8, Compile = true, FusedOptimizer = true }.Validate();
        new Job { Rule = LearningRule.GuidedEs, GuidedEsSubspace = 4 }.Validate();
        new Job { Method = TrainingMethod.QLora, QuantLibrary = QuantLibrary.TorchAo }.Validate();
    }

    [Theory]
    [MemberData(nameof(BadJobs))]
    public void Bad_jobs_name_the_parameter(Job job, InputParameter parameter)
    {
        var e = Assert.Throws<InputError>(job.Validate);
        Assert.Equal(parameter, e.Parameter);
    }

    [Fact]
    public void Cpu_needs_fp32_and_cannot_mix_with_gpus()
    {
        var arch = Llama2_7B;
        Assert.Equal(JobParameters.Precision, Assert.Throws<InputError>(() => Plan(arch, new Job(), Device.Cpu())).Parameter);
        Assert.Equal(PlanParameters.Gpu, Assert.Throws<InputError>(() => Plan(arch, new Job { Precision = Precision.Fp32 }, Device.Cpu(), GpuCatalog.Get("h100"))).Parameter);
    }

    [Theory]
    [InlineData("24GiB", 24L * 1024 * 1024 * 1024)]
    [InlineData("24GB", 24_000_000_000L)]
    [InlineData("16000 MiB", 16000L * 1024 * 1024)]
    [InlineData("1.5TB", 1_500_000_000_000L)]
    public void Sizes_accept_GB_and_GiB(string text, long bytes) => Assert.Equal(bytes, ByteSize.Parse(text, PlanParameters.GpuMemory));

    [Theory]
    [InlineData("24")]
    [InlineData("twenty GiB")]
    [InlineData("-24GiB")]
    [InlineData("1KB")]
    [InlineData("9999999TB")]
    public void Bad_sizes_are_input_errors(string text) => Assert.Equal(PlanParameters.GpuMemory, Assert.Throws<InputError>(() => ByteSize.Parse(text, PlanParameters.GpuMemory)).Parameter);

    [Fact]
    public void Unknown_gpu_lists_the_catalog()
    {
        var e = Assert.Throws<InputError>(() => GpuCatalog.Get("gtx970"));
        Assert.Contains("h100", e.Message);
        Assert.Contains(PlanParameters.GpuMemory.Name, e.Message);
    }
}
