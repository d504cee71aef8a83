using Sd35.Mesh;
using Sd35.Mesh.InProcess;

namespace Sd35.Tests.TestSupport;

/// <summary>Runs a rank program on each device of a 1 × tp mesh with the in-process backend, handing it the tp group.</summary>
public static class TensorParallel
{
    public static T[] Run<T>(int tp, Func<IProcessGroup, T> rankProgram) =>
        MeshRunner.Run(DeviceMesh.Create(1, tp), rank => rankProgram(rank.Axis(1)));
}
