namespace Sd35.Tests.Mesh;

/// <summary>
/// Test classes that start mesh runs share this collection so xUnit runs them one at a time: a run sets
/// TorchSharp's process-global intra-op thread count, and overlapping runs would see each other's setting
/// (and oversubscribe the cores). Per-config test classes should join it too: <c>[Collection(MeshRunCollection.Name)]</c>.
/// </summary>
[CollectionDefinition(Name)]
public sealed class MeshRunCollection
{
    public const string Name = "Mesh runs";
}
