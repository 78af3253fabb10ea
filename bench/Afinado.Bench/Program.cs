using BenchmarkDotNet.Running;

if (args is ["quick"]) Afinado.Bench.Quick.Run();
else if (args is ["profile", var part]) Afinado.Bench.Quick.Profile(part);
else if (args is ["plans"]) Afinado.Bench.PlanTimes.Run();
else if (args is ["tracehash"]) Afinado.Bench.TraceHashes.Run();
else BenchmarkSwitcher.FromAssembly(typeof(Afinado.Bench.PlannerBenchmarks).Assembly).Run(args);
