using System.CommandLine;
using System.Globalization;
using Sd35.Hosting;
using Sd35.Mesh;
using Sd35.Mesh.Tracing;
using Sd35.Perf.Harness;
using Sd35.Pipeline;

namespace Sd35.Perf;

/// <summary>
/// <c>trace-overhead [config…] [--repeat N]</c>: what the step trace costs, per denoising step, on the tiny reference
/// components (64², 4 guided steps). Each round runs an untraced generation and a traced one on a fresh trace, in
/// alternating order (so a drift in the load falls on both): the traced generation's first step captures (every op
/// and collective of every device, with shapes), its later steps are checked against the capture. Prints the median
/// step seconds of the capture step against the untraced first step, and of the checked steps against the untraced
/// later steps, with the load average.
/// </summary>
public static class TraceOverhead
{
    public static Command Command()
    {
        var configs = PerfOptions.ParallelConfigs("Parallel config ids.", "n150_cfg1_sp1_tp1", "n300_cfg1_sp1_tp2", "t3k_cfg2_sp2_tp2", "tg_cfg2_sp4_tp4");
        var repeat = PerfOptions.Repeat(7, "rounds per config (an untraced and a traced generation each)");
        var command = new Command("trace-overhead", "What the step trace costs per denoising step, on the tiny reference components.") { configs, repeat };
        command.SetAction(r => Run(r.GetValue(configs)!, r.GetValue(repeat)));
        return command;
    }

    public static void Run(IReadOnlyList<string> configs, int rounds)
    {
        var components = PipelineComponents.From(ModelSource.BuiltIn);
        var request = new GenerationRequest { Prompt = PerfPrompts.Timed(0), Steps = 4, GuidanceScale = 3.5, Seed = 0, Width = 64, Height = 64, MaxSequenceLength = 32 };
        Console.WriteLine($"load average before: {MachineFacts.LoadAverage()}; {rounds} rounds per config; median seconds per step");
        Console.WriteLine("| config | untraced step 1 | capture step | ratio | untraced steps 2–4 | checked steps 2–4 | ratio |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var id in configs)
        {
            var config = ParallelConfig.Parse(id);
            // Sd35.Perf's Program set up the process already: left as it is.
            var settings = new PipelineSettings { Parallel = config, Process = ProcessSetup.HostAsIs };
            var untraced = PipelineFactory.Create(settings, components);
            IReadOnlyList<double> Steps(StableDiffusion3Pipeline pipeline)
            {
                using var result = pipeline.Generate(request);
                return result.Timings.StepSeconds.ToArray();
            }
            StableDiffusion3Pipeline Traced() => PipelineFactory.Create(settings with { Trace = new StepTrace() }, components);
            Steps(untraced);
            Steps(Traced());
            var (plainFirst, plainLater, capture, checkedLater) = (new List<double>(), new List<double>(), new List<double>(), new List<double>());
            for (int r = 0; r < rounds; r++)
            {
                IReadOnlyList<double> plain, traced;
                if (r % 2 == 0) (plain, traced) = (Steps(untraced), Steps(Traced()));
                else (traced, plain) = (Steps(Traced()), Steps(untraced));
                plainFirst.Add(plain[0]);
                plainLater.AddRange(plain.Skip(1));
                capture.Add(traced[0]);
                checkedLater.AddRange(traced.Skip(1));
            }
            double Median(List<double> xs) => SampleStatistics.MedianOf(xs.ToArray());
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {id} | {Median(plainFirst):F4} | {Median(capture):F4} | {Median(capture) / Median(plainFirst):F2} | {Median(plainLater):F4} | {Median(checkedLater):F4} | {Median(checkedLater) / Median(plainLater):F2} |"));
        }
        Console.WriteLine($"load average after: {MachineFacts.LoadAverage()}");
    }
}
