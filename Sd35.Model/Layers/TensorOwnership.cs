using static TorchSharp.torch;

namespace Sd35.Layers;

/// <summary>
/// Hand-over of intermediate activations. In the VAE decoder at 1024² one activation is 0.5–1 GiB, so a chain of
/// layers must free each intermediate as soon as the next one exists; a dispose scope around the chain would keep
/// them all alive until its end.
/// </summary>
static class TensorOwnership
{
    /// <summary>Applies <paramref name="step"/> to a tensor the caller owns, then frees that tensor (unless the step returned it).</summary>
    public static Tensor Then(this Tensor owned, Func<Tensor, Tensor> step)
    {
        Tensor result;
        try
        {
            result = step(owned);
        }
        catch
        {
            owned.Dispose();
            throw;
        }
        if (!ReferenceEquals(result, owned)) owned.Dispose();
        return result;
    }

    /// <summary>
    /// Runs <paramref name="input"/> through <paramref name="steps"/> in order, freeing each intermediate once the
    /// next step has consumed it. The caller keeps ownership of <paramref name="input"/> and owns the result.
    /// </summary>
    public static Tensor Through(this Tensor input, IEnumerable<Func<Tensor, Tensor>> steps)
    {
        var current = input;
        foreach (var step in steps) current = ReferenceEquals(current, input) ? step(current) : current.Then(step);
        return ReferenceEquals(current, input) ? input.alias() : current;
    }
}
