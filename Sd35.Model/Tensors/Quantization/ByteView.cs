using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tensors.Quantization;

/// <summary>
/// Reinterprets the bytes of a CPU tensor as another dtype (numpy's <c>view(dtype)</c>), which TorchSharp lacks: the
/// ggml blocks keep fp16 scales and int8 values inside rows of bytes. A copy of the bytes (a memcpy), never a
/// conversion of values.
/// </summary>
static class ByteView
{
    public static Tensor As(Tensor source, ScalarType dtype, params long[] shape)
    {
        using var contiguous = source.device_type == DeviceType.CPU ? source.contiguous() : source.cpu().contiguous();
        var result = empty(shape, dtype, CPU);
        long bytes = contiguous.numel() * contiguous.element_size();
        if (bytes != result.numel() * result.element_size())
            throw new ArgumentException($"{source.dtype} {Text(source.shape)} and {dtype} {Text(shape)} differ in size");
        if (bytes > int.MaxValue)
            throw new NotSupportedException($"reinterpreting a tensor of {bytes} bytes (over 2 GiB) is not supported");
        if (bytes > 0) contiguous.bytes.CopyTo(result.bytes);
        return result;
    }

    static string Text(long[] shape) => $"[{string.Join(", ", shape)}]";
}
