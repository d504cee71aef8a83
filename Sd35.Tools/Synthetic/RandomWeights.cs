using static TorchSharp.torch;

namespace Sd35.Tools.Synthetic;

/// <summary>
/// Fills a module with random weights by the project's recipe (<see cref="RandomInit"/>), drawn from one generator
/// in name order. Keeps activations at a realistic scale when no checkpoint is at hand (memory and speed tests).
/// </summary>
public static class RandomWeights
{
    public static void Fill(nn.Module module, long seed)
    {
        using var noGrad = no_grad();
        var generator = new Generator((ulong)seed);
        foreach (var (name, parameter) in module.named_parameters().OrderBy(p => p.name, StringComparer.Ordinal))
        {
            using var values = RandomInit.Values(name, parameter.shape, generator);
            parameter.copy_(values);
        }
    }
}
