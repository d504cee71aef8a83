using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tensors;

/// <summary>
/// Fills a module with random weights by the recipe of fixtures/reference (README "How the weights were
/// randomized"): ≥2-d tensors N(0, 1/fan_in), biases 0.1·N(0, 1), other 1-d tensors (norm scales) 1 + 0.1·N(0, 1).
/// Keeps activations at a realistic scale when no checkpoint is at hand (memory tests, the CI-scale perf model).
/// </summary>
public static class RandomWeights
{
    public static void Fill(nn.Module module, long seed)
    {
        using var noGrad = no_grad();
        var generator = new Generator((ulong)seed);
        foreach (var (name, parameter) in module.named_parameters().OrderBy(p => p.name, StringComparer.Ordinal))
        {
            using var scope = NewDisposeScope();
            Tensor values;
            if (parameter.dim() >= 2)
                values = randn(parameter.shape, generator: generator) / Math.Sqrt(parameter.numel() / parameter.shape[0]);
            else if (name.EndsWith("bias", StringComparison.Ordinal))
                values = randn(parameter.shape, generator: generator) * 0.1;
            else
                values = randn(parameter.shape, generator: generator) * 0.1 + 1;
            parameter.copy_(values);
        }
    }
}
