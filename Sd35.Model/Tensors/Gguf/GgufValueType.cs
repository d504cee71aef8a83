namespace Sd35.Tensors.Gguf;

/// <summary>The metadata value types of GGUF (ggml docs/gguf.md, <c>gguf_metadata_value_type</c>).</summary>
public enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>A metadata array: its element type (kept so that an empty array writes back as it was read) and values.</summary>
public sealed record GgufArray(GgufValueType ElementType, IReadOnlyList<object> Values);
