using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Sd35.Perf;

/// <summary>
/// The CI-scale job (few, long iterations: a block forward takes seconds; full JSON export for the report command),
/// and two columns: "of GEMM" (the primary figure: analytic GFLOP/s as a fraction of the GEMM baseline case's rate in
/// the same summary) and GFLOP/s. No column compares with the Python reference stack: its times were not measured in
/// the same sitting.
/// </summary>
public sealed class GflopsConfig : CiScaleConfig
{
    public GflopsConfig()
    {
        AddColumn(new WorkloadColumn("of GEMM", "analytic GFLOP/s ÷ the gemm case's GFLOP/s in this run (compare this between runs)",
            (summary, name, seconds) => GflopsOf(name, seconds) / GemmRate(summary)));
        AddColumn(new WorkloadColumn("GFLOP/s", "analytic FLOPs / mean time", (_, name, seconds) => GflopsOf(name, seconds)));
    }

    static double GflopsOf(string name, double seconds) => Workloads.CostOf(name).Flops / seconds / 1e9;

    static double GemmRate(Summary summary)
    {
        var gemm = summary.Reports.FirstOrDefault(r => r.BenchmarkCase.Parameters["Shape"] as string == "gemm");
        return gemm?.ResultStatistics is null ? double.NaN : GflopsOf("gemm", gemm.ResultStatistics.Mean / 1e9);
    }

    sealed class WorkloadColumn(string name, string legend, Func<Summary, string, double, double> value) : IColumn
    {
        public string Id => nameof(WorkloadColumn) + name;
        public string ColumnName => name;
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => legend;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            if (report?.ResultStatistics is null || benchmarkCase.Parameters["Shape"] is not string shape) return "NA";
            var v = value(summary, shape, report.ResultStatistics.Mean / 1e9);
            return double.IsNaN(v) ? "-" : v.ToString("F2");
        }
    }
}
