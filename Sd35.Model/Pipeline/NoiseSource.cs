using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// Where a generation's random draws come from. diffusers makes them with <c>randn_tensor</c> from one generator,
/// in a fixed order — for image-to-image the VAE posterior's eps, then the pipeline's noise; for text-to-image the
/// initial latents alone — and so does the pipeline, through one <see cref="INoiseDraws"/> per device: every device of a
/// mesh (and every process of an MPI run) opens its own and gets the same tensors, so no draw has to be sent.
/// <see cref="Seeded"/> is diffusers' CPU generator seeded with the request's seed; <see cref="Recorded"/> replays
/// draws stored by the reference (the goldens' <c>draw_0</c>, <c>draw_1</c>, …).
/// </summary>
public abstract class NoiseSource
{
    /// <summary><c>torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)</c> on the CPU, draw after draw.</summary>
    public static NoiseSource Seeded(long seed) => new SeededNoise(seed);

    /// <summary>The given tensors, in order; each draw must have the shape asked for.</summary>
    public static NoiseSource Recorded(IReadOnlyList<Tensor> draws) => new RecordedNoise(draws, checkShapes: true);

    /// <summary>
    /// diffusers' <c>latents=</c> argument of text to image: the start used as given, whatever its shape (diffusers
    /// does not check it either; the size of the image then follows the latents).
    /// </summary>
    public static NoiseSource GivenLatents(Tensor latents) => new RecordedNoise([latents], checkShapes: false);

    /// <summary>A fresh sequence of draws, starting with the first.</summary>
    internal abstract INoiseDraws Open();

    sealed class SeededNoise(long seed) : NoiseSource
    {
        internal override INoiseDraws Open() => new Draws(new Generator((ulong)seed));

        sealed class Draws(Generator generator) : INoiseDraws
        {
            // A bf16 draw is a different stream from a float32 one, as in diffusers (randn_tensor draws in the pipeline's dtype).
            public Tensor Next(long[] shape, ScalarType dtype, string origin) => randn(shape, dtype, generator: generator);

            public void Dispose() => generator.Dispose();
        }
    }

    sealed class RecordedNoise(IReadOnlyList<Tensor> draws, bool checkShapes) : NoiseSource
    {
        internal override INoiseDraws Open() => new Draws(draws, checkShapes);

        sealed class Draws(IReadOnlyList<Tensor> draws, bool checkShapes) : INoiseDraws
        {
            int _next;

            public Tensor Next(long[] shape, ScalarType dtype, string origin)
            {
                if (_next >= draws.Count)
                    throw new InvalidOperationException($"draw {_next} ({origin}) was asked for, but only {draws.Count} draws are recorded");
                var draw = draws[_next];
                if (checkShapes && !draw.shape.SequenceEqual(shape))
                    throw new InvalidOperationException($"draw {_next} ({origin}) has shape [{string.Join(", ", draw.shape)}]; the pipeline asks for [{string.Join(", ", shape)}]");
                _next++;
                return draw.to(dtype, copy: true);
            }

            public void Dispose() { }
        }
    }
}

/// <summary>One device's sequence of draws (see <see cref="NoiseSource"/>).</summary>
interface INoiseDraws : IDisposable
{
    /// <summary>The next standard normal draw, on the CPU, owned by the caller. <paramref name="origin"/> names it in errors.</summary>
    Tensor Next(long[] shape, ScalarType dtype, string origin);
}
