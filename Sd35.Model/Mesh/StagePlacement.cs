namespace Sd35.Mesh;

/// <summary>
/// Where the stages around the denoising loop run on a parallel config, following the reference system: the text
/// encoders and the VAE each on one cfg submesh, tensor parallel over at most four devices. A submesh of up to four
/// devices is reshaped into one row (the reference's 2×2 → 1×4 "reshape"), so all its devices form the tp group; a
/// larger submesh (TG's 4×4) uses its rows, each row a tp group of its own computing the same result. The text
/// encoders use submesh 0; the VAE uses the last submesh unless the submesh had to be reshaped, in which case it
/// shares submesh 0 with the encoders. A rank reads these as its <see cref="MeshGroups.TextEncoders"/> and
/// <see cref="MeshGroups.Vae"/> groups.
/// </summary>
static class StagePlacement
{
    const int MaxTensorParallel = 4;

    /// <summary>The text encoders' tp group (device ids in rank order) of <paramref name="device"/>, or null when the device sits them out.</summary>
    public static IReadOnlyList<DeviceId>? TextEncoders(DeviceMesh mesh, ParallelConfig config, DeviceId device) =>
        GroupOn(MeshRank.CfgSubmeshes(mesh, config)[0], device);

    /// <summary>The VAE's tp group of <paramref name="device"/> (the decoder's, and the encoder's for an input image), or null when the device sits it out.</summary>
    public static IReadOnlyList<DeviceId>? Vae(DeviceMesh mesh, ParallelConfig config, DeviceId device)
    {
        var submeshes = MeshRank.CfgSubmeshes(mesh, config);
        bool reshaped = NeedsReshape(submeshes[0]);
        return GroupOn(reshaped ? submeshes[0] : submeshes[^1], device);
    }

    static bool NeedsReshape(DeviceMesh submesh) => submesh.Size <= MaxTensorParallel && submesh.Shape.Rows > 1;

    static IReadOnlyList<DeviceId>? GroupOn(DeviceMesh submesh, DeviceId device)
    {
        if (!submesh.Contains(device)) return null;
        if (submesh.Size <= MaxTensorParallel) return submesh.Ids;
        return submesh.Line(submesh.CoordOf(device), 1);
    }
}
