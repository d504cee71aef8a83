using Sd35.Pipeline;
using Sd35.Tokenizers;
using Sd35.Tests.TestSupport;

namespace Sd35.Tests.TestSupport;

/// <summary>
/// The tiny reference components (fixtures/reference: transformer, VAE, CLIP-L/G, T5), the shipped tokenizer files
/// and the reference scheduler config, copied into a writable diffusers-layout folder, so a test can damage any
/// file without touching the fixtures and run the demo on it with <c>--model</c>.
/// </summary>
sealed class TinyModelCopy : IDisposable
{
    static readonly (string From, string To)[] Parts =
    [
        ("transformer/tiny", "transformer"), ("vae/vae_tiny", "vae"), ("text_encoder/clip_l_tiny", "text_encoder"),
        ("text_encoder/clip_g_tiny", "text_encoder_2"), ("text_encoder/t5_tiny", "text_encoder_3"),
    ];

    readonly TempDirectory _dir = new();

    public string Root => _dir.Path;
    public string Transformer => Path.Combine(Root, "transformer");
    public string Vae => Path.Combine(Root, "vae");

    public TinyModelCopy()
    {
        foreach (var (from, to) in Parts) CopyFolder(RepoPaths.Fixtures("reference", from), Path.Combine(Root, to));
        foreach (var clip in new[] { "tokenizer", "tokenizer_2" }) CopyFolder(Path.Combine(TokenizerSet.DefaultDirectory, "clip"), Path.Combine(Root, clip));
        CopyFolder(Path.Combine(TokenizerSet.DefaultDirectory, "t5"), Path.Combine(Root, "tokenizer_3"));
        Directory.CreateDirectory(Path.Combine(Root, "scheduler"));
        File.Copy(RepoPaths.Fixtures("reference", "scheduler", "scheduler_config.json"), Path.Combine(Root, "scheduler", "scheduler_config.json"));
    }

    /// <summary>Every file a run reads: configs, checkpoints, tokenizer files, the scheduler config.</summary>
    public IReadOnlyList<string> Files() =>
        Directory.EnumerateFiles(Root, "*", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).ToList();

    public PipelineComponents Components() => PipelineComponents.FromDiffusersFolder(Root);

    /// <summary>One cheap step at the tiny model's own size, with guidance (so both branches run).</summary>
    public static GenerationRequest Request => new() { Prompt = "a red cube", Steps = 1, Width = 32, Height = 32, MaxSequenceLength = 16, GuidanceScale = 4.5 };

    static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            if (Path.GetFileName(file).StartsWith("io")) continue;   // the golden inputs and outputs, not read by a run
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    public void Dispose() => _dir.Dispose();
}
