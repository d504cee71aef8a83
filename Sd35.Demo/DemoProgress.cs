using System.Diagnostics;
using Sd35.Pipeline;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Sd35.Demo;

/// <summary>
/// Progress over the pipeline's stages, as an observer of the generation: on a terminal a live Spectre.Console bar
/// with the stage running, steps/s and ETA, closed before anything else is written (also when the run fails); when
/// output is redirected, one plain line per stage started and per step.
/// </summary>
public static class DemoProgress
{
    /// <summary>Runs <paramref name="work"/>, which passes the observer it is given to the generation.</summary>
    public static T Run<T>(IAnsiConsole console, bool live, int steps, Func<IGenerationObserver, T> work)
    {
        if (!live) return work(new PlainLines(console, steps));
        return console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new StepsColumn(steps), new StepsPerSecondColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(context => work(new LiveBar(context.AddTask(GenerationStage.TextEncoding.Label(), maxValue: steps))));
    }

    sealed class LiveBar(ProgressTask task) : IGenerationObserver
    {
        public void StageStarted(GenerationStage stage) => task.Description = stage.Label();
        public void StepEnded(DenoisingStepEnd step) => task.Value = step.Done;
        public void StageEnded(GenerationStage stage)
        {
            if (stage == GenerationStage.VaeDecoding) task.Description = "done";
        }
    }

    sealed class PlainLines(IAnsiConsole console, int steps) : IGenerationObserver
    {
        readonly Stopwatch _clock = new();

        public void StageStarted(GenerationStage stage)
        {
            if (stage == GenerationStage.Denoising) _clock.Restart();
            console.Profile.Out.Writer.WriteLine(stage.Label());
        }

        public void StageEnded(GenerationStage stage)
        {
            if (stage == GenerationStage.VaeDecoding) console.Profile.Out.Writer.WriteLine("done");
        }

        public void StepEnded(DenoisingStepEnd step)
        {
            int done = step.Done;
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
