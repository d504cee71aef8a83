using Sd35.Mesh;

namespace Sd35.Pipeline;

/// <summary>
/// Where the text encoders and the VAE decoder run on a parallel config, following the reference system: on one
/// cfg submesh, tensor parallel over at most four devices. A submesh of up to four devices is reshaped into one
/// row (the reference's 2×2 → 1×4 "reshape"), so all its devices form the tp group; a larger submesh (TG's 4×4)
/// uses its rows, each row a tp group of its own computing the same result. The encoders use submesh 0; the VAE
/// uses the last submesh unless the submesh had to be reshaped, in which case it shares submesh 0 with the encoders.
/// </summary>
public static class EncoderPlacement
{
    const int MaxTensorParallel = 4;

    /// <summary>The tp group (device ids in rank order) of <paramref name="deviceId"/> for the encoders, or null when the device sits them out.</summary>
    public static IReadOnlyList<int>? TextEncoderGroup(DeviceMesh mesh, ParallelConfig config, int deviceId) =>
        GroupOn(ParallelPlacement.Submeshes(mesh, config)[0], deviceId);

    /// <summary>The tp group of <paramref name="deviceId"/> for the VAE decoder, or null when the device sits it out.</summary>
    public static IReadOnlyList<int>? VaeGroup(DeviceMesh mesh, ParallelConfig config, int deviceId)
    {
        var submeshes = ParallelPlacement.Submeshes(mesh, config);
        bool reshaped = NeedsReshape(submeshes[0]);
        return GroupOn(reshaped ? submeshes[0] : submeshes[^1], deviceId);
    }

    static bool NeedsReshape(DeviceMesh submesh) => submesh.Size <= MaxTensorParallel && submesh.Shape.Rows > 1;

    static IReadOnlyList<int>? GroupOn(DeviceMesh submesh, int deviceId)
    {
        if (!submesh.Contains(deviceId)) return null;
        if (submesh.Size <= MaxTensorParallel) return submesh.Ids;
        return submesh.Line(submesh.CoordOf(deviceId), 1);
    }
}
