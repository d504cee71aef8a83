namespace Sd35.Tokenizers;

/// <summary>Turns a prompt into the token ids one SD3 text encoder takes.</summary>
public interface IPromptTokenizer
{
    /// <summary>The fixed number of ids <see cref="EncodePadded"/> returns.</summary>
    int SequenceLength { get; }

    int PadId { get; }

    /// <summary>All ids of the prompt with the encoder's begin/end markers, neither truncated nor padded.</summary>
    int[] Encode(string prompt);

    /// <summary>
    /// The encoder's input: <see cref="Encode"/> cut to <see cref="SequenceLength"/> (keeping the final end
    /// marker) or filled up with <see cref="PadId"/>.
    /// </summary>
    int[] EncodePadded(string prompt);
}
