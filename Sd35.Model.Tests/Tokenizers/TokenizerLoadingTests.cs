using FluentAssertions;
using Sd35.Errors;
using Sd35.Tests.TestSupport;
using Sd35.Tokenizers;
using Xunit;

namespace Sd35.Tests.Tokenizers;

/// <summary>Building the tokenizers from a diffusers model folder, from the shipped files, and failing by path.</summary>
public sealed class TokenizerLoadingTests : IDisposable
{
    const string Prompt = "Hello, world! A photo of a cat";
    readonly string _modelDir = Directory.CreateTempSubdirectory("sd35-tokenizers-").FullName;

    public void Dispose() => Directory.Delete(_modelDir, recursive: true);

    [Fact]
    public void Diffusers_folder_without_json_configs_uses_sd3_defaults()
    {
        WriteDiffusersFolder();
        TokenizerSet set = TokenizerSet.FromDiffusersFolder(_modelDir);
        AssertSameAsReference(set);
    }

    [Fact]
    public void Diffusers_folder_json_configs_set_the_pad_token()
    {
        WriteDiffusersFolder();
        File.WriteAllText(Path.Combine(_modelDir, "tokenizer", "tokenizer_config.json"),
            """{ "pad_token": "<|endoftext|>", "model_max_length": 77 }""");
        File.WriteAllText(Path.Combine(_modelDir, "tokenizer_2", "special_tokens_map.json"),
            """{ "pad_token": { "content": "!", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false } }""");
        AssertSameAsReference(TokenizerSet.FromDiffusersFolder(_modelDir));

        // A CLIP-G folder that pads with <|endoftext|> instead no longer treats '!' as special.
        File.WriteAllText(Path.Combine(_modelDir, "tokenizer_2", "special_tokens_map.json"),
            """{ "pad_token": "<|endoftext|>" }""");
        ClipTokenizer clipG = TokenizerSet.FromDiffusersFolder(_modelDir).ClipG;
        clipG.PadId.Should().Be(49407);
        clipG.Encode(Prompt).Should().Equal(TokenizerReference.Tokenizers.ClipL.Encode(Prompt));
    }

    [Fact]
    public void Special_tokens_map_wins_over_tokenizer_config()
    {
        string dir = Path.Combine(_modelDir, "tokenizer_2");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{ "pad_token": "<|endoftext|>" }""");
        File.WriteAllText(Path.Combine(dir, "special_tokens_map.json"), """{ "pad_token": "!" }""");
        ClipSpecialTokens.Load(dir, ClipSpecialTokens.Sd3ClipL).PadToken.Should().Be("!");
    }

    [Fact]
    public void Added_tokens_decoder_entries_split_the_text()
    {
        string dir = Path.Combine(_modelDir, "tokenizer_2");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"),
            """{ "added_tokens_decoder": { "0": { "content": "!", "special": true }, "49407": { "content": "<|endoftext|>" } }, "pad_token": "<|endoftext|>" }""");
        ClipSpecialTokens tokens = ClipSpecialTokens.Load(dir, ClipSpecialTokens.Sd3ClipG);
        tokens.PadToken.Should().Be("<|endoftext|>");
        tokens.ExtraAddedTokens.Should().Contain(new KeyValuePair<string, int>("!", 0));
    }

    [Fact]
    public void Default_set_loads_the_copy_shipped_next_to_the_library()
    {
        File.Exists(Path.Combine(TokenizerSet.DefaultDirectory, "t5", "spiece.model")).Should().BeTrue();
        AssertSameAsReference(TokenizerSet.Default());
    }

    [Fact]
    public void Missing_files_are_named_in_the_error()
    {
        Action diffusers = () => TokenizerSet.FromDiffusersFolder(_modelDir);
        diffusers.Should().Throw<TokenizerException>()
            .WithMessage($"*{Path.Combine(_modelDir, "tokenizer", "vocab.json")}*");

        Directory.CreateDirectory(Path.Combine(_modelDir, "tokenizer"));
        File.Copy(Fixture("clip", "vocab.json"), Path.Combine(_modelDir, "tokenizer", "vocab.json"));
        diffusers.Should().Throw<TokenizerException>()
            .WithMessage($"*{Path.Combine(_modelDir, "tokenizer", "merges.txt")}*");

        Action t5 = () => T5Tokenizer.FromFolder(Path.Combine(_modelDir, "tokenizer_3"));
        t5.Should().Throw<TokenizerException>()
            .WithMessage($"*{Path.Combine(_modelDir, "tokenizer_3", "spiece.model")}*");

        Action shipped = () => TokenizerSet.Default(_modelDir);
        shipped.Should().Throw<TokenizerException>()
            .WithMessage($"*{Path.Combine(_modelDir, "clip", "vocab.json")}*");
    }

    [Theory]
    [InlineData("tokenizer", "vocab.json", "not json {")]
    [InlineData("tokenizer", "vocab.json", "[1, 2, 3]")]
    [InlineData("tokenizer_2", "vocab.json", "{\"a\": \"b\"}")]
    [InlineData("tokenizer", "tokenizer_config.json", "{ \"pad_token\": ")]
    [InlineData("tokenizer_2", "special_tokens_map.json", "\u0000\u0001")]
    [InlineData("tokenizer_3", "spiece.model", "\u00ff\u00fe random bytes \u0007\u000b\u000c")]
    public void Damaged_files_are_a_tokenizer_error_naming_the_file(string folder, string file, string content)
    {
        WriteDiffusersFolder();
        string path = Path.Combine(_modelDir, folder, file);
        File.WriteAllText(path, content);
        Action load = () => TokenizerSet.FromDiffusersFolder(_modelDir);
        load.Should().Throw<TokenizerException>().Which.File.Should().Be(path);
    }

    [Fact]
    public void Random_bytes_in_spiece_model_name_the_file_not_the_protobuf_wire_type()
    {
        WriteDiffusersFolder();
        string path = Path.Combine(_modelDir, "tokenizer_3", "spiece.model");
        var bytes = new byte[4096];
        new Random(12).NextBytes(bytes);
        File.WriteAllBytes(path, bytes);
        Action load = () => T5Tokenizer.FromFolder(Path.Combine(_modelDir, "tokenizer_3"));
        load.Should().Throw<TokenizerException>().WithMessage($"{path}: *SentencePiece*");
    }

    void WriteDiffusersFolder()
    {
        foreach (string folder in new[] { "tokenizer", "tokenizer_2" })
        {
            Directory.CreateDirectory(Path.Combine(_modelDir, folder));
            File.Copy(Fixture("clip", "vocab.json"), Path.Combine(_modelDir, folder, "vocab.json"));
            File.Copy(Fixture("clip", "merges.txt"), Path.Combine(_modelDir, folder, "merges.txt"));
        }

        Directory.CreateDirectory(Path.Combine(_modelDir, "tokenizer_3"));
        File.Copy(Fixture("t5", "spiece.model"), Path.Combine(_modelDir, "tokenizer_3", "spiece.model"));
    }

    static void AssertSameAsReference(TokenizerSet set)
    {
        TokenizerSet reference = TokenizerReference.Tokenizers;
        set.ClipL.PadId.Should().Be(49407);
        set.ClipG.PadId.Should().Be(0);
        set.ClipL.Encode(Prompt, ClipTokenizer.ContextLength).Should().Equal(reference.ClipL.Encode(Prompt, ClipTokenizer.ContextLength));
        set.ClipG.Encode(Prompt, ClipTokenizer.ContextLength).Should().Equal(reference.ClipG.Encode(Prompt, ClipTokenizer.ContextLength)).And.Contain(0);
        set.T5.Encode(Prompt, 256).Should().Equal(reference.T5.Encode(Prompt, 256));
    }

    static string Fixture(params string[] parts) => RepoPaths.Fixtures(["tokenizers", .. parts]);
}
