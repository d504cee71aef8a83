using static TorchSharp.torch;

namespace Sd35.Models.Vae;

/// <summary>
/// diffusers' <c>DiagonalGaussianDistribution</c>, the VAE encoder's posterior: the moments split on channels into
/// mean and log-variance, the log-variance clamped to [-30, 20] (so <c>exp</c> neither underflows to a zero std nor
/// overflows), <c>std = exp(0.5·logvar)</c>. Owns its tensors.
/// </summary>
public sealed class DiagonalGaussianDistribution : IDisposable
{
    public const double MinLogVar = -30, MaxLogVar = 20;

    public Tensor Mean { get; }
    public Tensor LogVar { get; }
    public Tensor Std { get; }

    public DiagonalGaussianDistribution(Tensor moments)
    {
        using var scope = NewDisposeScope();
        var halves = moments.chunk(2, 1);
        Mean = halves[0].contiguous().MoveToOuterDisposeScope();
        LogVar = halves[1].clamp(MinLogVar, MaxLogVar).MoveToOuterDisposeScope();
        Std = (LogVar * 0.5).exp().MoveToOuterDisposeScope();
    }

    /// <summary><c>mean + std·eps</c> with <paramref name="eps"/> a standard normal draw of the mean's shape (the caller's noise source).</summary>
    public Tensor Sample(Tensor eps)
    {
        if (!eps.shape.SequenceEqual(Mean.shape))
            throw new ArgumentException($"eps must have the posterior's shape [{string.Join(", ", Mean.shape)}], got [{string.Join(", ", eps.shape)}]");
        using var scope = NewDisposeScope();
        return (Mean + Std * eps.to(Mean.dtype, Mean.device)).MoveToOuterDisposeScope();
    }

    /// <summary>The most likely latents: the mean (a copy the caller owns).</summary>
    public Tensor Mode() => Mean.clone();

    public void Dispose()
    {
        Mean.Dispose();
        LogVar.Dispose();
        Std.Dispose();
    }
}
