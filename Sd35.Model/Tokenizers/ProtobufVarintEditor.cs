namespace Sd35.Tokenizers;

/// <summary>
/// Rewrites one varint field inside a serialized protobuf message without a schema: it walks the wire format,
/// descends into the length-delimited fields named by the path, and re-encodes the lengths it changed. Enough
/// to patch a SentencePiece model in memory without a protobuf package.
/// </summary>
static class ProtobufVarintEditor
{
    const int WireVarint = 0, WireFixed64 = 1, WireLengthDelimited = 2, WireFixed32 = 5;

    /// <summary>
    /// Returns a copy of <paramref name="message"/> in which every occurrence of the varint field at
    /// <paramref name="fieldPath"/> (field numbers from the outer message inwards) holds
    /// <c>update(old value)</c>. Values are read and written as protobuf int64/int32 (negative = 10 bytes).
    /// Where the field is absent the message is returned unchanged: the field keeps its schema default.
    /// </summary>
    public static byte[] UpdateVarint(ReadOnlySpan<byte> message, IReadOnlyList<int> fieldPath, Func<long, long> update)
    {
        ArgumentNullException.ThrowIfNull(fieldPath);
        ArgumentNullException.ThrowIfNull(update);
        ArgumentOutOfRangeException.ThrowIfZero(fieldPath.Count);
        var output = new List<byte>(message.Length);
        int position = 0;
        while (position < message.Length)
        {
            int fieldStart = position;
            ulong tag = ReadVarint(message, ref position);
            int fieldNumber = checked((int)(tag >> 3));
            int wireType = (int)(tag & 7);
            int payloadStart = position;
            SkipPayload(message, wireType, ref position);

            if (fieldNumber != fieldPath[0])
            {
                output.AddRange(message[fieldStart..position]);
            }
            else if (fieldPath.Count == 1)
            {
                RequireWireType(wireType, WireVarint, fieldNumber);
                long value = (long)ReadVarint(message, ref payloadStart);
                WriteVarint(output, tag);
                WriteVarint(output, (ulong)update(value));
            }
            else
            {
                RequireWireType(wireType, WireLengthDelimited, fieldNumber);
                int length = checked((int)ReadVarint(message, ref payloadStart));
                byte[] inner = UpdateVarint(message.Slice(payloadStart, length), fieldPath.Skip(1).ToArray(), update);
                WriteVarint(output, tag);
                WriteVarint(output, (ulong)inner.Length);
                output.AddRange(inner);
            }
        }

        return output.ToArray();
    }

    static void SkipPayload(ReadOnlySpan<byte> message, int wireType, ref int position)
    {
        switch (wireType)
        {
            case WireVarint:
                ReadVarint(message, ref position);
                break;
            case WireFixed64:
                position += 8;
                break;
            case WireLengthDelimited:
                int length = checked((int)ReadVarint(message, ref position));
                position += length;
                break;
            case WireFixed32:
                position += 4;
                break;
            default:
                throw new InvalidDataException($"Unsupported protobuf wire type {wireType} (groups are not handled).");
        }

        if (position > message.Length)
        {
            throw new InvalidDataException("Truncated protobuf message.");
        }
    }

    static void RequireWireType(int actual, int expected, int fieldNumber)
    {
        if (actual != expected)
        {
            throw new InvalidDataException($"Protobuf field {fieldNumber} has wire type {actual}, expected {expected}.");
        }
    }

    static ulong ReadVarint(ReadOnlySpan<byte> message, ref int position)
    {
        ulong value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (position >= message.Length)
            {
                throw new InvalidDataException("Truncated protobuf varint.");
            }

            byte b = message[position++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }

        throw new InvalidDataException("Protobuf varint longer than 10 bytes.");
    }

    static void WriteVarint(List<byte> output, ulong value)
    {
        while (value >= 0x80)
        {
            output.Add((byte)(value | 0x80));
            value >>= 7;
        }

        output.Add((byte)value);
    }
}
