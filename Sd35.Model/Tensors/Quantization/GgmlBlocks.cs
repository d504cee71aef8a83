namespace Sd35.Tensors.Quantization;

/// <summary>
/// How many elements one block of a ggml type holds and how many bytes it takes (ggml-common.h). A row of a
/// quantized tensor is a whole number of blocks, so a row length that is not a multiple of <see cref="Layout.Elements"/>
/// cannot be stored in that type.
/// </summary>
public static class GgmlBlocks
{
    public readonly record struct Layout(int Elements, int Bytes);

    static readonly Dictionary<GgmlType, Layout> Layouts = new()
    {
        [GgmlType.F32] = new(1, 4),
        [GgmlType.F16] = new(1, 2),
        [GgmlType.BF16] = new(1, 2),
        [GgmlType.Q8_0] = new(32, 34),   // fp16 scale + 32 int8
        [GgmlType.Q5_0] = new(32, 22),   // fp16 scale + 32 high bits + 16 bytes of nibbles
        [GgmlType.Q5_1] = new(32, 24),   // fp16 scale and min + 32 high bits + 16 bytes of nibbles
        [GgmlType.Q4_0] = new(32, 18),   // fp16 scale + 16 bytes of nibbles
        [GgmlType.Q4_1] = new(32, 20),   // fp16 scale and min + 16 bytes of nibbles
        [GgmlType.Q2_K] = new(256, 84),
        [GgmlType.Q3_K] = new(256, 110),
        [GgmlType.Q4_K] = new(256, 144),
        [GgmlType.Q5_K] = new(256, 176),
        [GgmlType.Q6_K] = new(256, 210),
        // fp8 as one-value blocks of one byte: the same rows of bytes are cut, padded and gathered as ggml's blocks are.
        [GgmlType.F8_E4M3] = new(1, 1),
        [GgmlType.F8_E5M2] = new(1, 1),
    };

    public static bool TryGet(GgmlType type, out Layout layout) => Layouts.TryGetValue(type, out layout);

    public static Layout Of(GgmlType type) =>
        Layouts.TryGetValue(type, out var layout) ? layout : throw new NotSupportedException($"ggml type {type} has no known block layout");

    /// <summary>The quantized types that keep their weights in blocks (not a plain float dtype).</summary>
    public static bool IsBlockQuantized(GgmlType type) => Of(type).Elements > 1;

    /// <summary>Bytes of <paramref name="elements"/> values (a whole number of blocks) stored as <paramref name="type"/>.</summary>
    public static long BytesOf(GgmlType type, long elements)
    {
        var layout = Of(type);
        if (elements % layout.Elements != 0)
            throw new ArgumentException($"{elements} elements are not a whole number of {type} blocks of {layout.Elements}");
        return elements / layout.Elements * layout.Bytes;
    }
}
