// libtorch's RNG seed, thread count and autograd mode are process-global: test classes that seed and build models
// in parallel would perturb each other (seen: a flaky checkpointing-equality test). Run this assembly's tests serially.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
