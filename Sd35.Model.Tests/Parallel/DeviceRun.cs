using System.Collections.Concurrent;
using FluentAssertions;
using Sd35.Mesh;
using Sd35.Pipeline;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

namespace Sd35.Tests.Parallel;

/// <summary>
/// One generation as every device saw it: the latents each device held after each step and each device's copy of
/// the image (<see cref="StableDiffusion3Pipeline.OnDeviceStep"/>, <see cref="StableDiffusion3Pipeline.OnDeviceImage"/>),
/// and what the lead reported through <see cref="IGenerationObserver.StepEnded"/>.
/// </summary>
public sealed record DeviceRun(IReadOnlyList<Tensor> LeadSteps, IReadOnlyDictionary<(int Device, int Step), Tensor> Steps,
    IReadOnlyDictionary<int, Tensor> Images, Tensor Image)
{
    public static DeviceRun Generate(PipelineComponents components, ParallelConfig parallel, GenerationRequest request, Tensor initialLatents) =>
        Generate(components, parallel, request, initialLatents, noise: null);

    /// <param name="noise">where the draws come from (opened afresh by every device, so two runs replay the same draws)</param>
    public static DeviceRun Generate(PipelineComponents components, ParallelConfig parallel, GenerationRequest request, NoiseSource noise) =>
        Generate(components, parallel, request, initialLatents: null, noise);

    static DeviceRun Generate(PipelineComponents components, ParallelConfig parallel, GenerationRequest request, Tensor? initialLatents, NoiseSource? noise) =>
        Generate(new StableDiffusion3Pipeline(components, options: new PipelineOptions { Parallel = parallel }), request, initialLatents, noise);

    /// <summary>One generation of a pipeline built elsewhere (the front door, another precision).</summary>
    public static DeviceRun Generate(StableDiffusion3Pipeline pipeline, GenerationRequest request, Tensor? initialLatents = null, NoiseSource? noise = null)
    {
        var leadSteps = new List<Tensor>();
        var steps = new ConcurrentDictionary<(int, int), Tensor>();
        var images = new ConcurrentDictionary<int, Tensor>();
        pipeline.OnDeviceStep = (device, step, latents) => steps[(device.Value, step)] = latents.clone();
        pipeline.OnDeviceImage = (device, image) => images[device.Value] = image.clone();
        using var result = pipeline.Generate(request, GenerationObserver.Of(stepEnded: step => leadSteps.Add(step.Latents.clone())),
            initialLatents: initialLatents, noise: noise);
        result.IsLead.Should().BeTrue("the in-process launcher hosts the lead device");
        return new DeviceRun(leadSteps, steps, images, result.Image.clone());
    }

    /// <summary>
    /// Every one of <paramref name="devices"/> devices reported every step and an image, and each device's latents
    /// after each step and its image match <paramref name="expected"/>'s lead (PCC and max |error| bars; throws
    /// naming the device and the step at the first that does not).
    /// </summary>
    public void CheckEveryDeviceAgainst(DeviceRun expected, int devices, double pcc, double absRel, string what)
    {
        int stepCount = expected.LeadSteps.Count;
        Steps.Keys.Should().BeEquivalentTo(Enumerable.Range(0, devices).SelectMany(d => Enumerable.Range(0, stepCount).Select(i => (d, i))),
            $"{what}: every device must report its latents after every step");
        Images.Keys.Should().BeEquivalentTo(Enumerable.Range(0, devices), $"{what}: every device must hold the image");
        for (int device = 0; device < devices; device++)
        {
            for (int i = 0; i < stepCount; i++)
                AssertQuality.Close(expected.LeadSteps[i], Steps[(device, i)], pcc, absRel, $"{what}: latents after step {i} on device {device}");
            AssertQuality.Close(expected.Image, Images[device], pcc, absRel, $"{what}: image on device {device}");
        }
    }
}
