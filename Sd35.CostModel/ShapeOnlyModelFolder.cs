using System.Text.Json;
using Sd35.Tensors.Checkpoints;

namespace Sd35.CostModeling;

/// <summary>
/// A diffusers-layout model folder holding only the configs of a <see cref="Workload"/> (no weights): what the real
/// pipeline reads to build its models. On the meta device the models are built from these configs and no weights
/// are read, so the dry run goes through the pipeline's own loading and stage code.
/// </summary>
public static class ShapeOnlyModelFolder
{
    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>Writes the folder under a fresh temporary directory and returns its path.</summary>
    public static string Write(Workload w)
    {
        string root = Path.Combine(Path.GetTempPath(), "sd35-costmodel", Guid.NewGuid().ToString("N"));
        Part(root, "transformer", w.Transformer);
        Part(root, "text_encoder", w.ClipL);
        Part(root, "text_encoder_2", w.ClipG);
        if (w.T5 is { } t5) Part(root, "text_encoder_3", t5);
        Part(root, "vae", w.Vae);
        return root;
    }

    /// <summary>The folder of one part: <paramref name="root"/>/<paramref name="name"/>.</summary>
    public static ModelFolder Folder(string root, string name) => new(Path.Combine(root, name));

    // The configs are records whose properties carry their config.json names, so they serialize as config.json.
    static void Part<T>(string root, string name, T config)
    {
        var dir = Path.Combine(root, name);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(config, Json));
    }
}
