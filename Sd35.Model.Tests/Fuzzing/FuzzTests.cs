using Sd35.Tests.TestSupport;
using System.Diagnostics;
using FluentAssertions;
using Sd35.Errors;
using Sd35.Pipeline;
using Sd35.Tokenizers;
using Xunit.Abstractions;

namespace Sd35.Tests.Fuzzing;

/// <summary>
/// Seeded fuzzing of every file a run reads (checkpoints, configs, tokenizer files, the scheduler config) of a copy
/// of the tiny model: each damaged input must end in a finished image or one of the project's own errors
/// (<see cref="Sd35Exception"/>) — never another exception type, a hang or a crash of the process.
/// </summary>
public class FuzzTests(ITestOutputHelper log)
{
    /// <summary>One step without guidance at the smallest size: every model still loads and runs once.</summary>
    static readonly GenerationRequest Request = TinyModelCopy.Request with { GuidanceScale = 1, Width = 16, Height = 16 };

    /// <summary>A run that takes longer than this is a hang (a tiny run takes about a second).</summary>
    static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(60);

    [Fact]
    public void Two_hundred_seeded_mutations_end_in_an_image_or_a_project_error() => Fuzz(seed: 35, mutations: 200);

    [Fact, Trait("Category", "Slow")]
    public void Two_thousand_seeded_mutations_end_in_an_image_or_a_project_error() => Fuzz(seed: 3535, mutations: 2000);

    /// <summary>A GGUF transformer (written from the tiny one) given as the <c>--transformer</c> override, damaged alone.</summary>
    [Fact]
    public void A_hundred_seeded_mutations_of_a_gguf_transformer_end_in_an_image_or_a_project_error()
    {
        using var model = new TinyModelCopy();
        var gguf = Path.Combine(model.Root, "transformer.gguf");
        using (var checkpoint = new Sd35.Tensors.Checkpoints.ModelFolder(model.Transformer).OpenCheckpoint())
            Sd35.Tensors.Checkpoints.Layouts.OriginalLayoutWriter.WriteGguf(gguf, checkpoint, Sd35.Tensors.Quantization.GgmlType.F32);
        Fuzz(seed: 24, mutations: 100, model, [gguf], () => PipelineComponents.From(new ModelSource { Model = model.Root, Transformer = gguf }));
    }

    void Fuzz(int seed, int mutations)
    {
        using var model = new TinyModelCopy();
        Fuzz(seed, mutations, model, model.Files(), model.Components);
    }

    void Fuzz(int seed, int mutations, TinyModelCopy model, IReadOnlyList<string> files, Func<PipelineComponents> components)
    {
        var mutator = new Mutator(seed);
        var random = new Random(seed);
        var outcomes = new Dictionary<string, int>();
        var failures = new List<string>();
        var clock = Stopwatch.StartNew();
        var pristine = model.Components().Tokenizers();

        for (int i = 0; i < mutations; i++)
        {
            var file = files[random.Next(files.Count)];
            var original = File.ReadAllBytes(file);
            var (bytes, what) = mutator.Mutate(file, original);
            File.WriteAllBytes(file, bytes);
            var culprit = $"#{i} {Path.GetRelativePath(model.Root, file)}: {what}";
            try
            {
                var outcome = RunOnce(components, Path.GetRelativePath(model.Root, file).StartsWith("tokenizer") ? null : pristine);
                outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            }
            catch (TimeoutException)
            {
                failures.Add($"{culprit} → hang (over {HangLimit.TotalSeconds} s)");
                File.WriteAllBytes(file, original);
                break;                                     // the hung run still holds the process; stop here
            }
            catch (Exception e)
            {
                failures.Add($"{culprit} → {e.GetType().FullName}: {e.Message.Split('\n')[0]}");
            }
            File.WriteAllBytes(file, original);
            log.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1} s  {culprit}");
        }

        log.WriteLine($"{mutations} mutations (seed {seed}) in {clock.Elapsed.TotalSeconds:F1} s");
        foreach (var (outcome, count) in outcomes.OrderByDescending(o => o.Value)) log.WriteLine($"  {count,4} {outcome}");
        failures.Should().BeEmpty("every damaged input must end in an image or a project error:\n" + string.Join("\n", failures));
    }

    /// <returns>"image" or the project error's type name; anything else propagates</returns>
    /// <param name="tokenizers">the pristine tokenizers, when the damaged file is not a tokenizer file (parsing them is most of a tiny run)</param>
    static string RunOnce(Func<PipelineComponents> build, TokenizerSet? tokenizers)
    {
        var run = Task.Run(() =>
        {
            try
            {
                var components = build();
                if (tokenizers is not null)
                {
                    var c = components;
                    components = new PipelineComponents(c.Transformer, c.Vae, c.TextEncoder, c.TextEncoder2, c.TextEncoder3, () => tokenizers, c.Scheduler, c.Description);
                }
                Preflight.Check(components, Request);
                using var result = new StableDiffusion3Pipeline(components).Generate(Request);
                FiniteCheck.Ensure(result.Image, FiniteCheck.VaeDecoding);
                return "image";
            }
            catch (Sd35Exception e)
            {
                return e.GetType().Name;
            }
        });
        if (!Task.WhenAny(run, Task.Delay(HangLimit)).GetAwaiter().GetResult().Equals(run)) throw new TimeoutException();
        return run.GetAwaiter().GetResult();     // the run's own exception, not an AggregateException
    }
}
