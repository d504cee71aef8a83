using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Sd35.Perf;

/// <summary>Few, long iterations (a block forward takes seconds) plus GFLOP/s and speed-up-vs-reference columns.</summary>
public sealed class GflopsConfig : ManualConfig
{
    public GflopsConfig()
    {
        AddJob(Job.Default.WithWarmupCount(1).WithIterationCount(5).WithInvocationCount(1).WithUnrollFactor(1));
        AddColumn(new WorkloadColumn("GFLOP/s", (name, seconds) => Workloads.CostOf(name).Flops / seconds / 1e9));
        AddColumn(new WorkloadColumn("vs reference", (name, seconds) => Workloads.CostOf(name).ReferenceSeconds / seconds));
    }

    sealed class WorkloadColumn(string name, Func<string, double, double> value) : IColumn
    {
        public string Id => nameof(WorkloadColumn) + name;
        public string ColumnName => name;
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => name == "GFLOP/s" ? "analytic FLOPs / mean time" : "reference stack seconds / mean seconds";
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            if (report?.ResultStatistics is null) return "NA";
            var shape = (string)benchmarkCase.Parameters["Shape"];
            return value(shape, report.ResultStatistics.Mean / 1e9).ToString("F2");
        }
    }
}
