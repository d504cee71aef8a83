using Sd35.Profiling;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Layers;

/// <summary>
/// The compute-heavy operations the layers call (linear, attention, convolution, norms, row gathers), in one place
/// for two reasons. Each call reports itself — name, FLOPs, memory traffic, output and inputs, and its time span — to the
/// thread's instrumentation sink (<see cref="Instrumentation"/>) when one is installed, so a cost model counts the work
/// of the real code rather than of a second description of the model, and a step trace shows every op in order.
/// And each works on the <c>meta</c> device (shapes only), where libtorch's C++ build has no kernel for
/// convolution, the norms, SDPA or index_select: there the result is an empty tensor of the right shape and dtype,
/// so the whole sharded pipeline can be walked at full size in seconds without weights.
/// </summary>
static class Kernels
{
    /// <summary>x·Wᵀ + b, as <c>F.linear</c>: 2·rows·in·out FLOPs.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        long start = Instrumentation.Timestamp();
        var output = nn.functional.linear(x, weight, bias);
        if (Instrumentation.IsOn)
        {
            long rows = x.numel() / weight.shape[1];
            Instrumentation.Op(OpKind.Gemm, "linear", 2.0 * rows * weight.shape[0] * weight.shape[1],
                Bytes(x) + Bytes(weight) + (bias is null ? 0 : Bytes(bias)), Bytes(output), start, output, x, weight, bias);
        }
        return output;
    }

    /// <summary>Softmax attention with scale 1/√d, as <c>F.scaled_dot_product_attention</c> (no mask or causal).</summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, bool causal = false)
    {
        long start = Instrumentation.Timestamp();
        var output = ShapeOnly.Is(q)
            ? empty([.. q.shape[..^1], v.shape[^1]], q.dtype, q.device)
            : nn.functional.scaled_dot_product_attention(q, k, v, is_casual: causal);
        RecordAttention(q, k, v, output, causal, start);
        return output;
    }

    /// <summary>
    /// Counts one attention of <paramref name="q"/> over <paramref name="k"/>/<paramref name="v"/> computed by other
    /// means (a ring-attention block): 4·Nq·Nk·d FLOPs per head (two GEMMs; half of it when causal), and the memory
    /// traffic of a fused kernel, which reads q, k and v once and writes the output once. <paramref name="start"/>:
    /// when it began (<see cref="Instrumentation.Timestamp"/>), if the caller knows.
    /// </summary>
    public static void RecordAttention(Tensor q, Tensor k, Tensor v, Tensor output, bool causal = false, long start = Instrumentation.Unknown)
    {
        if (!Instrumentation.IsOn) return;
        long heads = q.numel() / (q.shape[^1] * q.shape[^2]);
        double flops = 4.0 * heads * q.shape[^2] * k.shape[^2] * q.shape[^1] * (causal ? 0.5 : 1.0);
        // The output of a ring block is held in fp32 here; a fused kernel writes it in the input dtype.
        Instrumentation.Op(OpKind.Attention, "sdpa", flops, Bytes(q) + Bytes(k) + Bytes(v), output.numel() * q.element_size(), start, output, q, k, v);
    }

    /// <summary>A 2-D convolution with symmetric zero padding (stride 2: the VAE encoder's downsamplers).</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, long padding, long stride = 1)
    {
        long start = Instrumentation.Timestamp();
        Tensor output;
        if (ShapeOnly.Is(x))
        {
            long h = (x.shape[2] + 2 * padding - weight.shape[2]) / stride + 1, w = (x.shape[3] + 2 * padding - weight.shape[3]) / stride + 1;
            output = empty([x.shape[0], weight.shape[0], h, w], x.dtype, x.device);
        }
        else output = nn.functional.conv2d(x, weight, bias, strides: [stride, stride], padding: [padding, padding]);
        if (Instrumentation.IsOn)
        {
            double macsPerOutput = weight.shape[1] * weight.shape[2] * weight.shape[3];
            Instrumentation.Op(OpKind.Conv, "conv2d", 2.0 * output.numel() * macsPerOutput,
                Bytes(x) + Bytes(weight) + (bias is null ? 0 : Bytes(bias)), Bytes(output), start, output, x, weight, bias);
        }
        return output;
    }

    /// <summary><c>F.layer_norm</c> over the last dimension, affine when weight and bias are given.</summary>
    public static Tensor LayerNorm(Tensor x, double eps, Tensor? weight = null, Tensor? bias = null)
    {
        long start = Instrumentation.Timestamp();
        var output = ShapeOnly.Is(x) ? empty_like(x) : nn.functional.layer_norm(x, [x.shape[^1]], weight, bias, eps);
        RecordNorm("layer_norm", x, output, start);
        return output;
    }

    /// <summary><c>F.group_norm</c> with <paramref name="groups"/> groups over dim 1.</summary>
    public static Tensor GroupNorm(Tensor x, long groups, Tensor weight, Tensor bias, double eps)
    {
        long start = Instrumentation.Timestamp();
        var output = ShapeOnly.Is(x) ? empty_like(x) : nn.functional.group_norm(x, groups, weight, bias, eps);
        RecordNorm("group_norm", x, output, start);
        return output;
    }

    /// <summary>Rows of <paramref name="table"/> at <paramref name="indices"/> (an embedding lookup), shaped [.. indices, width].</summary>
    public static Tensor Rows(Tensor table, Tensor indices)
    {
        long start = Instrumentation.Timestamp();
        Tensor output;
        if (ShapeOnly.Is(table)) output = empty([.. indices.shape, table.shape[1]], table.dtype, table.device);
        else
        {
            using var flat = indices.flatten();
            using var rows = table.index_select(0, flat);
            output = rows.view([.. indices.shape, table.shape[1]]);
        }
        if (Instrumentation.IsOn) Instrumentation.Op(OpKind.Elementwise, "gather_rows", 0, Bytes(indices), Bytes(output), start, output, indices);
        return output;
    }

    /// <summary>Counts a normalization computed by other means (mean, variance or RMS, scale): ≈ 8 FLOPs per element.</summary>
    public static void RecordNorm(string name, Tensor input, Tensor output, long start = Instrumentation.Unknown)
    {
        if (!Instrumentation.IsOn) return;
        Instrumentation.Op(OpKind.Norm, name, 8.0 * input.numel(), Bytes(input), Bytes(output), start, output, input);
    }

    /// <summary>Counts an element-wise operation: <paramref name="flopsPerElement"/> per output element; reads its inputs, writes its output.</summary>
    public static void RecordElementwise(string name, Tensor output, double flopsPerElement, params Tensor[] inputs)
    {
        if (!Instrumentation.IsOn) return;
        Instrumentation.Op(OpKind.Elementwise, name, flopsPerElement * output.numel(), inputs.Sum(Bytes), Bytes(output), Instrumentation.Unknown, output, inputs);
    }

    static long Bytes(Tensor t) => t.numel() * t.element_size();
}
