using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Checkpoints.Layouts;
using Sd35.Tensors.Gguf;
using Sd35.Tensors.Quantization;

namespace Sd35.Pipeline;

/// <summary>
/// Where one component's weights come from and how they are held, for a front-end to show (<c>/v1/info</c>):
/// the folder or file, its format, the storage formats of its tensors with their bytes, and the packed format the
/// pipeline holds its linear and embedding weights in (ggml blocks or fp8 from the file, or blocks quantized at load).
/// </summary>
/// <param name="Component">transformer, vae, text_encoder, text_encoder_2, text_encoder_3</param>
/// <param name="Format">diffusers folder, single file (the release's prefixed layout), GGUF or safetensors file</param>
/// <param name="Stored">bytes per storage format in the file (BF16, F8_E4M3, Q8_0, …), largest first</param>
/// <param name="Bytes">the component's tensor bytes as stored</param>
public sealed record ComponentSummary(string Component, string Source, string Format, IReadOnlyDictionary<string, long> Stored, string Quantization, long Bytes)
{
    /// <summary>One line per component for a log: <c>transformer: GGUF '/m/x.gguf', 8.70 GB (Q8_0 8.50 GB, F32 0.20 GB), quantization q8_0 (in the file)</c>.</summary>
    public override string ToString() =>
        $"{Component}: {Format} '{Source}', {Size(Bytes)} ({string.Join(", ", Stored.Select(s => $"{s.Key} {Size(s.Value)}"))}), quantization {Quantization}";

    static string Size(long bytes) => bytes >= 100_000_000 ? $"{bytes / 1e9:F2} GB" : $"{bytes / 1e6:F2} MB";

    /// <summary>
    /// The summaries of <paramref name="components"/> held as <paramref name="precision"/> says (headers only, no weight
    /// is read). Quantization applies to the transformer and the text encoders, whose linears can hold blocks.
    /// </summary>
    public static IReadOnlyList<ComponentSummary> Of(PipelineComponents components, PipelinePrecision precision)
    {
        var parts = new List<(string Name, ModelFolder Folder, bool Quantizable)>
        {
            ("transformer", components.Transformer, true), ("vae", components.Vae, false),
            ("text_encoder", components.TextEncoder, true), ("text_encoder_2", components.TextEncoder2, true),
        };
        if (components.TextEncoder3 is { } t5) parts.Add(("text_encoder_3", t5, true));
        return parts.Select(p => Of(p.Name, p.Folder, p.Quantizable ? precision.Storage.Quantize : null)).ToList();
    }

    internal static ComponentSummary Of(string name, ModelFolder folder, GgmlType? quantizeAtLoad)
    {
        var stored = new Dictionary<string, long>(StringComparer.Ordinal);
        var blockTypes = new SortedSet<GgmlType>();
        using (var checkpoint = folder.OpenCheckpoint())
            foreach (var key in checkpoint.Keys)
            {
                var entry = checkpoint.Entry(key);
                stored[entry.StorageName] = stored.GetValueOrDefault(entry.StorageName) + StoredBytes(entry);
                if (entry.Quantized is { } type) blockTypes.Add(type);
            }
        var quantization = blockTypes.Count > 0
            ? $"{string.Join(", ", blockTypes).ToLowerInvariant()} (in the file)"
            : quantizeAtLoad is { } atLoad ? $"{atLoad.ToString().ToLowerInvariant()} (at load)" : "none";
        return new ComponentSummary(name, folder.WeightsFile ?? folder.Directory, FormatOf(folder),
            stored.OrderByDescending(s => s.Value).ToDictionary(s => s.Key, s => s.Value), quantization, stored.Values.Sum());
    }

    static string FormatOf(ModelFolder folder) => folder.WeightsFile switch
    {
        null => "diffusers folder",
        var file when file.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) || GgufFile.HasMagic(file) => "GGUF",
        var file when SingleFileCheckpoint.ComponentsIn(file).Count > 0 => "single file",
        _ => "safetensors file",
    };

    /// <summary>From the shape, not the file offsets: a view's pieces of one fused tensor share the stored tensor's offsets.</summary>
    static long StoredBytes(TensorEntry entry) =>
        entry.Quantized is { } type ? GgmlBlocks.BytesOf(type, entry.ElementCount) : entry.ElementCount * SafetensorsDType.SizeOf(entry.DType);
}
