using System.Diagnostics;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Sd35.Demo;

/// <summary>
/// Progress over the pipeline's stages: on a terminal a live Spectre.Console bar with steps/s and ETA, closed before
/// anything else is written (also when the run fails); when output is redirected, one plain line per step.
/// </summary>
public static class DemoProgress
{
    /// <summary>Runs <paramref name="work"/>, which reports finished steps and stage changes to the reporter it is given.</summary>
    public static T Run<T>(IAnsiConsole console, bool live, int steps, Func<IStageProgress, T> work)
    {
        if (!live) return work(new PlainLines(console, steps));
        return console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new StepsColumn(steps), new StepsPerSecondColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(context => work(new LiveBar(context.AddTask("text encoding", maxValue: steps))));
    }

    sealed class LiveBar(ProgressTask task) : IStageProgress
    {
        public void Report(int done) => task.Value = done;
        public void Stage(string name) => task.Description = name;
    }

    sealed class PlainLines(IAnsiConsole console, int steps) : IStageProgress
    {
        readonly Stopwatch _clock = new();

        public void Stage(string name)
        {
            if (name == "denoising") _clock.Restart();
            console.Profile.Out.Writer.WriteLine(name);
        }

        public void Report(int done)
        {
            double rate = done / Math.Max(_clock.Elapsed.TotalSeconds, 1e-9);
            var eta = TimeSpan.FromSeconds(Math.Round((steps - done) / rate));
            console.Profile.Out.Writer.WriteLine($"denoising step {done}/{steps}  {rate:F2} steps/s  ETA {eta:hh\\:mm\\:ss}");
        }
    }

    sealed class StepsColumn(int steps) : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Text($"{(int)task.Value}/{steps}");
    }

    sealed class StepsPerSecondColumn : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Text(task.Speed is { } speed ? $"{speed:F2} steps/s" : "– steps/s");
    }
}

/// <summary>Finished denoising steps, and the stage now running (text encoding, denoising, vae decoding).</summary>
public interface IStageProgress : IProgress<int>
{
    void Stage(string name);
}
