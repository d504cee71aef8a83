namespace Sd35.Pipeline;

/// <summary>
/// Where a pipeline's weights come from: a diffusers folder or the release's single-file checkpoint, and files that
/// replace one component of it (as ComfyUI and stable-diffusion.cpp users hold them: <c>clip_l.safetensors</c>, a GGUF
/// transformer, an fp8 T5). A replaced component keeps the folder's config for it where the folder has one.
/// </summary>
public sealed record ModelSource
{
    /// <summary>A diffusers folder or a single-file checkpoint; null: the built-in tiny reference components.</summary>
    public string? Model { get; init; }
    public string? Transformer { get; init; }
    public string? Vae { get; init; }
    public string? ClipL { get; init; }
    public string? ClipG { get; init; }
    public string? T5 { get; init; }

    public static ModelSource BuiltIn { get; } = new();
}
