using Sd35.Errors;

namespace Sd35.Tensors.Checkpoints;

/// <summary>Refuses pickle-based checkpoint formats: unpickling can execute arbitrary code.</summary>
static class PickleGuard
{
    static readonly string[] PickleExtensions = [".bin", ".ckpt", ".pt", ".pth", ".pkl", ".pickle"];

    public static bool IsPickle(string path) =>
        PickleExtensions.Contains(System.IO.Path.GetExtension(path), StringComparer.OrdinalIgnoreCase);

    public static void RejectPickle(string path)
    {
        if (IsPickle(path))
            throw new CheckpointException(path, null,
                "refusing to load a pickle checkpoint (.bin, .ckpt, .pt): loading one can execute code. Convert it to .safetensors");
    }
}
