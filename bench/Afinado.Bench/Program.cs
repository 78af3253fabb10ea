using BenchmarkDotNet.Running;

if (args is ["quick"]) Afinado.Bench.Quick.Run();
else BenchmarkSwitcher.FromAssembly(typeof(Afinado.Bench.PlannerBenchmarks).Assembly).Run(args);
