using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using static TorchSharp.torch;

namespace Sd35.Tests.TestSupport;

/// <summary>Runs a rank program on each device of a 1 × tp mesh with the in-process backend, handing it the rank as a member of that tp group only.</summary>
public static class TensorParallel
{
    public static T[] Run<T>(int tp, Func<MeshRank, T> rankProgram, Device? device = null) =>
        MeshRunner.Run(DeviceMesh.Create(1, tp, _ => device ?? CPU), rank => rankProgram(rank.TensorParallelOver("axis1", rank.Mesh.Line(rank.Coord, 1))));
}
