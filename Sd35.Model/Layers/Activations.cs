using static TorchSharp.torch;

namespace Sd35.Layers;

/// <summary>
/// The activation functions that transformers configs name (<c>hidden_act</c>, <c>dense_act_fn</c>), looked up by
/// that name so a config picks its function exactly as transformers' <c>ACT2FN</c> does.
/// </summary>
static class Activations
{
    /// <summary>The names <see cref="FromName"/> knows, for config validation.</summary>
    public static string?[] Names { get; } = ["quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu"];

    /// <summary>The function for a transformers activation name; an unknown name is an error naming it.</summary>
    public static Func<Tensor, Tensor> FromName(string name) => name switch
    {
        // OpenAI CLIP's sigmoid approximation of GELU: x·σ(1.702x).
        "quick_gelu" => QuickGelu,
        // Exact (erf) GELU.
        "gelu" => x => nn.functional.gelu(x),
        // The tanh approximation (T5 v1.1's "gelu_new"): 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))).
        "gelu_new" or "gelu_pytorch_tanh" => x => nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh),
        "relu" => x => nn.functional.relu(x),
        _ => throw new NotSupportedException($"activation '{name}' is not supported (known: quick_gelu, gelu, gelu_new, gelu_pytorch_tanh, relu)"),
    };

    static Tensor QuickGelu(Tensor x)
    {
        using var gate = x * 1.702;
        gate.sigmoid_();
        return x * gate;
    }
}
