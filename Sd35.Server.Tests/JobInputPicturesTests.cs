using System.Runtime.CompilerServices;
using FluentAssertions;
using Sd35.Pipeline;
using Sd35.Server.Jobs;

namespace Sd35.Server.Tests;

/// <summary>
/// A finished job lets go of its input image and mask (the server keeps up to <c>--keep-jobs</c> finished jobs; at
/// 2048² each picture is 50 MB of floats) while its status still reports what it ran with.
/// </summary>
public sealed class JobInputPicturesTests
{
    /// <summary>An inpainting job; the pictures are reachable only through it (weak references to watch them).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    static (GenerationJob Job, WeakReference Image, WeakReference Mask) InpaintingJob()
    {
        var image = new InputImage(3, 16, 24, new float[3 * 16 * 24]);
        var maskValues = new float[16 * 24];
        for (int y = 4; y < 10; y++)
            for (int x = 2; x < 7; x++)
                maskValues[y * 24 + x] = 1;
        var mask = new InputImage(1, 16, 24, maskValues);
        var request = new GenerationRequest { Prompt = "a hat", Width = 24, Height = 16, Steps = 10, Strength = 0.5, Image = image, Mask = mask };
        return (new GenerationJob(request), new WeakReference(image), new WeakReference(mask));
    }

    [Theory]
    [InlineData(JobStatus.Succeeded)]
    [InlineData(JobStatus.Failed)]
    [InlineData(JobStatus.Cancelled)]
    public void A_finished_job_no_longer_references_its_pictures_and_still_reports_them(JobStatus end)
    {
        var (job, image, mask) = InpaintingJob();
        job.Start();
        var running = job.Snapshot();
        job.HoldsInputPictures.Should().BeTrue("a running job needs its pictures");

        switch (end)
        {
            case JobStatus.Succeeded: job.Succeed([], new StageTimings()); break;
            case JobStatus.Failed: job.Fail("out of memory"); break;
            default: job.Cancelled("cancelled"); break;
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        job.HoldsInputPictures.Should().BeFalse();
        image.IsAlive.Should().BeFalse("the finished job must not keep its input image");
        mask.IsAlive.Should().BeFalse("the finished job must not keep its mask");
        var finished = job.Snapshot();
        finished.Parameters.Should().BeEquivalentTo(running.Parameters);
        finished.Parameters.Mode.Should().Be("inpainting");
        finished.Parameters.Mask.Should().Be(new MaskRegion(30, 2, 4, 5, 6));
        finished.Steps.Should().Be(running.Steps).And.Be(5, "strength 0.5 of 10 steps");
    }
}
