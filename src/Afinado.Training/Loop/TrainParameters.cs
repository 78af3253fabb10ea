namespace Afinado.Training.Loop;

/// <summary>
/// The keys of a <see cref="TrainConfig"/> as its JSON spells them (snake_case of the properties): what the trainer's errors
/// name; front ends render them their own way.
/// </summary>
public static class TrainParameters
{
    public static readonly InputParameter BaseModel = new("base_model");
    public static readonly InputParameter Data = new("data");
    public static readonly InputParameter Category = new("category");
    public static readonly InputParameter Tokenizer = new("tokenizer");
    public static readonly InputParameter SequenceLength = new("sequence_length");
    public static readonly InputParameter BatchSize = new("batch_size");
    public static readonly InputParameter GradientAccumulation = new("gradient_accumulation");
    public static readonly InputParameter MaxSteps = new("max_steps");
    public static readonly InputParameter Optimizer = new("optimizer");
    public static readonly InputParameter LearningRate = new("learning_rate");
    public static readonly InputParameter MinLearningRate = new("min_learning_rate");
    public static readonly InputParameter WarmupSteps = new("warmup_steps");
    public static readonly InputParameter WeightDecay = new("weight_decay");
    public static readonly InputParameter Momentum = new("momentum");
    public static readonly InputParameter ClipNorm = new("clip_norm");
    public static readonly InputParameter Method = new("method");
    public static readonly InputParameter Freeze = new("freeze");
    public static readonly InputParameter LoraRank = new("lora_rank");
    public static readonly InputParameter LoraAlpha = new("lora_alpha");
    public static readonly InputParameter LoraDropout = new("lora_dropout");
    public static readonly InputParameter LoraTargets = new("lora_targets");
    public static readonly InputParameter Rule = new("rule");
    public static readonly InputParameter EsPairs = new("es_pairs");
    public static readonly InputParameter EsSigma = new("es_sigma");
    public static readonly InputParameter EsRank = new("es_rank");
    public static readonly InputParameter Surrogate = new("surrogate");
    public static readonly InputParameter Attention = new("attention");
    public static readonly InputParameter GradientCheckpointing = new("gradient_checkpointing");
    public static readonly InputParameter Threads = new("threads");
    public static readonly InputParameter EvalEvery = new("eval_every");
    public static readonly InputParameter EvalBatches = new("eval_batches");
    public static readonly InputParameter CheckpointEvery = new("checkpoint_every");
    public static readonly InputParameter Seed = new("seed");
}
